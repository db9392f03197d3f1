/**
 * Runs a job on published mock data (`gatehouse job mock --mock-data FILE`) on the partner's
 * own machine: no node, no network, the same sandbox and the same manifest checks as a real
 * run. Each input gets the mock rows of its dataset, projected on the columns its SQL names
 * (the SQL itself is not evaluated: filters and aggregates happen only in a real run).
 */
import { GatehouseError } from '../errors.ts';
import { validateManifest } from './bundle.ts';
import { MOCK_FORMAT, referenced, type PublishedMock } from './mock-data.ts';
import { checkOutputs } from './outputs.ts';
import { sandboxOptions } from './sandbox-options.ts';
import type { Json } from './sandbox/protocol.ts';
import { SandboxWorker } from './sandbox/worker-process.ts';

export async function runOnMock(manifestJson: unknown, code: string, mock: PublishedMock, params: Record<string, unknown>, onProgress?: (p: { input: string | null; rows: number; fraction: number | null }) => void) {
  const manifest = validateManifest(manifestJson);
  if (mock?.format !== MOCK_FORMAT) throw new GatehouseError('REQUEST_INVALID', `the mock data file is not ${MOCK_FORMAT} (gatehouse job mock-publish makes one)`);
  const inputs: Record<string, Json[]> = {};
  for (const [name, spec] of Object.entries(manifest.inputs)) {
    const ds = mock.datasets[spec.dataset];
    if (!ds) throw new GatehouseError('REQUEST_INVALID', `the mock data has no dataset "${spec.dataset}"; ask the data owner to publish it`);
    const cols = referenced(spec.sql, ds.columns).map((c) => c.name);
    inputs[name] = ds.rows.map((r) => Object.fromEntries(cols.map((c) => [c, r[c] ?? null])));
  }
  const worker = await SandboxWorker.start();
  try {
    const o = await worker.run({ ...sandboxOptions(manifest, code, inputs, params), ...(onProgress ? { onProgress } : {}) });
    if (!o.ok) return { ok: false as const, limit: o.limit, error: o.error, logs: o.logs };
    let shapeError: string | null = null;
    try { checkOutputs(manifest, o.output); } catch (err) { shapeError = (err as Error).message; }
    return { ok: true as const, output: JSON.parse(o.output) as unknown, shapeError, logs: o.logs, cpuMs: o.cpuMs };
  } finally {
    await worker.stop();
  }
}
