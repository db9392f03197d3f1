/**
 * The differencing history and the release ledger live in the node's state (issue 12 §2):
 * a restart does not give a partner a fresh start on the tracker attack.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { startNode } from '../src/node/start.ts';
import { codeOf, KEYS } from './helpers/workspace.ts';

test('after a restart, the second half of a differencing pair is still refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-diff-persist-'));
  try {
    const ws = join(dir, 'ws');
    await createTestDemoWorkspace(ws, { patients: 1500, keys: KEYS });
    const open = () => startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true, engineOptions: { poolSize: 2 } });
    const q = (gh: Awaited<ReturnType<typeof open>>['gatehouse'], sql: string) => gh.query({ credential: KEYS.rhea, sql, purpose: 'research', source: '127.0.0.1', channel: 'test' });
    const a = await open();
    let claim: unknown;
    try {
      claim = (await a.gatehouse.query({ credential: KEYS.ada, sql: 'SELECT claim_id FROM claims ORDER BY claim_id DESC LIMIT 1', purpose: 'operations', source: '127.0.0.1', channel: 'test' })).rows[0]![0];
      await q(a.gatehouse, "SELECT count(*) AS n, sum(amount_paid) AS s FROM claims WHERE status <> 'nonexistent'");
    } finally { await a.close(); }
    const b = await open();
    try {
      const code = await codeOf(q(b.gatehouse, `SELECT count(*) AS n, sum(amount_paid) AS s FROM claims WHERE status <> 'nonexistent' AND claim_id NOT IN (SELECT ${String(claim)})`));
      assert.equal(code, 'DIFFERENCING_DETECTED', 'the first query, made before the restart, is remembered');
    } finally { await b.close(); }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
