/**
 * Detection must not reset when the node restarts: a contractor who spreads a slow
 * exfiltration over a restart is still caught when the total crosses the limit; what was usual
 * for him is still usual; and a result released before the restart still traces back to him
 * and its audit entry afterwards. The state files hold no data value.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let fx: ServerFixture;
let second: GatehouseNode | null = null;

before(async () => {
  fx = await demoFixture({
    patients: 200, http: true,
    edit: (ws) => writeFileSync(join(ws, 'monitoring.yaml'), [
      'monitoring:',
      '  rules:',
      '    slow-exfiltration: { rows: 24, maxRowsPerQuery: 10, windowMinutes: 60 }',
      '  leakTracing:',
      '    claims: { vary: [amount_billed, amount_paid], canaries: 2 }',
      '',
    ].join('\n')),
  });
});
after(async () => { await second?.close(); await fx.close(); });

const waitFor = async (pred: () => boolean, ms = 10_000): Promise<void> => {
  for (const end = Date.now() + ms; !pred();) {
    assert.ok(Date.now() < end, 'the node wrote its detection state');
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe('monitoring detection across a restart', () => {
  it('keeps baselines, rule windows and the leak registry, so a slow exfiltration split by a restart is still caught and a leak still traced', async () => {
    const monitor = fx.gh.monitoring().monitor;
    const released = await fx.query('ivan', 'SELECT claim_id, payer, amount_billed, amount_paid FROM claims LIMIT 40');
    const releasedAudit = released.governance.auditId;
    // Two small, different queries: 20 rows of the 24 the rule allows in an hour.
    for (const n of [1, 2]) {
      const r = await fx.query('ivan', `SELECT claim_id, payer FROM claims ORDER BY claim_id LIMIT 10 OFFSET ${n * 10}`);
      assert.equal(r.rows.length, 10);
    }
    assert.equal(monitor.alerts.list().filter((a) => a.rule === 'slow-exfiltration').length, 0, 'not yet over the limit');
    const learnt = monitor.principalBaselines.get('ivan')!.n;
    assert.ok(learnt >= 3);

    const stateDir = join(fx.wsDir, 'state');
    const detection = join(stateDir, 'monitoring-detection.json');
    await waitFor(() => existsSync(detection) && (JSON.parse(readFileSync(detection, 'utf8')) as { principals: Record<string, { n: number }> }).principals.ivan?.n === learnt);
    await waitFor(() => existsSync(join(stateDir, 'leak-registry.jsonl')));
    const values = released.rows.slice(0, 10).flatMap((r) => [r[2], r[3]]).map(String).filter((v) => v.length >= 5);
    assert.ok(values.length > 0);
    for (const f of ['monitoring-detection.json', 'leak-registry.jsonl']) {
      const text = readFileSync(join(stateDir, f), 'utf8');
      for (const v of values) assert.ok(!text.includes(String(v)), `${f} holds no released value (${String(v)})`);
      assert.ok(!text.includes(KEYS.ivan), `${f} holds no key`);
    }
    await fx.node.close();

    second = await startNode({ workspaceDir: fx.wsDir, auditDir: join(fx.dir, 'audit'), demo: true, engineOptions: { poolSize: 2 }, http: { port: 0, version: 'test' }, wire: null, tls: null });
    const gh = second.gatehouse;
    const after = gh.monitoring().monitor;
    assert.equal(after.principalBaselines.get('ivan')?.n, learnt, 'the baseline survived');

    // The third small query crosses the limit only if the window kept the first two.
    await gh.query({ credential: KEYS.ivan, sql: 'SELECT claim_id, payer FROM claims ORDER BY claim_id LIMIT 10 OFFSET 30', purpose: 'claims-processing', source: '127.0.0.1', channel: 'test' });
    const alert = after.alerts.list().find((a) => a.rule === 'slow-exfiltration' && a.principal === 'ivan');
    assert.ok(alert, 'the slow exfiltration is detected across the restart');
    assert.match(alert.summary, /took 30 rows of claims in 3 small queries/);

    // The result released before the restart still names ivan and its audit entry.
    const leaked = ['claim_id,payer,amount_billed,amount_paid', ...released.rows.slice(5, 30).map((x) => x.map((c) => (c === null ? '' : String(c))).join(','))].join('\n');
    const t = await gh.monitoring().trace({ credential: KEYS.audrey, source: '127.0.0.1', channel: 'test' }, leaked);
    assert.equal(t.candidates[0]?.principal, 'ivan', t.verdict);
    assert.equal(t.candidates[0]?.auditId, releasedAudit);
    assert.ok(t.candidates[0]!.confidence >= 0.99, t.verdict);
  });
});
