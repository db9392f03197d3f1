/**
 * Which engine runs a query. File and DuckDB-file datasets live in the embedded DuckDB;
 * each distinct PostgreSQL connection (server, database, role, password source) gets its
 * own PostgresEngine. A query runs on exactly one engine: one that reads datasets from two
 * engines is refused, because joining them would mean pulling raw rows out of both
 * databases into Gatehouse — against "the data stays where it lives", and outside every
 * engine's locked-down, read-only, time-limited execution (docs/postgres.md).
 */
import { GatehouseError } from '../errors.ts';
import type { Workspace } from '../model/types.ts';
import { DuckDbEngine, type DuckDbEngineOptions } from './duckdb.ts';
import type { Engine } from './engine.ts';
import { connectionKey, describeConnection, PostgresEngine, type PostgresEngineOptions } from './postgres.ts';

export interface EngineRouterOptions {
  readonly duckdb?: DuckDbEngineOptions;
  readonly postgres?: PostgresEngineOptions;
}

export interface EngineRouter {
  /** The one engine that holds all of these datasets; refuses a mix (SQL_UNSUPPORTED). */
  forDatasets(names: readonly string[]): Engine;
  /** The engine of one dataset. */
  engineOf(dataset: string): Engine;
  /** Every open engine (DuckDB first). */
  engines(): readonly Engine[];
  close(): Promise<void>;
}

/** Opens DuckDB and one PostgresEngine per distinct connection; on any failure closes what it opened. */
export async function openEngines(ws: Workspace, options: EngineRouterOptions = {}): Promise<EngineRouter> {
  const groups = new Map<string, { label: string; datasets: import('../model/types.ts').DatasetDef[] }>();
  for (const ds of ws.datasets.values()) {
    if (ds.source.kind !== 'postgres') continue;
    const key = connectionKey(ds.source);
    const g = groups.get(key) ?? { label: `PostgreSQL ${describeConnection(ds.source)}`, datasets: [] };
    g.datasets.push(ds);
    groups.set(key, g);
  }
  const opened: Engine[] = [];
  const byDataset = new Map<string, { engine: Engine; label: string }>();
  try {
    const duck = await DuckDbEngine.open(ws, options.duckdb);
    opened.push(duck);
    // Problems of every PostgreSQL connection are reported together.
    const results = await Promise.allSettled([...groups.values()].map(async (g) => ({ g, engine: await PostgresEngine.open(ws, g.datasets, options.postgres) })));
    const failures: unknown[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') {
        opened.push(r.value.engine);
        for (const ds of r.value.g.datasets) byDataset.set(ds.name, { engine: r.value.engine, label: r.value.g.label });
      } else failures.push(r.reason);
    }
    if (failures.length > 0) {
      const { WorkspaceInvalid } = await import('../model/problems.ts');
      const problems = failures.flatMap((f) => (f instanceof WorkspaceInvalid ? f.problems : []));
      throw problems.length === failures.length || problems.length > 0 && failures.every((f) => f instanceof WorkspaceInvalid) ? new WorkspaceInvalid(problems) : failures[0];
    }
    for (const ds of ws.datasets.values()) if (!byDataset.has(ds.name)) byDataset.set(ds.name, { engine: duck, label: 'the embedded DuckDB' });
  } catch (err) {
    for (const e of opened) await e.close().catch(() => undefined);
    throw err;
  }
  const engineOf = (name: string): { engine: Engine; label: string } => {
    const hit = byDataset.get(name);
    if (!hit) throw new GatehouseError('SQL_UNKNOWN_DATASET', `unknown dataset ${name}`, { hint: 'GET /v1/datasets lists the datasets you can query' });
    return hit;
  };
  let closed = false;
  return {
    forDatasets(names) {
      if (names.length === 0) return opened[0]!;
      const first = engineOf(names[0]!);
      for (const n of names.slice(1)) {
        const other = engineOf(n);
        if (other.engine !== first.engine) {
          throw new GatehouseError('SQL_UNSUPPORTED',
            `the query reads ${names[0]} (in ${first.label}) and ${n} (in ${other.label}); a query can only combine datasets that live in the same database`,
            { hint: 'query each database separately: a cross-engine join would copy raw rows out of both into Gatehouse, and the data stays where it lives' });
        }
      }
      return first.engine;
    },
    engineOf: (name) => engineOf(name).engine,
    engines: () => opened,
    async close() {
      if (closed) return;
      closed = true;
      for (const e of opened) await e.close().catch(() => undefined);
    },
  };
}
