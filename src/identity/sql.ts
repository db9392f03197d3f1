/**
 * The storage the identity stores run on: a small SQL interface that both node:sqlite (one
 * file per store, the embedded default) and PostgreSQL (src/state/identity-sql.ts, shared
 * by several Gatehouse nodes) implement. Each store (users, sessions, API keys, connection
 * passwords, elevation) holds its logic once and runs it on either backend, so both have
 * the same semantics and the same error classes by construction.
 *
 * SQL is written once, in the dialect both share:
 * - `?` placeholders (PostgreSQL's backend numbers them `$1`, `$2`, …);
 * - table names in braces, `{users}`, which each backend maps to its own names (the
 *   sqlite files keep their historical names; PostgreSQL prefixes them `identity_` inside
 *   Gatehouse's schema);
 * - integers for booleans and epoch times, text for JSON, blobs for digests;
 * - `ON CONFLICT … DO UPDATE/NOTHING` and `RETURNING`, which both understand.
 *
 * `write(fn)` runs `fn` as one transaction with the isolation the stores' read-check-write
 * steps need: `BEGIN IMMEDIATE` on sqlite (one writer per file), SERIALIZABLE on
 * PostgreSQL. On PostgreSQL, `fn` is re-run when the transaction loses a serialization
 * conflict with another node, so it must do nothing but SQL and pure computation.
 */
import { resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';

export type SqlValue = string | number | null | Uint8Array;

export interface SqlQueries {
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
}

export interface IdentitySql extends SqlQueries {
  readonly dialect: 'sqlite' | 'postgres';
  /** One read-write transaction (see the module comment); errors roll it back. */
  write<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T>;
  /** A consistent read of several statements. */
  read<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The stores' table names (keys) and their names in the sqlite files (values). */
export const SQLITE_TABLES: Readonly<Record<string, string>> = {
  users: 'users', meta: 'meta', recovery_codes: 'recovery_codes', login_failures: 'login_failures',
  mfa_reset_requests: 'mfa_reset_requests', sessions: 'identity_sessions', refresh_tokens: 'identity_refresh_tokens',
  api_keys: 'identity_api_keys', connection_passwords: 'connection_passwords',
  elevation_requests: 'elevation_requests', elevation_grants: 'elevation_grants', session_keys: 'identity_session_keys',
};

/** Replaces `{name}` with `table(name)`; an unknown name is a programming error. */
export function mapTables(sql: string, table: (name: string) => string): string {
  return sql.replace(/\{([a-z_]+)\}/g, (_, n: string) => table(n));
}

/**
 * One per database file in this process: the promise-chain lock that keeps one transaction
 * at a time on the file, and whether one is open. Connections to one file in one process
 * must share it: sqlite's busy wait is synchronous, so a second connection waiting for a
 * lock held across an `await` by the first would block the very event loop the first
 * needs to finish (other processes simply wait out the busy timeout).
 */
interface FileGate { lock: Promise<unknown>; inTx: boolean; users: number }
const GATES = new Map<string, FileGate>();

function gateFor(path: string): FileGate {
  if (path === ':memory:' || path === '') return { lock: Promise.resolve(), inTx: false, users: 1 };
  const key = resolve(path);
  let g = GATES.get(key);
  if (!g) GATES.set(key, g = { lock: Promise.resolve(), inTx: false, users: 0 });
  g.users++;
  return g;
}

function releaseGate(path: string, g: FileGate): void {
  if (--g.users === 0 && path !== ':memory:' && path !== '') GATES.delete(resolve(path));
}

/**
 * node:sqlite behind the interface. The connection is synchronous; a promise-chain lock per
 * file keeps one transaction at a time on it (an `await` inside `write` must not let another
 * caller's statement run inside the open transaction, nor another connection's wait block).
 */
export class SqliteIdentitySql implements IdentitySql {
  readonly dialect = 'sqlite' as const;
  readonly #db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  readonly #unavailable: (message: string, cause: unknown) => Error;
  readonly #path: string;
  readonly #gate: FileGate;
  #closed = false;

  private constructor(db: DatabaseSync, path: string, unavailable: (message: string, cause: unknown) => Error) {
    this.#db = db;
    this.#path = path;
    this.#gate = gateFor(path);
    this.#unavailable = unavailable;
  }

  /**
   * Opens (creating if needed) the file and applies `schema` (idempotent DDL) in one
   * transaction. `unavailable` builds the store's own "cannot open / closed" error.
   */
  static open(path: string, schema: string, options: { busyTimeoutMs?: number; unavailable: (message: string, cause: unknown) => Error; foreignKeys?: boolean }): SqliteIdentitySql {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? 5000 });
    } catch (err) {
      throw options.unavailable('cannot open', err);
    }
    try {
      if (path !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
      // Revocations and counters are security decisions: durable before they are acknowledged.
      db.exec('PRAGMA synchronous = FULL');
      if (options.foreignKeys !== false) db.exec('PRAGMA foreign_keys = ON');
      db.exec('BEGIN IMMEDIATE');
      try {
        db.exec(schema);
        db.exec('COMMIT');
      } catch (err) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      db.close();
      throw options.unavailable('cannot initialise', err);
    }
    return new SqliteIdentitySql(db, path, options.unavailable);
  }

  #stmt(sql: string): StatementSync {
    if (this.#closed) throw this.#unavailable('closed', null);
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#db.prepare(mapTables(sql, (n) => {
        const t = SQLITE_TABLES[n];
        if (!t) throw new Error(`unknown identity table {${n}}`);
        return t;
      }));
      this.#stmts.set(sql, s);
    }
    return s;
  }

  readonly #q: SqlQueries = {
    run: async (sql, params = []) => Number(this.#stmt(sql).run(...params).changes),
    get: async <T>(sql: string, params: readonly SqlValue[] = []) => this.#stmt(sql).get(...params) as T | undefined,
    all: async <T>(sql: string, params: readonly SqlValue[] = []) => this.#stmt(sql).all(...params) as T[],
  };

  /** Runs `fn` alone on the connection (queued behind whatever runs now). */
  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#gate.lock;
    let release!: () => void;
    this.#gate.lock = new Promise<void>((r) => { release = r; });
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    // A statement outside a transaction runs synchronously when no transaction is open.
    if (!this.#gate.inTx) return this.#q.run(sql, params);
    return this.#exclusive(() => this.#q.run(sql, params));
  }
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    if (!this.#gate.inTx) return this.#q.get<T>(sql, params);
    return this.#exclusive(() => this.#q.get<T>(sql, params));
  }
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    if (!this.#gate.inTx) return this.#q.all<T>(sql, params);
    return this.#exclusive(() => this.#q.all<T>(sql, params));
  }

  write<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#tx('BEGIN IMMEDIATE', fn);
  }

  read<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#tx('BEGIN', fn);
  }

  #tx<T>(begin: string, fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#exclusive(async () => {
      if (this.#closed) throw this.#unavailable('closed', null);
      try {
        this.#db.exec(begin);
      } catch (err) {
        throw this.#unavailable('busy or unavailable', err);
      }
      this.#gate.inTx = true;
      try {
        const out = await fn(this.#q);
        this.#db.exec(begin === 'BEGIN' ? 'ROLLBACK' : 'COMMIT');
        return out;
      } catch (err) {
        if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw err;
      } finally {
        this.#gate.inTx = false;
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#exclusive(async () => {
      this.#closed = true;
      this.#stmts.clear();
      this.#db.close();
    });
    releaseGate(this.#path, this.#gate);
  }
}
