/**
 * The introspection engine: BI tools' catalog queries (pg_catalog, information_schema,
 * version(), current_schema(), …) run on a data-free, locked-down in-memory DuckDB that
 * holds one EMPTY table per dataset the principal may see (schema `public`, catalog
 * column types, descriptions as comments). It is built from what `Gatehouse.datasets()`
 * returns for the principal, so it shows nothing else, and it holds no row of any dataset:
 * a catalog query cannot reach data by construction.
 *
 * Instances are cached by the content of the view (the same visible schema shares one
 * instance; a policy change changes the content and so the instance). Each query runs with
 * a timeout and a row cap; external access is off and the configuration locked.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { createHash } from 'node:crypto';
import type { DatasetView } from '../pipeline/gatehouse.ts';
import { quoteIdent, quoteString } from '../query/render/sql.ts';
import { GatehouseError } from '../errors.ts';
import type { CellValue } from '../engine/engine.ts';

export const SERVER_VERSION = '15.0';
export const VERSION_STRING = `PostgreSQL ${SERVER_VERSION} (Gatehouse governed wire front; catalog answered from the data-free view of what you may see)`;

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

function colType(t: string): string {
  return t === 'DECIMAL' ? 'DECIMAL(18,3)' : t;
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

  static async create(views: readonly DatasetView[]): Promise<CatalogDb> {
    const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    const conn = await instance.connect();
    try {
      await conn.run("ATTACH ':memory:' AS gatehouse");
      await conn.run('USE gatehouse');
      await conn.run('DETACH memory');
      await conn.run('CREATE SCHEMA public');
      for (const v of views) {
        const table = `public.${quoteIdent(v.name)}`;
        const cols = v.columns.map((c) => `${quoteIdent(c.name)} ${colType(c.type)}`).join(', ');
        await conn.run(`CREATE TABLE ${table} (${cols})`);
        if (v.description) await conn.run(`COMMENT ON TABLE ${table} IS ${quoteString(v.description)}`);
        for (const c of v.columns) {
          const notes = [c.description, c.masked ? `masked: ${c.masked}` : null, c.joinOnly ? 'join only' : null].filter((x): x is string => !!x);
          if (notes.length) await conn.run(`COMMENT ON COLUMN ${table}.${quoteIdent(c.name)} IS ${quoteString(notes.join('; '))}`);
        }
      }
      await conn.run(`CREATE MACRO pg_get_userbyid(id) AS 'gatehouse'`);
      await conn.run(`CREATE MACRO pg_encoding_to_char(id) AS 'UTF8'`);
      await conn.run(`CREATE MACRO pg_get_function_result(id) AS NULL`);
      await conn.run(`CREATE MACRO pg_get_function_arguments(id) AS NULL`);
      await conn.run(`CREATE MACRO pg_get_expr(e, r, p := NULL) AS NULL`);
      await conn.run(`CREATE MACRO pg_relation_is_publishable(id) AS false`);
      await conn.run(`CREATE MACRO pg_get_statisticsobjdef_columns(id) AS NULL`);
      await conn.run(`CREATE MACRO array_upper(a, d) AS len(a)`);
      await conn.run(`CREATE MACRO pg_get_triggerdef(id, pretty := false) AS NULL`);
      await conn.run(`CREATE MACRO pg_get_constraintdef(id, pretty := false) AS NULL`);
      await conn.run(`CREATE MACRO pg_get_indexdef(id, col := 0, pretty := false) AS NULL`);
      // What psql's \d asks of pg_catalog that DuckDB's views lack: no row security, no
      // inheritance, policies, extended statistics, publications or triggers exist here.
      for (const ddl of PSQL_COMPAT) await conn.run(ddl);
      await conn.run(`SET search_path = 'public,main'`);
      for (const s of LOCKDOWN) await conn.run(s);
    } catch (err) {
      conn.closeSync();
      instance.closeSync();
      throw err;
    }
    return new CatalogDb(instance, conn);
  }

  /** Runs one catalog query (already routed: a SELECT that reads no dataset). */
  run(sql: string, params: readonly (string | null)[], timeoutMs: number): Promise<CatalogResult> {
    const next = this.#busy.then(() => this.#run(sql, params, timeoutMs));
    this.#busy = next.catch(() => undefined);
    return next;
  }

  /** The result columns a catalog (or governed) SELECT would have, without running it. */
  describe(sql: string): Promise<CatalogResult['columns'] | null> {
    const next = this.#busy.then(async () => {
      try {
        const p = await this.#conn.prepare(sql);
        try {
          const cols = Array.from({ length: p.columnCount }, (_, i) => ({ name: p.columnName(i), type: p.columnType(i).toString() }));
          return cols;
        } finally { p.destroySync(); }
      } catch { return null; }
    });
    this.#busy = next.catch(() => undefined);
    return next;
  }

  async #run(sql: string, params: readonly (string | null)[], timeoutMs: number): Promise<CatalogResult> {
    if (this.#closed) throw new GatehouseError('INTERNAL', 'the catalog view is closed');
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; this.#conn.interrupt(); }, timeoutMs);
    try {
      const p = await this.#conn.prepare(sql);
      try {
        if (params.length) p.bind(params.map((v) => v));
        const reader = await p.runAndReadUntil(MAX_ROWS + 1);
        const names = reader.columnNames();
        const types = reader.columnTypes().map((t) => t.toString());
        const rows = reader.getRowsJS().slice(0, MAX_ROWS).map((row) => row.map(toCell));
        return { columns: names.map((name, i) => ({ name, type: types[i]! })), rows };
      } finally { p.destroySync(); }
    } catch (err) {
      const msg = String((err as Error).message ?? err).split('\n')[0]!;
      if (timedOut || /^INTERRUPT/i.test(msg)) throw new GatehouseError('QUERY_TIMEOUT', `the catalog query ran longer than ${timeoutMs} ms and was stopped`);
      const kind = /^([A-Za-z ]+) Error/.exec(msg)?.[1] ?? 'catalog';
      throw new GatehouseError(kind === 'Parser' ? 'SQL_SYNTAX' : kind === 'Catalog' ? 'SQL_UNKNOWN_DATASET' : 'SQL_UNSUPPORTED',
        `this catalog query is not supported: ${msg.replace(/^[A-Za-z ]+ Error:\s*/, '').slice(0, 200)}`,
        { hint: 'the wire front answers a useful subset of pg_catalog and information_schema (docs/wire-protocol.md)' });
    } finally {
      clearTimeout(timer);
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
  readonly #dbs = new Map<string, Promise<CatalogDb>>();
  constructor(max = 16) { this.#max = max; }

  get(views: readonly DatasetView[]): Promise<CatalogDb> {
    const key = createHash('sha256').update(JSON.stringify(views.map((v) => [v.name, v.description, v.columns]))).digest('hex');
    const hit = this.#dbs.get(key);
    if (hit) { this.#dbs.delete(key); this.#dbs.set(key, hit); return hit; }
    const p = CatalogDb.create(views);
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

/**
 * PostgreSQL spellings DuckDB lacks, rewritten on the way into the data-free catalog view:
 * `pg_catalog.f(` → `f(` (our macros live in the search path), `OPERATOR(pg_catalog.~)` → `~`,
 * `COLLATE pg_catalog.default` dropped, `version()` and the session functions answered as
 * PostgreSQL would for this session. Text outside string literals only.
 */
/** Table macros, not tables: they stay out of information_schema.tables and pg_class. */
const empty = (name: string, cols: string): string =>
  `CREATE MACRO main.gh_${name}() AS TABLE SELECT ${cols.split(', ').map((c) => { const [n, t] = c.split(' '); return `CAST(NULL AS ${t}) AS ${n}`; }).join(', ')} WHERE false`;
const PSQL_COMPAT = [
  'CREATE MACRO main.gh_pg_class() AS TABLE SELECT *, false AS relforcerowsecurity FROM pg_catalog.pg_class',
  empty('pg_inherits', 'inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN'),
  empty('pg_policy', 'oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR'),
  empty('pg_statistic_ext', 'oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT, stxstattarget INTEGER, stxkeys INTEGER[], stxkind VARCHAR[], stxexprs VARCHAR'),
  empty('pg_publication', 'oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN'),
  empty('pg_publication_rel', 'oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs INTEGER[]'),
  empty('pg_publication_namespace', 'oid BIGINT, pnpubid BIGINT, pnnspid BIGINT'),
  empty('pg_trigger', 'oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT, tgtype INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN'),
  empty('pg_partitioned_table', 'partrelid BIGINT, partstrat VARCHAR, partnatts INTEGER'),
  empty('pg_roles', 'oid BIGINT, rolname VARCHAR'),
];
const PSQL_COMPAT_RELATIONS = /\bpg_catalog\s*\.\s*(pg_class|pg_inherits|pg_policy|pg_statistic_ext|pg_publication|pg_publication_rel|pg_publication_namespace|pg_trigger|pg_partitioned_table|pg_roles)\b/gi;

export function rewriteCatalogSql(sql: string, session: { user: string; database: string }): string {
  // The probe every client sends: the column is named "version", as PostgreSQL names it.
  if (/^\s*select\s+(?:pg_catalog\s*\.\s*)?version\s*\(\s*\)\s*;?\s*$/i.test(sql)) return `SELECT ${quoteString(VERSION_STRING)} AS "version"`;
  const parts = sql.split(/('(?:[^']|'')*')/);
  return parts.map((p, i) => {
    if (i % 2 === 1) return p;
    return p
      .replace(PSQL_COMPAT_RELATIONS, (_m, rel: string) => `main.gh_${rel.toLowerCase()}()`)
      // A set-returning function aliased `f(...) s` exposes its value as column s in PostgreSQL.
      .replace(/(generate_series\s*\((?:[^()]|\([^()]*\))*\))\s+(?:AS\s+)?([a-z_]+)\s*(?=,|\bWHERE\b|$)/gi, '$1 AS $2($2) ')
      .replace(/OPERATOR\s*\(\s*pg_catalog\s*\.\s*([~!=<>*]+)\s*\)/gi, ' $1 ')
      .replace(/COLLATE\s+pg_catalog\s*\.\s*"?default"?/gi, '')
      .replace(/\b(?:pg_catalog\s*\.\s*)?version\s*\(\s*\)/gi, quoteString(VERSION_STRING))
      .replace(/\b(?:pg_catalog\s*\.\s*)?current_schema\s*\(\s*\)/gi, "'public'")
      .replace(/\b(?:pg_catalog\s*\.\s*)?current_database\s*\(\s*\)/gi, quoteString(session.database))
      .replace(/\b(current_user|session_user|current_role)\b(?!\s*\()/gi, quoteString(session.user))
      .replace(/\bcurrent_schema\b(?!\s*\()/gi, "'public'")
      .replace(/\bpg_catalog\s*\.\s*(?=[a-z_]+\s*\()/gi, '')
      .replace(/::\s*pg_catalog\s*\.\s*/gi, '::')
      .replace(/::\s*regclass\b/gi, '')
      .replace(/::\s*regtype\b/gi, '')
      .replace(/::\s*regnamespace\b/gi, '')
      .replace(/::\s*regproc\b/gi, '')
      .replace(/::\s*"?char"?\b/gi, '::varchar');
  }).join('');
}
