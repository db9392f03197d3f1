/**
 * One region-pinned node as its own process, for `gatehouse residency demo`, the tests and
 * the benchmark: the ordinary node (src/node/start.ts: pipeline, audit log, partner HTTP on
 * a free loopback port) plus its residency node (the mutual-TLS node listener on the port
 * gatehouse.yaml gives). Prints one JSON line {"http": n, "federation": n, "node", "region"}
 * when ready, or {"error": {code, message}} and exits 2 when the workspace is refused.
 * Stops on SIGTERM. GATEHOUSE_FEDERATION_TIMEOUT_MS bounds each forwarded call (default 30 s).
 *
 *   node src/node/residency-process.ts <workspace dir> [--demo]
 */
import { join } from 'node:path';
import { startNode } from './start.ts';
import { GatehouseError } from '../errors.ts';
import { ResidencyNode } from '../residency/service.ts';

const wsDir = process.argv[2];
if (!wsDir) {
  process.stderr.write('usage: residency-process.ts <workspace dir> [--demo]\n');
  process.exit(64);
}
const demo = process.argv.includes('--demo');

try {
  const node = await startNode({ workspaceDir: wsDir, auditDir: join(wsDir, 'audit'), demo, engineOptions: { poolSize: 2 }, http: { port: 0, version: 'residency' } });
  let residency: ResidencyNode;
  try {
    const timeoutMs = Number(process.env.GATEHOUSE_FEDERATION_TIMEOUT_MS);
    residency = await ResidencyNode.start({ gatehouse: node.gatehouse, stateDir: join(wsDir, 'state'), ...(timeoutMs > 0 ? { timeoutMs } : {}) });
  } catch (err) {
    await node.close();
    throw err;
  }
  process.stdout.write(`${JSON.stringify({ http: node.http!.port, federation: residency.port, node: residency.identity.nodeId, region: residency.identity.region })}\n`);
  const stop = (): void => {
    void (async () => {
      await residency.close().catch(() => undefined);
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
