/**
 * The storage the identity stores run on: the state SQL driver (src/sql/driver.ts) seen
 * through the identity stores' small interface. Each store (users, sessions, API keys,
 * connection passwords, elevation) holds its logic once and runs it on either backend —
 * node:sqlite (one file per store, the embedded default) or PostgreSQL (shared by several
 * Gatehouse nodes) — so both have the same semantics and the same error classes by construction.
 *
 * SQL is the driver's: `?` placeholders and table names in braces. The identity stores name
 * their tables without a prefix (`{users}`); this adapter names them `identity_users` for the
 * driver, which on PostgreSQL is the table in Gatehouse's schema and in an embedded file is
 * the name the file has always had (IDENTITY_SQLITE_NAMES, src/sql/tables/identity.ts, where
 * every identity table is declared once for both backends).
 *
 * `write(fn)` is the driver's 'serializable' transaction: `BEGIN IMMEDIATE` on sqlite (one
 * writer per file), SERIALIZABLE on PostgreSQL; a transaction that loses a conflict with
 * another node is re-run by the driver's one retry policy, so `fn` must do nothing but SQL and
 * pure computation. Any storage failure (including a retry policy that gave up) becomes the
 * store's own "unavailable" error (IDENTITY_STORE_UNAVAILABLE): the request fails closed.
 */
import { StateError } from '../sql/errors.ts';
import { mapTables, type Dialect, type SqlDriver, type SqlQueries as DriverQueries } from '../sql/driver.ts';
import { SqliteDriver, sqliteDialect } from '../sql/sqlite.ts';
import { IDENTITY_SQLITE_NAMES } from '../sql/tables/identity.ts';
import { IdentityStoreUnavailable } from './session.ts';

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

/** The stores' table names (`{users}`) → the driver's logical names (`{identity_users}`), declared in src/sql/tables/identity.ts. */
const KNOWN = new Set(Object.keys(IDENTITY_SQLITE_NAMES).map((n) => n.slice('identity_'.length)));
const prefixed = (sql: string): string => mapTables(sql, (n) => {
  if (!KNOWN.has(n)) throw new Error(`unknown identity table {${n}}`);
  return `{identity_${n}}`;
});

/** The dialect of an embedded identity file: the tables keep the names those files have always had. */
const EMBEDDED = sqliteDialect(IDENTITY_SQLITE_NAMES);

export type Unavailable = (what: 'cannot open' | 'closed' | 'busy or unavailable', cause: unknown) => Error;

/** The identity stores' interface on a state SQL driver. */
export class DriverIdentitySql implements IdentitySql {
  readonly dialect: 'sqlite' | 'postgres';
  readonly #driver: SqlDriver;
  readonly #owns: boolean;
  readonly #unavailable: Unavailable;
  readonly #texts = new Map<string, string>();
  #closed = false;

  /** `owns`: close() closes the driver (an embedded store's own file); otherwise its owner does. */
  constructor(driver: SqlDriver, options: { unavailable?: Unavailable; owns?: boolean } = {}) {
    this.#driver = driver;
    this.dialect = driver.dialect.name;
    this.#owns = options.owns ?? false;
    this.#unavailable = options.unavailable ?? ((what, cause) => new IdentityStoreUnavailable(`the identity store: ${what}`, { cause }));
  }

  /**
   * Opens (creating if needed) an embedded store's file and applies its `tables` (a declaration
   * from src/sql/tables/identity.ts, built for the embedded dialect: idempotent DDL).
   * `unavailable` builds the store's own "cannot open / closed" error.
   */
  static open(path: string, tables: (d: Dialect) => string, options: { busyTimeoutMs?: number | undefined; unavailable: Unavailable; foreignKeys?: boolean }): DriverIdentitySql {
    let driver: SqliteDriver;
    try {
      driver = SqliteDriver.openSync(path, {
        tables: IDENTITY_SQLITE_NAMES, busyTimeoutMs: options.busyTimeoutMs ?? 5000, schema: tables(EMBEDDED),
        ...(options.foreignKeys !== undefined ? { foreignKeys: options.foreignKeys } : {}),
      });
    } catch (err) {
      throw options.unavailable('cannot open', err);
    }
    return new DriverIdentitySql(driver, { unavailable: options.unavailable, owns: true });
  }

  #text(sql: string): string {
    let t = this.#texts.get(sql);
    if (t === undefined) this.#texts.set(sql, t = prefixed(sql));
    return t;
  }

  #q(q: DriverQueries): SqlQueries {
    return {
      run: (sql, params) => q.run(this.#text(sql), params),
      get: <T>(sql: string, params?: readonly SqlValue[]) => q.get<T>(this.#text(sql), params),
      all: <T>(sql: string, params?: readonly SqlValue[]) => q.query<T>(this.#text(sql), params),
    };
  }

  async #guard<T>(f: () => Promise<T>): Promise<T> {
    if (this.#closed) throw this.#unavailable('closed', null);
    try {
      return await f();
    } catch (err) {
      throw this.#classify(err);
    }
  }

  /** Storage failures become the store's "unavailable"; what the store's own code threw passes. */
  #classify(err: unknown): unknown {
    const e = err as { errcode?: unknown; severity?: unknown } | null;
    const fromStorage = err instanceof StateError || (e !== null && typeof e === 'object' && (typeof e.errcode === 'number' || e.severity !== undefined));
    return fromStorage ? this.#unavailable('busy or unavailable', err) : err;
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> { return this.#guard(() => this.#driver.run(this.#text(sql), params)); }
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> { return this.#guard(() => this.#driver.get<T>(this.#text(sql), params)); }
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> { return this.#guard(() => this.#driver.query<T>(this.#text(sql), params)); }

  write<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#guard(() => this.#driver.transaction((q) => fn(this.#q(q)), { mode: 'serializable' }));
  }

  read<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#guard(() => this.#driver.transaction((q) => fn(this.#q(q)), { mode: 'read' }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owns) await this.#driver.close();
  }
}

/** The embedded stores' name for opening their file (kept for their call sites). */
export const SqliteIdentitySql = DriverIdentitySql;
