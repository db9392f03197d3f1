/**
 * One federated-learning node as its own process, for `gatehouse fl demo`, the tests and the
 * docs: `startNode` (src/node/start.ts) exactly as `gatehouse serve` runs it, pipeline, audit
 * log, partner HTTP on a free loopback port with the /v1/fl routes, and the node listener
 * gatehouse.yaml gives (federation.listen), which serves residency and federated learning
 * together. So the processes the tests train between are served nodes, not a special build.
 * Prints one JSON line {"http", "federation", "node"} when ready, or {"error"} and exits 2.
 * Stops on SIGTERM.
 *
 *   node src/node/fl-process.ts <workspace dir> [--demo]
 */
import { join } from 'node:path';
import { startNode } from './start.ts';
import { GatehouseError } from '../errors.ts';

const wsDir = process.argv[2];
if (!wsDir) {
  process.stderr.write('usage: fl-process.ts <workspace dir> [--demo]\n');
  process.exit(64);
}

try {
  const node = await startNode({ workspaceDir: wsDir, auditDir: join(wsDir, 'audit'), demo: process.argv.includes('--demo'), engineOptions: { poolSize: 2 }, http: { port: 0, version: 'fl' } });
  if (!node.residency) {
    await node.close();
    throw new GatehouseError('WORKSPACE_INVALID', 'this workspace has no region section, so the node is not part of a federation', { hint: 'add region: and federation: to gatehouse.yaml (docs/federated.md)' });
  }
  process.stdout.write(`${JSON.stringify({ http: node.http.port, federation: node.residency.port, node: node.residency.identity.nodeId })}\n`);
  const stop = (): void => {
    void (async () => {
      await node.close().catch(() => undefined);
      process.exit(0);
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} catch (err) {
  const e = err instanceof GatehouseError ? err : new GatehouseError('INTERNAL', String((err as Error)?.message ?? err));
  process.stdout.write(`${JSON.stringify({ error: { code: e.code, detail: e.detail, message: e.message } })}\n`);
  process.exit(2);
}
