/**
 * Datasets Gatehouse stores itself are encrypted at rest under their own data key
 * (`gatehouse ingest`), queried like any other, and crypto-shredded by destroying the key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { startNode } from '../src/node/start.ts';
import { WorkspaceInvalid } from '../src/workspace/load.ts';
import { KEYS, codeOf } from './helpers/workspace.ts';

const META = { source: '127.0.0.1', channel: 'test' } as const;

describe('an encrypted dataset', () => {
  let dir: string;
  let ws: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-enc-ds-'));
    ws = join(dir, 'ws');
    await createTestDemoWorkspace(ws, { patients: 500, keys: KEYS });
    let out = '';
    const code = await main(['ingest', '--workspace', ws, '--dataset', 'patients', join(ws, 'data', 'patients.parquet')], { write: (s: string) => { out += s; return true; } } as never);
    assert.equal(code, 0, out);
    assert.match(out, /source: \{ encrypted: datasets\/patients\.ghd \}/);
    const yaml = readFileSync(join(ws, 'gatehouse.yaml'), 'utf8');
    writeFileSync(join(ws, 'gatehouse.yaml'), yaml.replace('source: { parquet: data/patients.parquet }', 'source: { encrypted: datasets/patients.ghd }'));
  });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('holds no plaintext on disk and answers governed queries like the Parquet original', async () => {
    const bytes = readFileSync(join(ws, 'datasets', 'patients.ghd'));
    for (const needle of ['us-east', 'eu-west', '.example', 'patient_id', 'date_of_birth']) assert.equal(bytes.includes(Buffer.from(needle)), false, `"${needle}" appears in the encrypted file`);
    const node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true });
    const gh = node.gatehouse;
    try {
      const r = await gh.query({ credential: KEYS.ada, sql: 'SELECT region, count(*) AS n FROM patients GROUP BY region ORDER BY region', purpose: 'operations', ...META });
      assert.equal(r.rows.reduce((n, row) => n + Number(row[1]), 0), 500);
      const ivan = await gh.query({ credential: KEYS.ivan, sql: 'SELECT ssn FROM patients LIMIT 5', purpose: 'claims-processing', ...META });
      for (const [ssn] of ivan.rows) assert.match(String(ssn), /^\*+\d{4}$/, 'masks apply as to any dataset');
    } finally {
      await node.close();
    }
  });

  it('refuses to shred under a legal hold, then crypto-shreds: the workspace can no longer read it', async () => {
    const node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true });
    const gh = node.gatehouse;
    try {
      const { hold } = await gh.governanceStore.retention.placeHold({ subject: { kind: 'dataset', id: 'patients' }, reason: 'litigation LIT-7', placedBy: 'olivia' });
      assert.equal(await codeOf(gh.governanceOp({ credential: KEYS.olivia, ...META }, 'keys.shred-dataset', { dataset: 'patients', reason: 'retention ended' })), 'CONFLICT');
      assert.ok((await gh.query({ credential: KEYS.ada, sql: 'SELECT count(*) FROM patients', purpose: 'operations', ...META })).rows.length === 1, 'nothing was destroyed');
      await gh.governanceStore.retention.releaseHold(hold.id, 'olivia');
      const r = await gh.governanceOp({ credential: KEYS.olivia, ...META }, 'keys.shred-dataset', { dataset: 'patients', reason: 'retention ended' }) as { destroyed: { keyId: string }[] };
      assert.equal(r.destroyed.length, 1);
      const audited = await node.audit.search({ action: 'governance.keys.shred-dataset', decision: 'allow' });
      assert.equal(audited.length, 1);
    } finally {
      await node.close();
    }
    await assert.rejects(startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true }), (e: unknown) => e instanceof WorkspaceInvalid && /crypto-shredded/.test(e.message + JSON.stringify(e.problems)));
  });
});
