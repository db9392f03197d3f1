/**
 * The embedded governance core: one node:sqlite connection (WAL), statements prepared once,
 * and transactions that are `BEGIN IMMEDIATE` and one at a time.
 *
 * The store's methods are asynchronous (the PostgreSQL core needs that), so a transaction's
 * body can yield between statements. Because every statement on this connection would join
 * an open transaction, a statement issued from outside the running transaction waits until it
 * ends (an AsyncLocalStorage token tells the two apart); a second transaction waits its turn.
 * Outside transactions, statements run at once (synchronously, wrapped in a promise).
 *
 * Waiting for another connection's write lock must not block the thread (that connection may
 * be in this very process, waiting for the event loop to finish its transaction), so the
 * connection has no busy timeout: a busy database is retried asynchronously, for up to
 * `busyTimeoutMs`, before the operation fails.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Core, Row, SqlValue, Statement } from './types.ts';

const inTx = new AsyncLocalStorage<object>();

export class SqliteCore implements Core {
  readonly dialect = 'sqlite' as const;
  readonly db: DatabaseSync;
  readonly #stmts = new Map<string, Statement>();
  readonly #clock: () => Date;
  /** The running transaction's token and a promise settled when it ends. */
  #token: object | null = null;
  #idle: Promise<void> | null = null;

  readonly #busyTimeoutMs: number;

  constructor(db: DatabaseSync, clock: () => Date, options: { busyTimeoutMs?: number } = {}) {
    this.db = db;
    this.#clock = clock;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    db.exec('PRAGMA busy_timeout = 0');
  }

  /** Runs `f`, retrying asynchronously while another connection holds the lock. */
  async #retryBusy<T>(f: () => T): Promise<T> {
    const deadline = Date.now() + this.#busyTimeoutMs;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      try {
        return f();
      } catch (err) {
        if (!isBusy(err) || Date.now() >= deadline) throw err;
      }
      await sleep(wait);
    }
  }

  stmt(sql: string): Statement {
    let s = this.#stmts.get(sql);
    if (!s) {
      const prepared: StatementSync = this.db.prepare(sql);
      s = {
        get: (...p: SqlValue[]) => this.#exec(() => prepared.get(...p) as Row | undefined),
        all: (...p: SqlValue[]) => this.#exec(() => prepared.all(...p) as Row[]),
        run: (...p: SqlValue[]) => this.#exec(() => ({ changes: Number(prepared.run(...p).changes) })),
      };
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #exec<T>(f: () => T): Promise<T> {
    if (this.#token !== null && inTx.getStore() !== this.#token) {
      // Another transaction is open on this connection: wait for it, never join it.
      return this.#wait().then(() => this.#exec(f));
    }
    try {
      return Promise.resolve(f());
    } catch (err) {
      if (isBusy(err) && inTx.getStore() !== this.#token) return this.#retryBusy(f);
      return Promise.reject(err);
    }
  }

  async #wait(): Promise<void> {
    while (this.#idle !== null) await this.#idle;
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#token !== null && inTx.getStore() === this.#token) return fn(); // nested: join
    await this.#wait();
    const token = {};
    let done!: () => void;
    this.#idle = new Promise<void>((r) => { done = r; });
    this.#token = token;
    try {
      await this.#retryBusy(() => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const out = await inTx.run(token, fn);
        this.db.exec('COMMIT');
        return out;
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      this.#token = null;
      this.#idle = null;
      done();
    }
  }

  now(): Date {
    return this.#clock();
  }

  async close(): Promise<void> {
    await this.#wait();
    if (this.db.isOpen) this.db.close();
  }
}

/** SQLITE_BUSY (5) or SQLITE_LOCKED (6), with any extended code. */
function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && ((code & 0xff) === 5 || (code & 0xff) === 6);
}
