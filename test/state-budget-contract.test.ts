/**
 * The budget-ledger contract: every case runs against the one BudgetStore on both SQL drivers
 * — the embedded file (node:sqlite) and a real PostgreSQL server — and must give the same
 * outcomes, numbers and error codes. Ported from src/privacy/accounting/budget-store.test.ts.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { BudgetStore, MAX_RHO, type ChargeAccepted, type ChargeDenied, type ChargeOutcome } from '../src/privacy/accounting/budget-store.ts';
import { AccountingError } from '../src/privacy/accounting/errors.ts';
import { describeDenial } from '../src/privacy/accounting/describe.ts';
import type { BudgetLedger } from '../src/state/budget-ledger.ts';
import { PgDriver } from '../src/sql/postgres.ts';
import { migrate } from '../src/sql/migrations.ts';
import { NO_DURABILITY_SETTINGS, startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
let pool: pg.Pool;
let schemas = 0;

before(async () => {
  // These tests are about semantics, not crashes: no fsync (support/postgres.ts NO_DURABILITY_SETTINGS).
  cluster = await startPostgres({ settings: NO_DURABILITY_SETTINGS });
  pool = new pg.Pool({ connectionString: cluster.superuserUrl, max: 6 });
});
after(async () => {
  await pool?.end();
  await cluster?.stop();
});

interface Impl {
  readonly name: string;
  /** A fresh, empty ledger; a second call with the same `shared` token opens the same data again. */
  open(t: TestContext, shared?: { token?: string }): Promise<BudgetLedger>;
}

const IMPLS: Impl[] = [
  {
    name: 'sqlite (BudgetStore on SqliteDriver)',
    async open(t, shared) {
      let path = shared?.token;
      if (!path) {
        const dir = mkdtempSync(join(tmpdir(), 'gh-contract-'));
        t.after(() => rmSync(dir, { recursive: true, force: true }));
        path = join(dir, 'budgets.db');
        if (shared) shared.token = path;
      }
      const store = await BudgetStore.open(path);
      t.after(() => store.close());
      return store;
    },
  },
  {
    name: 'postgres (BudgetStore on PgDriver)',
    async open(_t, shared) {
      let schema = shared?.token;
      if (!schema) {
        schema = `contract_${++schemas}`;
        const c = await pool.connect();
        try { await migrate(c, schema); } finally { c.release(); }
        if (shared) shared.token = schema;
      }
      return BudgetStore.on(new PgDriver(pool, { schema }));
    },
  },
];

function accepted(o: ChargeOutcome): ChargeAccepted {
  assert.equal(o.ok, true, `expected an accepted charge, got ${JSON.stringify(o)}`);
  return o as ChargeAccepted;
}
function denied(o: ChargeOutcome): ChargeDenied {
  assert.equal(o.ok, false, `expected a denied charge, got ${JSON.stringify(o)}`);
  return o as ChargeDenied;
}
async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof AccountingError && err.detail === code || assert.fail(`expected ${code}, got ${String((err as Error)?.stack ?? err)}`));
}

const JAN = (day: number, h = 12): Date => new Date(Date.UTC(2025, 0, day, h));
const ACME = 'org:acme';

for (const impl of IMPLS) {
  describe(impl.name, () => {
    test('a charge that fits is accepted and reports spent, remaining and the reset date', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'patients', capRho: 1, window: { kind: 'calendar-month' } });
      const c = accepted(await store.charge({ subject: ACME, dataset: 'patients', rho: 0.25, queryId: 'q1', at: JAN(10) }));
      assert.match(c.chargeId, /^chg_[0-9a-f-]{36}$/);
      assert.deepEqual(
        { rho: c.rho, spent: c.spentRho, remaining: c.remainingRho, cap: c.capRho, windowStart: c.windowStart, resetsAt: c.resetsAt, replayed: c.replayed },
        { rho: 0.25, spent: 0.25, remaining: 0.75, cap: 1, windowStart: '2025-01-01T00:00:00.000Z', resetsAt: '2025-02-01T00:00:00.000Z', replayed: false },
      );
      const s = await store.status(ACME, 'patients', JAN(11));
      assert.equal(s!.spentRho, 0.25);
      assert.deepEqual(s!.window, { kind: 'calendar-month' });
    });

    test('ten charges of ρ 0.1 exactly exhaust a cap of 1; nothing more fits, not even one nano-ρ', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
      for (let i = 0; i < 10; i++) accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: `q${i}` }));
      const d = denied(await store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q10' }));
      assert.deepEqual({ reason: d.reason, spent: d.spentRho, remaining: d.remainingRho, resetsAt: d.resetsAt, windowStart: d.windowStart }, { reason: 'insufficient-budget', spent: 1, remaining: 0, resetsAt: null, windowStart: null });
      denied(await store.charge({ subject: ACME, dataset: 'd', rho: 1e-9, queryId: 'tiny' }));
      assert.match(describeDenial(d), /dataset "d" is insufficient/);
    });

    test('a query for a dataset without a budget is denied (fail closed)', async (t) => {
      const store = await impl.open(t);
      const d = denied(await store.charge({ subject: 'alice', dataset: 'unknown', rho: 0.1, queryId: 'q' }));
      assert.equal(d.reason, 'no-budget');
      assert.equal(await store.status('alice', 'unknown'), null);
      assert.deepEqual(await store.history(), []);
    });

    test('a charge larger than the remaining budget is denied and spends nothing', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: 'alice', dataset: 'd', capRho: 0.5, window: { kind: 'calendar-month' } });
      accepted(await store.charge({ subject: 'alice', dataset: 'd', rho: 0.4, queryId: 'a', at: JAN(3) }));
      const d = denied(await store.charge({ subject: 'alice', dataset: 'd', rho: 0.2, queryId: 'b', at: JAN(4) }));
      assert.equal(d.spentRho, 0.4);
      assert.ok(Math.abs(d.remainingRho - 0.1) < 1e-12);
      assert.match(describeDenial(d), /resets to the full cap at 2025-02-01T00:00:00\.000Z/);
      accepted(await store.charge({ subject: 'alice', dataset: 'd', rho: 0.1, queryId: 'c', at: JAN(5) }));
      assert.equal((await store.status('alice', 'd', JAN(6)))!.remainingRho, 0);
    });

    test('budgets are independent per (subject, dataset)', async (t) => {
      const store = await impl.open(t);
      for (const [s, d] of [['alice', 'x'], ['alice', 'y'], [ACME, 'x']] as const) await store.defineBudget({ subject: s, dataset: d, capRho: 1, window: null });
      accepted(await store.charge({ subject: 'alice', dataset: 'x', rho: 1, queryId: 'q' }));
      accepted(await store.charge({ subject: 'alice', dataset: 'y', rho: 1, queryId: 'q' }));
      accepted(await store.charge({ subject: ACME, dataset: 'x', rho: 1, queryId: 'q' }));
      denied(await store.charge({ subject: 'alice', dataset: 'x', rho: 0.1, queryId: 'q2' }));
    });

    test('a calendar month is a UTC window: a new month starts with the full cap and nothing carries over', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
      accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.3, queryId: 'jan', at: new Date('2025-01-31T23:59:59.999Z') }));
      const feb = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 1, queryId: 'feb', at: new Date('2025-02-01T00:00:00.000Z') }));
      assert.deepEqual([feb.windowStart, feb.resetsAt, feb.spentRho], ['2025-02-01T00:00:00.000Z', '2025-03-01T00:00:00.000Z', 1]);
      const dec = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'dec', at: new Date('2025-12-15T00:00:00Z') }));
      assert.equal(dec.resetsAt, '2026-01-01T00:00:00.000Z');
      const s = await store.status(ACME, 'd', new Date('2026-01-01T00:00:00Z'));
      assert.deepEqual([s!.spentRho, s!.remainingRho, s!.resetsAt], [0, 1, '2026-02-01T00:00:00.000Z']);
    });

    test('windows only move forward: a charge stamped in an ended window goes to the newest window', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
      accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.9, queryId: 'feb', at: new Date('2025-02-01T00:00:00.010Z') }));
      const late = denied(await store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'skewed', at: new Date('2025-01-31T23:59:59.990Z') }));
      assert.equal(late.windowStart, '2025-02-01T00:00:00.000Z');
      assert.equal((await store.status(ACME, 'd', JAN(15)))!.windowStart, '2025-02-01T00:00:00.000Z');
    });

    test('rolling-days windows are consecutive periods of N days from the anchor', async (t) => {
      const store = await impl.open(t);
      const anchor = new Date('2025-03-10T08:00:00Z');
      await store.defineBudget({ subject: 'bob', dataset: 'd', capRho: 2, window: { kind: 'rolling-days', days: 7 }, anchor });
      const a = accepted(await store.charge({ subject: 'bob', dataset: 'd', rho: 2, queryId: 'a', at: new Date('2025-03-17T07:59:59Z') }));
      assert.deepEqual([a.windowStart, a.resetsAt], ['2025-03-10T08:00:00.000Z', '2025-03-17T08:00:00.000Z']);
      const b = accepted(await store.charge({ subject: 'bob', dataset: 'd', rho: 2, queryId: 'b', at: new Date('2025-03-17T08:00:00Z') }));
      assert.deepEqual([b.windowStart, b.resetsAt, b.remainingRho], ['2025-03-17T08:00:00.000Z', '2025-03-24T08:00:00.000Z', 0]);
      const s = await store.status('bob', 'd', new Date('2025-04-01T00:00:00Z'));
      assert.deepEqual([s!.windowStart, s!.resetsAt, s!.remainingRho], ['2025-03-31T08:00:00.000Z', '2025-04-07T08:00:00.000Z', 2]);
      assert.deepEqual(s!.window, { kind: 'rolling-days', days: 7 });
    });

    test('the cap can change at any time; the window cannot once the budget has ledger rows', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 2, window: { kind: 'rolling-days', days: 30 } });
      accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 1.5, queryId: 'q' }));
      const lowered = await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'rolling-days', days: 30 } });
      assert.deepEqual([lowered.capRho, lowered.spentRho, lowered.remainingRho], [1, 1.5, 0]);
      await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } }), 'BUDGET_WINDOW_LOCKED');
      await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null }), 'BUDGET_WINDOW_LOCKED');
    });

    test('charging the same queryId again is a replay that spends nothing; a different ρ is refused', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
      const first = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.4, queryId: 'q' }));
      const again = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.4, queryId: 'q' }));
      assert.deepEqual([again.chargeId, again.replayed, again.spentRho], [first.chargeId, true, 0.4]);
      await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'q' }), 'BUDGET_QUERY_ID_REUSED');
      assert.equal((await store.history()).length, 1);
    });

    test('chargeAll charges a principal and its organisation all-or-nothing', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: 'alice', dataset: 'd', capRho: 1, window: null });
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 0.5, window: null });
      const ok = await store.chargeAll([{ subject: 'alice', dataset: 'd', rho: 0.4, queryId: 'q1' }, { subject: ACME, dataset: 'd', rho: 0.4, queryId: 'q1' }]);
      assert.deepEqual(ok.map((o) => o.ok), [true, true]);
      const no = await store.chargeAll([{ subject: 'alice', dataset: 'd', rho: 0.4, queryId: 'q2' }, { subject: ACME, dataset: 'd', rho: 0.4, queryId: 'q2' }]);
      assert.deepEqual(no.map((o) => (o.ok ? 'ok' : o.reason)), ['batch-denied', 'insufficient-budget']);
      assert.equal((await store.status('alice', 'd'))!.spentRho, 0.4, 'alice was not charged for the denied batch');
      assert.equal(no[0]!.spentRho, 0.4);
      assert.equal((await store.history()).length, 2);
      await rejectsWith(store.chargeAll([]), 'BUDGET_ARGUMENT_INVALID');
      await rejectsWith(store.chargeAll([{ subject: ACME, dataset: 'd', rho: 0.01, queryId: 'a' }, { subject: ACME, dataset: 'd', rho: 0.01, queryId: 'b' }]), 'BUDGET_ARGUMENT_INVALID');
    });

    test('a failed query is refunded once: a second refund credits nothing and reports the first', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
      const c = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.6, queryId: 'q', at: JAN(2) }));
      const r1 = await store.refund(c.chargeId, 'ENGINE_ERROR before release', JAN(2, 13));
      assert.deepEqual([r1.alreadyRefunded, r1.spentRho, r1.remainingRho, r1.refundedAt], [false, 0, 1, JAN(2, 13).toISOString()]);
      const r2 = await store.refund(c.chargeId, 'retry of the refund', JAN(2, 14));
      assert.deepEqual([r2.alreadyRefunded, r2.spentRho, r2.refundedAt, r2.reason], [true, 0, JAN(2, 13).toISOString(), 'ENGINE_ERROR before release']);
      assert.deepEqual((await store.history()).map((e) => e.kind), ['charge', 'refund']);
      await rejectsWith(store.markReleased(c.chargeId), 'BUDGET_CHARGE_REFUNDED');
      await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: 0.6, queryId: 'q', at: JAN(3) }), 'BUDGET_QUERY_ID_REUSED');
      assert.equal((await store.getCharge(c.chargeId)).state, 'refunded');
    });

    test('a charge whose result was released is never refunded', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
      const c = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.6, queryId: 'q' }));
      const rel = await store.markReleased(c.chargeId, JAN(9));
      assert.deepEqual([rel.state, rel.releasedAt], ['released', JAN(9).toISOString()]);
      assert.equal((await store.markReleased(c.chargeId, JAN(10))).releasedAt, JAN(9).toISOString(), 'marking again is a no-op');
      await rejectsWith(store.refund(c.chargeId, 'delivery failed'), 'BUDGET_REFUND_AFTER_RELEASE');
      assert.equal((await store.status(ACME, 'd'))!.spentRho, 0.6);
      await rejectsWith(store.refund('chg_nope', 'x'), 'BUDGET_CHARGE_NOT_FOUND');
      await rejectsWith(store.markReleased('chg_nope'), 'BUDGET_CHARGE_NOT_FOUND');
      await rejectsWith(store.getCharge('chg_nope'), 'BUDGET_CHARGE_NOT_FOUND');
    });

    test('a refund goes to the window that was charged: after a reset it does not add to the new window', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
      const c = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'q', at: JAN(31, 23) }));
      accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 1, queryId: 'feb', at: new Date('2025-02-02T00:00:00Z') }));
      const r = await store.refund(c.chargeId, 'timeout', new Date('2025-02-02T00:00:01Z'));
      assert.deepEqual([r.windowStart, r.spentRho], ['2025-01-01T00:00:00.000Z', 0]);
      assert.equal((await store.status(ACME, 'd', new Date('2025-02-03T00:00:00Z')))!.remainingRho, 0);
    });

    test('the ledger records every charge and refund, agrees with the spent total, and filters by subject, time and limit', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
      await store.defineBudget({ subject: 'alice', dataset: 'e', capRho: 1, window: { kind: 'calendar-month' } });
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.125, queryId: `q${i}`, at: JAN(i + 1) })).chargeId);
      await store.refund(ids[2]!, 'failed');
      accepted(await store.charge({ subject: 'alice', dataset: 'e', rho: 0.2, queryId: 'q', at: JAN(20) }));
      const h = await store.history({ subject: ACME, dataset: 'd' });
      assert.equal(h.length, 7);
      assert.deepEqual(h.map((e) => e.seq), [...h.map((e) => e.seq)].sort((a, b) => a - b));
      const net = h.reduce((s, e) => s + (e.kind === 'charge' ? e.nanoRho : -e.nanoRho), 0);
      assert.equal(net / 1e9, (await store.status(ACME, 'd'))!.spentRho);
      assert.equal(h[0]!.windowStart, null);
      assert.equal((await store.history({ from: JAN(2), to: JAN(4) })).length, 2);
      assert.equal((await store.history({ limit: 3 })).length, 3);
      const alice = await store.history({ subject: 'alice' });
      assert.deepEqual([alice[0]!.reason, alice[0]!.windowStart, alice[0]!.at], [null, '2025-01-01T00:00:00.000Z', JAN(20).toISOString()]);
    });

    test('budgets, charges and the ledger survive closing the store and opening it again', async (t) => {
      const shared: { token?: string } = {};
      const first = await impl.open(t, shared);
      await first.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
      const c = accepted(await first.charge({ subject: ACME, dataset: 'd', rho: 0.7, queryId: 'q', at: JAN(5) }));
      await first.markReleased(c.chargeId);
      const before = await first.history();
      await first.close();
      await rejectsWith(first.status(ACME, 'd'), 'BUDGET_STORE_UNAVAILABLE');
      const second = await impl.open(t, shared);
      const s = await second.status(ACME, 'd', JAN(6));
      assert.deepEqual([s!.spentRho, s!.capRho, s!.resetsAt], [0.7, 1, '2025-02-01T00:00:00.000Z']);
      assert.deepEqual(await second.history(), before);
      denied(await second.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'q2', at: JAN(7) }));
      await rejectsWith(second.refund(c.chargeId, 'x'), 'BUDGET_REFUND_AFTER_RELEASE');
    });

    test('hostile ρ values are refused with BUDGET_RHO_INVALID and change nothing', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
      const bad: unknown[] = [NaN, Infinity, -Infinity, -0, 0, -0.1, -5e-324, MAX_RHO * 2, Number.MAX_VALUE, '0.1', null, undefined, 10n, {}];
      for (const rho of bad) {
        await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: rho as number, queryId: 'q' }), 'BUDGET_RHO_INVALID');
        await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'e', capRho: rho as number, window: null }), 'BUDGET_RHO_INVALID');
      }
      for (const cap of [5e-324, 1e-10]) await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'e', capRho: cap, window: null }), 'BUDGET_RHO_INVALID');
      assert.deepEqual(await store.history(), []);
      assert.equal(accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 5e-324, queryId: 'tiny' })).rho, 1e-9);
      // The largest cap and charge are exact (10^15 nano-ρ in a bigint column).
      await store.defineBudget({ subject: ACME, dataset: 'max', capRho: MAX_RHO, window: null });
      assert.equal(accepted(await store.charge({ subject: ACME, dataset: 'max', rho: MAX_RHO, queryId: 'all' })).remainingRho, 0);
    });

    test('hostile subjects, datasets, ids, reasons, times and windows are refused with stable codes; SQL-looking text is just text', async (t) => {
      const store = await impl.open(t);
      await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
      const ok = { subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q' };
      for (const patch of [
        { subject: '' }, { subject: 'org:' }, { subject: 'a\u0000b' }, { subject: ' alice' }, { subject: 'x'.repeat(257) }, { subject: 42 },
        { dataset: '' }, { dataset: 'd\n' }, { queryId: '' }, { queryId: '\ud800' }, { at: new Date(NaN) }, { at: '2025-01-01' },
        { at: new Date(-1) }, { at: new Date(8.64e15) },
      ]) {
        await rejectsWith(store.charge({ ...ok, ...patch } as never), 'BUDGET_ARGUMENT_INVALID');
      }
      await rejectsWith(store.charge(null as never), 'BUDGET_ARGUMENT_INVALID');
      await rejectsWith(store.refund('', 'x'), 'BUDGET_ARGUMENT_INVALID');
      await rejectsWith(store.refund('chg_x', 'y'.repeat(501)), 'BUDGET_ARGUMENT_INVALID');
      await rejectsWith(store.history({ limit: 0 }), 'BUDGET_ARGUMENT_INVALID');
      for (const window of [{ kind: 'weekly' }, { kind: 'rolling-days' }, { kind: 'rolling-days', days: 0 }, { kind: 'rolling-days', days: 1.5 },
        { kind: 'rolling-days', days: 4000 }, { kind: 'calendar-month', days: 3 }, 'monthly', undefined]) {
        await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'w', capRho: 1, window: window as never }), 'BUDGET_WINDOW_INVALID');
      }
      for (const sneaky of ["x' OR '1'='1", 'd"; DROP TABLE budgets; --', '$1', 'ünïcødé 🔐']) {
        await store.defineBudget({ subject: sneaky, dataset: 'd', capRho: 1, window: null });
        accepted(await store.charge({ ...ok, subject: sneaky }));
        assert.equal((await store.history({ subject: sneaky })).length, 1);
      }
      assert.equal((await store.status(ACME, 'd'))!.spentRho, 0);
    });
  });
}

describe('postgres only', () => {
  async function fresh(): Promise<{ store: BudgetStore; schema: string }> {
    const schema = `contract_${++schemas}`;
    const c = await pool.connect();
    try { await migrate(c, schema); } finally { c.release(); }
    return { store: BudgetStore.on(new PgDriver(pool, { schema, lockTimeoutMs: 20 }), { maxRetries: 2 }), schema };
  }

  test('the ledger cannot be edited, deleted or truncated, even by a client with table rights', async () => {
    const { store, schema } = await fresh();
    await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
    accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'q' }));
    await assert.rejects(pool.query(`UPDATE ${schema}.budget_ledger SET nano = 1`), /append-only/);
    await assert.rejects(pool.query(`DELETE FROM ${schema}.budget_ledger`), /append-only/);
    await assert.rejects(pool.query(`TRUNCATE ${schema}.budget_ledger CASCADE`), /append-only/);
    assert.equal((await store.history()).length, 1);
  });

  test('when another session holds the budget row lock through every retry, the charge fails with BUDGET_STORE_BUSY and spends nothing', async () => {
    const { store, schema } = await fresh();
    await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
    const blocker = await pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${schema}.budgets WHERE subject = $1 FOR UPDATE`, [ACME]);
      await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q' }), 'BUDGET_STORE_BUSY');
      await blocker.query('ROLLBACK');
    } finally {
      blocker.release();
    }
    assert.equal((await store.status(ACME, 'd'))!.spentRho, 0);
    accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q' }));
  });

  test('when PostgreSQL cannot be reached, every operation fails closed with BUDGET_STORE_UNAVAILABLE', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://nobody:wrong@127.0.0.1:1/none', connectionTimeoutMillis: 500, max: 1 });
    dead.on('error', () => undefined);
    try {
      const store = BudgetStore.on(new PgDriver(dead, { schema: 'gatehouse' }));
      await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q' }), 'BUDGET_STORE_UNAVAILABLE');
      await rejectsWith(store.status(ACME, 'd'), 'BUDGET_STORE_UNAVAILABLE');
      await assert.rejects(store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q' }), (e: Error) => !/wrong/.test(e.message));
    } finally {
      await dead.end();
    }
  });
});
