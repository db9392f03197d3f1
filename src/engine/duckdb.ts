/**
 * Embedded DuckDB engine (`@duckdb/node-api`). File datasets (Parquet, CSV, DuckDB files)
 * are queried where they lie: each is a view over its files (src/engine/duckdb-sources.ts),
 * so opening does not grow with data size and nothing is copied. Encrypted datasets
 * (`gatehouse ingest`) are the exception: they are decrypted only into the engine's memory
 * (src/keys/datasets.ts). Then the instance is locked down (invariant 4): the engine may
 * open exactly the declared files (`allowed_paths`, never a folder) and nothing else
 * (`enable_external_access = false`: no other file, no network), extensions are neither
 * installed nor loaded, a memory limit, and the configuration locked so no query can
 * change any of it. DuckDB's allow list does not tell reading from writing, so the files
 * are as safe as invariant 2 makes them: only Gatehouse-rendered SELECTs reach the engine,
 * and no rendered query names a file (docs/engines.md). Queries run on a small pool of
 * connections with a statement timeout.
 *
 * Spilling is OFF (invariant 11, docs/engines.md). DuckDB's default temp directory is
 * `.tmp/` under the working directory; under memory pressure it writes plaintext blocks of
 * the base tables and of intermediate results there (measured with 1.5.5), the files
 * outlive a crash, and the directory counts as an allowed directory even with external
 * access off. DuckDB 1.5.5 can encrypt temp files (`temp_file_encryption`) only with the
 * httpfs extension's crypto module (offline it refuses: "read-only crypto module"), and
 * `max_temp_directory_size = '0KiB'` does not stop it writing (measured). What does stop
 * it is an empty `temp_directory` given when the instance is created: a query that needs
 * more memory than the limit then fails and is refused as QUERY_TOO_COSTLY. Data read from
 * files is never spilled either way: DuckDB evicts it and reads the file again.
 */
import { DuckDBInstance, JSDuckDBValueConverter, type DuckDBConnection, type DuckDBMaterializedResult, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { GatehouseError } from '../errors.ts';
import { duckdbDialect } from '../query/render/duckdb.ts';
import { quoteIdent, quoteString, type Dialect } from '../query/render/sql.ts';
import type { DatasetDef, Workspace } from '../model/types.ts';
import { csvParseError, defineSourceView, engineType, SourceProblem, viewFilesOf, type ErasedCopyFile } from './duckdb-sources.ts';
import type { WorkspaceProblem } from '../model/problems.ts';
import type { CellValue, Engine, EngineResult, RunOptions } from './engine.ts';

export interface DuckDbEngineOptions {
  readonly poolSize?: number;
  /**
   * Memory the queries may use, on top of decrypted (encrypted) datasets (DuckDB syntax, e.g. '512MB').
   * Default: the workspace's `defaults.memoryLimit`. Connections of the pool share it.
   */
  readonly queryMemory?: string;
  readonly threads?: number;
  /** The data key of an encrypted dataset (`source: {encrypted: FILE}`), from the key store. */
  readonly dataKeyOf?: (dataset: string) => Promise<Buffer>;
  /** File datasets to read from a copy without erased subjects' rows (issue 23, src/governance/erasure/copies.ts). */
  readonly erasedCopies?: ReadonlyMap<string, ErasedCopyFile>;
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
  // Parquet footers are read once, not per query (a point query over many files pays for it otherwise).
  "SET parquet_metadata_cache = true",
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
/** How often a statement past its deadline is interrupted again (an interrupt before it starts is lost). */
const INTERRUPT_REPEAT_MS = 5;

export function tableFor(dataset: string): string {
  return `${quoteIdent('memory')}.${quoteIdent('main')}.${quoteIdent(`gh_ds_${dataset}`)}`;
}

export class DuckDbEngine implements Engine {
  readonly dialect: Dialect;
  readonly #instance: DuckDBInstance;
  readonly #idle: DuckDBConnection[];
  readonly #waiting: ((c: DuckDBConnection) => void)[] = [];
  readonly #sources: ReadonlyMap<string, string>;
  /** CSV datasets: their conversion errors are reported as the source's fault (csvParseError). */
  readonly #csv: readonly string[];
  /** Prepared statements per connection, by SQL text (LRU): planning is most of a small query's cost. */
  readonly #prepared = new Map<DuckDBConnection, Map<string, DuckDBPreparedStatement>>();
  #closed = false;
  readonly rowEstimates: ReadonlyMap<string, number>;
  /** The datasets this engine reads from erased copies, and whom each copy lacks (erasureOver). */
  erasedCopies: ReadonlyMap<string, { readonly unit: string; readonly values: ReadonlySet<string> }> = new Map();

  private constructor(instance: DuckDBInstance, pool: DuckDBConnection[], sources: Map<string, string>, csv: readonly string[], hashKey: Buffer, rowEstimates: ReadonlyMap<string, number>) {
    this.#instance = instance;
    this.rowEstimates = rowEstimates;
    this.#csv = csv;
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

  /**
   * Defines each file dataset as a view over its files, decrypts encrypted ones into memory,
   * and locks the engine down. Problems name the dataset.
   */
  static async open(ws: Workspace, options: DuckDbEngineOptions = {}): Promise<DuckDbEngine> {
    const instance = await DuckDBInstance.create(':memory:', { threads: String(options.threads ?? 2), ...NO_SPILL_CONFIG });
    const setup = await instance.connect();
    const problems: WorkspaceProblem[] = [];
    const problem = (ds: string, message: string): void => { problems.push({ file: 'gatehouse.yaml', line: null, message: `datasets.${ds}: ${message}` }); };
    const sources = new Map<string, string>();
    const rowEstimates = new Map<string, number>();
    const csv: string[] = [];
    try {
      // The exact files the engine may open, set before a DuckDB file is attached (ATTACH adds
      // the file's own WAL names to the list). Never a folder: DuckDB would let a query list,
      // read and write anything under it.
      const allowed = new Set<string>();
      const unreadable = new Set<string>();
      for (const ds of ws.datasets.values()) {
        if (ds.source.kind !== 'parquet' && ds.source.kind !== 'csv' && ds.source.kind !== 'duckdb') continue;
        try { for (const f of viewFilesOf(ds, options.erasedCopies?.get(ds.name))) allowed.add(f); } catch (err) { problem(ds.name, sourceMessage(err)); unreadable.add(ds.name); }
      }
      await setup.run(`SET allowed_paths = [${[...allowed].map(quoteString).join(', ')}]`);
      await setup.run("SET allowed_directories = []");
      for (const ds of ws.datasets.values()) {
        if (ds.source.kind === 'postgres' || unreadable.has(ds.name)) continue; // PostgreSQL: pushed down (engine/postgres.ts)
        try {
          if (ds.source.kind === 'encrypted') await loadEncrypted(setup, ds, options);
          else await defineSourceView(setup, ds, tableFor(ds.name), options.erasedCopies?.get(ds.name));
          if (ds.source.kind === 'csv') csv.push(ds.name);
          sources.set(ds.name, tableFor(ds.name));
        } catch (err) {
          problem(ds.name, sourceMessage(err));
        }
      }
      if (problems.length > 0) {
        const { WorkspaceInvalid } = await import('../model/problems.ts');
        throw new WorkspaceInvalid(problems);
      }
      // Decrypted datasets stay in memory (nothing may be evicted to disk), so the limit is what
      // they hold plus what queries may use: the workspace's memoryLimit is the query budget.
      // File data is read on demand and evicted when memory is short (then read again).
      const held = await datasetBytes(setup);
      const budget = parseBytes(options.queryMemory ?? ws.defaults.memoryLimit);
      await setup.run(`SET memory_limit = ${quoteString(`${Math.ceil((held + budget) / 1024)}KiB`)}`);
      // Row counts for the planner's cost bound (query/govern/cost-estimate.ts), once at start:
      // Parquet answers count(*) from its footers, DuckDB files and decrypted data from
      // table metadata; CSV is scanned once. Never recomputed per query, so no refusal
      // depends on anything a caller's query could change.
      for (const [name, table] of sources) rowEstimates.set(name, Number((await setup.runAndReadAll(`SELECT count(*) FROM ${table}`)).getRowsJS()[0]?.[0] ?? 0));
      for (const s of LOCKDOWN) await setup.run(s);
    } catch (err) {
      setup.closeSync();
      instance.closeSync();
      throw err;
    }
    setup.closeSync();
    const pool: DuckDBConnection[] = [];
    for (let i = 0; i < (options.poolSize ?? 4); i++) pool.push(await instance.connect());
    const engine = new DuckDbEngine(instance, pool, sources, csv, ws.hashKey, rowEstimates);
    engine.erasedCopies = new Map([...options.erasedCopies ?? []].filter(([d]) => sources.has(d)));
    return engine;
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
    // DuckDB's interrupt only stops a statement that is already running: one that arrives
    // while the statement is still being prepared or queued for the engine's thread is lost,
    // and the statement then runs unbounded. So once the deadline passes the interrupt is
    // repeated until the call returns, and a statement that still completes is refused as
    // timed out: nothing past the deadline is ever answered.
    let again: ReturnType<typeof setInterval> | undefined;
    const stop = (): void => {
      if (timedOut) return;
      timedOut = true;
      conn.interrupt();
      again = setInterval(() => { conn.interrupt(); }, INTERRUPT_REPEAT_MS);
    };
    const timer = setTimeout(stop, options.timeoutMs);
    // A cancel (wire CancelRequest, shutdown, a client gone) interrupts the engine like the timeout does.
    if (options.signal?.aborted) stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      // Statements with CTEs are not kept prepared: DuckDB can hold their materialised CTE
      // results with the statement (measured: memory exhausted after a few DP queries on
      // 10M rows); they are usually one-off (a DP query carries a fresh seed) anyway.
      const result = sql.startsWith('WITH ') ? await conn.run(sql) : await (await this.#prepare(conn, sql)).run();
      if (timedOut) throw new Error('INTERRUPT: the deadline passed while the statement ran');
      return readMaterialized(result);
    } catch (err) {
      if (options.signal?.aborted) throw new GatehouseError('QUERY_TIMEOUT', 'the query was cancelled and stopped', { hint: 'run it again when you need it; narrow it if it was too slow' });
      throw engineError(err, timedOut, options.timeoutMs, this.#csv.filter((d) => sql.includes(tableFor(d))));
    } finally {
      clearTimeout(timer);
      clearInterval(again);
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

/** An encrypted dataset, decrypted into an in-memory table of exactly its declared columns. */
async function loadEncrypted(conn: DuckDBConnection, ds: DatasetDef, options: DuckDbEngineOptions): Promise<void> {
  const src = ds.source;
  if (src.kind !== 'encrypted') throw new Error(`${src.kind} is not an encrypted source`);
  if (!options.dataKeyOf) throw new Error('an encrypted dataset needs the key store (state directory and key passphrase)');
  const cols = ds.columns.map((c) => `CAST(${quoteIdent(c.name)} AS ${engineType(c.type)}) AS ${quoteIdent(c.name)}`).join(', ');
  const { loadEncryptedDataset } = await import('../keys/datasets.ts');
  const staging = `${quoteIdent('memory')}.${quoteIdent('main')}.${quoteIdent(`gh_stage_${ds.name}`)}`;
  await loadEncryptedDataset(conn, { path: src.path, table: ENCRYPTED_DATASET_TABLE, intoTable: staging, dataKey: await options.dataKeyOf(ds.name) });
  try {
    await conn.run(`CREATE TABLE ${tableFor(ds.name)} AS SELECT ${cols} FROM ${staging}`);
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${staging}`);
  }
}

/** What went wrong with a source, for a workspace problem: our own text, or DuckDB's scrubbed. */
function sourceMessage(err: unknown): string {
  if (err instanceof SourceProblem) return err.message;
  return `cannot read the source: ${scrub(String((err as Error).message))}`;
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

/**
 * The rows of a statement's result. `run()` returns the result materialised in DuckDB's memory,
 * so its chunks are read synchronously (`getChunk`), not fetched one `fetchChunk()` at a time:
 * that call goes through the thread pool and back for every chunk, plus once more to learn
 * there is none left — two round trips for a one-row answer, ≈ 60 µs of CPU per query at
 * concurrency 16 (issue 15; `runAndReadAll` does the latter). Values are converted as
 * `getRowsJS()` converts them, then to cells.
 */
function readMaterialized(result: DuckDBMaterializedResult): EngineResult {
  const names = result.columnNames();
  const types = result.columnTypes().map((t) => t.toString());
  const rows: CellValue[][] = [];
  for (let c = 0, n = result.chunkCount; c < n; c++) {
    for (const row of result.getChunk(c).convertRows(JSDuckDBValueConverter)) {
      const cells: CellValue[] = new Array(row.length);
      for (let i = 0; i < row.length; i++) cells[i] = toCell(row[i], types[i]!);
      rows.push(cells);
    }
  }
  return { columns: names.map((name, i) => ({ name, type: types[i]! })), rows };
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

export function engineError(err: unknown, timedOut: boolean, timeoutMs: number, csvDatasets: readonly string[] = []): GatehouseError {
  const e = classifyEngineError(err, timedOut, timeoutMs, csvDatasets);
  // The raw engine message stays server-side (cause); toJSON never includes it.
  Object.defineProperty(e, 'cause', { value: err, enumerable: false });
  return e;
}

function classifyEngineError(err: unknown, timedOut: boolean, timeoutMs: number, csvDatasets: readonly string[]): GatehouseError {
  const message = String((err as Error)?.message ?? err);
  const csv = csvDatasets.length > 0 ? csvParseError(message, csvDatasets) : null;
  if (csv !== null) {
    // The owner's file is at fault, not the query: say so, without the line's text or the value.
    return new GatehouseError('ENGINE_ERROR', csv, { hint: 'the data owner must fix the file or the column\'s declared type in gatehouse.yaml; the dataset cannot be queried until then' });
  }
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
