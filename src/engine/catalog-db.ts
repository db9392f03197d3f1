/**
 * The wire front's catalog: what BI tools and psql ask of pg_catalog and information_schema
 * (\dt, \d table, \l, information_schema.columns, version(), current_schema() …), answered
 * from the data-free `DatasetView[]` of what the principal may see.
 *
 * The client's SQL never runs anywhere. `renderCatalogQuery` (./catalog/render.ts) parses
 * it with the PostgreSQL parser, refuses every node, relation and function outside the
 * catalog allowlist, and renders Gatehouse's own SQL over Gatehouse's catalog tables
 * (./catalog/tables.ts). That SQL runs on a small DuckDB that holds those catalog rows and
 * nothing else: no dataset row, no file, no temp directory (spilling off from creation,
 * see docs/engines.md), external access off and the configuration locked. The DuckDB is
 * only an evaluator for joins and sorting of Gatehouse-built SQL.
 *
 * Instances are cached by the content of the view (the same visible schema shares one
 * instance; a policy change changes the content and so the instance). Each query runs with
 * a timeout and a row cap.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { createHash } from 'node:crypto';
import type { DatasetView } from '../model/dataset-view.ts';
import { quoteIdent, quoteString } from '../query/render/sql.ts';
import { GatehouseError } from '../errors.ts';
import type { CellValue } from './engine.ts';
import { NO_SPILL_CONFIG } from './duckdb.ts';
import { CATALOG_TABLES, catalogContent, PG_TYPES, TYPE_FORMAT_TABLE, type CatalogCell } from '../catalog/tables.ts';
import { CATALOG_SCHEMA, catalogTableRef, SERVER_VERSION, VERSION_STRING, type CatalogSession } from '../catalog/functions.ts';
import { renderCatalogQuery, type RenderedCatalogQuery } from '../catalog/render.ts';

export { SERVER_VERSION, VERSION_STRING, renderCatalogQuery, type CatalogSession, type RenderedCatalogQuery };

const LOCKDOWN = [
  'SET autoinstall_known_extensions = false',
  'SET autoload_known_extensions = false',
  'SET allow_community_extensions = false',
  'SET enable_external_access = false',
  "SET memory_limit = '64MB'",
  'SET threads = 1',
  'SET lock_configuration = true',
];

export interface CatalogResult {
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly rows: readonly (readonly CellValue[])[];
}

const MAX_ROWS = 10_000;

function literal(v: CatalogCell): string {
  if (v === null) return 'NULL';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('catalog cell is not a finite number');
    return String(v);
  }
  if (typeof v === 'string') return quoteString(v);
  return `[${v.map((x) => literal(x)).join(', ')}]`;
}

export class CatalogDb {
  readonly #instance: DuckDBInstance;
  readonly #conn: DuckDBConnection;
  #busy: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(instance: DuckDBInstance, conn: DuckDBConnection) {
    this.#instance = instance;
    this.#conn = conn;
  }

  static async create(views: readonly DatasetView[], database: string): Promise<CatalogDb> {
    const instance = await DuckDBInstance.create(':memory:', { threads: '1', ...NO_SPILL_CONFIG });
    const conn = await instance.connect();
    try {
      const content = catalogContent(views, database);
      await conn.run(`CREATE SCHEMA ${quoteIdent(CATALOG_SCHEMA)}`);
      for (const t of CATALOG_TABLES) {
        await conn.run(`CREATE TABLE ${catalogTableRef(t.name)} (${t.columns.map(([n, type]) => `${quoteIdent(n)} ${type}`).join(', ')})`);
        const rows = t.rows(content);
        if (rows.length) await conn.run(`INSERT INTO ${catalogTableRef(t.name)} VALUES ${rows.map((r) => `(${r.map(literal).join(', ')})`).join(', ')}`);
      }
      await conn.run(`CREATE TABLE ${catalogTableRef(TYPE_FORMAT_TABLE)} (oid BIGINT, format VARCHAR)`);
      await conn.run(`INSERT INTO ${catalogTableRef(TYPE_FORMAT_TABLE)} VALUES ${PG_TYPES.map(([oid, , fmt]) => `(${oid}, ${quoteString(fmt)})`).join(', ')}`);
      for (const s of LOCKDOWN) await conn.run(s);
    } catch (err) {
      conn.closeSync();
      instance.closeSync();
      throw err;
    }
    return new CatalogDb(instance, conn);
  }

  /** Runs one rendered catalog query (from `renderCatalogQuery`, never client text). */
  run(query: RenderedCatalogQuery, timeoutMs: number): Promise<CatalogResult> {
    const next = this.#busy.then(() => this.#run(query.sql, timeoutMs));
    this.#busy = next.catch(() => undefined);
    return next;
  }

  /** The result columns of a rendered catalog query, without running it. */
  describe(query: RenderedCatalogQuery): Promise<CatalogResult['columns'] | null> {
    const next = this.#busy.then(async () => {
      try {
        const p = await this.#conn.prepare(query.sql);
        try {
          return Array.from({ length: p.columnCount }, (_, i) => ({ name: p.columnName(i), type: p.columnType(i).toString() }));
        } finally { p.destroySync(); }
      } catch { return null; }
    });
    this.#busy = next.catch(() => undefined);
    return next;
  }

  async #run(sql: string, timeoutMs: number): Promise<CatalogResult> {
    if (this.#closed) throw new GatehouseError('INTERNAL', 'the catalog view is closed');
    let timedOut = false;
    // As in the query engine (duckdb.ts): an interrupt before the statement starts is lost, so
    // it is repeated until the call returns, and a result past the deadline is refused.
    let again: ReturnType<typeof setInterval> | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#conn.interrupt();
      again = setInterval(() => { this.#conn.interrupt(); }, 5);
    }, timeoutMs);
    try {
      const p = await this.#conn.prepare(sql);
      try {
        const reader = await p.runAndReadUntil(MAX_ROWS + 1);
        if (timedOut) throw new Error('INTERRUPT: the deadline passed while the statement ran');
        const names = reader.columnNames();
        const types = reader.columnTypes().map((t) => t.toString());
        const rows = reader.getRowsJS().slice(0, MAX_ROWS).map((row) => row.map(toCell));
        return { columns: names.map((name, i) => ({ name, type: types[i]! })), rows };
      } finally { p.destroySync(); }
    } catch (err) {
      const msg = String((err as Error).message ?? err).split('\n')[0]!;
      if (timedOut || /^INTERRUPT/i.test(msg)) throw new GatehouseError('QUERY_TIMEOUT', `the catalog query ran longer than ${timeoutMs} ms and was stopped`);
      // Binder errors name a column or type of the catalog tables (Gatehouse's own schema): safe to show.
      const detail = /^Binder Error/i.test(msg) ? `: ${msg.replace(/^[A-Za-z ]+ Error:\s*/, '').replace(/"memory"\."gh"\./g, '').slice(0, 200)}` : '';
      throw new GatehouseError('SQL_UNSUPPORTED', `this catalog query is not supported${detail}`,
        { hint: 'the wire front answers a useful subset of pg_catalog and information_schema (docs/wire-protocol.md)' });
    } finally {
      clearTimeout(timer);
      clearInterval(again);
    }
  }

  close(): void {
    this.#closed = true;
    this.#conn.closeSync();
    this.#instance.closeSync();
  }
}

function toCell(v: unknown): CellValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(toCell);
  if (typeof v === 'object') return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  return String(v);
}

/** Catalog views by the content of what a principal may see; least recently used closed first. */
export class CatalogCache {
  readonly #max: number;
  readonly #database: string;
  readonly #dbs = new Map<string, Promise<CatalogDb>>();
  constructor(database: string, max = 16) { this.#database = database; this.#max = max; }

  get(views: readonly DatasetView[]): Promise<CatalogDb> {
    const key = createHash('sha256').update(JSON.stringify(views.map((v) => [v.name, v.description, v.columns]))).digest('hex');
    const hit = this.#dbs.get(key);
    if (hit) { this.#dbs.delete(key); this.#dbs.set(key, hit); return hit; }
    const p = CatalogDb.create(views, this.#database);
    p.catch(() => this.#dbs.delete(key));
    this.#dbs.set(key, p);
    while (this.#dbs.size > this.#max) {
      const [k, old] = this.#dbs.entries().next().value!;
      this.#dbs.delete(k);
      // Let queries in flight on it finish before closing.
      old.then((db) => setTimeout(() => db.close(), 5_000).unref(), () => undefined);
    }
    return p;
  }

  async close(): Promise<void> {
    const all = [...this.#dbs.values()];
    this.#dbs.clear();
    for (const p of all) { try { (await p).close(); } catch { /* never opened */ } }
  }
}
