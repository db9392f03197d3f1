/**
 * The SQL driver (driver.ts) on node:sqlite: the embedded default, one database file per
 * driver, WAL with `synchronous = FULL` (a change is acknowledged only once it is on disk).
 *
 * node:sqlite is synchronous, and a transaction's body awaits between statements. So, per
 * database file in this process, one promise-chain gate lets one transaction at a time run
 * (however many drivers have the file open): a statement from outside the running transaction
 * waits for it to end instead of joining it, and a second connection never busy-waits
 * synchronously for a lock held across an `await` by the first (which would block the very
 * event loop the first needs). Other processes holding the write lock are waited for by
 * SQLite's busy timeout, then by the shared retry policy (retry.ts: SQLITE_BUSY is a lost race).
 */
import { resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { StateUnavailable } from './errors.ts';
import { DEFAULT_RETRY, isRetryable, withRetry, type RetryPolicy } from './retry.ts';
import { mapTables, type Dialect, type SqlDriver, type SqlQueries, type SqlRow, type SqlValue, type TxOptions } from './driver.ts';

export interface SqliteDriverOptions {
  /** Logical table names whose real name in this file differs (files written before the names were unified). */
  readonly tables?: Readonly<Record<string, string>>;
  /** SQLite's own wait for another process's lock, per attempt, ms (default 1000). */
  readonly busyTimeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Enforce REFERENCES (default true). */
  readonly foreignKeys?: boolean;
}

/** The sqlite dialect; `tables` maps logical names to older real names. */
export function sqliteDialect(tables: Readonly<Record<string, string>> = {}): Dialect {
  const bare = (n: string): string => tables[n] ?? n;
  return {
    name: 'sqlite',
    table: bare,
    bare,
    int: 'INTEGER', bigint: 'INTEGER', real: 'REAL', text: 'TEXT', textC: 'TEXT', blob: 'BLOB',
    serialKey: 'INTEGER PRIMARY KEY AUTOINCREMENT',
    tableSuffix: ' STRICT',
    withoutRowid: ' WITHOUT ROWID',
    rowidColumn: '',
    ifNotExists: 'IF NOT EXISTS ',
    forUpdate: '',
    nowMs: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
    appendOnly: (n) => {
      const t = bare(n);
      return `CREATE TRIGGER IF NOT EXISTS ${t}_no_update BEFORE UPDATE ON ${t} BEGIN SELECT RAISE(ABORT, '${t} is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ${t}_no_delete BEFORE DELETE ON ${t} BEGIN SELECT RAISE(ABORT, '${t} is append-only'); END;`;
    },
  };
}

interface FileGate { lock: Promise<unknown>; inTx: boolean; users: number }
const GATES = new Map<string, FileGate>();
const isMemory = (path: string): boolean => path === ':memory:' || path === '';

function gateFor(path: string): FileGate {
  if (isMemory(path)) return { lock: Promise.resolve(), inTx: false, users: 1 };
  const key = resolve(path);
  let g = GATES.get(key);
  if (!g) GATES.set(key, g = { lock: Promise.resolve(), inTx: false, users: 0 });
  g.users++;
  return g;
}

function releaseGate(path: string, g: FileGate): void {
  if (--g.users === 0 && !isMemory(path)) GATES.delete(resolve(path));
}

export class SqliteDriver implements SqlDriver {
  readonly dialect: Dialect;
  readonly retry: RetryPolicy;
  readonly path: string;
  /** The connection, for the few callers that need a file-level operation (checkpoints). */
  readonly db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  readonly #gate: FileGate;
  #closed = false;

  private constructor(db: DatabaseSync, path: string, options: SqliteDriverOptions) {
    this.db = db;
    this.path = path;
    this.dialect = sqliteDialect(options.tables);
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#gate = gateFor(path);
  }

  /** Opens (creating if needed) the file at `path` (':memory:' for tests). Throws StateUnavailable (StateBusy if locked throughout). */
  static async open(path: string, options: SqliteDriverOptions = {}): Promise<SqliteDriver> {
    const policy = { ...DEFAULT_RETRY, ...options.retry };
    return withRetry(policy, async () => SqliteDriver.#open(path, options, true), { what: 'the state file' });
  }

  /**
   * The same, synchronously (for stores whose open is synchronous): another process's lock is
   * waited out by the busy timeout only. `schema` (idempotent DDL) is applied in one write
   * transaction.
   */
  static openSync(path: string, options: SqliteDriverOptions & { schema?: string } = {}): SqliteDriver {
    const driver = SqliteDriver.#open(path, options, false);
    if (options.schema !== undefined) {
      try {
        driver.db.exec('BEGIN IMMEDIATE');
        try {
          driver.db.exec(mapTables(options.schema, driver.dialect.table));
          driver.db.exec('COMMIT');
        } catch (err) {
          if (driver.db.isTransaction) driver.db.exec('ROLLBACK');
          throw err;
        }
      } catch (err) {
        driver.db.close();
        releaseGate(path, driver.#gate);
        throw new StateUnavailable('cannot initialise the state file', { cause: err });
      }
    }
    return driver;
  }

  static #open(path: string, options: SqliteDriverOptions, passBusy: boolean): SqliteDriver {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? 1000 });
    } catch (err) {
      throw new StateUnavailable('cannot open the state file (check the state directory: permissions, disk space)', { cause: err });
    }
    try {
      if (!isMemory(path)) db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      db.exec(`PRAGMA foreign_keys = ${options.foreignKeys === false ? 'OFF' : 'ON'}`);
    } catch (err) {
      db.close();
      if (passBusy && isRetryable(err)) throw err;
      throw new StateUnavailable('cannot initialise the state file', { cause: err });
    }
    return new SqliteDriver(db, path, options);
  }

  #stmt(sql: string): StatementSync {
    if (this.#closed) throw new StateUnavailable('the state file is closed');
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.db.prepare(mapTables(sql, this.dialect.table));
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /** Statements on the connection, synchronous underneath. */
  readonly #q: SqlQueries = {
    query: async <T>(sql: string, params: readonly SqlValue[] = []) => this.#stmt(sql).all(...params) as T[],
    get: async <T>(sql: string, params: readonly SqlValue[] = []) => this.#stmt(sql).get(...params) as T | undefined,
    run: async (sql: string, params: readonly SqlValue[] = []) => Number(this.#stmt(sql).run(...params).changes),
  };

  /** Runs `fn` alone on the file in this process (queued behind whatever runs now). */
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

  /** One statement outside a transaction: at once when no transaction is open on the file, else after it. */
  #direct<T>(f: () => Promise<T>): Promise<T> {
    const once = () => withRetry(this.retry, f, { what: 'the state file' });
    return this.#gate.inTx ? this.#exclusive(once) : once();
  }

  query<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]> { return this.#direct(() => this.#q.query<T>(sql, params)); }
  get<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> { return this.#direct(() => this.#q.get<T>(sql, params)); }
  run(sql: string, params?: readonly SqlValue[]): Promise<number> { return this.#direct(() => this.#q.run(sql, params)); }

  transaction<T>(fn: (q: SqlQueries) => Promise<T>, options: TxOptions): Promise<T> {
    const begin = options.mode === 'read' ? 'BEGIN' : 'BEGIN IMMEDIATE';
    const policy = options.maxRetries === undefined ? this.retry : { ...this.retry, maxRetries: options.maxRetries };
    return this.#exclusive(() => withRetry(policy, () => this.#once(begin, fn), { what: 'the state file' }));
  }

  async #once<T>(begin: string, fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StateUnavailable('the state file is closed');
    this.db.exec(begin);
    this.#gate.inTx = true;
    try {
      const out = await fn(this.#q);
      this.db.exec(begin === 'BEGIN' ? 'ROLLBACK' : 'COMMIT');
      return out;
    } catch (err) {
      if (this.db.isOpen && this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    } finally {
      this.#gate.inTx = false;
    }
  }

  async exec(ddl: string): Promise<void> {
    await this.transaction(async () => { this.db.exec(mapTables(ddl, this.dialect.table)); }, { mode: 'write' });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#exclusive(async () => {
      this.#closed = true;
      this.#stmts.clear();
      this.db.close();
    });
    releaseGate(this.path, this.#gate);
  }
}
