/**
 * The governance store's `Core` (src/governance/types.ts) on the state SQL driver: one
 * implementation for the embedded file and for PostgreSQL shared by several nodes.
 *
 * - The modules write SQL once, naming tables `gov_*` bare; here those names become the
 *   driver's `{gov_*}` (outside string literals), which PostgreSQL qualifies with the schema.
 * - Booleans come back as 1/0 (as node:sqlite gives them); bigint as numbers (the driver).
 * - `tx(fn)` is the driver's 'write' transaction with one lock for the whole store: on
 *   PostgreSQL a transaction-scoped advisory lock per schema, so governance writers run one at
 *   a time across every node exactly like SQLite's `BEGIN IMMEDIATE`, and read-check-write
 *   sequences (double approval, overlapping agreements, termination, a classification decision)
 *   cannot interleave. (SERIALIZABLE alone was tried: on these small tables its predicate locks
 *   made concurrent approvals fail each other over and over.) A deadlock or serialization
 *   failure re-runs the body (the driver's retry policy); a refusal the body throws is final.
 * - Statements the body issues, through any part of the store, join its transaction (an
 *   AsyncLocalStorage token tells them apart from other callers', which wait for it on sqlite);
 *   a nested `tx` joins the outer one. Reads outside a transaction (the gate) take no lock.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Core, Row, SqlValue, Statement } from './types.ts';
import type { SqlDriver, SqlQueries } from '../sql/driver.ts';

interface TxState { readonly core: DriverCore; readonly q: SqlQueries }
const inTx = new AsyncLocalStorage<TxState>();

/** `gov_x` → `{gov_x}` outside string literals (and not after a `.` or a quote). */
export function braceGovTables(sql: string): string {
  return sql.replace(/'(?:[^']|'')*'|(?<![\w."{])gov_[a-z0-9_]+/g, (m) => (m.startsWith("'") ? m : `{${m}}`));
}

export class DriverCore implements Core {
  readonly dialect: 'sqlite' | 'postgres';
  readonly driver: SqlDriver;
  readonly #clock: () => Date;
  readonly #lock: string;
  readonly #owns: boolean;
  readonly #stmts = new Map<string, Statement>();

  /** `lockKey` names the one-writer lock (PostgreSQL); `owns`: close() closes the driver. */
  constructor(driver: SqlDriver, options: { now?: () => Date; lockKey: string; owns: boolean }) {
    this.driver = driver;
    this.dialect = driver.dialect.name;
    this.#clock = options.now ?? (() => new Date());
    this.#lock = options.lockKey;
    this.#owns = options.owns;
  }

  #on(): SqlQueries {
    const tx = inTx.getStore();
    return tx && tx.core === this ? tx.q : this.driver;
  }

  stmt(sql: string): Statement {
    let s = this.#stmts.get(sql);
    if (!s) {
      const text = braceGovTables(sql);
      s = {
        get: async (...p: SqlValue[]) => { const r = await this.#on().get<Row>(text, p); return r && numericBooleans(r); },
        all: async (...p: SqlValue[]) => (await this.#on().query<Row>(text, p)).map(numericBooleans),
        run: async (...p: SqlValue[]) => ({ changes: await this.#on().run(text, p) }),
      };
      this.#stmts.set(sql, s);
    }
    return s;
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    const cur = inTx.getStore();
    if (cur && cur.core === this) return fn(); // nested: join the outer transaction
    return this.driver.transaction((q) => inTx.run({ core: this, q }, fn), { mode: 'write', lock: this.#lock });
  }

  now(): Date {
    return this.#clock();
  }

  /** Closes the embedded file (after a running transaction); a shared driver belongs to its state. */
  async close(): Promise<void> {
    if (this.#owns) await this.driver.close();
  }
}

function numericBooleans(row: Row): Row {
  for (const k in row) if (typeof row[k] === 'boolean') (row as Record<string, unknown>)[k] = row[k] ? 1 : 0;
  return row;
}
