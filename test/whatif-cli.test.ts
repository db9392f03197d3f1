/**
 * `gatehouse policy whatif` end to end on a demo workspace that is not being served: the
 * report as JSON, the exit status for a regulated widening, and an administrator's
 * acknowledgement written with the draft and accepted by the reload guard.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../src/cli/main.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { startNode } from '../src/node/start.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { guardPolicyReload, rawPublicKey } from '../src/governance/whatif/reload-guard.ts';
import { closeQueryTextStore } from '../src/governance/whatif/query-texts.ts';
import { KEYS } from './helpers/workspace.ts';

async function cli(args: string[]): Promise<{ code: number; text: string }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => { text += c.toString('utf8'); });
  const code = await main(args, out);
  return { code, text };
}

describe('gatehouse policy whatif', () => {
  let root: string;
  let ws: string;
  const admin = generateKeyPairSync('ed25519');

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'gh-whatif-cli-'));
    ws = join(root, 'ws');
    await createTestDemoWorkspace(ws, { patients: 200, keys: KEYS });
    const f = join(ws, 'gatehouse.yaml');
    writeFileSync(f, readFileSync(f, 'utf8').replace('    groups: [data-owners, admins]\n    attributes: { org: st-avery, region: us-east }', `    groups: [data-owners, admins]\n    attributes: { org: st-avery, region: us-east, policySigningKey: "${rawPublicKey(admin.publicKey)}" }`));
    // Some traffic of today, then the node stops (the CLI opens the log itself).
    const node = await startNode({ workspaceDir: ws, demo: true, engineOptions: { poolSize: 1 } });
    for (let i = 0; i < 3; i++) await node.gatehouse.query({ credential: KEYS.ivan, sql: 'SELECT name, ssn FROM patients ORDER BY patient_id LIMIT 2', purpose: 'claims-processing', source: '127.0.0.1', channel: 'http' });
    await node.close();
    closeQueryTextStore(join(ws, 'state'));
    writeFileSync(join(root, 'admin.pem'), admin.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  });

  after(() => { rmSync(root, { recursive: true, force: true }); });

  const draftWith = (name: string, edit: (y: string) => string): string => {
    const d = join(root, name);
    cpSync(ws, d, { recursive: true, filter: (src) => !/[\\/](audit|state)([\\/]|$)/.test(src.slice(ws.length)) });
    const f = join(d, 'gatehouse.yaml');
    writeFileSync(f, edit(readFileSync(f, 'utf8')));
    return d;
  };

  test('reports a tightened mask as JSON and exits 0', async () => {
    const d = draftWith('tight', (y) => y.replace('    unmask: [name, date_of_birth]\n', '    unmask: [date_of_birth]\n'));
    const r = await cli(['policy', 'whatif', '--draft', d, '--workspace', ws, '--days', '1', '--json']);
    assert.equal(r.code, 0, r.text);
    const report = JSON.parse(r.text);
    assert.equal(report.replayed, 3);
    assert.equal(report.modes.shape, 3, 'the workspace does not keep SQL text, so the shape is replayed');
    assert.deepEqual(report.changes.map((c: { principal: string; dataset: string; newlyMasked: { column: string }[] }) => [c.principal, c.dataset, c.newlyMasked.map((m) => m.column)]), [['ivan', 'patients', ['name']]]);
  });

  test('exits 3 on a regulated widening until an administrator acknowledges it, and the guard then accepts the draft', async () => {
    const d = draftWith('wide', (y) => y.replace('    unmask: [name, date_of_birth]\n', '    unmask: [name, date_of_birth, ssn]\n'));
    const r = await cli(['policy', 'whatif', '--draft', d, '--workspace', ws, '--days', '1']);
    assert.equal(r.code, 3, r.text);
    assert.match(r.text, /newly unmasked: ssn \(regulated\): last4 → as stored/);
    assert.match(r.text, /ivan: patients\.ssn/);
    const current = await loadWorkspace(ws);
    const draft = await loadWorkspace(d);
    assert.throws(() => guardPolicyReload(current, draft), (e: { code?: string }) => e.code === 'POLICY_WIDENING_UNACKNOWLEDGED');
    const bad = await cli(['policy', 'whatif', '--draft', d, '--workspace', ws, '--days', '1', '--acknowledge', '--as', 'ivan', '--signing-key', join(root, 'admin.pem')]);
    assert.equal(bad.code, 2, 'a non-administrator cannot acknowledge');
    assert.equal(existsSync(join(d, 'acknowledgements')), false);
    const ok = await cli(['policy', 'whatif', '--draft', d, '--workspace', ws, '--days', '1', '--acknowledge', '--as', 'olivia', '--signing-key', join(root, 'admin.pem')]);
    assert.equal(ok.code, 0, ok.text);
    assert.equal(readdirSync(join(d, 'acknowledgements')).length, 1);
    const reloaded = await loadWorkspace(d);
    assert.equal(guardPolicyReload(current, reloaded).acknowledgedBy, 'olivia');
  });

  test('a draft that does not load is refused with its problems', async () => {
    const d = draftWith('broken', (y) => y.replace('  rowCap: 10000\n', '  rowCap: lots\n'));
    const r = await cli(['policy', 'whatif', '--draft', d, '--workspace', ws]);
    assert.notEqual(r.code, 0);
    assert.match(r.text, /rowCap/);
  });
});
