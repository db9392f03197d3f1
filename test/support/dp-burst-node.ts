/**
 * A node that answers a burst of differentially private queries, for crash tests: it
 * prints "ready" once open, then sends N queries at once and prints "answered" for each
 * answer, and then waits to be killed. The parent kills it with SIGKILL mid-burst.
 *
 *   node test/support/dp-burst-node.ts WORKSPACE AUDIT_DIR KEY N
 */
import { startNode } from '../../src/node/start.ts';
import { precreateAuditKeys } from '../helpers/audit-keys.ts';

const [wsDir, auditDir, key, n] = process.argv.slice(2) as [string, string, string, string];
precreateAuditKeys(auditDir);
const node = await startNode({ workspaceDir: wsDir, auditDir, demo: true, engineOptions: { poolSize: 2 } });
process.stdout.write('ready\n');
for (let i = 0; i < Number(n); i++) {
  void node.gatehouse.query({ credential: key, sql: 'SELECT grp, count(*) AS n, avg(value) AS v FROM readings GROUP BY grp', purpose: 'research', source: '127.0.0.1', channel: 'test' })
    .then(() => process.stdout.write('answered\n'), (err: unknown) => process.stdout.write(`failed ${(err as { code?: string }).code ?? 'unknown'}\n`));
}
setInterval(() => {}, 60_000);
