/**
 * `gatehouse job mock`: runs a bundle in the real sandbox against generated mock rows, so a
 * partner can develop and test before submitting (PySyft's mock assets, OpenSAFELY's dummy
 * data). The mock rows follow the governed catalog *as the caller sees it* (src/operations/
 * datasets/list.ts): only datasets the caller may see, only their visible columns, types and
 * tags — never a stored value, never an engine (src/jobs/mock-data.ts). The output and the
 * logs come straight back: nothing real went in, so nothing real can come out.
 */
import { GatehouseError } from '../../errors.ts';
import { validateManifest } from '../../jobs/bundle.ts';
import { MOCK_FORMAT, mockRows, referenced, type MockColumn, type PublishedDataset, type PublishedMock } from '../../jobs/mock-data.ts';
import { checkOutputs } from '../../jobs/outputs.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { visibleDatasets } from '../datasets/list.ts';
import { jobsContext, requireOwner } from './context.ts';
import { sandboxOptions } from '../../jobs/sandbox-options.ts';
import type { Progress } from './run.ts';

export interface MockBody {
  readonly manifest: unknown;
  readonly code: string;
  readonly params?: Record<string, unknown>;
  readonly rows?: number;
  readonly seed?: string;
}


export async function mockJob(rt: Runtime, meta: RequestMeta, body: MockBody, onProgress?: (p: Progress) => void) {
  const manifest = validateManifest(body.manifest);
  if (typeof body.code !== 'string' || body.code.length === 0) throw new GatehouseError('REQUEST_INVALID', 'the bundle has no code');
  const rows = Math.min(Math.max(Math.trunc(body.rows ?? 200), 1), 10_000);
  return (await audited(rt, meta, 'job.mock', { purpose: manifest.purpose }, async ({ auth, state, entry }) => {
    entry.datasets = [...manifest.datasets];
    const views = await visibleDatasets(rt, state, auth.principal, manifest.purpose, meta);
    const inputs: Record<string, Record<string, unknown>[]> = {};
    for (const [name, spec] of Object.entries(manifest.inputs)) {
      const view = views.find((v) => v.name === spec.dataset);
      if (!view) throw new GatehouseError('POLICY_DENIED', `you may not see dataset "${spec.dataset}" for purpose "${manifest.purpose}", so there is no mock of it for you`, { hint: 'ask the data owner for catalog access to the dataset' });
      const cols: MockColumn[] = view.columns.filter((c) => !c.joinOnly).map((c) => ({ name: c.name, type: c.type, tags: c.tags, unit: view.privacyUnit === c.name }));
      inputs[name] = mockRows(referenced(spec.sql, cols), rows, `${body.seed ?? 'gatehouse-mock'}:${name}`);
    }
    const worker = await jobsContext(rt).worker();
    const outcome = await worker.run({ ...sandboxOptions(manifest, body.code, inputs as never, body.params ?? {}), onProgress: (p) => onProgress?.({ phase: 'sandbox', ...p }) });
    entry.reasons = [`mock run of "${manifest.name}" on ${rows} generated rows per input`];
    if (!outcome.ok) return { ok: false as const, limit: outcome.limit, error: outcome.error, logs: outcome.logs, inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.slice(0, 3)])) };
    let shapeError: string | null = null;
    try { checkOutputs(manifest, outcome.output); } catch (err) { shapeError = (err as Error).message; }
    return { ok: true as const, output: JSON.parse(outcome.output) as unknown, shapeError, logs: outcome.logs, cpuMs: outcome.cpuMs, inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.slice(0, 3)])) };
  })).value;
}

/**
 * `gatehouse job mock-publish`: a data owner publishes mock rows of whole datasets, generated
 * from the catalog declaration (every column's type, tags and declared bounds; never a
 * value), for partners who cannot reach the node at all — the file travels to them on the
 * bundle path (kind `mock-data`) and `gatehouse job mock --mock-data FILE` runs their job on
 * it offline (src/jobs/offline-mock.ts).
 */
export async function publishMock(rt: Runtime, meta: RequestMeta, body: { datasets: readonly string[]; rows?: number; seed?: string }) {
  return (await audited(rt, meta, 'job.mock.publish', {}, async ({ auth, state, entry }) => {
    requireOwner(rt, auth.principal, 'publishing mock data');
    const rows = Math.min(Math.max(Math.trunc(body.rows ?? 1_000), 1), 100_000);
    const seed = body.seed ?? 'gatehouse-mock';
    const datasets: Record<string, PublishedDataset> = {};
    for (const name of body.datasets ?? []) {
      const ds = state.loaded.workspace.datasets.get(name);
      if (!ds) throw new GatehouseError('NOT_FOUND', `no dataset "${name}"`);
      const columns: MockColumn[] = ds.columns.map((c) => ({ name: c.name, type: c.type, tags: c.tags, bounds: c.bounds, unit: ds.privacyUnit === c.name }));
      datasets[name] = { columns: columns.map((c) => ({ name: c.name, type: c.type, tags: c.tags ?? [] })), rows: mockRows(columns, rows, `${seed}:${name}`) };
    }
    if (Object.keys(datasets).length === 0) throw new GatehouseError('REQUEST_INVALID', 'name at least one dataset');
    entry.datasets = Object.keys(datasets);
    entry.reasons = [`mock data of ${Object.keys(datasets).join(', ')} published (${rows} generated rows each, from the catalog declaration)`];
    return { format: MOCK_FORMAT, generatedAt: rt.now().toISOString(), seed, datasets } satisfies PublishedMock;
  })).value;
}
