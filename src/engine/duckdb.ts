/**
 * Embedded DuckDB engine (`@duckdb/node-api`). File datasets are loaded into an in-memory
 * database at start, with exactly the catalog's columns cast to their declared types;
 * DuckDB database files are attached read-only. Then the instance is locked down:
 * external access off (no files, no network), extensions neither installed nor loaded,
 * a memory limit, and the configuration locked so no query can change any of it
 * (invariant 4). Queries run on a small pool of connections with a statement timeout.
 *
 * Spilling is OFF (invariant 11, docs/engines.md). DuckDB's default temp directory is
 * `.tmp/` under the working directory; under memory pressure it writes plaintext blocks of
 * the base tables and of intermediate results there (measured with 1.5.5), the files
 * outlive a crash, and the directory counts as an allowed directory even with external
 * access off. DuckDB 1.5.5 can encrypt temp files (`temp_file_encryption`) only with the
 * httpfs extension's crypto module (offline it refuses: "read-only crypto module"), and
 * `max_temp_directory_size = '0KiB'` does not stop it writing (measured). What does stop
 * it is an empty `temp_directory` given when the instance is created: a query that needs
 * more memory than the limit then fails and is refused as QUERY_TOO_COSTLY.
 */
import { DuckDBInstance, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { GatehouseError } from '../errors.ts';
import { duckdbDialect } from '../query/render/duckdb.ts';
import { quoteIdent, quoteString, type Dialect } from '../query/render/sql.ts';
import type { DatasetDef, Workspace } from '../model/types.ts';
import type { WorkspaceProblem } from '../model/problems.ts';
import type { CellValue, Engine, EngineResult, RunOptions } from './engine.ts';

export interface DuckDbEngineOptions {
  readonly poolSize?: number;
  /**
   * Memory the queries may use, on top of the loaded datasets (DuckDB syntax, e.g. '512MB').
   * Default: the workspace's `defaults.memoryLimit`. Connections of the pool share it.
   */
  readonly queryMemory?: string;
  readonly threads?: number;
  /** The data key of an encrypted dataset (`source: {encrypted: FILE}`), from the key store. */
  readonly dataKeyOf?: (dataset: string) => Promise<Buffer>;
}

/** The table inside an encrypted dataset file written by `gatehouse ingest`. */
export const ENCRYPTED_DATASET_TABLE = 'data';

const LOCKDOWN = [
  // DuckDB's common-subexpression optimizer hoists a repeated expression out of TRY(...),
  // so its error escapes: with it on, writing a failing expression twice would reopen the
  // error side channel that TRY closes (test/attack.test.ts pins this).
  "SET GLOBAL disabled_optimizers = 'common_subexpressions'",
  "SET autoinstall_known_extensions = false",
  "SET autoload_known_extensions = false",
  "SET allow_community_extensions = false",
  "SET enable_external_access = false",
  "SET lock_configuration = true",
];

/**
 * Given when the instance is created, before any block exists: with no temp directory
 * DuckDB never writes a temp file (it cannot be switched later, and lock_configuration
 * keeps anyone from trying).
 */
export const NO_SPILL_CONFIG: Readonly<Record<string, string>> = { temp_directory: '' };

/**
 * Where a dataset lives inside the engine. Fully qualified (catalog.schema.table) so no
 * name a query defines — a CTE, an alias — can shadow it.
 */
const PREPARED_PER_CONNECTION = 256;

export function tableFor(dataset: string): string {
  return `${quoteIdent('memory')}.${quoteIdent('main')}.${quoteIdent(`gh_ds_${dataset}`)}`;
}

export class DuckDbEngine implements Engine {
  readonly dialect: Dialect;
  readonly #instance: DuckDBInstance;
  readonly #idle: DuckDBConnection[];
  readonly #waiting: ((c: DuckDBConnection) => void)[] = [];
  readonly #sources: ReadonlyMap<string, string>;
  /** Prepared statements per connection, by SQL text (LRU): planning is most of a small query's cost. */
  readonly #prepared = new Map<DuckDBConnection, Map<string, DuckDBPreparedStatement>>();
  #closed = false;

  private constructor(instance: DuckDBInstance, pool: DuckDBConnection[], sources: Map<string, string>, hashKey: Buffer) {
    this.#instance = instance;
    this.#idle = pool;
    this.#sources = sources;
    this.dialect = duckdbDialect({
      hashKey,
      sourceOf: (ds) => {
        const s = this.#sources.get(ds);
        if (!s) throw new Error(`dataset ${ds} has no source in this engine`);
        return s;
      },
    });
  }

  /** Loads the workspace's datasets and locks the engine down. Problems name the dataset. */
  static async open(ws: Workspace, options: DuckDbEngineOptions = {}): Promise<DuckDbEngine> {
    const instance = await DuckDBInstance.create(':memory:', { threads: String(options.threads ?? 2), ...NO_SPILL_CONFIG });
    const setup = await instance.connect();
    const problems: WorkspaceProblem[] = [];
    const sources = new Map<string, string>();
    try {
      for (const ds of ws.datasets.values()) {
        if (ds.source.kind === 'postgres') continue; // pushed down to PostgreSQL (engine/postgres.ts)
        try {
          sources.set(ds.name, await loadDataset(setup, ds, options));
        } catch (err) {
          problems.push({ file: 'gatehouse.yaml', line: null, message: `datasets.${ds.name}: cannot load the source: ${scrub(String((err as Error).message))}` });
        }
      }
      if (problems.length > 0) {
        const { WorkspaceInvalid } = await import('../workspace/load.ts');
        throw new WorkspaceInvalid(problems);
      }
      // The datasets stay in memory (nothing may be evicted to disk), so the limit is what
      // they hold plus what queries may use: the workspace's memoryLimit is the query budget.
      const held = await datasetBytes(setup);
      const budget = parseBytes(options.queryMemory ?? ws.defaults.memoryLimit);
      await setup.run(`SET memory_limit = ${quoteString(`${Math.ceil((held + budget) / 1024)}KiB`)}`);
      for (const s of LOCKDOWN) await setup.run(s);
    } finally {
      setup.closeSync();
    }
    const pool: DuckDBConnection[] = [];
    for (let i = 0; i < (options.poolSize ?? 4); i++) pool.push(await instance.connect());
    return new DuckDbEngine(instance, pool, sources, ws.hashKey);
  }

  async #acquire(): Promise<DuckDBConnection> {
    if (this.#closed) throw new GatehouseError('INTERNAL', 'the engine is shut down');
    const c = this.#idle.pop();
    if (c) return c;
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(c: DuckDBConnection): void {
    const next = this.#waiting.shift();
    if (next) next(c); else this.#idle.push(c);
  }

  async run(sql: string, options: RunOptions): Promise<EngineResult> {
    const conn = await this.#acquire();
    let timedOut = false;
    const stop = (): void => { timedOut = true; conn.interrupt(); };
    const timer = setTimeout(stop, options.timeoutMs);
    // A cancel (wire CancelRequest, shutdown, a client gone) interrupts the engine like the timeout does.
    if (options.signal?.aborted) stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      // Statements with CTEs are not kept prepared: DuckDB can hold their materialised CTE
      // results with the statement (measured: memory exhausted after a few DP queries on
      // 10M rows); they are usually one-off (a DP query carries a fresh seed) anyway.
      const reader = sql.startsWith('WITH ') ? await conn.runAndReadAll(sql) : await (await this.#prepare(conn, sql)).runAndReadAll();
      const names = reader.columnNames();
      const types = reader.columnTypes().map((t) => t.toString());
      const rows = reader.getRowsJS().map((row) => row.map((v, i) => toCell(v, types[i]!)));
      return { columns: names.map((name, i) => ({ name, type: types[i]! })), rows };
    } catch (err) {
      if (options.signal?.aborted) throw new GatehouseError('QUERY_TIMEOUT', 'the query was cancelled and stopped', { hint: 'run it again when you need it; narrow it if it was too slow' });
      throw engineError(err, timedOut, options.timeoutMs);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', stop);
      this.#release(conn);
    }
  }

  async #prepare(conn: DuckDBConnection, sql: string): Promise<DuckDBPreparedStatement> {
    let cache = this.#prepared.get(conn);
    if (!cache) { cache = new Map(); this.#prepared.set(conn, cache); }
    const hit = cache.get(sql);
    if (hit) {
      cache.delete(sql);
      cache.set(sql, hit);
      return hit;
    }
    const prepared = await conn.prepare(sql);
    cache.set(sql, prepared);
    if (cache.size > PREPARED_PER_CONNECTION) {
      const [oldest, stmt] = cache.entries().next().value!;
      cache.delete(oldest);
      stmt.destroySync();
    }
    return prepared;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const cache of this.#prepared.values()) for (const stmt of cache.values()) stmt.destroySync();
    this.#prepared.clear();
    for (const c of this.#idle.splice(0)) c.closeSync();
    this.#instance.closeSync();
  }
}

async function loadDataset(conn: DuckDBConnection, ds: DatasetDef, options: DuckDbEngineOptions): Promise<string> {
  const cols = ds.columns.map((c) => `CAST(${quoteIdent(c.name)} AS ${c.type === 'DECIMAL' ? 'DOUBLE' : c.type}) AS ${quoteIdent(c.name)}`).join(', ');
  const src = ds.source;
  if (src.kind === 'encrypted') {
    if (!options.dataKeyOf) throw new Error('an encrypted dataset needs the key store (state directory and key passphrase)');
    const { loadEncryptedDataset } = await import('../keys/datasets.ts');
    const staging = `${quoteIdent('memory')}.${quoteIdent('main')}.${quoteIdent(`gh_stage_${ds.name}`)}`;
    await loadEncryptedDataset(conn, { path: src.path, table: ENCRYPTED_DATASET_TABLE, intoTable: staging, dataKey: await options.dataKeyOf(ds.name) });
    try {
      await conn.run(`CREATE TABLE ${tableFor(ds.name)} AS SELECT ${cols} FROM ${staging}`);
    } finally {
      await conn.run(`DROP TABLE IF EXISTS ${staging}`);
    }
    return tableFor(ds.name);
  }
  if (src.kind === 'duckdb') {
    const alias = quoteIdent(`gh_src_${ds.name}`);
    await conn.run(`ATTACH ${quoteString(src.path)} AS ${alias} (READ_ONLY)`);
    const table = src.table.split('.').map(quoteIdent).join('.');
    await conn.run(`CREATE TABLE ${tableFor(ds.name)} AS SELECT ${cols} FROM ${alias}.${table}`);
    await conn.run(`DETACH ${alias}`);
    return tableFor(ds.name);
  }
  if (src.kind === 'postgres') throw new Error('a PostgreSQL dataset is not loaded into DuckDB');
  const reader = src.kind === 'parquet' ? `read_parquet(${quoteString(src.path)})` : `read_csv(${quoteString(src.path)}, header = true)`;
  await conn.run(`CREATE TABLE ${tableFor(ds.name)} AS SELECT ${cols} FROM ${reader}`);
  return tableFor(ds.name);
}

/** Bytes the loaded tables hold in DuckDB's buffer manager. */
async function datasetBytes(conn: DuckDBConnection): Promise<number> {
  const r = await conn.runAndReadAll('SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory()');
  return Number(r.getRowsJS()[0]?.[0] ?? 0);
}

/** '4GB', '512MB', '1.5GiB' → bytes (the workspace schema admits MB, GB, MiB, GiB). */
export function parseBytes(limit: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(KB|MB|GB|KiB|MiB|GiB)$/.exec(limit.trim());
  if (!m) throw new Error(`not a memory size: ${limit}`);
  const unit = { KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[m[2] as 'KB'];
  return Math.round(Number(m[1]) * unit);
}

function toCell(v: unknown, type: string): CellValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof Date) return type === 'DATE' ? v.toISOString().slice(0, 10) : v.toISOString();
  if (Array.isArray(v)) return v.map((x) => toCell(x, ''));
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (typeof v === 'object') {
    const out: Record<string, CellValue> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = toCell(x, '');
    return out;
  }
  return String(v);
}

/** Removes quoted text and the SQL excerpt DuckDB appends, so no value or secret is echoed. */
function scrub(message: string): string {
  return message.split('\n')[0]!.replace(/'(?:[^']|'')*'/g, "'…'").replace(/"(?:[^"]|"")*"/g, (m) => (m.includes('gh_') ? '"…"' : m)).slice(0, 300);
}

export function engineError(err: unknown, timedOut: boolean, timeoutMs: number): GatehouseError {
  const e = classifyEngineError(err, timedOut, timeoutMs);
  // The raw engine message stays server-side (cause); toJSON never includes it.
  Object.defineProperty(e, 'cause', { value: err, enumerable: false });
  return e;
}

function classifyEngineError(err: unknown, timedOut: boolean, timeoutMs: number): GatehouseError {
  const message = String((err as Error)?.message ?? err);
  if (timedOut || /^INTERRUPT/i.test(message)) {
    return new GatehouseError('QUERY_TIMEOUT', `the query ran longer than the ${timeoutMs} ms statement timeout and was stopped`, { hint: 'narrow it with WHERE, aggregate earlier or avoid cross joins' });
  }
  if (/out of memory/i.test(message)) {
    // Spilling is off (docs/engines.md): a query that outgrows the memory budget is refused.
    return new GatehouseError('QUERY_TOO_COSTLY', 'the query needs more memory than the engine allows queries (intermediate results are never written to disk)', { hint: 'aggregate or filter earlier, select fewer columns, or avoid sorting or grouping by high-cardinality text' });
  }
  if (/^(Conversion|Invalid Input|Out of Range) Error/i.test(message)) {
    return new GatehouseError('ENGINE_ERROR', 'a value could not be converted or was out of range while evaluating the query (details are withheld: errors never carry data values)', { hint: 'use CAST to convert explicitly; a failed CAST yields NULL' });
  }
  if (/^Binder Error/i.test(message)) {
    return new GatehouseError('ENGINE_ERROR', `the query does not type-check: ${scrub(message.replace(/^Binder Error:\s*/i, ''))}`, { hint: 'compare values of the same type; GET /v1/datasets lists column types' });
  }
  const kind = /^([A-Za-z ]+) Error/.exec(message)?.[1] ?? 'engine';
  return new GatehouseError('ENGINE_ERROR', `the engine could not run the query (${kind} error)`, { hint: 'simplify the query; the audit log records the failure' });
}
