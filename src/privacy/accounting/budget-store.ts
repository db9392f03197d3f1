/**
 * Durable privacy-budget ledger (the embedded default, on node:sqlite).
 *
 * A budget is keyed by (subject, dataset) — subject is a principal id or `org:<name>` —
 * and caps the zCDP ρ that may be spent on the dataset per window (docs/privacy-budgets.md).
 *
 * Hard caps. Every charge runs in a `BEGIN IMMEDIATE` transaction, which takes SQLite's
 * single write lock before reading anything, so charges from any number of connections,
 * threads or processes are serialised; inside it the spend is applied with a conditional
 * `UPDATE ... WHERE spent + ρ <= cap`, so the check and the write are one statement.
 * SQLITE_BUSY is retried with bounded, jittered backoff; if the lock never comes, the
 * charge fails with BUDGET_STORE_BUSY and nothing is spent (fail closed).
 *
 * Exact arithmetic. ρ is stored as an integer number of nano-ρ (10⁻⁹ ρ). A charge is
 * rounded *up* from the exact binary value of the double, a cap is rounded *down*, so
 * rounding can only make the accounting stricter, and sums in SQLite are exact integers
 * (≤ 10¹⁵ < 2⁵³, hence also exact as JS numbers).
 *
 * Durability. WAL with `synchronous = FULL`: a charge is acknowledged only after its
 * commit reached the disk.
 *
 * The store never writes the audit log: every outcome it returns is plain data describing
 * the charge or refund, which the caller records (see audit.ts).
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BudgetArgumentInvalid, BudgetChargeNotFound, BudgetChargeRefunded, BudgetQueryIdReused, BudgetRefundAfterRelease,
  BudgetRhoInvalid, BudgetStoreBusy, BudgetStoreUnavailable, BudgetWindowInvalid, BudgetWindowLocked,
} from './errors.ts';
import {
  iso, MAX_ID, MAX_REASON, nanoToRho, objectOf, publicWindow, rhoAmount, subjectOf, text, timeOf, windowContaining, windowOf,
  type BudgetWindow,
} from './budget-rules.ts';

export { RHO_UNIT, MAX_RHO, MAX_WINDOW_DAYS, rhoToNano } from './budget-rules.ts';
export type { BudgetWindow } from './budget-rules.ts';
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;

export interface BudgetDefinition {
  /** A principal id, or `org:<name>` for an organisation-wide budget. */
  readonly subject: string;
  readonly dataset: string;
  /** Cap per window, in ρ (zCDP). */
  readonly capRho: number;
  /** null: the cap is for the lifetime of the budget and never resets. */
  readonly window: BudgetWindow;
  /** Start of the first rolling-days window; defaults to the time the budget is first defined. Ignored otherwise. */
  readonly anchor?: Date;
}

export interface ChargeRequest {
  readonly subject: string;
  readonly dataset: string;
  /** ρ this query spends; finite, > 0, ≤ MAX_RHO. */
  readonly rho: number;
  /** Caller's id for the query; charging the same id again with the same ρ is a no-op replay. */
  readonly queryId: string;
  /** Time of the query; chooses the window. Defaults to the store's clock. */
  readonly at?: Date;
}

interface WindowNumbers {
  readonly capRho: number;
  readonly spentRho: number;
  readonly remainingRho: number;
  /** ISO start of the window charged (null for a budget without window). */
  readonly windowStart: string | null;
  /** ISO time the next window starts with the full cap (null: never resets). */
  readonly resetsAt: string | null;
}

export interface ChargeAccepted extends WindowNumbers {
  readonly ok: true;
  readonly chargeId: string;
  readonly subject: string;
  readonly dataset: string;
  readonly queryId: string;
  /** ρ charged (the requested ρ rounded up to a whole nano-ρ). */
  readonly rho: number;
  readonly at: string;
  /** True when this queryId had already been charged: nothing new was spent. */
  readonly replayed: boolean;
}

/**
 * insufficient-budget: ρ does not fit in what remains of the window;
 * no-budget: no budget is defined for (subject, dataset) — DP queries fail closed;
 * batch-denied: this budget had room, but another budget of the same chargeAll did not.
 */
export type DenialReason = 'insufficient-budget' | 'no-budget' | 'batch-denied';

export interface ChargeDenied extends WindowNumbers {
  readonly ok: false;
  readonly subject: string;
  readonly dataset: string;
  readonly queryId: string;
  readonly rho: number;
  readonly at: string;
  readonly reason: DenialReason;
}

export type ChargeOutcome = ChargeAccepted | ChargeDenied;

export interface RefundOutcome extends WindowNumbers {
  readonly ok: true;
  readonly chargeId: string;
  readonly subject: string;
  readonly dataset: string;
  readonly queryId: string;
  readonly rho: number;
  /** ISO time of the refund (of the first refund when alreadyRefunded). */
  readonly refundedAt: string;
  readonly reason: string;
  /** True when the charge had been refunded before: nothing was credited this time. */
  readonly alreadyRefunded: boolean;
}

export type ChargeState = 'charged' | 'released' | 'refunded';

export interface ChargeRecord {
  readonly chargeId: string;
  readonly subject: string;
  readonly dataset: string;
  readonly queryId: string;
  readonly rho: number;
  readonly at: string;
  readonly windowStart: string | null;
  readonly state: ChargeState;
  readonly releasedAt: string | null;
  readonly refundedAt: string | null;
  readonly refundReason: string | null;
}

export interface BudgetStatus extends WindowNumbers {
  readonly subject: string;
  readonly dataset: string;
  readonly window: BudgetWindow;
}

export interface LedgerEntry {
  /** Position in the ledger, strictly increasing. */
  readonly seq: number;
  readonly kind: 'charge' | 'refund';
  readonly chargeId: string;
  readonly subject: string;
  readonly dataset: string;
  readonly queryId: string;
  readonly rho: number;
  /** Exact amount in nano-ρ (RHO_UNIT); sums of these are exact. */
  readonly nanoRho: number;
  readonly at: string;
  readonly windowStart: string | null;
  /** Refund reason; null for charges. */
  readonly reason: string | null;
}

export interface HistoryQuery {
  readonly subject?: string;
  readonly dataset?: string;
  /** Inclusive lower bound on `at`. */
  readonly from?: Date;
  /** Exclusive upper bound on `at`. */
  readonly to?: Date;
  /** At most this many entries (default 1000, max 100000), oldest first. */
  readonly limit?: number;
}

export interface BudgetStoreOptions {
  /** SQLite busy timeout per attempt, ms (default 200). */
  readonly busyTimeoutMs?: number;
  /** Attempts after the first when the database is locked (default 40). */
  readonly maxRetries?: number;
  /** Default time for charges, refunds and status (default: the system clock). */
  readonly clock?: () => Date;
}

// ---------------------------------------------------------------------------------------
// Windows

interface BudgetRow {
  subject: string;
  dataset: string;
  cap_nano: number;
  window_kind: 'none' | 'calendar-month' | 'rolling-days';
  window_days: number | null;
  anchor_ms: number;
}



function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && ((code & 0xff) === SQLITE_BUSY || (code & 0xff) === SQLITE_LOCKED);
}

// ---------------------------------------------------------------------------------------

const SCHEMA = `
CREATE TABLE IF NOT EXISTS budgets (
  subject      TEXT    NOT NULL,
  dataset      TEXT    NOT NULL,
  cap_nano     INTEGER NOT NULL CHECK (cap_nano > 0),
  window_kind  TEXT    NOT NULL CHECK (window_kind IN ('none', 'calendar-month', 'rolling-days')),
  window_days  INTEGER CHECK ((window_kind = 'rolling-days') = (window_days IS NOT NULL)),
  anchor_ms    INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL,
  PRIMARY KEY (subject, dataset)
) STRICT;
CREATE TABLE IF NOT EXISTS windows (
  subject      TEXT    NOT NULL,
  dataset      TEXT    NOT NULL,
  start_ms     INTEGER NOT NULL,
  end_ms       INTEGER,
  spent_nano   INTEGER NOT NULL DEFAULT 0 CHECK (spent_nano >= 0),
  PRIMARY KEY (subject, dataset, start_ms)
) STRICT;
CREATE TABLE IF NOT EXISTS charges (
  charge_id      TEXT    PRIMARY KEY,
  subject        TEXT    NOT NULL,
  dataset        TEXT    NOT NULL,
  query_id       TEXT    NOT NULL,
  nano           INTEGER NOT NULL CHECK (nano > 0),
  at_ms          INTEGER NOT NULL,
  window_start   INTEGER NOT NULL,
  state          TEXT    NOT NULL CHECK (state IN ('charged', 'released', 'refunded')),
  released_ms    INTEGER,
  refunded_ms    INTEGER,
  refund_reason  TEXT,
  UNIQUE (subject, dataset, query_id)
) STRICT;
CREATE TABLE IF NOT EXISTS ledger (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  kind         TEXT    NOT NULL CHECK (kind IN ('charge', 'refund')),
  charge_id    TEXT    NOT NULL REFERENCES charges (charge_id),
  subject      TEXT    NOT NULL,
  dataset      TEXT    NOT NULL,
  query_id     TEXT    NOT NULL,
  nano         INTEGER NOT NULL CHECK (nano > 0),
  at_ms        INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  reason       TEXT,
  UNIQUE (charge_id, kind)
) STRICT;
CREATE INDEX IF NOT EXISTS ledger_by_budget ON ledger (subject, dataset, seq);
-- The ledger is append-only: rows are evidence for audits and reports.
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
`;

interface ChargeRow {
  charge_id: string;
  subject: string;
  dataset: string;
  query_id: string;
  nano: number;
  at_ms: number;
  window_start: number;
  state: ChargeState;
  released_ms: number | null;
  refunded_ms: number | null;
  refund_reason: string | null;
}

export class BudgetStore {
  readonly path: string;
  #db: DatabaseSync;
  #clock: () => Date;
  #maxRetries: number;
  #closed = false;
  #stmts = new Map<string, StatementSync>();

  private constructor(path: string, db: DatabaseSync, options: BudgetStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#clock = options.clock ?? (() => new Date());
    this.#maxRetries = options.maxRetries ?? 40;
  }

  /** Opens (creating if needed) the ledger at `path`. Safe to call from many processes at once. */
  static async open(path: string, options: BudgetStoreOptions = {}): Promise<BudgetStore> {
    const busy = options.busyTimeoutMs ?? 200;
    if (!Number.isInteger(busy) || busy < 0) throw new BudgetArgumentInvalid('busyTimeoutMs must be a non-negative integer');
    if (options.maxRetries !== undefined && (!Number.isInteger(options.maxRetries) || options.maxRetries < 0)) {
      throw new BudgetArgumentInvalid('maxRetries must be a non-negative integer');
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: busy });
    } catch (err) {
      throw new BudgetStoreUnavailable('cannot open the budget store', { cause: err });
    }
    const store = new BudgetStore(path, db, options);
    try {
      await store.#retrying(() => {
        db.exec('PRAGMA journal_mode = WAL');
        db.exec('PRAGMA synchronous = FULL');
        db.exec('PRAGMA foreign_keys = ON');
      });
      await store.#write(() => db.exec(SCHEMA));
    } catch (err) {
      db.close();
      throw err;
    }
    return store;
  }

  // ------------------------------------------------------------------ budgets

  /**
   * Creates or updates a budget. The cap may change at any time and applies at once to
   * the current window (lowering it below what was spent leaves 0 remaining; nothing is
   * taken back). The window may only change while the budget has no ledger rows.
   */
  async defineBudget(def: BudgetDefinition): Promise<BudgetStatus> {
    objectOf('budget definition', def);
    const subject = subjectOf(def.subject);
    const dataset = text('dataset', def.dataset, MAX_ID);
    const capNano = rhoAmount('capRho', def.capRho, 'floor');
    const w = windowOf(def.window);
    const now = this.#now();
    const anchor = def.anchor === undefined ? now : timeOf('anchor', def.anchor);
    await this.#write(() => {
      const old = this.#budget(subject, dataset);
      if (old) {
        const sameWindow = old.window_kind === w.kind && old.window_days === w.days && (w.kind !== 'rolling-days' || def.anchor === undefined || old.anchor_ms === anchor);
        if (!sameWindow && this.#stmt('SELECT 1 FROM ledger WHERE subject = ? AND dataset = ? LIMIT 1').get(subject, dataset)) {
          throw new BudgetWindowLocked();
        }
        const keepAnchor = sameWindow || def.anchor === undefined ? old.anchor_ms : anchor;
        this.#stmt('UPDATE budgets SET cap_nano = ?, window_kind = ?, window_days = ?, anchor_ms = ?, updated_ms = ? WHERE subject = ? AND dataset = ?')
          .run(capNano, w.kind, w.days, keepAnchor, now, subject, dataset);
        if (!sameWindow) this.#stmt('DELETE FROM windows WHERE subject = ? AND dataset = ?').run(subject, dataset);
      } else {
        this.#stmt('INSERT INTO budgets (subject, dataset, cap_nano, window_kind, window_days, anchor_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(subject, dataset, capNano, w.kind, w.days, anchor, now);
      }
    });
    return (await this.status(subject, dataset))!;
  }

  /** The budget's state in the window current at `at` (default now); null if no budget is defined. */
  async status(subject: string, dataset: string, at?: Date): Promise<BudgetStatus | null> {
    subjectOf(subject);
    text('dataset', dataset, MAX_ID);
    const atMs = at === undefined ? this.#now() : timeOf('at', at);
    return this.#read(() => {
      const b = this.#budget(subject, dataset);
      if (!b) return null;
      const win = this.#currentWindow(b, atMs);
      return { subject, dataset, window: publicWindow(b), ...this.#numbers(b, win) };
    });
  }

  // ------------------------------------------------------------------ charges

  /**
   * Atomically spends `rho` from the budget of (subject, dataset) in the window of `at`,
   * or denies the charge if it would exceed the cap. Never overspends, whatever runs
   * concurrently. Charging a queryId that was already charged with the same ρ returns the
   * original charge (`replayed: true`) and spends nothing.
   */
  async charge(req: ChargeRequest): Promise<ChargeOutcome> {
    const [outcome] = await this.chargeAll([req]);
    return outcome!;
  }

  /**
   * Charges several budgets all-or-nothing in one transaction (e.g. a principal's budget
   * and its organisation's). Returns one outcome per request, in order. If any request is
   * denied, nothing is charged: the budgets that had room report `reason: 'batch-denied'`
   * with their unchanged numbers (replays of earlier charges stay `ok: true`).
   */
  async chargeAll(reqs: readonly ChargeRequest[]): Promise<ChargeOutcome[]> {
    if (!Array.isArray(reqs) || reqs.length === 0) throw new BudgetArgumentInvalid('chargeAll needs at least one request');
    const parsed = reqs.map((r) => {
      objectOf('charge request', r);
      return {
      subject: subjectOf(r.subject),
      dataset: text('dataset', r.dataset, MAX_ID),
      queryId: text('queryId', r.queryId, MAX_ID),
      nano: rhoAmount('rho', r.rho, 'ceil'),
      atMs: r.at === undefined ? this.#now() : timeOf('at', r.at),
      };
    });
    const keys = new Set(parsed.map((p) => JSON.stringify([p.subject, p.dataset])));
    if (keys.size !== parsed.length) throw new BudgetArgumentInvalid('chargeAll got the same (subject, dataset) twice');

    return this.#write(() => {
      const outcomes: ChargeOutcome[] = [];
      let denied = false;
      for (const p of parsed) {
        const outcome = this.#chargeOne(p);
        outcomes.push(outcome);
        if (!outcome.ok) denied = true;
      }
      if (!denied) return outcomes;
      // All-or-nothing: undo by throwing out of the transaction, then report.
      throw new BatchDenied(outcomes.map((o) => (o.ok && !o.replayed ? this.#asUnspent(o) : o)));
    }).catch((err: unknown) => {
      if (err instanceof BatchDenied) return err.outcomes;
      throw err;
    });
  }

  #chargeOne(p: { subject: string; dataset: string; queryId: string; nano: number; atMs: number }): ChargeOutcome {
    const base = { subject: p.subject, dataset: p.dataset, queryId: p.queryId, rho: nanoToRho(p.nano), at: iso(p.atMs) };
    const b = this.#budget(p.subject, p.dataset);
    if (!b) {
      return { ok: false, ...base, reason: 'no-budget', capRho: 0, spentRho: 0, remainingRho: 0, windowStart: null, resetsAt: null };
    }
    const prior = this.#stmt('SELECT * FROM charges WHERE subject = ? AND dataset = ? AND query_id = ?').get(p.subject, p.dataset, p.queryId) as ChargeRow | undefined;
    if (prior) {
      if (prior.nano !== p.nano) throw new BudgetQueryIdReused('this queryId was already charged with a different rho');
      if (prior.state === 'refunded') throw new BudgetQueryIdReused('this queryId was charged and refunded; a new attempt needs a new queryId');
      const win = this.#windowAt(b, prior.window_start);
      return { ok: true, ...base, at: iso(prior.at_ms), chargeId: prior.charge_id, replayed: true, ...this.#numbers(b, win) };
    }
    const win = this.#currentWindow(b, p.atMs);
    this.#stmt('INSERT OR IGNORE INTO windows (subject, dataset, start_ms, end_ms, spent_nano) VALUES (?, ?, ?, ?, 0)')
      .run(p.subject, p.dataset, win.start, win.end);
    // The check and the spend are one statement: spent + ρ ≤ cap or nothing changes.
    const applied = this.#stmt(`UPDATE windows SET spent_nano = spent_nano + :nano
        WHERE subject = :subject AND dataset = :dataset AND start_ms = :start
          AND spent_nano + :nano <= (SELECT cap_nano FROM budgets WHERE subject = :subject AND dataset = :dataset)`)
      .run({ nano: p.nano, subject: p.subject, dataset: p.dataset, start: win.start });
    if (applied.changes !== 1) {
      return { ok: false, ...base, reason: 'insufficient-budget', ...this.#numbers(b, win) };
    }
    const chargeId = `chg_${randomUUID()}`;
    this.#stmt(`INSERT INTO charges (charge_id, subject, dataset, query_id, nano, at_ms, window_start, state)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'charged')`).run(chargeId, p.subject, p.dataset, p.queryId, p.nano, p.atMs, win.start);
    this.#stmt(`INSERT INTO ledger (kind, charge_id, subject, dataset, query_id, nano, at_ms, window_start, reason)
        VALUES ('charge', ?, ?, ?, ?, ?, ?, ?, NULL)`).run(chargeId, p.subject, p.dataset, p.queryId, p.nano, p.atMs, win.start);
    return { ok: true, ...base, chargeId, replayed: false, ...this.#numbers(b, win) };
  }

  /** The numbers of an accepted charge as they stand after the batch was rolled back. */
  #asUnspent(o: ChargeAccepted): ChargeDenied {
    const spent = o.spentRho - o.rho;
    return {
      ok: false, subject: o.subject, dataset: o.dataset, queryId: o.queryId, rho: o.rho, at: o.at, reason: 'batch-denied',
      capRho: o.capRho, spentRho: spent, remainingRho: Math.max(0, o.capRho - spent), windowStart: o.windowStart, resetsAt: o.resetsAt,
    };
  }

  /**
   * Marks a charge's result as released (call it *before* the result leaves Gatehouse).
   * From then on the charge can never be refunded. Idempotent. Throws
   * BUDGET_CHARGE_REFUNDED if the charge was refunded: that result must not be released.
   */
  async markReleased(chargeId: string, at?: Date): Promise<ChargeRecord> {
    text('chargeId', chargeId, MAX_ID);
    const atMs = at === undefined ? this.#now() : timeOf('at', at);
    return this.#write(() => {
      const c = this.#charge(chargeId);
      if (c.state === 'refunded') throw new BudgetChargeRefunded();
      if (c.state === 'charged') {
        this.#stmt("UPDATE charges SET state = 'released', released_ms = ? WHERE charge_id = ? AND state = 'charged'").run(atMs, chargeId);
      }
      return this.#chargeRecord(this.#charge(chargeId));
    });
  }

  /**
   * Refunds a charge whose query failed before any result was released.
   *  - released → BUDGET_REFUND_AFTER_RELEASE (never refunded);
   *  - already refunded → the original refund, `alreadyRefunded: true`, nothing credited;
   *  - otherwise ρ is credited back to the window it was charged to, and a refund row is
   *    appended to the ledger. If that window has since ended, the credit is recorded but
   *    cannot be spent: windows never carry budget forward.
   */
  async refund(chargeId: string, reason: string, at?: Date): Promise<RefundOutcome> {
    text('chargeId', chargeId, MAX_ID);
    text('reason', reason, MAX_REASON);
    const atMs = at === undefined ? this.#now() : timeOf('at', at);
    return this.#write(() => {
      const c = this.#charge(chargeId);
      if (c.state === 'released') throw new BudgetRefundAfterRelease();
      const b = this.#budget(c.subject, c.dataset);
      if (!b) throw new BudgetStoreUnavailable('a charge refers to a budget that does not exist');
      const base = { ok: true as const, chargeId, subject: c.subject, dataset: c.dataset, queryId: c.query_id, rho: nanoToRho(c.nano) };
      if (c.state === 'refunded') {
        return { ...base, refundedAt: iso(c.refunded_ms!), reason: c.refund_reason!, alreadyRefunded: true, ...this.#numbers(b, this.#windowAt(b, c.window_start)) };
      }
      const credited = this.#stmt('UPDATE windows SET spent_nano = spent_nano - ? WHERE subject = ? AND dataset = ? AND start_ms = ? AND spent_nano >= ?')
        .run(c.nano, c.subject, c.dataset, c.window_start, c.nano);
      if (credited.changes !== 1) throw new BudgetStoreUnavailable('budget store is inconsistent: the charged window cannot be credited');
      this.#stmt("UPDATE charges SET state = 'refunded', refunded_ms = ?, refund_reason = ? WHERE charge_id = ? AND state = 'charged'").run(atMs, reason, chargeId);
      this.#stmt(`INSERT INTO ledger (kind, charge_id, subject, dataset, query_id, nano, at_ms, window_start, reason)
          VALUES ('refund', ?, ?, ?, ?, ?, ?, ?, ?)`).run(chargeId, c.subject, c.dataset, c.query_id, c.nano, atMs, c.window_start, reason);
      return { ...base, refundedAt: iso(atMs), reason, alreadyRefunded: false, ...this.#numbers(b, this.#windowAt(b, c.window_start)) };
    });
  }

  /** One charge and its state. */
  async getCharge(chargeId: string): Promise<ChargeRecord> {
    text('chargeId', chargeId, MAX_ID);
    return this.#read(() => this.#chargeRecord(this.#charge(chargeId)));
  }

  /** Ledger rows (charges and refunds), oldest first. */
  async history(query: HistoryQuery = {}): Promise<LedgerEntry[]> {
    objectOf('history query', query);
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (query.subject !== undefined) { where.push('subject = ?'); args.push(subjectOf(query.subject)); }
    if (query.dataset !== undefined) { where.push('dataset = ?'); args.push(text('dataset', query.dataset, MAX_ID)); }
    if (query.from !== undefined) { where.push('at_ms >= ?'); args.push(timeOf('from', query.from)); }
    if (query.to !== undefined) { where.push('at_ms < ?'); args.push(timeOf('to', query.to)); }
    const limit = query.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new BudgetArgumentInvalid('limit must be an integer in [1, 100000]');
    const sql = `SELECT * FROM ledger ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ${limit}`;
    return this.#read(() => {
      const rows = this.#db.prepare(sql).all(...args) as unknown as {
        seq: number; kind: 'charge' | 'refund'; charge_id: string; subject: string; dataset: string; query_id: string;
        nano: number; at_ms: number; window_start: number; reason: string | null;
      }[];
      return rows.map((r) => {
        const b = this.#budget(r.subject, r.dataset);
        return {
          seq: r.seq, kind: r.kind, chargeId: r.charge_id, subject: r.subject, dataset: r.dataset, queryId: r.query_id,
          rho: nanoToRho(r.nano), nanoRho: r.nano, at: iso(r.at_ms),
          windowStart: b && b.window_kind !== 'none' ? iso(r.window_start) : null, reason: r.reason,
        };
      });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stmts.clear();
    this.#db.close();
  }

  // ------------------------------------------------------------------ internals

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) { s = this.#db.prepare(sql); this.#stmts.set(sql, s); }
    return s;
  }

  #budget(subject: string, dataset: string): BudgetRow | undefined {
    return this.#stmt('SELECT * FROM budgets WHERE subject = ? AND dataset = ?').get(subject, dataset) as BudgetRow | undefined;
  }

  #charge(chargeId: string): ChargeRow {
    const c = this.#stmt('SELECT * FROM charges WHERE charge_id = ?').get(chargeId) as ChargeRow | undefined;
    if (!c) throw new BudgetChargeNotFound();
    return c;
  }

  #chargeRecord(c: ChargeRow): ChargeRecord {
    const b = this.#budget(c.subject, c.dataset);
    return {
      chargeId: c.charge_id, subject: c.subject, dataset: c.dataset, queryId: c.query_id, rho: nanoToRho(c.nano), at: iso(c.at_ms),
      windowStart: b && b.window_kind !== 'none' ? iso(c.window_start) : null, state: c.state,
      releasedAt: c.released_ms === null ? null : iso(c.released_ms),
      refundedAt: c.refunded_ms === null ? null : iso(c.refunded_ms), refundReason: c.refund_reason,
    };
  }

  /**
   * The window a charge at `at` goes to. Windows only move forward: if another process
   * (with a clock slightly ahead) already opened a later window, a charge stamped earlier
   * goes to that later window, so leftovers of an ended window can never be spent.
   */
  #currentWindow(b: BudgetRow, at: number): { start: number; end: number | null } {
    const win = windowContaining(b, at);
    const latest = this.#stmt('SELECT MAX(start_ms) AS s FROM windows WHERE subject = ? AND dataset = ?').get(b.subject, b.dataset) as { s: number | null };
    if (latest.s !== null && latest.s > win.start) return this.#windowAt(b, latest.s);
    return win;
  }

  #windowAt(b: BudgetRow, start: number): { start: number; end: number | null } {
    return windowContaining(b, start);
  }

  #numbers(b: BudgetRow, win: { start: number; end: number | null }): WindowNumbers {
    const row = this.#stmt('SELECT spent_nano FROM windows WHERE subject = ? AND dataset = ? AND start_ms = ?').get(b.subject, b.dataset, win.start) as { spent_nano: number } | undefined;
    const spent = row?.spent_nano ?? 0;
    return {
      capRho: nanoToRho(b.cap_nano),
      spentRho: nanoToRho(spent),
      remainingRho: nanoToRho(Math.max(0, b.cap_nano - spent)),
      windowStart: b.window_kind === 'none' ? null : iso(win.start),
      resetsAt: win.end === null ? null : iso(win.end),
    };
  }

  #now(): number {
    return timeOf('clock()', this.#clock());
  }

  #open(): void {
    if (this.#closed) throw new BudgetStoreUnavailable('the budget store is closed');
  }

  /** Runs `fn` in a BEGIN IMMEDIATE transaction (write lock first), retrying SQLITE_BUSY. */
  async #write<T>(fn: () => T): Promise<T> {
    return this.#retrying(() => {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const result = fn();
        this.#db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /** Runs `fn` in a read transaction: one consistent snapshot (WAL readers never block). */
  async #read<T>(fn: () => T): Promise<T> {
    return this.#retrying(() => {
      this.#db.exec('BEGIN');
      try {
        return fn();
      } finally {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      }
    });
  }

  async #retrying<T>(attempt: () => T): Promise<T> {
    this.#open();
    for (let i = 0; ; i++) {
      try {
        return attempt();
      } catch (err) {
        if (!isBusy(err)) {
          if (err instanceof Error && 'errcode' in err) throw new BudgetStoreUnavailable('budget store error', { cause: err });
          throw err;
        }
        if (i >= this.#maxRetries) throw new BudgetStoreBusy({ cause: err });
        // Jittered exponential backoff (2 ms … 100 ms) between attempts; SQLite's own busy
        // handler already waited busyTimeoutMs inside the attempt.
        await sleep(Math.random() * Math.min(100, 2 * 2 ** i));
        this.#open();
      }
    }
  }
}

/** Carries a denied batch's outcomes out of the transaction so it rolls back. */
class BatchDenied extends Error {
  readonly outcomes: ChargeOutcome[];
  constructor(outcomes: ChargeOutcome[]) { super('batch denied'); this.outcomes = outcomes; }
}
