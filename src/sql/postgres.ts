/**
 * The SQL driver (driver.ts) on PostgreSQL: a bounded `pg` pool shared by every store of a
 * node, tables in one schema shared by every node pointed at the database.
 *
 * - `?`/`?NNN` become `$n`/`$NNN`, `{table}` becomes `"schema".table` (outside string literals);
 *   each text runs as a named prepared statement (parsed once per connection).
 * - bigint comes back as a JS number (epoch ms, nano-ρ and counts are far below 2^53), per
 *   query, so the pool's global type parsers are left alone.
 * - Transactions run on one pooled client: see driver.ts for the modes. A lost race (retry.ts)
 *   is rolled back and re-run; COMMIT itself may report a serialization failure and is
 *   retried like any other statement.
 * - Every write transaction commits durably (DURABLE), whatever synchronous_commit says.
 * - A connection that cannot be had, or is lost, is StateUnavailable (the request fails
 *   closed); errors the server reports (constraints, triggers) are passed on unchanged for the
 *   store to classify; errors the body throws pass unchanged. Messages never carry the URL.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { StateUnavailable } from './errors.ts';
import { quoteSchema } from './migrations.ts';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from './retry.ts';
import { mapTables, type Dialect, type SqlDriver, type SqlQueries, type SqlRow, type SqlValue, type TxOptions } from './driver.ts';

const INT8 = 20;
const TYPES = {
  getTypeParser(oid: number, format?: string): (v: string) => unknown {
    if (oid === INT8 && format !== 'binary') return (v: string) => Number(v);
    return (pg.types.getTypeParser as (o: number, f?: string) => (v: string) => unknown)(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

export interface PgDriverOptions {
  readonly schema: string;
  readonly retry?: Partial<RetryPolicy>;
  /** Longest wait for a row lock in a 'write' transaction, per attempt, ms (default 2000). */
  readonly lockTimeoutMs?: number;
}

/** The PostgreSQL dialect for tables in `schema`. */
export function pgDialect(schema: string): Dialect {
  const S = quoteSchema(schema);
  return {
    name: 'postgres',
    table: (n) => `${S}.${n}`,
    bare: (n) => n,
    int: 'integer', bigint: 'bigint', real: 'double precision', text: 'text', textC: 'text COLLATE "C"', blob: 'bytea',
    serialKey: 'bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY',
    tableSuffix: '',
    withoutRowid: '',
    rowidColumn: 'rowid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,',
    ifNotExists: '',
    forUpdate: ' FOR UPDATE',
    nowMs: '(extract(epoch from clock_timestamp()) * 1000)::bigint',
    appendOnly: (n) => `CREATE TRIGGER ${n}_append_only BEFORE UPDATE OR DELETE ON ${S}.${n}
  FOR EACH ROW EXECUTE FUNCTION ${S}.append_only();
CREATE TRIGGER ${n}_no_truncate BEFORE TRUNCATE ON ${S}.${n}
  FOR EACH STATEMENT EXECUTE FUNCTION ${S}.append_only();`,
  };
}

/** SQLite-style text as PostgreSQL: `?` → `$n`, `?NNN` → `$NNN`, `{t}` → `"schema".t`, string literals untouched. */
export function toPgText(sql: string, dialect: Dialect): string {
  let n = 0;
  return mapTables(sql, dialect.table).replace(/'(?:[^']|'')*'|\?(\d+)?/g, (m: string, num: string | undefined) => {
    if (m.startsWith("'")) return m;
    return num !== undefined ? `$${num}` : `$${++n}`;
  });
}

/**
 * Every change commits only once its WAL is flushed, whatever the server's or the role's
 * default: a budget charge or a grant acknowledged to a caller must survive a crash of
 * PostgreSQL. `synchronous_commit = off` (a common tuning, and the throwaway test cluster's
 * setting) acknowledges a commit up to 3 × wal_writer_delay before it is durable (PostgreSQL
 * manual, §28.4 "Asynchronous Commit"); SET LOCAL overrides it for this transaction only, and
 * survives a transaction-pooling proxy (unlike a session setting).
 */
export const DURABLE = 'SET LOCAL synchronous_commit = on';

interface Prepared { readonly name: string; readonly text: string }

export class PgDriver implements SqlDriver {
  readonly dialect: Dialect;
  readonly retry: RetryPolicy;
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #lockTimeoutMs: number;
  readonly #texts = new Map<string, Prepared>();
  readonly #direct: SqlQueries;
  #closed = false;

  /** Uses `pool` (not owned: close() does not end it); the schema must be migrated (migrate.ts). */
  constructor(pool: pg.Pool, options: PgDriverOptions) {
    this.#pool = pool;
    this.schema = options.schema;
    this.dialect = pgDialect(options.schema);
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    const lock = options.lockTimeoutMs ?? 2000;
    if (!Number.isInteger(lock) || lock < 1) throw new StateUnavailable('lockTimeoutMs must be a positive integer');
    this.#lockTimeoutMs = lock;
    this.#direct = this.#queries(pool);
  }

  /** The pool (owned by whoever opened it: the state backend). */
  get pool(): pg.Pool { return this.#pool; }

  #prepared(sql: string): Prepared {
    let p = this.#texts.get(sql);
    if (!p) {
      const text = toPgText(sql, this.dialect);
      p = { name: `gh_${createHash('sha256').update(text).digest('hex').slice(0, 28)}`, text };
      this.#texts.set(sql, p);
    }
    return p;
  }

  async #run(on: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult<SqlRow>> {
    if (this.#closed) throw new StateUnavailable('the state store is closed');
    const p = this.#prepared(sql);
    try {
      return await on.query<SqlRow>({ name: p.name, text: p.text, values: params.map(toPg), types: TYPES } as pg.QueryConfig);
    } catch (err) {
      throw classify(err);
    }
  }

  #queries(on: pg.Pool | pg.PoolClient): SqlQueries {
    return {
      query: async <T>(sql: string, params: readonly SqlValue[] = []) => (await this.#run(on, sql, params)).rows as T[],
      get: async <T>(sql: string, params: readonly SqlValue[] = []) => (await this.#run(on, sql, params)).rows[0] as T | undefined,
      run: async (sql: string, params: readonly SqlValue[] = []) => (await this.#run(on, sql, params)).rowCount ?? 0,
    };
  }

  query<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]> { return withRetry(this.retry, () => this.#direct.query<T>(sql, params)); }
  get<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> { return withRetry(this.retry, () => this.#direct.get<T>(sql, params)); }
  run(sql: string, params?: readonly SqlValue[]): Promise<number> { return withRetry(this.retry, () => this.#direct.run(sql, params)); }

  transaction<T>(fn: (q: SqlQueries) => Promise<T>, options: TxOptions): Promise<T> {
    const policy = options.maxRetries === undefined ? this.retry : { ...this.retry, maxRetries: options.maxRetries };
    return withRetry(policy, () => this.#once(fn, options), { serializable: options.mode === 'serializable' });
  }

  async #once<T>(fn: (q: SqlQueries) => Promise<T>, options: TxOptions): Promise<T> {
    if (this.#closed) throw new StateUnavailable('the state store is closed');
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw new StateUnavailable(`cannot reach PostgreSQL: ${reason(err)}`, { cause: err });
    }
    let broken = false;
    try {
      if (options.mode === 'read') await this.#run(client, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', []);
      else if (options.mode === 'serializable') {
        await this.#run(client, 'BEGIN ISOLATION LEVEL SERIALIZABLE', []);
        await this.#run(client, DURABLE, []);
      } else {
        await this.#run(client, 'BEGIN', []);
        // lock_timeout and DURABLE in one round trip (set_config(…, true) is SET LOCAL).
        await this.#run(client, `SELECT set_config('lock_timeout', '${this.#lockTimeoutMs}', true), set_config('synchronous_commit', 'on', true)`, []);
        // One writer per key across every node, as SQLite's BEGIN IMMEDIATE: every statement
        // after it sees what earlier writers committed (READ COMMITTED).
        if (options.lock !== undefined) await this.#run(client, 'SELECT pg_advisory_xact_lock(hashtext(?))', [options.lock]);
      }
      const out = await fn(this.#queries(client));
      await this.#run(client, options.mode === 'read' ? 'ROLLBACK' : 'COMMIT', []);
      return out;
    } catch (err) {
      try { await client.query('ROLLBACK'); } catch { broken = true; }
      throw err; // the body's own errors, or #run's classified ones

    } finally {
      client.release(broken);
    }
  }

  /** DDL as one simple-protocol query (several statements) in one transaction. */
  async exec(ddl: string): Promise<void> {
    const text = mapTables(ddl, this.dialect.table);
    await withRetry(this.retry, async () => {
      let client: pg.PoolClient;
      try {
        client = await this.#pool.connect();
      } catch (err) {
        throw new StateUnavailable(`cannot reach PostgreSQL: ${reason(err)}`, { cause: err });
      }
      let broken = false;
      try {
        await client.query(`BEGIN; ${DURABLE}; ${text}; COMMIT`);
      } catch (err) {
        try { await client.query('ROLLBACK'); } catch { broken = true; }
        throw classify(err);
      } finally {
        client.release(broken);
      }
    });
  }

  /** Stops using the pool (the pool belongs to the state backend). */
  async close(): Promise<void> { this.#closed = true; }
}

function toPg(v: SqlValue): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array && !Buffer.isBuffer(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return v;
}

function reason(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown } | null;
  const m = typeof err?.message === 'string' ? err.message.replace(/postgres(ql)?:\/\/\S+/g, '(url)') : 'unknown error';
  return typeof err?.code === 'string' ? `${m} (${err.code})` : m;
}

/**
 * Server errors (they carry a severity and a SQLSTATE) and errors the body threw pass unchanged;
 * a driver error without a severity (connection refused, reset, ended, timeout) or a server
 * error that means the connection is gone (SQLSTATE class 08, or 57P01–57P03) is StateUnavailable.
 */
function classify(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const err = e as { code?: unknown; severity?: unknown };
  if (err.severity !== undefined) {
    return typeof err.code === 'string' && /^(08\d{3}|57P0\d)$/.test(err.code) ? new StateUnavailable(`PostgreSQL connection lost: ${reason(e)}`, { cause: e }) : e;
  }
  const driverError = /connect|terminat|timeout|ECONN|socket|Connection|not queryable|ended/i.test(e.message) || (typeof err.code === 'string' && /^E[A-Z]+$/.test(err.code));
  return driverError ? new StateUnavailable(`PostgreSQL is unavailable: ${reason(e)}`, { cause: e }) : e;
}
