/**
 * A suspension must not end because the node restarted: holds, alerts and incidents are kept
 * in the state directory and restored before the first request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import { codeOf, demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let fx: ServerFixture;
let second: GatehouseNode | null = null;

before(async () => {
  fx = await demoFixture({ patients: 200, http: true, edit: (ws) => writeFileSync(join(ws, 'monitoring.yaml'), 'monitoring:\n  rules:\n    repeated-denials: { count: 3, respond: suspend-sessions }\n') });
});
after(async () => { await second?.close(); await fx.close(); });

describe('monitoring across a restart', () => {
  it('keeps a suspended partner suspended, with its alert, until an administrator lifts it', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await codeOf(fx.query('ivan', `SELECT count(*) AS n FROM claims WHERE ${i} = ${i}`, 'marketing')), 'POLICY_DENIED');
    assert.equal(await codeOf(fx.query('ivan', 'SELECT count(*) AS n FROM claims')), 'POLICY_DENIED');
    await new Promise((r) => setTimeout(r, 50));
    await fx.node.close();

    // As `gatehouse serve` starts it (HTTP routes attach the monitor before the first request).
    second = await startNode({ workspaceDir: fx.wsDir, auditDir: join(fx.dir, 'audit'), demo: true, engineOptions: { poolSize: 2 }, http: { port: 0, version: 'test' }, wire: null, tls: null });
    const gh = second.gatehouse;
    const ask = (key: string) => gh.query({ credential: key, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', source: '127.0.0.1', channel: 'test' });
    await assert.rejects(ask(KEYS.ivan), (e: Error & { code?: string }) => e.code === 'POLICY_DENIED' && /suspended/.test(e.message));
    const alerts = await gh.monitoring().listAlerts({ credential: KEYS.audrey, source: '127.0.0.1', channel: 'test' });
    assert.ok(alerts.alerts.some((a) => a.rule === 'repeated-denials' && a.principal === 'ivan' && a.responses[0]?.state === 'applied'));
    await gh.monitoring().liftHold({ credential: KEYS.olivia, source: '127.0.0.1', channel: 'test' }, 'ivan');
    await ask(KEYS.ivan);
  });
});
