/**
 * The one executor. A governed plan carries its query IR, the engine that holds its
 * datasets, and its output protections as result transformers. `execute` runs every
 * protection's `before` (budget charge, differencing probe), renders the IR once for the
 * engine's dialect, runs it once, and folds the protections' `after` over the result
 * (noise, suppression, truncation, DLP). If anything fails, the `onFailure` of each
 * protection whose `after` has not completed runs (a budget refund), and nothing is
 * released.
 *
 * This file is the only place that calls an engine: governed queries, the internal reads
 * the path needs (the DLP value index, the classifier's sample, the differencing check, the
 * release audit) — each an IR query rendered by the same renderer, with the same timeouts
 * and an audit label — and catalog queries on the data-free catalog.
 */
import type { CellValue, Engine, EngineResult, ResultColumn } from '../engine/engine.ts';
import { asGatehouseError, type GatehouseError } from '../errors.ts';
import type { Select } from '../query/ir.ts';
import { renderSelect } from '../query/render/sql.ts';
import type { PrivacyGovernance } from '../privacy/release.ts';
import type { AuditDraft, RecordHook } from './audited.ts';
import type { CatalogCache, CatalogResult } from '../engine/catalog-db.ts';
import type { RenderedCatalogQuery } from '../catalog/render.ts';
import type { DatasetView } from './types.ts';

/** What leaves: the rows after every protection, and what was done to them. */
export interface Release {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly CellValue[])[];
  /** Differentially private values only: the 95 % interval of each (null for keys). */
  readonly intervals?: readonly (readonly ((readonly [number, number]) | null)[])[];
  readonly truncated: boolean;
  readonly rowsSuppressed: number;
  /** Labels of the output protections applied (obligationsApplied, audit entry). */
  readonly labels: readonly string[];
  readonly privacy?: PrivacyGovernance;
}

export interface ExecutionContext {
  readonly entry: AuditDraft;
  /** A reason kept in the audit entry whatever the outcome. */
  keep(reason: string): void;
  /** An internal read (IR built by Gatehouse, never user SQL) on the engine holding `dataset`. */
  internal(label: string, query: Select, dataset: string): Promise<EngineResult>;
  /** Bookkeeping that must follow the request's audit entry (see Envelope.onRecord). */
  onRecord(hook: RecordHook): void;
}

/** An output protection: one result transformer with before / after / onFailure hooks. */
export interface Protection {
  readonly name: string;
  before?(ctx: ExecutionContext): Promise<void>;
  after?(ctx: ExecutionContext, release: Release): Promise<Release> | Release;
  onFailure?(ctx: ExecutionContext, error: GatehouseError): Promise<void>;
}

export interface ExecutionPlan {
  readonly query: Select;
  readonly engine: Engine;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly protections: readonly Protection[];
}

export interface Engines {
  engineOf(dataset: string): Engine;
}

/**
 * Rendered SQL by IR tree and dialect. The IR is immutable and rendering is a pure function
 * of the tree and the engine's dialect object, so a tree the plan cache hands out again
 * (src/operations/query/plan-cache.ts) is rendered once; both keys are held weakly.
 */
const RENDERED = new WeakMap<Select, WeakMap<Engine['dialect'], string>>();

function rendered(query: Select, dialect: Engine['dialect']): string {
  let byDialect = RENDERED.get(query);
  if (!byDialect) { byDialect = new WeakMap(); RENDERED.set(query, byDialect); }
  let sql = byDialect.get(dialect);
  if (sql === undefined) { sql = renderSelect(query, dialect); byDialect.set(dialect, sql); }
  return sql;
}

/** The only call into an engine. */
function run(engine: Engine, query: Select, timeoutMs: number, signal?: AbortSignal): Promise<EngineResult> {
  const sql = rendered(query, engine.dialect);
  return engine.run(sql, signal ? { timeoutMs, signal } : { timeoutMs });
}

/** The context protections see; internal reads are bounded by the statement timeout. */
export function executionContext(env: { entry: AuditDraft; keep: (r: string) => void; onRecord: (h: RecordHook) => void }, engines: Engines, timeoutMs: number): ExecutionContext {
  const { entry, keep } = env;
  return {
    entry, keep, onRecord: env.onRecord,
    internal: (label, query, dataset) => {
      keep(`internal read: ${label}`);
      return run(engines.engineOf(dataset), query, timeoutMs);
    },
  };
}

/** An internal read outside a request's protections (the DLP value index, the classifier's sample). */
export function internalRead(engines: Engines, query: Select, dataset: string, timeoutMs: number): Promise<EngineResult> {
  return run(engines.engineOf(dataset), query, timeoutMs);
}

/**
 * A catalog query on the data-free catalog of what a principal may see (src/engine/catalog-db.ts):
 * Gatehouse-rendered SQL over catalog rows only — no dataset row is in that engine.
 */
export async function catalogRead(catalogs: CatalogCache, views: readonly DatasetView[], query: RenderedCatalogQuery, timeoutMs: number): Promise<CatalogResult> {
  return (await catalogs.get(views)).run(query, timeoutMs);
}

export async function catalogDescribe(catalogs: CatalogCache, views: readonly DatasetView[], query: RenderedCatalogQuery): Promise<CatalogResult['columns'] | null> {
  return (await catalogs.get(views)).describe(query);
}

export async function execute(plan: ExecutionPlan, ctx: ExecutionContext): Promise<Release> {
  const pending = new Set<Protection>();
  try {
    for (const p of plan.protections) {
      pending.add(p);
      await p.before?.(ctx);
    }
    const result = await run(plan.engine, plan.query, plan.timeoutMs, plan.signal);
    let release: Release = { columns: result.columns, rows: result.rows, truncated: false, rowsSuppressed: 0, labels: [] };
    for (const p of plan.protections) {
      if (p.after) release = await p.after(ctx, release);
      pending.delete(p);
    }
    return release;
  } catch (err) {
    const e = asGatehouseError(err);
    for (const p of [...pending].reverse()) await p.onFailure?.(ctx, e);
    throw e;
  }
}
