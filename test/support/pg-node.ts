/**
 * A Gatehouse node on PostgreSQL state, serving HTTP, as its own process: the outage test
 * (test/state-outage.test.ts) runs it as a child so it can see whether losing PostgreSQL
 * kills the process. It opens the state (audit log, budgets, identity, governance, keys) at
 * GH_STATE_URL, the demo workspace at GH_WORKSPACE, listens on a free loopback port and prints
 * one JSON line `{"port": n}` on stdout. Its readiness is the server's own `GET /v1/ready`.
 * It stops on SIGTERM.
 */
import { join } from 'node:path';
import { TransparencyLog } from '../../src/audit/log.ts';
import { Gatehouse } from '../../src/pipeline/gatehouse.ts';
import { buildApp } from '../../src/server/app.ts';
import { openPostgresState } from '../../src/state/backend.ts';

const url = process.env.GH_STATE_URL;
const ws = process.env.GH_WORKSPACE;
const dir = process.env.GH_DIR;
if (!url || !ws || !dir) throw new Error('set GH_STATE_URL, GH_WORKSPACE and GH_DIR');

const state = await openPostgresState({ url, maxConnections: 4, connectTimeoutMs: 2000 });
const log = await TransparencyLog.openOn(state.logStorage!, { keyDir: join(dir, 'audit-keys'), pseudonymKeyDir: join(dir, 'pseudonym-keys'), demo: true });
const gh = await Gatehouse.open({ workspaceDir: ws, stateDir: join(dir, 'state'), audit: log, auditReader: log, engineOptions: { poolSize: 2 }, demo: true, state });
const app = await buildApp({ gatehouse: gh, auditLog: log, version: 'test' });
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);

process.on('SIGTERM', () => {
  void (async () => {
    await app.close();
    await gh.close();
    await log.close().catch(() => undefined);
    await state.close().catch(() => undefined);
    process.exit(0);
  })();
});
