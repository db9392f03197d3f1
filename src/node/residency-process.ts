/**
 * One region-pinned node as its own process, for `gatehouse residency demo`, the tests and
 * the benchmark: the ordinary node (src/node/start.ts), which starts its residency node from
 * the workspace's region: section, with partner HTTP on a free loopback port. Prints one JSON
 * line {"http": n, "federation": n, "node", "region"} when ready, or {"error": {code,
 * message}} and exits 2 when the workspace is refused. Stops on SIGTERM.
 * GATEHOUSE_FEDERATION_TIMEOUT_MS bounds each forwarded call (default 30 s).
 *
 *   node src/node/residency-process.ts <workspace dir> [--demo]
 */
import { join } from 'node:path';
import { startNode } from './start.ts';
import { GatehouseError } from '../errors.ts';

const wsDir = process.argv[2];
if (!wsDir) {
  process.stderr.write('usage: residency-process.ts <workspace dir> [--demo]\n');
  process.exit(64);
}
const demo = process.argv.includes('--demo');
const timeoutMs = Number(process.env.GATEHOUSE_FEDERATION_TIMEOUT_MS);

try {
  const node = await startNode({
    workspaceDir: wsDir, auditDir: join(wsDir, 'audit'), demo, engineOptions: { poolSize: 2 }, http: { port: 0, version: 'residency' },
    federation: timeoutMs > 0 ? { timeoutMs } : {},
  });
  const residency = node.residency;
  if (!residency) {
    await node.close();
    throw new GatehouseError('WORKSPACE_INVALID', 'this workspace has no region section, so the node is not part of a federation', { hint: 'add region: {node, region, jurisdiction} to gatehouse.yaml (docs/residency.md)' });
  }
  process.stdout.write(`${JSON.stringify({ http: node.http!.port, federation: residency.port, node: residency.identity.nodeId, region: residency.identity.region })}\n`);
  const stop = (): void => {
    void node.close().catch(() => undefined).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} catch (err) {
  const e = err instanceof GatehouseError ? err : new GatehouseError('INTERNAL', String((err as Error)?.message ?? err));
  process.stdout.write(`${JSON.stringify({ error: { code: e.code, detail: e.detail, message: e.message } })}\n`);
  process.exit(2);
}
