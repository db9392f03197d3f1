/**
 * Durable privacy-budget ledger, written once on the state SQL driver (src/sql/driver.ts):
 * node:sqlite for the embedded default (`BudgetStore.open(path)`), PostgreSQL shared by every
 * node of a deployment (`BudgetStore.on(driver)`, opened by src/state/backend.ts).
 *
 * A budget is keyed by (subject, dataset) — subject is a principal id or `org:<name>` —
 * and caps the zCDP ρ that may be spent on the dataset per window (docs/privacy-budgets.md).
 *
 * Hard caps. Every charge runs in one 'write' transaction of the driver. On sqlite that is
 * `BEGIN IMMEDIATE`: SQLite's single write lock is taken before anything is read, so charges
 * from any number of connections or processes are serialised. On PostgreSQL it is READ
 * COMMITTED and the charge first locks the budget rows it touches (`SELECT … FOR UPDATE`,
 * the dialect's `forUpdate`), in one global order (subject, dataset) so two batches cannot
 * deadlock: while the lock is held nothing on any node can charge, refund or redefine that
 * budget. Either way the spend is a conditional `UPDATE … WHERE spent + ρ <= cap`, so the
 * check and the write are one statement. A lost race (SQLITE_BUSY, lock timeout, deadlock,
 * serialization failure) is retried by the driver's one retry policy (src/sql/retry.ts);
 * when it gives up the charge fails with BUDGET_STORE_BUSY and nothing is spent; any other
 * store failure is BUDGET_STORE_UNAVAILABLE (fail closed).
 *
 * Exact arithmetic. ρ is stored as an integer number of nano-ρ (10⁻⁹ ρ). A charge is
 * rounded *up* from the exact binary value of the double, a cap is rounded *down*, so
 * rounding can only make the accounting stricter, and sums in SQLite are exact integers
 * (≤ 10¹⁵ < 2⁵³, hence also exact as JS numbers).
 *
 * Durability. sqlite: WAL with `synchronous = FULL`; PostgreSQL: after COMMIT returned. A
 * charge is acknowledged only once it is durable.
 *
 * Tight accounting. A budget defined with an (ε, δ) `target`, charged with the `loss` each
 * release spends (pld.ts), is checked by composing every live (charged or released) loss of the
 * window with the new one under the same lock and accepting iff the composition is still
 * (ε, δ)-DP: Laplace releases compose as optimal composition allows, Gaussian ones exactly.
 * ρ is still recorded (spent_nano) for display and history; the cap in ρ does not bind such a
 * charge. A window holding any charge without a loss (written before migration 6) keeps the ρ rule.
 *
 * The store never writes the audit log: every outcome it returns is plain data describing
 * the charge or refund, which the caller records (see audit.ts).
 */
import { randomUUID } from 'node:crypto';
import {
  AccountingError, BudgetArgumentInvalid, BudgetChargeNotFound, BudgetChargeRefunded, BudgetQueryIdReused, BudgetRefundAfterRelease,
  BudgetStoreBusy, BudgetStoreUnavailable, BudgetWindowLocked,
} from './errors.ts';
import {
  iso, MAX_ID, MAX_REASON, nanoToRho, objectOf, publicWindow, rhoAmount, subjectOf, text, timeOf, windowContaining, windowOf,
  type BudgetWindow, type WindowKind,
} from './budget-rules.ts';
import { StateBusy } from '../../sql/errors.ts';
import { migrateFile } from '../../sql/migrations.ts';
import type { SqlDriver, SqlQueries, SqlValue } from '../../sql/driver.ts';
import { SqliteDriver } from '../../sql/sqlite.ts';
import { BUDGET_SQLITE_NAMES } from '../../sql/tables/budgets.ts';
import { composeLosses, deltaAt, epsilonAt, type PrivacyLoss } from './pld.ts';

export { RHO_UNIT, MAX_RHO, MAX_WINDOW_DAYS, rhoToNano } from './budget-rules.ts';
export type { BudgetWindow } from './budget-rules.ts';

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
  /** (ε, δ) the composition of the window's releases must satisfy (tight accounting, pld.ts). */
  readonly target?: { readonly epsilon: number; readonly delta: number };
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
  /** The privacy loss of the release (pld.ts); with a budget target, the charge is checked by composition. */
  readonly loss?: PrivacyLoss;
}

interface WindowNumbers {
  readonly capRho: number;
  readonly spentRho: number;
  readonly remainingRho: number;
  /** ISO start of the window charged (null for a budget without window). */
  readonly windowStart: string | null;
  /** ISO time the next window starts with the full cap (null: never resets). */
  readonly resetsAt: string | null;
  /** Tight accounting: the budget's target and the ε the window's live releases have spent at its δ; null without a target. */
  readonly tight?: { readonly epsilon: number; readonly delta: number; readonly spentEpsilon: number; readonly spent: PrivacyLoss } | null;
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
  /** sqlite (open): SQLite's busy timeout per attempt, ms (default 200). */
  readonly busyTimeoutMs?: number;
  /** Re-runs of a charge that lost a race with another writer (default 40). */
  readonly maxRetries?: number;
  /** Default time for charges, refunds and status (default: the system clock). */
  readonly clock?: () => Date;
}

// ---------------------------------------------------------------------------------------

interface BudgetRow {
  subject: string;
  dataset: string;
  cap_nano: number;
  window_kind: WindowKind;
  window_days: number | null;
  anchor_ms: number;
}

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

type Win = { start: number; end: number | null };
type Parsed = { subject: string; dataset: string; queryId: string; nano: number; atMs: number; loss: PrivacyLoss | null };

export class BudgetStore {
  /** The file (embedded) or `postgres:<schema>`. */
  readonly path: string;
  readonly #driver: SqlDriver;
  readonly #ownsDriver: boolean;
  readonly #clock: () => Date;
  readonly #maxRetries: number | undefined;
  readonly #forUpdate: string;
  #closed = false;

  private constructor(path: string, driver: SqlDriver, owns: boolean, options: BudgetStoreOptions) {
    if (options.maxRetries !== undefined && (!Number.isInteger(options.maxRetries) || options.maxRetries < 0)) {
      throw new BudgetArgumentInvalid('maxRetries must be a non-negative integer');
    }
    this.path = path;
    this.#driver = driver;
    this.#ownsDriver = owns;
    this.#clock = options.clock ?? (() => new Date());
    this.#maxRetries = options.maxRetries;
    this.#forUpdate = driver.dialect.forUpdate;
  }

  /** Opens (creating if needed) the embedded ledger file at `path`. Safe to call from many processes at once. */
  static async open(path: string, options: BudgetStoreOptions = {}): Promise<BudgetStore> {
    const busy = options.busyTimeoutMs ?? 200;
    if (!Number.isInteger(busy) || busy < 0) throw new BudgetArgumentInvalid('busyTimeoutMs must be a non-negative integer');
    if (options.maxRetries !== undefined && (!Number.isInteger(options.maxRetries) || options.maxRetries < 0)) {
      throw new BudgetArgumentInvalid('maxRetries must be a non-negative integer');
    }
    let driver: SqliteDriver;
    try {
      driver = await SqliteDriver.open(path, { tables: BUDGET_SQLITE_NAMES, busyTimeoutMs: busy, retry: { maxRetries: options.maxRetries ?? 40 } });
    } catch (err) {
      throw storeError(err, 'cannot open the budget store');
    }
    try {
      await migrateFile(driver, 'budgets');
    } catch (err) {
      await driver.close();
      throw storeError(err, 'cannot initialise the budget store');
    }
    return new BudgetStore(path, driver, true, { maxRetries: 40, ...options });
  }

  /**
   * The ledger on a shared driver (PostgreSQL: the state backend's, its tables migrated).
   * close() leaves the driver to its owner.
   */
  static on(driver: SqlDriver, options: BudgetStoreOptions = {}): BudgetStore {
    const where = driver.dialect.name === 'postgres' ? `postgres:${(driver as { schema?: string }).schema ?? ''}` : 'sqlite';
    return new BudgetStore(where, driver, false, options);
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
    const target = def.target === undefined ? null : targetOf(def.target);
    const w = windowOf(def.window);
    const now = this.#now();
    const anchor = def.anchor === undefined ? now : timeOf('anchor', def.anchor);
    await this.#write(async (q) => {
      const inserted = await q.run(`INSERT INTO {budgets} (subject, dataset, cap_nano, window_kind, window_days, anchor_ms, updated_ms)
          VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (subject, dataset) DO NOTHING`, [subject, dataset, capNano, w.kind, w.days, anchor, now]);
      if (inserted === 1) return;
      const old = (await this.#lockBudgets(q, [[subject, dataset]])).get(key(subject, dataset))!;
      const sameWindow = old.window_kind === w.kind && old.window_days === w.days && (w.kind !== 'rolling-days' || def.anchor === undefined || old.anchor_ms === anchor);
      if (!sameWindow && await q.get('SELECT 1 AS used FROM {budget_ledger} WHERE subject = ? AND dataset = ? LIMIT 1', [subject, dataset])) {
        throw new BudgetWindowLocked();
      }
      const keepAnchor = sameWindow || def.anchor === undefined ? old.anchor_ms : anchor;
      await q.run('UPDATE {budgets} SET cap_nano = ?, window_kind = ?, window_days = ?, anchor_ms = ?, updated_ms = ? WHERE subject = ? AND dataset = ?',
        [capNano, w.kind, w.days, keepAnchor, now, subject, dataset]);
      if (!sameWindow) await q.run('DELETE FROM {budget_windows} WHERE subject = ? AND dataset = ?', [subject, dataset]);
    }).then(() => target && this.#write(async (q) => {
      await q.run(`INSERT INTO {budget_targets} (subject, dataset, epsilon, delta) VALUES (?, ?, ?, ?)
          ON CONFLICT (subject, dataset) DO UPDATE SET epsilon = excluded.epsilon, delta = excluded.delta`, [subject, dataset, String(target.epsilon), String(target.delta)]);
    }));
    return (await this.status(subject, dataset))!;
  }

  /** The budget's state in the window current at `at` (default now); null if no budget is defined. */
  async status(subject: string, dataset: string, at?: Date): Promise<BudgetStatus | null> {
    subjectOf(subject);
    text('dataset', dataset, MAX_ID);
    const atMs = at === undefined ? this.#now() : timeOf('at', at);
    return this.#read(async (q) => {
      const b = await this.#budget(q, subject, dataset);
      if (!b) return null;
      const win = await this.#currentWindow(q, b, atMs);
      return { subject, dataset, window: publicWindow(b), ...(await this.#numbers(q, b, win)) };
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
    const parsed: Parsed[] = reqs.map((r) => {
      objectOf('charge request', r);
      return {
        subject: subjectOf(r.subject),
        dataset: text('dataset', r.dataset, MAX_ID),
        queryId: text('queryId', r.queryId, MAX_ID),
        nano: rhoAmount('rho', r.rho, 'ceil'),
        atMs: r.at === undefined ? this.#now() : timeOf('at', r.at),
        loss: r.loss === undefined ? null : lossOf(r.loss),
      };
    });
    const keys = new Set(parsed.map((p) => key(p.subject, p.dataset)));
    if (keys.size !== parsed.length) throw new BudgetArgumentInvalid('chargeAll got the same (subject, dataset) twice');

    return this.#write(async (q) => {
      const budgets = await this.#lockBudgets(q, parsed.map((p) => [p.subject, p.dataset]));
      const outcomes: ChargeOutcome[] = [];
      let denied = false;
      for (const p of parsed) {
        const outcome = await this.#chargeOne(q, budgets.get(key(p.subject, p.dataset)), p);
        outcomes.push(outcome);
        if (!outcome.ok) denied = true;
      }
      if (!denied) return outcomes;
      // All-or-nothing: undo by throwing out of the transaction, then report.
      throw new BatchDenied(outcomes.map((o) => (o.ok && !o.replayed ? asUnspent(o) : o)));
    }).catch((err: unknown) => {
      if (err instanceof BatchDenied) return err.outcomes;
      throw err;
    });
  }

  async #chargeOne(q: SqlQueries, b: BudgetRow | undefined, p: Parsed): Promise<ChargeOutcome> {
    const base = { subject: p.subject, dataset: p.dataset, queryId: p.queryId, rho: nanoToRho(p.nano), at: iso(p.atMs) };
    if (!b) {
      return { ok: false, ...base, reason: 'no-budget', capRho: 0, spentRho: 0, remainingRho: 0, windowStart: null, resetsAt: null };
    }
    const prior = await q.get<ChargeRow>('SELECT * FROM {budget_charges} WHERE subject = ? AND dataset = ? AND query_id = ?', [p.subject, p.dataset, p.queryId]);
    if (prior) {
      if (prior.nano !== p.nano) throw new BudgetQueryIdReused('this queryId was already charged with a different rho');
      if (prior.state === 'refunded') throw new BudgetQueryIdReused('this queryId was charged and refunded; a new attempt needs a new queryId');
      const win = windowContaining(b, prior.window_start);
      return { ok: true, ...base, at: iso(prior.at_ms), chargeId: prior.charge_id, replayed: true, ...(await this.#numbers(q, b, win)) };
    }
    const win = await this.#currentWindow(q, b, p.atMs);
    await q.run(`INSERT INTO {budget_windows} (subject, dataset, start_ms, end_ms, spent_nano) VALUES (?, ?, ?, ?, 0)
        ON CONFLICT (subject, dataset, start_ms) DO NOTHING`, [p.subject, p.dataset, win.start, win.end]);
    const tight = p.loss ? await this.#tightCheck(q, b, win, p.loss) : null;
    if (tight === false) {
      return { ok: false, ...base, reason: 'insufficient-budget', ...(await this.#numbers(q, b, win)) };
    }
    // The check and the spend are one statement: spent + ρ ≤ cap or nothing changes. (Tight
    // accounting checked the composition above, under the same lock.)
    const applied = tight === true
      ? await q.run('UPDATE {budget_windows} SET spent_nano = spent_nano + ? WHERE subject = ? AND dataset = ? AND start_ms = ?', [p.nano, p.subject, p.dataset, win.start])
      : await q.run(`UPDATE {budget_windows} SET spent_nano = spent_nano + ?1
        WHERE subject = ?2 AND dataset = ?3 AND start_ms = ?4
          AND spent_nano + ?1 <= (SELECT cap_nano FROM {budgets} WHERE subject = ?2 AND dataset = ?3)`,
      [p.nano, p.subject, p.dataset, win.start]);
    if (applied !== 1) {
      return { ok: false, ...base, reason: 'insufficient-budget', ...(await this.#numbers(q, b, win)) };
    }
    const chargeId = `chg_${randomUUID()}`;
    await q.run(`INSERT INTO {budget_charges} (charge_id, subject, dataset, query_id, nano, at_ms, window_start, state)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'charged')`, [chargeId, p.subject, p.dataset, p.queryId, p.nano, p.atMs, win.start]);
    if (p.loss) await q.run('INSERT INTO {budget_losses} (charge_id, loss) VALUES (?, ?)', [chargeId, JSON.stringify(p.loss)]);
    await q.run(`INSERT INTO {budget_ledger} (kind, charge_id, subject, dataset, query_id, nano, at_ms, window_start, reason)
        VALUES ('charge', ?, ?, ?, ?, ?, ?, ?, NULL)`, [chargeId, p.subject, p.dataset, p.queryId, p.nano, p.atMs, win.start]);
    return { ok: true, ...base, chargeId, replayed: false, ...(await this.#numbers(q, b, win)) };
  }

  /**
   * Marks a charge's result as released (call it *before* the result leaves Gatehouse).
   * From then on the charge can never be refunded. Idempotent. Throws
   * BUDGET_CHARGE_REFUNDED if the charge was refunded: that result must not be released.
   */
  async markReleased(chargeId: string, at?: Date): Promise<ChargeRecord> {
    text('chargeId', chargeId, MAX_ID);
    const atMs = at === undefined ? this.#now() : timeOf('at', at);
    return this.#write(async (q) => {
      const c = await this.#charge(q, chargeId, true);
      if (c.state === 'refunded') throw new BudgetChargeRefunded();
      if (c.state === 'charged') {
        await q.run("UPDATE {budget_charges} SET state = 'released', released_ms = ? WHERE charge_id = ? AND state = 'charged'", [atMs, chargeId]);
      }
      return this.#chargeRecord(q, await this.#charge(q, chargeId, false));
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
    return this.#write(async (q) => {
      // Lock order everywhere: budget rows first, then the charge row.
      const peek = await this.#charge(q, chargeId, false);
      const b = (await this.#lockBudgets(q, [[peek.subject, peek.dataset]])).get(key(peek.subject, peek.dataset));
      const c = await this.#charge(q, chargeId, true);
      if (c.state === 'released') throw new BudgetRefundAfterRelease();
      if (!b) throw new BudgetStoreUnavailable('a charge refers to a budget that does not exist');
      const base = { ok: true as const, chargeId, subject: c.subject, dataset: c.dataset, queryId: c.query_id, rho: nanoToRho(c.nano) };
      const win = windowContaining(b, c.window_start);
      if (c.state === 'refunded') {
        return { ...base, refundedAt: iso(c.refunded_ms!), reason: c.refund_reason!, alreadyRefunded: true, ...(await this.#numbers(q, b, win)) };
      }
      const credited = await q.run('UPDATE {budget_windows} SET spent_nano = spent_nano - ?1 WHERE subject = ?2 AND dataset = ?3 AND start_ms = ?4 AND spent_nano >= ?1',
        [c.nano, c.subject, c.dataset, c.window_start]);
      if (credited !== 1) throw new BudgetStoreUnavailable('budget store is inconsistent: the charged window cannot be credited');
      await q.run("UPDATE {budget_charges} SET state = 'refunded', refunded_ms = ?, refund_reason = ? WHERE charge_id = ? AND state = 'charged'", [atMs, reason, chargeId]);
      await q.run(`INSERT INTO {budget_ledger} (kind, charge_id, subject, dataset, query_id, nano, at_ms, window_start, reason)
          VALUES ('refund', ?, ?, ?, ?, ?, ?, ?, ?)`, [chargeId, c.subject, c.dataset, c.query_id, c.nano, atMs, c.window_start, reason]);
      return { ...base, refundedAt: iso(atMs), reason, alreadyRefunded: false, ...(await this.#numbers(q, b, win)) };
    });
  }

  /**
   * Charges still in state "charged": neither released nor refunded, oldest first. After a
   * crash these are the charges of queries that were cut off; reconciliation at start
   * (src/kernel/reconcile-budgets.ts) refunds those no audit entry mentions.
   */
  async unreleasedCharges(limit = 100_000): Promise<ChargeRecord[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new BudgetArgumentInvalid('limit must be an integer in [1, 100000]');
    return this.#read(async (q) => {
      const rows = await q.query<ChargeRow>("SELECT * FROM {budget_charges} WHERE state = 'charged' ORDER BY at_ms, charge_id LIMIT ?", [limit]);
      const out: ChargeRecord[] = [];
      for (const r of rows) out.push(await this.#chargeRecord(q, r));
      return out;
    });
  }

  /** One charge and its state. */
  async getCharge(chargeId: string): Promise<ChargeRecord> {
    text('chargeId', chargeId, MAX_ID);
    return this.#read(async (q) => this.#chargeRecord(q, await this.#charge(q, chargeId, false)));
  }

  /** Ledger rows (charges and refunds), oldest first. */
  async history(query: HistoryQuery = {}): Promise<LedgerEntry[]> {
    objectOf('history query', query);
    const where: string[] = [];
    const args: SqlValue[] = [];
    if (query.subject !== undefined) { where.push('l.subject = ?'); args.push(subjectOf(query.subject)); }
    if (query.dataset !== undefined) { where.push('l.dataset = ?'); args.push(text('dataset', query.dataset, MAX_ID)); }
    if (query.from !== undefined) { where.push('l.at_ms >= ?'); args.push(timeOf('from', query.from)); }
    if (query.to !== undefined) { where.push('l.at_ms < ?'); args.push(timeOf('to', query.to)); }
    const limit = query.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new BudgetArgumentInvalid('limit must be an integer in [1, 100000]');
    args.push(limit);
    const sql = `SELECT l.*, b.window_kind FROM {budget_ledger} l
        LEFT JOIN {budgets} b ON b.subject = l.subject AND b.dataset = l.dataset
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY l.seq LIMIT ?`;
    return this.#read(async (q) => {
      const rows = await q.query<{
        seq: number; kind: 'charge' | 'refund'; charge_id: string; subject: string; dataset: string; query_id: string;
        nano: number; at_ms: number; window_start: number; reason: string | null; window_kind: WindowKind | null;
      }>(sql, args);
      return rows.map((r) => ({
        seq: r.seq, kind: r.kind, chargeId: r.charge_id, subject: r.subject, dataset: r.dataset, queryId: r.query_id,
        rho: nanoToRho(r.nano), nanoRho: r.nano, at: iso(r.at_ms),
        windowStart: r.window_kind !== null && r.window_kind !== 'none' ? iso(r.window_start) : null, reason: r.reason,
      }));
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsDriver) await this.#driver.close();
  }

  // ------------------------------------------------------------------ internals

  /**
   * Locks the budget rows of `keys` for the rest of the transaction (PostgreSQL: FOR UPDATE,
   * in one global order so batches cannot deadlock; sqlite: the write lock already covers
   * them) and returns those that exist.
   */
  async #lockBudgets(q: SqlQueries, keys: readonly (readonly [string, string])[]): Promise<Map<string, BudgetRow>> {
    const sorted = [...keys].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    const out = new Map<string, BudgetRow>();
    for (const [subject, dataset] of sorted) {
      const r = await q.get<BudgetRow>(`SELECT * FROM {budgets} WHERE subject = ? AND dataset = ?${this.#forUpdate}`, [subject, dataset]);
      if (r) out.set(key(subject, dataset), r);
    }
    return out;
  }

  #budget(q: SqlQueries, subject: string, dataset: string): Promise<BudgetRow | undefined> {
    return q.get<BudgetRow>('SELECT * FROM {budgets} WHERE subject = ? AND dataset = ?', [subject, dataset]);
  }

  async #charge(q: SqlQueries, chargeId: string, lock: boolean): Promise<ChargeRow> {
    const c = await q.get<ChargeRow>(`SELECT * FROM {budget_charges} WHERE charge_id = ?${lock ? this.#forUpdate : ''}`, [chargeId]);
    if (!c) throw new BudgetChargeNotFound();
    return c;
  }

  async #chargeRecord(q: SqlQueries, c: ChargeRow): Promise<ChargeRecord> {
    const b = await this.#budget(q, c.subject, c.dataset);
    return {
      chargeId: c.charge_id, subject: c.subject, dataset: c.dataset, queryId: c.query_id, rho: nanoToRho(c.nano), at: iso(c.at_ms),
      windowStart: b && b.window_kind !== 'none' ? iso(c.window_start) : null, state: c.state,
      releasedAt: c.released_ms === null ? null : iso(c.released_ms),
      refundedAt: c.refunded_ms === null ? null : iso(c.refunded_ms), refundReason: c.refund_reason,
    };
  }

  /**
   * The window a charge at `at` goes to. Windows only move forward: if another process or
   * node (with a clock slightly ahead) already opened a later window, a charge stamped earlier
   * goes to that later window, so leftovers of an ended window can never be spent.
   */
  async #currentWindow(q: SqlQueries, b: BudgetRow, at: number): Promise<Win> {
    const win = windowContaining(b, at);
    const latest = await q.get<{ s: number | null }>('SELECT MAX(start_ms) AS s FROM {budget_windows} WHERE subject = ? AND dataset = ?', [b.subject, b.dataset]);
    if (latest && latest.s !== null && latest.s > win.start) return windowContaining(b, latest.s);
    return win;
  }

  async #target(q: SqlQueries, b: BudgetRow): Promise<{ epsilon: number; delta: number } | null> {
    const t = await q.get<{ epsilon: string; delta: string }>('SELECT epsilon, delta FROM {budget_targets} WHERE subject = ? AND dataset = ?', [b.subject, b.dataset]);
    return t ? { epsilon: Number(t.epsilon), delta: Number(t.delta) } : null;
  }

  /** The losses of the window's live charges; null if one of them has none (a ρ-only charge). */
  async #windowLosses(q: SqlQueries, b: BudgetRow, win: Win): Promise<PrivacyLoss[] | null> {
    const rows = await q.query<{ loss: string | null }>(`SELECT l.loss AS loss FROM {budget_charges} c LEFT JOIN {budget_losses} l ON l.charge_id = c.charge_id
        WHERE c.subject = ? AND c.dataset = ? AND c.window_start = ? AND c.state <> 'refunded'`, [b.subject, b.dataset, win.start]);
    const out: PrivacyLoss[] = [];
    for (const r of rows) { if (r.loss === null) return null; out.push(JSON.parse(r.loss) as PrivacyLoss); }
    return out;
  }

  /** true: the composition with `loss` fits the target; false: it does not; null: the ρ rule applies. */
  async #tightCheck(q: SqlQueries, b: BudgetRow, win: Win, loss: PrivacyLoss): Promise<boolean | null> {
    const target = await this.#target(q, b);
    if (!target) return null;
    const prior = await this.#windowLosses(q, b, win);
    if (prior === null) return null;
    return deltaAt(composeLosses([...prior, loss]), target.epsilon) <= target.delta;
  }

  async #numbers(q: SqlQueries, b: BudgetRow, win: Win): Promise<WindowNumbers> {
    const target = await this.#target(q, b);
    const losses = target ? await this.#windowLosses(q, b, win) : null;
    const spentLoss = losses ? composeLosses(losses) : null;
    const tight = target && spentLoss ? { ...target, spentEpsilon: losses!.length ? epsilonAt(spentLoss, target.delta) : 0, spent: spentLoss } : null;
    const row = await q.get<{ spent_nano: number }>('SELECT spent_nano FROM {budget_windows} WHERE subject = ? AND dataset = ? AND start_ms = ?', [b.subject, b.dataset, win.start]);
    const spent = row?.spent_nano ?? 0;
    return {
      capRho: nanoToRho(b.cap_nano),
      spentRho: nanoToRho(spent),
      remainingRho: nanoToRho(Math.max(0, b.cap_nano - spent)),
      windowStart: b.window_kind === 'none' ? null : iso(win.start),
      resetsAt: win.end === null ? null : iso(win.end),
      tight,
    };
  }

  #now(): number {
    return timeOf('clock()', this.#clock());
  }

  #write<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#tx(fn, 'write');
  }

  /** One consistent snapshot for reads. */
  #read<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    return this.#tx(fn, 'read');
  }

  async #tx<T>(fn: (q: SqlQueries) => Promise<T>, mode: 'read' | 'write'): Promise<T> {
    if (this.#closed) throw new BudgetStoreUnavailable('the budget store is closed');
    try {
      return await this.#driver.transaction(fn, { mode, ...(this.#maxRetries !== undefined ? { maxRetries: this.#maxRetries } : {}) });
    } catch (err) {
      if (err instanceof AccountingError || err instanceof BatchDenied) throw err;
      throw storeError(err, 'budget store error; nothing was charged');
    }
  }
}

const key = (subject: string, dataset: string): string => JSON.stringify([subject, dataset]);

/** A privacy loss from the caller, validated and copied (what is stored is exactly what was checked). */
function lossOf(x: unknown): PrivacyLoss {
  objectOf('loss', x);
  const l = x as PrivacyLoss;
  if (!Array.isArray(l.pure) || l.pure.length > 10_000) throw new BudgetArgumentInvalid('loss.pure must be an array of at most 10000 epsilons');
  const loss = { pure: l.pure.map((e) => e), mu2: l.mu2, delta: l.delta };
  try { composeLosses([loss]); } catch { throw new BudgetArgumentInvalid('loss must have pure epsilons > 0, mu2 >= 0 and delta in [0, 1)'); }
  return loss;
}

function targetOf(x: unknown): { epsilon: number; delta: number } {
  objectOf('target', x);
  const t = x as { epsilon: unknown; delta: unknown };
  if (typeof t.epsilon !== 'number' || !(t.epsilon > 0) || !Number.isFinite(t.epsilon)) throw new BudgetArgumentInvalid('target.epsilon must be a finite number > 0');
  if (typeof t.delta !== 'number' || !(t.delta > 0 && t.delta < 1)) throw new BudgetArgumentInvalid('target.delta must be in (0, 1)');
  return { epsilon: t.epsilon, delta: t.delta };
}

/** The driver's failures as the ledger's own typed errors (nothing was charged). */
function storeError(err: unknown, message: string): AccountingError {
  if (err instanceof AccountingError) return err;
  if (err instanceof StateBusy) return new BudgetStoreBusy({ cause: err });
  return new BudgetStoreUnavailable(message, { cause: err });
}

/** The numbers of an accepted charge as they stand after the batch was rolled back. */
function asUnspent(o: ChargeAccepted): ChargeDenied {
  const spent = o.spentRho - o.rho;
  return {
    ok: false, subject: o.subject, dataset: o.dataset, queryId: o.queryId, rho: o.rho, at: o.at, reason: 'batch-denied',
    capRho: o.capRho, spentRho: spent, remainingRho: Math.max(0, o.capRho - spent), windowStart: o.windowStart, resetsAt: o.resetsAt,
  };
}

/** Carries a denied batch's outcomes out of the transaction so it rolls back. */
class BatchDenied extends Error {
  readonly outcomes: ChargeOutcome[];
  constructor(outcomes: ChargeOutcome[]) { super('batch denied'); this.outcomes = outcomes; }
}
