/**
 * PostgreSQL engine (`pg`): governed queries are rendered in the PostgreSQL dialect and
 * pushed down, so filters, joins and aggregation run in the owner's database and only the
 * result travels. Locked down (invariant 4):
 *
 *   - the role may not be a superuser, own a source table, or hold INSERT, UPDATE, DELETE
 *     or TRUNCATE on one: `open` refuses it and says what to change
 *   - every query runs in `BEGIN READ ONLY` with a transaction-local statement_timeout and
 *     a search_path of pg_catalog only; sources are schema-qualified
 *   - the query is sent with the extended protocol, so it can only ever be one statement;
 *     set-up, query and ROLLBACK are pipelined into one round trip (postgres-pipeline.ts)
 *   - the session pins standard_conforming_strings (the renderer's quoting relies on it),
 *     TimeZone UTC and DateStyle ISO (results and the hash mask's text do)
 *   - the pool is bounded; callers beyond it wait
 *
 * Errors never echo PostgreSQL's message text when it can quote a value.
 */
import pg from 'pg';
import { GatehouseError } from '../errors.ts';
import { postgresDialect } from '../query/render/postgres.ts';
import { quoteIdent, type Dialect } from '../query/render/sql.ts';
import type { WorkspaceProblem } from '../model/problems.ts';
import type { ColumnType, DatasetDef, Workspace } from '../model/types.ts';
import type { CellValue, Engine, EngineResult, ResultColumn, RunOptions } from './engine.ts';
import { runPipelined } from './postgres-pipeline.ts';

export interface PostgresEngineOptions {
  /** Connections to this server at most (default 4). */
  readonly poolSize?: number;
  /** Waiting for a connection longer than this fails (default 30 s). */
  readonly connectTimeoutMs?: number;
  /** Where passwordEnv is looked up (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

type PgSource = Extract<DatasetDef['source'], { kind: 'postgres' }>;

/** One engine per distinct server, database, role and password source. */
export function connectionKey(src: PgSource): string {
  const u = new URL(src.url);
  return JSON.stringify([u.protocol.replace('postgresql:', 'postgres:'), u.username, u.hostname.toLowerCase(), u.port || '5432', u.pathname, u.search, src.passwordEnv]);
}

/** The URL without anything secret (there is nothing secret in it: the loader refuses passwords). */
export function describeConnection(src: PgSource): string {
  const u = new URL(src.url);
  return `${u.username}@${u.hostname}:${u.port || '5432'}${u.pathname}`;
}

export function qualifiedTable(table: string): { schema: string; name: string; sql: string } {
  const [schema, name] = table.includes('.') ? table.split('.', 2) as [string, string] : ['public', table];
  return { schema, name, sql: `${quoteIdent(schema)}.${quoteIdent(name)}` };
}

// Every value arrives as PostgreSQL's text form; toCell converts by type OID.
const rawText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

const SESSION = '-c search_path=pg_catalog -c standard_conforming_strings=on -c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=1 -c default_transaction_read_only=on';

/** Declared column type → the PostgreSQL types whose values it can hold without loss of meaning. */
const COMPATIBLE: Record<ColumnType, readonly string[]> = {
  VARCHAR: ['text', 'character varying', 'character', 'name', 'citext', 'uuid'],
  BIGINT: ['bigint', 'integer', 'smallint'],
  INTEGER: ['integer', 'smallint'],
  DOUBLE: ['double precision', 'real', 'numeric', 'bigint', 'integer', 'smallint'],
  DECIMAL: ['numeric', 'double precision', 'real', 'bigint', 'integer', 'smallint'],
  BOOLEAN: ['boolean'],
  DATE: ['date'],
  TIMESTAMP: ['timestamp without time zone', 'timestamp with time zone'],
};

export class PostgresEngine implements Engine {
  readonly dialect: Dialect;
  /** role@host:port/database, for messages. */
  readonly connection: string;
  readonly poolSize: number;
  /** Rows per dataset from pg_class.reltuples at open (cost-estimate.ts). */
  readonly rowEstimates: ReadonlyMap<string, number>;
  readonly #pool: pg.Pool;
  #closed = false;

  private constructor(pool: pg.Pool, poolSize: number, connection: string, sources: Map<string, string>, hashKey: Buffer, rowEstimates: ReadonlyMap<string, number>) {
    this.rowEstimates = rowEstimates;
    this.#pool = pool;
    this.poolSize = poolSize;
    this.connection = connection;
    this.dialect = postgresDialect({
      hashKey,
      sourceOf: (ds) => {
        const s = sources.get(ds);
        if (!s) throw new Error(`dataset ${ds} has no source in this engine`);
        return s;
      },
    });
  }

  /**
   * Connects to the server of `datasets` (all on the same connection), checks the role is
   * least-privilege and every dataset's table and columns exist with compatible types.
   * Problems name the dataset and what to change; nothing is left open on failure.
   */
  static async open(ws: Workspace, datasets: readonly DatasetDef[], options: PostgresEngineOptions = {}): Promise<PostgresEngine> {
    const first = datasets[0];
    if (!first || first.source.kind !== 'postgres') throw new Error('PostgresEngine.open needs at least one PostgreSQL dataset');
    const src = first.source;
    const key = connectionKey(src);
    for (const ds of datasets) if (ds.source.kind !== 'postgres' || connectionKey(ds.source) !== key) throw new Error(`dataset ${ds.name} is not on ${describeConnection(src)}`);
    const env = options.env ?? process.env;
    const names = datasets.map((d) => d.name).join(', ');
    const problems: WorkspaceProblem[] = [];
    const problem = (ds: string, message: string): void => { problems.push({ file: 'gatehouse.yaml', line: null, message: `datasets.${ds}: ${message}` }); };
    const password = src.passwordEnv ? env[src.passwordEnv] : undefined;
    if (src.passwordEnv && password === undefined) {
      for (const ds of datasets) problem(ds.name, `the environment variable ${src.passwordEnv} (source.postgres.passwordEnv) is not set: set it to the password of role "${new URL(src.url).username}"`);
      const { WorkspaceInvalid } = await import('../model/problems.ts');
      throw new WorkspaceInvalid(problems);
    }
    const poolSize = Math.max(1, Math.min(options.poolSize ?? 4, 64));
    // Explicit fields, not connectionString: pg lets the URL's (absent) password override an explicit one.
    const u = new URL(src.url);
    const sslmode = u.searchParams.get('sslmode');
    const pool = new pg.Pool({
      host: decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1'),
      port: u.port ? Number(u.port) : 5432,
      user: decodeURIComponent(u.username),
      database: decodeURIComponent(u.pathname.slice(1)),
      ...(sslmode === 'require' || sslmode === 'verify-full' || sslmode === 'verify-ca' ? { ssl: { rejectUnauthorized: sslmode !== 'require' } } : {}),
      ...(password !== undefined ? { password } : {}),
      max: poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 30_000,
      idleTimeoutMillis: 60_000,
      application_name: 'gatehouse',
      options: SESSION,
      types: rawText,
    });
    // A connection the server drops must not crash the node: pg reports it as an 'error'
    // event on the pool (idle) or on the client (lent out: pg-pool has no listener on it then,
    // and an unheard 'error' is an uncaught exception). The query in flight rejects (the
    // request fails closed), the pool replaces the connection for the next request.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => { client.on('error', () => undefined); });
    const sources = new Map<string, string>();
    const rowEstimates = new Map<string, number>();
    try {
      const client = await pool.connect().catch((err: unknown) => {
        throw connectError(err, describeConnection(src), names);
      });
      try {
        const role = await client.query<{ name: string; su: string }>('SELECT current_user AS name, rolsuper::text AS su FROM pg_catalog.pg_roles WHERE rolname = current_user');
        const roleName = role.rows[0]?.name ?? '?';
        if (role.rows[0]?.su === 'true') {
          for (const ds of datasets) problem(ds.name, `role "${roleName}" is a superuser: Gatehouse refuses to query as one. Create a least-privilege role (docs/postgres.md: CREATE ROLE gatehouse_reader LOGIN; GRANT SELECT ON the tables) and put it in source.postgres.url`);
        }
        for (const ds of datasets) {
          const s = ds.source as PgSource;
          const t = qualifiedTable(s.table);
          const rel = await client.query<{ oid: string | null }>('SELECT pg_catalog.to_regclass($1)::oid::text AS oid', [t.sql]);
          const oid = rel.rows[0]?.oid ?? null;
          if (oid === null) { problem(ds.name, `table ${t.schema}.${t.name} does not exist on ${describeConnection(s)} (or role "${roleName}" has no USAGE on schema ${t.schema})`); continue; }
          const priv = await client.query<{ sel: string; write: string; owner: string; tuples: string }>(
            `SELECT pg_catalog.has_table_privilege($1::oid, 'SELECT')::text AS sel, c.reltuples::text AS tuples,
                    pg_catalog.has_table_privilege($1::oid, 'INSERT, UPDATE, DELETE, TRUNCATE')::text AS write,
                    (c.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user))::text AS owner
               FROM pg_catalog.pg_class c WHERE c.oid = $1::oid`, [oid]);
          const p = priv.rows[0]!;
          if (p.owner === 'true') problem(ds.name, `role "${roleName}" owns ${t.schema}.${t.name} and could change it: connect as a role that only has SELECT (docs/postgres.md)`);
          else if (p.write === 'true') problem(ds.name, `role "${roleName}" can write ${t.schema}.${t.name}: REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ${t.schema}.${t.name} FROM ${roleName} (Gatehouse only reads)`);
          if (p.sel !== 'true') problem(ds.name, `role "${roleName}" cannot read ${t.schema}.${t.name}: GRANT SELECT ON ${t.schema}.${t.name} TO ${roleName}`);
          const cols = await client.query<{ name: string; type: string; sel: string }>(
            `SELECT attname AS name, pg_catalog.format_type(atttypid, NULL) AS type, pg_catalog.has_column_privilege($1::oid, attnum, 'SELECT')::text AS sel
               FROM pg_catalog.pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped`, [oid]);
          const actual = new Map(cols.rows.map((c) => [c.name, c]));
          for (const c of ds.columns) {
            const a = actual.get(c.name);
            if (!a) { problem(ds.name, `column ${c.name} does not exist in ${t.schema}.${t.name}`); continue; }
            if (!COMPATIBLE[c.type].includes(a.type)) problem(ds.name, `column ${c.name} is declared ${c.type} but is ${a.type} in ${t.schema}.${t.name} (compatible: ${COMPATIBLE[c.type].join(', ')})`);
            else if (a.sel !== 'true') problem(ds.name, `role "${roleName}" cannot read column ${c.name}: GRANT SELECT ON ${t.schema}.${t.name} TO ${roleName}`);
          }
          sources.set(ds.name, t.sql);
          // The planner's row estimate (cost-estimate.ts): the statistics PostgreSQL keeps,
          // read once here. -1 means never analysed (a new table, usually small): counted
          // once instead, under the role's own read-only session, so every dataset has one.
          if (p.sel === 'true') {
            const tuples = Number(p.tuples) >= 0 ? Number(p.tuples)
              : Number((await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${t.sql}`)).rows[0]?.n ?? 0);
            rowEstimates.set(ds.name, tuples);
          }
        }
      } finally {
        client.release();
      }
      if (problems.length > 0) {
        const { WorkspaceInvalid } = await import('../model/problems.ts');
        throw new WorkspaceInvalid(problems);
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PostgresEngine(pool, poolSize, describeConnection(src), sources, ws.hashKey, rowEstimates);
  }

  async run(sql: string, options: RunOptions): Promise<EngineResult> {
    if (this.#closed) throw new GatehouseError('INTERNAL', 'the engine is shut down');
    const timeout = Math.max(1, Math.floor(options.timeoutMs));
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw connectError(err, this.connection, null);
    }
    let broken = false;
    try {
      // One round trip: BEGIN READ ONLY, the transaction-local timeout and search_path, the
      // query (one statement: extended protocol) and ROLLBACK, pipelined before one Sync.
      const r = await runPipelined(client, sql, timeout).catch(async (err: unknown) => {
        // The server skipped to Sync and left the transaction aborted (or the connection died).
        await client.query('ROLLBACK').catch(() => { broken = true; });
        throw err;
      });
      if (r.status !== null && r.status !== 'I') broken = true;
      const columns: ResultColumn[] = r.fields.map((f) => ({ name: f.name, type: typeName(f.dataTypeID, f.dataTypeModifier) }));
      const oids = r.fields.map((f) => f.dataTypeID);
      const rows = r.rows.map((row) => row.map((v, i) => toCell(v, oids[i]!)));
      return { columns, rows };
    } catch (err) {
      throw pgEngineError(err, timeout);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/** Result column type names, as DuckDB reports them. */
export function typeName(oid: number, typmod: number): string {
  switch (oid) {
    case 16: return 'BOOLEAN';
    case 20: return 'BIGINT';
    case 23: return 'INTEGER';
    case 21: return 'SMALLINT';
    case 700: return 'FLOAT';
    case 701: return 'DOUBLE';
    case 1700: return typmod >= 4 ? `DECIMAL(${((typmod - 4) >> 16) & 0xffff},${(typmod - 4) & 0xffff})` : 'DECIMAL';
    case 25: case 1043: case 1042: case 19: case 18: case 2950: return 'VARCHAR';
    case 1082: return 'DATE';
    case 1114: return 'TIMESTAMP';
    case 1184: return 'TIMESTAMP WITH TIME ZONE';
    case 1083: return 'TIME';
    case 1186: return 'INTERVAL';
    case 17: return 'BLOB';
    case 114: case 3802: return 'JSON';
    default: return 'VARCHAR';
  }
}

const MAX_SAFE = 2 ** 53;

/** PostgreSQL's text form → the same JS value the DuckDB engine returns for that type. */
export function toCell(v: string | null, oid: number): CellValue {
  if (v === null) return null;
  switch (oid) {
    case 16: return v === 't';
    case 20: case 21: case 23: {
      const n = Number(v);
      return Number.isSafeInteger(n) ? n : v;
    }
    case 700: case 701: {
      const n = Number(v);
      return Number.isFinite(n) ? n : v;
    }
    case 1700: {
      const n = Number(v);
      if (!Number.isFinite(n)) return v; // NaN, ±Infinity
      return Math.abs(n) < MAX_SAFE ? n : v;
    }
    case 1082: return v;
    case 1114: case 1184: {
      const iso = v.replace(' ', 'T');
      const d = new Date(oid === 1114 ? `${iso}Z` : iso.replace(/([+-]\d\d)$/, '$1:00'));
      return Number.isNaN(d.getTime()) ? v : d.toISOString();
    }
    case 17: return v.startsWith('\\x') ? v.slice(2) : v;
    default: return v;
  }
}

function connectError(err: unknown, where: string, datasets: string | null): GatehouseError {
  const code = (err as { code?: string })?.code ?? '';
  const what = datasets ? ` (datasets ${datasets})` : '';
  let e: GatehouseError;
  if (code === '28P01' || code === '28000') {
    e = new GatehouseError('ENGINE_ERROR', `PostgreSQL refused the login of ${where}${what}`, { hint: 'check the role in source.postgres.url and the password in the environment variable named by passwordEnv' });
  } else if (code === '3D000') {
    e = new GatehouseError('ENGINE_ERROR', `the database of ${where} does not exist${what}`, { hint: 'check the database name in source.postgres.url' });
  } else {
    e = new GatehouseError('ENGINE_ERROR', `cannot reach the PostgreSQL server ${where}${what}`, { hint: 'check that the server is running and reachable from Gatehouse, then retry' });
  }
  Object.defineProperty(e, 'cause', { value: err, enumerable: false });
  return e;
}

/** Maps a PostgreSQL error to a GatehouseError by SQLSTATE; the raw message stays server-side. */
export function pgEngineError(err: unknown, timeoutMs: number): GatehouseError {
  if (err instanceof GatehouseError) return err;
  const e = classify(err, timeoutMs);
  Object.defineProperty(e, 'cause', { value: err, enumerable: false });
  return e;
}

function classify(err: unknown, timeoutMs: number): GatehouseError {
  const code = String((err as { code?: string })?.code ?? '');
  const message = String((err as Error)?.message ?? err);
  if (code === '57014') {
    return new GatehouseError('QUERY_TIMEOUT', `the query ran longer than the ${timeoutMs} ms statement timeout and was stopped`, { hint: 'narrow it with WHERE, aggregate earlier or avoid cross joins' });
  }
  if (code.startsWith('22')) {
    // Data exceptions quote values ("invalid input syntax for type integer: …"): never echoed.
    return new GatehouseError('ENGINE_ERROR', 'a value could not be converted or was out of range while evaluating the query (details are withheld: errors never carry data values)', { hint: 'use CAST to convert explicitly; a failed CAST yields NULL' });
  }
  if (code === '25006') return new GatehouseError('ENGINE_ERROR', 'the engine refused to write: queries on PostgreSQL run in a read-only transaction', { hint: 'Gatehouse only reads; write to the source directly' });
  if (code === '42501') return new GatehouseError('ENGINE_ERROR', 'the Gatehouse role lacks a privilege on a source table', { hint: 'an administrator must GRANT SELECT on the table to the role in source.postgres.url (docs/postgres.md)' });
  if (code === '42883' || code === '42804' || code === '42725' || code === '42846') {
    // Operator/function/type mismatches name types, not values; quoted text is still removed.
    return new GatehouseError('ENGINE_ERROR', `the query does not type-check: ${scrub(message)}`, { hint: 'compare values of the same type; GET /v1/datasets lists column types' });
  }
  if (code.startsWith('53') || code.startsWith('54')) return new GatehouseError('ENGINE_ERROR', 'the query needs more resources than the engine allows', { hint: 'aggregate or filter earlier' });
  if (code.startsWith('08') || code === '57P01' || /ECONNRESET|ECONNREFUSED|Connection terminated/i.test(message)) {
    return new GatehouseError('ENGINE_ERROR', 'the connection to PostgreSQL was lost while running the query', { hint: 'retry; if it persists, check the PostgreSQL server' });
  }
  return new GatehouseError('ENGINE_ERROR', `the engine could not run the query (PostgreSQL error ${/^[0-9A-Z]{5}$/.test(code) ? code : 'unknown'})`, { hint: 'simplify the query; the audit log records the failure' });
}

function scrub(message: string): string {
  return message.split('\n')[0]!.replace(/'(?:[^']|'')*'/g, "'…'").replace(/"(?:[^"]|"")*"/g, '"…"').slice(0, 300);
}
