/**
 * The privacy-budget ledger on PostgreSQL: the production twin of BudgetStore
 * (src/privacy/accounting/budget-store.ts), with exactly its API, semantics and typed
 * errors, shared by every Gatehouse node that points at the same database.
 *
 * Hard caps across nodes. Every write runs in one READ COMMITTED transaction that first
 * locks the budget rows it touches with `SELECT … FOR UPDATE`, in one global order
 * (sorted by subject, dataset) so two batches cannot deadlock; while the lock is held
 * nothing else can charge, refund or redefine that budget, on this node or any other.
 * The spend itself is still the conditional `UPDATE … WHERE spent + ρ ≤ cap`, so the
 * check and the write are one statement. Lock waits are bounded (`lock_timeout`); a lock
 * timeout, serialization failure or deadlock is retried with jittered backoff, and after
 * `maxRetries` the charge fails with BUDGET_STORE_BUSY having spent nothing. Any other
 * database failure (PostgreSQL unreachable, connection lost) is BUDGET_STORE_UNAVAILABLE:
 * the transaction is rolled back, nothing was charged, the request fails closed.
 *
 * Exact arithmetic as in BudgetStore: integer nano-ρ in bigint columns (≤ 10¹⁵, exact
 * as JS numbers). Times are integer milliseconds. The ledger is append-only (triggers).
 *
 * Durability is PostgreSQL's: a charge is acknowledged after COMMIT returned.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool, PoolClient } from 'pg';
import type {
  BudgetDefinition, BudgetStatus, ChargeAccepted, ChargeDenied, ChargeOutcome, ChargeRecord, ChargeRequest, ChargeState,
  HistoryQuery, LedgerEntry, RefundOutcome,
} from '../privacy/accounting/budget-store.ts';
import {
  AccountingError, BudgetArgumentInvalid, BudgetChargeNotFound, BudgetChargeRefunded, BudgetQueryIdReused, BudgetRefundAfterRelease,
  BudgetStoreBusy, BudgetStoreUnavailable, BudgetWindowLocked,
} from '../privacy/accounting/errors.ts';
import type { BudgetLedger } from './budget-ledger.ts';
import {
  MAX_ID, MAX_REASON, iso, nanoToRho, objectOf, publicWindow, rhoAmount, subjectOf, text, timeOf, windowContaining, windowOf,
  type WindowKind,
} from '../privacy/accounting/budget-rules.ts';
import { quoteSchema } from './migrations.ts';

export interface PgBudgetStoreOptions {
  /** Schema holding the tables (created by openPostgresState / migrate). Default "gatehouse". */
  readonly schema?: string;
  /** Longest wait for a row lock per attempt, ms (default 2000). */
  readonly lockTimeoutMs?: number;
  /** Attempts after the first on lock timeouts, deadlocks and serialization failures (default 20). */
  readonly maxRetries?: number;
  /** Default time for charges, refunds and status (default: the system clock). */
  readonly clock?: () => Date;
}

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

/** Retried: serialization_failure, deadlock_detected, lock_not_available (lock_timeout). */
const RETRYABLE = new Set(['40001', '40P01', '55P03']);

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

function budgetRow(r: Record<string, unknown>): BudgetRow {
  return {
    subject: r.subject as string, dataset: r.dataset as string, cap_nano: num(r.cap_nano), window_kind: r.window_kind as WindowKind,
    window_days: numOrNull(r.window_days), anchor_ms: num(r.anchor_ms),
  };
}

function chargeRow(r: Record<string, unknown>): ChargeRow {
  return {
    charge_id: r.charge_id as string, subject: r.subject as string, dataset: r.dataset as string, query_id: r.query_id as string,
    nano: num(r.nano), at_ms: num(r.at_ms), window_start: num(r.window_start), state: r.state as ChargeState,
    released_ms: numOrNull(r.released_ms), refunded_ms: numOrNull(r.refunded_ms), refund_reason: (r.refund_reason as string | null) ?? null,
  };
}

export class PgBudgetStore implements BudgetLedger {
  readonly schema: string;
  readonly #pool: Pool;
  readonly #S: string;
  readonly #clock: () => Date;
  readonly #maxRetries: number;
  readonly #lockTimeoutMs: number;
  #closed = false;

  /** Uses `pool` (not owned: close() does not end it). The schema must be migrated (openPostgresState does it). */
  constructor(pool: Pool, options: PgBudgetStoreOptions = {}) {
    this.schema = options.schema ?? 'gatehouse';
    this.#S = quoteSchema(this.schema);
    this.#pool = pool;
    this.#clock = options.clock ?? (() => new Date());
    const retries = options.maxRetries ?? 20;
    const lock = options.lockTimeoutMs ?? 2000;
    if (!Number.isInteger(retries) || retries < 0) throw new BudgetArgumentInvalid('maxRetries must be a non-negative integer');
    if (!Number.isInteger(lock) || lock < 1) throw new BudgetArgumentInvalid('lockTimeoutMs must be a positive integer');
    this.#maxRetries = retries;
    this.#lockTimeoutMs = lock;
  }

  // ------------------------------------------------------------------ budgets

  async defineBudget(def: BudgetDefinition): Promise<BudgetStatus> {
    objectOf('budget definition', def);
    const subject = subjectOf(def.subject);
    const dataset = text('dataset', def.dataset, MAX_ID);
    const capNano = rhoAmount('capRho', def.capRho, 'floor');
    const w = windowOf(def.window);
    const now = this.#now();
    const anchor = def.anchor === undefined ? now : timeOf('anchor', def.anchor);
    const S = this.#S;
    await this.#write(async (c) => {
      const inserted = await c.query(
        `INSERT INTO ${S}.budgets (subject, dataset, cap_nano, window_kind, window_days, anchor_ms, updated_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subject, dataset) DO NOTHING`,
        [subject, dataset, capNano, w.kind, w.days, anchor, now]);
      if (inserted.rowCount === 1) return;
      const old = (await this.#lockBudgets(c, [[subject, dataset]])).get(JSON.stringify([subject, dataset]))!;
      const sameWindow = old.window_kind === w.kind && old.window_days === w.days && (w.kind !== 'rolling-days' || def.anchor === undefined || old.anchor_ms === anchor);
      if (!sameWindow) {
        const used = await c.query(`SELECT 1 FROM ${S}.budget_ledger WHERE subject = $1 AND dataset = $2 LIMIT 1`, [subject, dataset]);
        if (used.rowCount) throw new BudgetWindowLocked();
      }
      const keepAnchor = sameWindow || def.anchor === undefined ? old.anchor_ms : anchor;
      await c.query(`UPDATE ${S}.budgets SET cap_nano = $1, window_kind = $2, window_days = $3, anchor_ms = $4, updated_ms = $5
          WHERE subject = $6 AND dataset = $7`, [capNano, w.kind, w.days, keepAnchor, now, subject, dataset]);
      if (!sameWindow) await c.query(`DELETE FROM ${S}.budget_windows WHERE subject = $1 AND dataset = $2`, [subject, dataset]);
    });
    return (await this.status(subject, dataset))!;
  }

  async status(subject: string, dataset: string, at?: Date): Promise<BudgetStatus | null> {
    subjectOf(subject);
    text('dataset', dataset, MAX_ID);
    const atMs = at === undefined ? this.#now() : timeOf('at', at);
    return this.#read(async (c) => {
      const b = await this.#budget(c, subject, dataset);
      if (!b) return null;
      const win = await this.#currentWindow(c, b, atMs);
      return { subject, dataset, window: publicWindow(b), ...(await this.#numbers(c, b, win)) };
    });
  }

  // ------------------------------------------------------------------ charges

  async charge(req: ChargeRequest): Promise<ChargeOutcome> {
    const [outcome] = await this.chargeAll([req]);
    return outcome!;
  }

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

    return this.#write(async (c) => {
      const budgets = await this.#lockBudgets(c, parsed.map((p) => [p.subject, p.dataset]));
      const outcomes: ChargeOutcome[] = [];
      let denied = false;
      for (const p of parsed) {
        const outcome = await this.#chargeOne(c, budgets.get(JSON.stringify([p.subject, p.dataset])), p);
        outcomes.push(outcome);
        if (!outcome.ok) denied = true;
      }
      if (!denied) return outcomes;
      throw new BatchDenied(outcomes.map((o) => (o.ok && !o.replayed ? asUnspent(o) : o)));
    }).catch((err: unknown) => {
      if (err instanceof BatchDenied) return err.outcomes;
      throw err;
    });
  }

  async #chargeOne(c: PoolClient, b: BudgetRow | undefined, p: { subject: string; dataset: string; queryId: string; nano: number; atMs: number }): Promise<ChargeOutcome> {
    const S = this.#S;
    const base = { subject: p.subject, dataset: p.dataset, queryId: p.queryId, rho: nanoToRho(p.nano), at: iso(p.atMs) };
    if (!b) {
      return { ok: false, ...base, reason: 'no-budget', capRho: 0, spentRho: 0, remainingRho: 0, windowStart: null, resetsAt: null };
    }
    const priorRows = await c.query(`SELECT * FROM ${S}.budget_charges WHERE subject = $1 AND dataset = $2 AND query_id = $3`, [p.subject, p.dataset, p.queryId]);
    if (priorRows.rowCount) {
      const prior = chargeRow(priorRows.rows[0]);
      if (prior.nano !== p.nano) throw new BudgetQueryIdReused('this queryId was already charged with a different rho');
      if (prior.state === 'refunded') throw new BudgetQueryIdReused('this queryId was charged and refunded; a new attempt needs a new queryId');
      const win = windowContaining(b, prior.window_start);
      return { ok: true, ...base, at: iso(prior.at_ms), chargeId: prior.charge_id, replayed: true, ...(await this.#numbers(c, b, win)) };
    }
    const win = await this.#currentWindow(c, b, p.atMs);
    await c.query(`INSERT INTO ${S}.budget_windows (subject, dataset, start_ms, end_ms, spent_nano) VALUES ($1, $2, $3, $4, 0)
        ON CONFLICT (subject, dataset, start_ms) DO NOTHING`, [p.subject, p.dataset, win.start, win.end]);
    // The check and the spend are one statement: spent + ρ ≤ cap or nothing changes.
    const applied = await c.query(`UPDATE ${S}.budget_windows SET spent_nano = spent_nano + $1
        WHERE subject = $2 AND dataset = $3 AND start_ms = $4
          AND spent_nano + $1 <= (SELECT cap_nano FROM ${S}.budgets WHERE subject = $2 AND dataset = $3)`,
      [p.nano, p.subject, p.dataset, win.start]);
    if (applied.rowCount !== 1) {
      return { ok: false, ...base, reason: 'insufficient-budget', ...(await this.#numbers(c, b, win)) };
    }
    const chargeId = `chg_${randomUUID()}`;
    await c.query(`INSERT INTO ${S}.budget_charges (charge_id, subject, dataset, query_id, nano, at_ms, window_start, state)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'charged')`, [chargeId, p.subject, p.dataset, p.queryId, p.nano, p.atMs, win.start]);
    await c.query(`INSERT INTO ${S}.budget_ledger (kind, charge_id, subject, dataset, query_id, nano, at_ms, window_start, reason)
        VALUES ('charge', $1, $2, $3, $4, $5, $6, $7, NULL)`, [chargeId, p.subject, p.dataset, p.queryId, p.nano, p.atMs, win.start]);
    return { ok: true, ...base, chargeId, replayed: false, ...(await this.#numbers(c, b, win)) };
  }

  async markReleased(chargeId: string, at?: Date): Promise<ChargeRecord> {
    text('chargeId', chargeId, MAX_ID);
    const atMs = at === undefined ? this.#now() : timeOf('at', at);
    return this.#write(async (c) => {
      const ch = await this.#charge(c, chargeId, true);
      if (ch.state === 'refunded') throw new BudgetChargeRefunded();
      if (ch.state === 'charged') {
        await c.query(`UPDATE ${this.#S}.budget_charges SET state = 'released', released_ms = $1 WHERE charge_id = $2 AND state = 'charged'`, [atMs, chargeId]);
      }
      return this.#chargeRecord(c, await this.#charge(c, chargeId, false));
    });
  }

  async refund(chargeId: string, reason: string, at?: Date): Promise<RefundOutcome> {
    text('chargeId', chargeId, MAX_ID);
    text('reason', reason, MAX_REASON);
    const atMs = at === undefined ? this.#now() : timeOf('at', at);
    const S = this.#S;
    return this.#write(async (c) => {
      // Lock order everywhere: budget rows first, then the charge row.
      const peek = await this.#charge(c, chargeId, false);
      const b = (await this.#lockBudgets(c, [[peek.subject, peek.dataset]])).get(JSON.stringify([peek.subject, peek.dataset]));
      const ch = await this.#charge(c, chargeId, true);
      if (ch.state === 'released') throw new BudgetRefundAfterRelease();
      if (!b) throw new BudgetStoreUnavailable('a charge refers to a budget that does not exist');
      const base = { ok: true as const, chargeId, subject: ch.subject, dataset: ch.dataset, queryId: ch.query_id, rho: nanoToRho(ch.nano) };
      const win = windowContaining(b, ch.window_start);
      if (ch.state === 'refunded') {
        return { ...base, refundedAt: iso(ch.refunded_ms!), reason: ch.refund_reason!, alreadyRefunded: true, ...(await this.#numbers(c, b, win)) };
      }
      const credited = await c.query(`UPDATE ${S}.budget_windows SET spent_nano = spent_nano - $1
          WHERE subject = $2 AND dataset = $3 AND start_ms = $4 AND spent_nano >= $1`, [ch.nano, ch.subject, ch.dataset, ch.window_start]);
      if (credited.rowCount !== 1) throw new BudgetStoreUnavailable('budget store is inconsistent: the charged window cannot be credited');
      await c.query(`UPDATE ${S}.budget_charges SET state = 'refunded', refunded_ms = $1, refund_reason = $2 WHERE charge_id = $3 AND state = 'charged'`, [atMs, reason, chargeId]);
      await c.query(`INSERT INTO ${S}.budget_ledger (kind, charge_id, subject, dataset, query_id, nano, at_ms, window_start, reason)
          VALUES ('refund', $1, $2, $3, $4, $5, $6, $7, $8)`, [chargeId, ch.subject, ch.dataset, ch.query_id, ch.nano, atMs, ch.window_start, reason]);
      return { ...base, refundedAt: iso(atMs), reason, alreadyRefunded: false, ...(await this.#numbers(c, b, win)) };
    });
  }

  async getCharge(chargeId: string): Promise<ChargeRecord> {
    text('chargeId', chargeId, MAX_ID);
    return this.#read(async (c) => this.#chargeRecord(c, await this.#charge(c, chargeId, false)));
  }

  async history(query: HistoryQuery = {}): Promise<LedgerEntry[]> {
    objectOf('history query', query);
    const where: string[] = [];
    const args: (string | number)[] = [];
    const add = (cond: (n: string) => string, v: string | number) => { args.push(v); where.push(cond(`$${args.length}`)); };
    if (query.subject !== undefined) add((n) => `l.subject = ${n}`, subjectOf(query.subject));
    if (query.dataset !== undefined) add((n) => `l.dataset = ${n}`, text('dataset', query.dataset, MAX_ID));
    if (query.from !== undefined) add((n) => `l.at_ms >= ${n}`, timeOf('from', query.from));
    if (query.to !== undefined) add((n) => `l.at_ms < ${n}`, timeOf('to', query.to));
    const limit = query.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new BudgetArgumentInvalid('limit must be an integer in [1, 100000]');
    args.push(limit);
    const sql = `SELECT l.*, b.window_kind FROM ${this.#S}.budget_ledger l
        LEFT JOIN ${this.#S}.budgets b ON b.subject = l.subject AND b.dataset = l.dataset
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY l.seq LIMIT $${args.length}`;
    return this.#read(async (c) => {
      const rows = (await c.query(sql, args)).rows as Record<string, unknown>[];
      return rows.map((r) => ({
        seq: num(r.seq), kind: r.kind as 'charge' | 'refund', chargeId: r.charge_id as string, subject: r.subject as string,
        dataset: r.dataset as string, queryId: r.query_id as string, rho: nanoToRho(num(r.nano)), nanoRho: num(r.nano), at: iso(num(r.at_ms)),
        windowStart: r.window_kind !== null && r.window_kind !== 'none' ? iso(num(r.window_start)) : null, reason: (r.reason as string | null) ?? null,
      }));
    });
  }

  /** Stops using the pool (the pool itself belongs to whoever created it). */
  async close(): Promise<void> {
    this.#closed = true;
  }

  // ------------------------------------------------------------------ internals

  /** Locks the budget rows of `keys` (FOR UPDATE) in one global order; returns those that exist. */
  async #lockBudgets(c: PoolClient, keys: readonly (readonly [string, string])[]): Promise<Map<string, BudgetRow>> {
    const sorted = [...keys].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    const out = new Map<string, BudgetRow>();
    for (const [subject, dataset] of sorted) {
      const r = await c.query(`SELECT * FROM ${this.#S}.budgets WHERE subject = $1 AND dataset = $2 FOR UPDATE`, [subject, dataset]);
      if (r.rowCount) out.set(JSON.stringify([subject, dataset]), budgetRow(r.rows[0]));
    }
    return out;
  }

  async #budget(c: PoolClient, subject: string, dataset: string): Promise<BudgetRow | undefined> {
    const r = await c.query(`SELECT * FROM ${this.#S}.budgets WHERE subject = $1 AND dataset = $2`, [subject, dataset]);
    return r.rowCount ? budgetRow(r.rows[0]) : undefined;
  }

  async #charge(c: PoolClient, chargeId: string, lock: boolean): Promise<ChargeRow> {
    const r = await c.query(`SELECT * FROM ${this.#S}.budget_charges WHERE charge_id = $1${lock ? ' FOR UPDATE' : ''}`, [chargeId]);
    if (!r.rowCount) throw new BudgetChargeNotFound();
    return chargeRow(r.rows[0]);
  }

  async #chargeRecord(c: PoolClient, ch: ChargeRow): Promise<ChargeRecord> {
    const b = await this.#budget(c, ch.subject, ch.dataset);
    return {
      chargeId: ch.charge_id, subject: ch.subject, dataset: ch.dataset, queryId: ch.query_id, rho: nanoToRho(ch.nano), at: iso(ch.at_ms),
      windowStart: b && b.window_kind !== 'none' ? iso(ch.window_start) : null, state: ch.state,
      releasedAt: ch.released_ms === null ? null : iso(ch.released_ms),
      refundedAt: ch.refunded_ms === null ? null : iso(ch.refunded_ms), refundReason: ch.refund_reason,
    };
  }

  /** Windows only move forward (see BudgetStore): a later window opened by any node wins. */
  async #currentWindow(c: PoolClient, b: BudgetRow, at: number): Promise<Win> {
    const win = windowContaining(b, at);
    const r = await c.query(`SELECT max(start_ms) AS s FROM ${this.#S}.budget_windows WHERE subject = $1 AND dataset = $2`, [b.subject, b.dataset]);
    const latest = numOrNull(r.rows[0]?.s);
    if (latest !== null && latest > win.start) return windowContaining(b, latest);
    return win;
  }

  async #numbers(c: PoolClient, b: BudgetRow, win: Win) {
    const r = await c.query(`SELECT spent_nano FROM ${this.#S}.budget_windows WHERE subject = $1 AND dataset = $2 AND start_ms = $3`, [b.subject, b.dataset, win.start]);
    const spent = r.rowCount ? num(r.rows[0].spent_nano) : 0;
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

  async #write<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.#transaction('BEGIN', fn);
  }

  /** One consistent snapshot for reads. */
  async #read<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.#transaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', fn);
  }

  async #transaction<T>(begin: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
    this.#open();
    for (let i = 0; ; i++) {
      let c: PoolClient;
      try {
        c = await this.#pool.connect();
      } catch (err) {
        throw new BudgetStoreUnavailable('cannot reach the budget store (PostgreSQL); nothing was charged', { cause: err });
      }
      let broken = false;
      try {
        await c.query(begin);
        await c.query(`SET LOCAL lock_timeout = ${this.#lockTimeoutMs}`);
        const result = await fn(c);
        await c.query('COMMIT');
        return result;
      } catch (err) {
        try { await c.query('ROLLBACK'); } catch { broken = true; }
        if (err instanceof AccountingError || err instanceof BatchDenied) throw err;
        const code = (err as { code?: unknown } | null)?.code;
        if (typeof code === 'string' && RETRYABLE.has(code)) {
          if (i >= this.#maxRetries) throw new BudgetStoreBusy({ cause: err });
          await sleep(Math.random() * Math.min(100, 2 * 2 ** i));
          this.#open();
          continue;
        }
        throw new BudgetStoreUnavailable('budget store error (PostgreSQL); nothing was charged', { cause: err });
      } finally {
        c.release(broken);
      }
    }
  }
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
