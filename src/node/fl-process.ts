/**
 * One federated-learning node as its own process, for `gatehouse fl demo`, the tests and the
 * docs (it lives beside the CLI that spawns it, so src/fl imports no node or server code and
 * the folder graph keeps no cycle): the ordinary node (src/node/start.ts: pipeline, audit log, partner HTTP on a free loopback port, with the
 * /v1/fl routes) plus its federated-learning service on the node listener gatehouse.yaml
 * gives. Prints one JSON line {"http", "federation", "node"} when ready, or {"error"} and
 * exits 2. Stops on SIGTERM.
 *
 *   node src/node/fl-process.ts <workspace dir> [--demo]
 */
import { join } from 'node:path';
import { startNode } from './start.ts';
import { GatehouseError } from '../errors.ts';
import { FlNode } from '../fl/node/service.ts';

const wsDir = process.argv[2];
if (!wsDir) {
  process.stderr.write('usage: fl-process.ts <workspace dir> [--demo]\n');
  process.exit(64);
}

try {
  const node = await startNode({ workspaceDir: wsDir, auditDir: join(wsDir, 'audit'), demo: process.argv.includes('--demo'), engineOptions: { poolSize: 2 }, http: { port: 0, version: 'fl' },
    // The federated-learning node owns this node's node-to-node listener (federation.listen), so the residency node is not started.
    federation: null });
  let fl: FlNode;
  try {
    fl = await FlNode.start({ gatehouse: node.gatehouse, stateDir: join(wsDir, 'state') });
  } catch (err) {
    await node.close();
    throw err;
  }
  process.stdout.write(`${JSON.stringify({ http: node.http!.port, federation: fl.port, node: fl.identity.nodeId })}\n`);
  const stop = (): void => {
    void (async () => {
      await fl.close().catch(() => undefined);
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
