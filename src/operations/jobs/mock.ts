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
import { mockRows, type MockColumn } from '../../jobs/mock-data.ts';
import { checkOutputs } from '../../jobs/outputs.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { visibleDatasets } from '../datasets/list.ts';
import { jobsContext } from './context.ts';
import { sandboxOptions, type Progress } from './run.ts';

export interface MockBody {
  readonly manifest: unknown;
  readonly code: string;
  readonly params?: Record<string, unknown>;
  readonly rows?: number;
  readonly seed?: string;
}

/** Columns of `sql` that the dataset view names (word match), or all visible columns. */
function referenced(sql: string, columns: readonly MockColumn[]): MockColumn[] {
  const words = new Set(sql.toLowerCase().match(/[a-z_][a-z0-9_]*/g) ?? []);
  const hit = columns.filter((c) => words.has(c.name.toLowerCase()));
  return hit.length > 0 ? hit : [...columns];
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
