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
 * - Embedded (SQLite) reads outside a transaction are memoised per *state generation*
 *   (issue 15: the gate and the confirmed classifications are read on every request, and
 *   change rarely). The generation is read from the same connection before every memoised
 *   read: `total_changes()` counts every row this connection inserted, updated or deleted
 *   (every store write in this process goes through it), and `PRAGMA data_version` moves
 *   when any other connection commits to the file (another process, the CLI, a second
 *   store opened on it). A read is kept under the generation seen *before* it ran, so an
 *   answer is never newer-keyed than its data: a revocation committed anywhere is seen by the
 *   very next read. On PostgreSQL (several nodes, no cheap cross-node counter) every read
 *   goes to the database as before.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Core, Row, SqlValue, Statement } from './types.ts';
import type { SqlDriver, SqlQueries } from '../sql/driver.ts';
import type { StatementSync } from 'node:sqlite';

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
  /** SQLite: the statement that reads the generation (null on PostgreSQL or once it failed). */
  #generationStmt: StatementSync | null | undefined;
  #memoGeneration = '';
  #memo = new Map<string, Row | Row[] | undefined>();
  #memoHits = 0;

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
        get: async (...p: SqlValue[]) => {
          const m = this.#memoKey(text, 'get', p);
          if (m && this.#memo.has(m.key)) { this.#memoHits++; const r = this.#memo.get(m.key) as Row | undefined; return r && { ...r }; }
          const r = await this.#on().get<Row>(text, p);
          const row = r && numericBooleans(r);
          if (m) this.#remember(m.gen, m.key, row && { ...row });
          return row;
        },
        all: async (...p: SqlValue[]) => {
          const m = this.#memoKey(text, 'all', p);
          if (m && this.#memo.has(m.key)) { this.#memoHits++; return (this.#memo.get(m.key) as Row[]).map((r) => ({ ...r })); }
          const rows = (await this.#on().query<Row>(text, p)).map(numericBooleans);
          if (m) this.#remember(m.gen, m.key, rows.map((r) => ({ ...r })));
          return rows;
        },
        run: async (...p: SqlValue[]) => ({ changes: await this.#on().run(text, p) }),
      };
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /** Reads answered from the memo so far (tests, benchmarks). */
  get memoHits(): number {
    return this.#memoHits;
  }

  /**
   * The memo key of a read and the generation seen before it runs, or null when the read is
   * not memoised (PostgreSQL, inside a transaction, a byte parameter). Reads the generation
   * first and drops the memo when it moved, so a hit is never stale.
   */
  #memoKey(text: string, kind: 'get' | 'all', params: readonly SqlValue[]): { key: string; gen: string } | null {
    if (this.dialect !== 'sqlite' || inTx.getStore()?.core === this) return null;
    let key = `${kind}\u0000${text}`;
    for (const v of params) {
      if (typeof v === 'string') key += `\u0000s${v}`;
      else if (typeof v === 'number' || typeof v === 'bigint') key += `\u0000n${String(v)}`;
      else if (v === null) key += '\u0000z';
      else return null;
    }
    const gen = this.#generation();
    if (gen === null) return null;
    if (gen !== this.#memoGeneration) { this.#memo = new Map(); this.#memoGeneration = gen; }
    return { key, gen };
  }

  #remember(gen: string, key: string, value: Row | Row[] | undefined): void {
    if (gen !== this.#memoGeneration) return; // the state moved while the read ran
    if (this.#memo.size >= MEMO_MAX) this.#memo.clear();
    this.#memo.set(key, value);
  }

  /**
   * This connection's view of "has the file changed": its own row changes plus other
   * connections' commits. Read synchronously on the connection, outside the driver's queue:
   * a write transaction in progress only makes it move early (its rows count at once),
   * never late. Null when it cannot be read (the memo is then bypassed).
   */
  #generation(): string | null {
    if (this.#generationStmt === undefined) {
      const db = (this.driver as { db?: { prepare(sql: string): StatementSync; isOpen?: boolean } }).db;
      try {
        this.#generationStmt = db ? db.prepare('SELECT total_changes() AS c, data_version AS v FROM pragma_data_version()') : null;
      } catch {
        this.#generationStmt = null;
      }
    }
    if (this.#generationStmt === null) return null;
    try {
      const r = this.#generationStmt.get() as { c: number | bigint; v: number | bigint };
      return `${String(r.c)}:${String(r.v)}`;
    } catch {
      return null; // closed: the read itself reports it
    }
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

/** Memoised reads per generation (the gate's and classification reads are a handful per principal). */
const MEMO_MAX = 2_000;

function numericBooleans(row: Row): Row {
  for (const k in row) if (typeof row[k] === 'boolean') (row as Record<string, unknown>)[k] = row[k] ? 1 : 0;
  return row;
}
