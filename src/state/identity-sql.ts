/**
 * Identity state in PostgreSQL: the `IdentitySql` interface (src/identity/sql.ts) on a
 * bounded pg pool, for several Gatehouse nodes sharing users, sessions, signing keys, API
 * keys, connection passwords and elevations (tables of migration 3, src/state/migrations.ts).
 *
 * - `?` placeholders become `$1…`; `{table}` becomes `"schema".identity_table`.
 * - bigint columns come back as JS numbers (epoch seconds and milliseconds are far below
 *   2^53), per query, so the pool's global type parsers are left alone.
 * - `write` is one SERIALIZABLE transaction: the stores' read-check-write steps (lockout
 *   counters, TOTP replay, refresh-token rotation, approvals) behave as under sqlite's
 *   single writer, across nodes. A transaction that loses a serialization conflict (40001),
 *   a deadlock (40P01) or a unique race (23505) is rolled back and re-run with jittered
 *   backoff; after `maxRetries` it fails with IDENTITY_STORE_UNAVAILABLE.
 * - Any PostgreSQL or connection error becomes IDENTITY_STORE_UNAVAILABLE (503): the request
 *   fails closed. Messages never carry the URL or password.
 */
import pg from 'pg';
import { IdentityStoreUnavailable } from '../identity/session.ts';
import { mapTables, type IdentitySql, type SqlQueries, type SqlValue } from '../identity/sql.ts';
import { quoteSchema } from './migrations.ts';

const INT8 = 20;
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8 && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as unknown as pg.CustomTypesConfig;

const RETRYABLE = new Set(['40001', '40P01', '23505']);

class Retry extends Error {}

export interface PgIdentitySqlOptions {
  readonly schema: string;
  /** Re-runs of a write transaction that lost a conflict (default 30). */
  readonly maxRetries?: number;
}

/** The PostgreSQL twin of SqliteIdentitySql; does not own the pool (close() ends nothing). */
export class PgIdentitySql implements IdentitySql {
  readonly dialect = 'postgres' as const;
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #S: string;
  readonly #maxRetries: number;
  readonly #sql = new Map<string, string>();
  readonly #direct: SqlQueries;
  #closed = false;

  constructor(pool: pg.Pool, options: PgIdentitySqlOptions) {
    this.#pool = pool;
    this.schema = options.schema;
    this.#S = quoteSchema(options.schema);
    this.#maxRetries = options.maxRetries ?? 30;
    this.#direct = this.#queries(pool, false);
  }

  #text(sql: string): string {
    let t = this.#sql.get(sql);
    if (t === undefined) {
      let n = 0;
      t = mapTables(sql, (name) => `${this.#S}.identity_${name}`).replace(/\?/g, () => `$${++n}`);
      this.#sql.set(sql, t);
    }
    return t;
  }

  async #query<T>(client: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlValue[], inTx: boolean): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
    if (this.#closed) throw new IdentityStoreUnavailable('the identity store is closed');
    const values = params.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v));
    try {
      return await client.query<T & pg.QueryResultRow>({ text: this.#text(sql), values, types: TYPES });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (inTx && typeof code === 'string' && RETRYABLE.has(code)) throw new Retry();
      throw unavailable(err);
    }
  }

  #queries(client: pg.Pool | pg.PoolClient, inTx: boolean): SqlQueries {
    return {
      run: async (sql, params = []) => (await this.#query(client, sql, params, inTx)).rowCount ?? 0,
      get: async <T>(sql: string, params: readonly SqlValue[] = []) => (await this.#query<T>(client, sql, params, inTx)).rows[0] as T | undefined,
      all: async <T>(sql: string, params: readonly SqlValue[] = []) => (await this.#query<T>(client, sql, params, inTx)).rows as T[],
    };
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> { return this.#direct.run(sql, params); }
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> { return this.#direct.get<T>(sql, params); }
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> { return this.#direct.all<T>(sql, params); }

  async write<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#tx('BEGIN ISOLATION LEVEL SERIALIZABLE', 'COMMIT', fn);
      } catch (err) {
        if (!(err instanceof Retry)) throw err;
        if (attempt >= this.#maxRetries) throw new IdentityStoreUnavailable('the identity store is busy: too many concurrent changes, try again');
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** attempt, 50)));
      }
    }
  }

  read<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#tx('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', 'ROLLBACK', fn);
  }

  async #tx<T>(begin: string, end: 'COMMIT' | 'ROLLBACK', fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    if (this.#closed) throw new IdentityStoreUnavailable('the identity store is closed');
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw unavailable(err);
    }
    let broken = false;
    try {
      await this.#query(client, begin, [], true);
      const out = await fn(this.#queries(client, true));
      // COMMIT itself may report a serialization failure (40001): retryable like any other.
      await this.#query(client, end, [], true);
      return out;
    } catch (err) {
      try { await client.query('ROLLBACK'); } catch { broken = true; }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> { this.#closed = true; }
}

function unavailable(err: unknown): IdentityStoreUnavailable {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? ` (${e.code})` : '';
  const message = typeof e?.message === 'string' ? e.message.replace(/postgres(ql)?:\/\/\S+/g, '(url)') : 'unknown error';
  return new IdentityStoreUnavailable(`the identity store in PostgreSQL failed: ${message}${code}`, { cause: err });
}
