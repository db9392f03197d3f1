import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { BudgetStore, MAX_RHO, rhoToNano, type BudgetStoreOptions, type ChargeAccepted, type ChargeDenied, type ChargeOutcome } from './budget-store.ts';
import { AccountingError } from './errors.ts';
import { budgetAuditReasons, describeDenial } from './describe.ts';

const CHILD = fileURLToPath(new URL('./testing/charge-child.ts', import.meta.url));

function tempDb(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-budget-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'budgets.db');
}

async function openStore(t: TestContext, path = tempDb(t), options: BudgetStoreOptions = {}): Promise<BudgetStore> {
  const store = await BudgetStore.open(path, options);
  t.after(() => store.close());
  return store;
}

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

test('a charge that fits is accepted and reports spent, remaining and the reset date', async (t) => {
  const store = await openStore(t);
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
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
  for (let i = 0; i < 10; i++) accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: `q${i}` }));
  const d = denied(await store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q10' }));
  assert.deepEqual({ reason: d.reason, spent: d.spentRho, remaining: d.remainingRho, resetsAt: d.resetsAt, windowStart: d.windowStart }, { reason: 'insufficient-budget', spent: 1, remaining: 0, resetsAt: null, windowStart: null });
  denied(await store.charge({ subject: ACME, dataset: 'd', rho: 1e-9, queryId: 'tiny' }));
  const msg = describeDenial(d);
  assert.match(msg, /dataset "d" is insufficient/);
  assert.match(msg, /does not reset/);
});

test('ρ is converted to nano-ρ exactly: charges round up, caps round down', () => {
  assert.equal(rhoToNano(0.1, 'ceil'), 100_000_000);
  assert.equal(rhoToNano(0.1, 'floor'), 100_000_000);
  assert.equal(rhoToNano(1 / 3, 'ceil'), 333_333_334);
  assert.equal(rhoToNano(1 / 3, 'floor'), 333_333_333);
  assert.equal(rhoToNano(1e-9, 'ceil'), 1);
  assert.equal(rhoToNano(1.5e-9, 'ceil'), 2);
  assert.equal(rhoToNano(1.5e-9, 'floor'), 1);
  assert.equal(rhoToNano(5e-324, 'ceil'), 1);
  assert.equal(rhoToNano(5e-324, 'floor'), 0);
  assert.equal(rhoToNano(MAX_RHO, 'ceil'), 1e15);
  assert.equal(rhoToNano(0.3, 'ceil'), 300_000_000);
  // 0.1 + 0.2 is 0.30000000000000004 in binary: slightly above 0.3 ρ, so it rounds up a unit.
  assert.equal(rhoToNano(0.1 + 0.2, 'ceil'), 300_000_001);
});

test('a query for a dataset without a budget is denied (fail closed) with a clear message', async (t) => {
  const store = await openStore(t);
  const d = denied(await store.charge({ subject: 'alice', dataset: 'unknown', rho: 0.1, queryId: 'q' }));
  assert.equal(d.reason, 'no-budget');
  assert.match(describeDenial(d), /no privacy budget is defined for dataset "unknown"/);
  assert.equal(await store.status('alice', 'unknown'), null);
  assert.deepEqual(await store.history(), []);
});

test('a charge larger than the remaining budget is denied and spends nothing; the message gives the reset date', async (t) => {
  const store = await openStore(t);
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
  const store = await openStore(t);
  for (const [s, d] of [['alice', 'x'], ['alice', 'y'], [ACME, 'x']] as const) await store.defineBudget({ subject: s, dataset: d, capRho: 1, window: null });
  accepted(await store.charge({ subject: 'alice', dataset: 'x', rho: 1, queryId: 'q' }));
  accepted(await store.charge({ subject: 'alice', dataset: 'y', rho: 1, queryId: 'q' }));
  accepted(await store.charge({ subject: ACME, dataset: 'x', rho: 1, queryId: 'q' }));
  denied(await store.charge({ subject: 'alice', dataset: 'x', rho: 0.1, queryId: 'q2' }));
});

test('a calendar month is a window in UTC: a new month starts with the full cap and nothing carries over', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
  accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.3, queryId: 'jan', at: new Date('2025-01-31T23:59:59.999Z') }));
  const feb = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 1, queryId: 'feb', at: new Date('2025-02-01T00:00:00.000Z') }));
  assert.deepEqual([feb.windowStart, feb.resetsAt, feb.spentRho], ['2025-02-01T00:00:00.000Z', '2025-03-01T00:00:00.000Z', 1]);
  // December rolls over into January of the next year.
  const dec = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'dec', at: new Date('2025-12-15T00:00:00Z') }));
  assert.equal(dec.resetsAt, '2026-01-01T00:00:00.000Z');
  const s = await store.status(ACME, 'd', new Date('2026-01-01T00:00:00Z'));
  assert.deepEqual([s!.spentRho, s!.remainingRho, s!.resetsAt], [0, 1, '2026-02-01T00:00:00.000Z']);
});

test('windows only move forward: a charge stamped in an ended window is charged to the newest window', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
  accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.9, queryId: 'feb', at: new Date('2025-02-01T00:00:00.010Z') }));
  // A process whose clock is 20 ms behind still thinks it is January, where 1 ρ is unspent.
  const late = denied(await store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'skewed', at: new Date('2025-01-31T23:59:59.990Z') }));
  assert.equal(late.windowStart, '2025-02-01T00:00:00.000Z');
  const s = await store.status(ACME, 'd', JAN(15));
  assert.equal(s!.windowStart, '2025-02-01T00:00:00.000Z', 'status of a past time shows the newest window too');
});

test('rolling-days windows are consecutive periods of N days from the anchor', async (t) => {
  const store = await openStore(t);
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
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 2, window: { kind: 'rolling-days', days: 30 } });
  accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 1.5, queryId: 'q' }));
  const lowered = await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'rolling-days', days: 30 } });
  assert.deepEqual([lowered.capRho, lowered.spentRho, lowered.remainingRho], [1, 1.5, 0]);
  await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } }), 'BUDGET_WINDOW_LOCKED');
  await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null }), 'BUDGET_WINDOW_LOCKED');
});

test('charging the same queryId again is a replay that spends nothing; a different ρ is refused', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
  const first = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.4, queryId: 'q' }));
  const again = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.4, queryId: 'q' }));
  assert.equal(again.chargeId, first.chargeId);
  assert.equal(again.replayed, true);
  assert.equal(again.spentRho, 0.4);
  await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'q' }), 'BUDGET_QUERY_ID_REUSED');
  assert.equal((await store.history()).length, 1);
});

test('chargeAll charges a principal and its organisation all-or-nothing', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: 'alice', dataset: 'd', capRho: 1, window: null });
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 0.5, window: null });
  const ok = await store.chargeAll([{ subject: 'alice', dataset: 'd', rho: 0.4, queryId: 'q1' }, { subject: ACME, dataset: 'd', rho: 0.4, queryId: 'q1' }]);
  assert.deepEqual(ok.map((o) => o.ok), [true, true]);
  const no = await store.chargeAll([{ subject: 'alice', dataset: 'd', rho: 0.4, queryId: 'q2' }, { subject: ACME, dataset: 'd', rho: 0.4, queryId: 'q2' }]);
  assert.deepEqual(no.map((o) => (o.ok ? 'ok' : o.reason)), ['batch-denied', 'insufficient-budget']);
  assert.equal((await store.status('alice', 'd'))!.spentRho, 0.4, 'alice was not charged for the denied batch');
  assert.equal(no[0]!.spentRho, 0.4);
  assert.match(describeDenial(no[0] as ChargeDenied), /another budget charged with it is exhausted/);
  assert.equal((await store.history()).length, 2);
  await rejectsWith(store.chargeAll([]), 'BUDGET_ARGUMENT_INVALID');
  await rejectsWith(store.chargeAll([{ subject: ACME, dataset: 'd', rho: 0.01, queryId: 'a' }, { subject: ACME, dataset: 'd', rho: 0.01, queryId: 'b' }]), 'BUDGET_ARGUMENT_INVALID');
});

test('a failed query is refunded once: a second refund credits nothing and reports the first', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
  const c = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.6, queryId: 'q', at: JAN(2) }));
  const r1 = await store.refund(c.chargeId, 'ENGINE_ERROR before release', JAN(2, 13));
  assert.deepEqual([r1.alreadyRefunded, r1.spentRho, r1.remainingRho, r1.refundedAt], [false, 0, 1, JAN(2, 13).toISOString()]);
  const r2 = await store.refund(c.chargeId, 'retry of the refund', JAN(2, 14));
  assert.deepEqual([r2.alreadyRefunded, r2.spentRho, r2.refundedAt, r2.reason], [true, 0, JAN(2, 13).toISOString(), 'ENGINE_ERROR before release']);
  const kinds = (await store.history()).map((e) => e.kind);
  assert.deepEqual(kinds, ['charge', 'refund']);
  // A refunded result must never be released, and its queryId cannot be charged again.
  await rejectsWith(store.markReleased(c.chargeId), 'BUDGET_CHARGE_REFUNDED');
  await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: 0.6, queryId: 'q', at: JAN(3) }), 'BUDGET_QUERY_ID_REUSED');
  assert.equal((await store.getCharge(c.chargeId)).state, 'refunded');
});

test('a charge whose result was released is never refunded', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
  const c = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.6, queryId: 'q' }));
  const rel = await store.markReleased(c.chargeId, JAN(9));
  assert.deepEqual([rel.state, rel.releasedAt], ['released', JAN(9).toISOString()]);
  assert.equal((await store.markReleased(c.chargeId, JAN(10))).releasedAt, JAN(9).toISOString(), 'marking again is a no-op');
  await rejectsWith(store.refund(c.chargeId, 'delivery failed'), 'BUDGET_REFUND_AFTER_RELEASE');
  assert.equal((await store.status(ACME, 'd'))!.spentRho, 0.6);
  await rejectsWith(store.refund('chg_nope', 'x'), 'BUDGET_CHARGE_NOT_FOUND');
  await rejectsWith(store.markReleased('chg_nope'), 'BUDGET_CHARGE_NOT_FOUND');
});

test('a refund goes to the window that was charged: after a reset it does not add to the new window', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
  const c = accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'q', at: JAN(31, 23) }));
  accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 1, queryId: 'feb', at: new Date('2025-02-02T00:00:00Z') }));
  const r = await store.refund(c.chargeId, 'timeout', new Date('2025-02-02T00:00:01Z'));
  assert.deepEqual([r.windowStart, r.spentRho], ['2025-01-01T00:00:00.000Z', 0]);
  assert.equal((await store.status(ACME, 'd', new Date('2025-02-03T00:00:00Z')))!.remainingRho, 0);
});

test('the ledger records every charge and refund, agrees with the spent total, and cannot be edited', async (t) => {
  const path = tempDb(t);
  const store = await openStore(t, path);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
  await store.defineBudget({ subject: 'alice', dataset: 'e', capRho: 1, window: null });
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.125, queryId: `q${i}`, at: JAN(i + 1) })).chargeId);
  await store.refund(ids[2]!, 'failed');
  accepted(await store.charge({ subject: 'alice', dataset: 'e', rho: 0.2, queryId: 'q', at: JAN(20) }));
  const h = await store.history({ subject: ACME, dataset: 'd' });
  assert.equal(h.length, 7);
  assert.deepEqual(h.map((e) => e.seq), [...h.map((e) => e.seq)].sort((a, b) => a - b));
  const net = h.reduce((s, e) => s + (e.kind === 'charge' ? e.nanoRho : -e.nanoRho), 0);
  assert.equal(net / 1e9, (await store.status(ACME, 'd'))!.spentRho);
  assert.equal((await store.history({ from: JAN(2), to: JAN(4) })).length, 2);
  assert.equal((await store.history({ limit: 3 })).length, 3);
  assert.equal((await store.history({ subject: 'alice' }))[0]!.reason, null);
  const raw = new DatabaseSync(path);
  t.after(() => raw.close());
  assert.throws(() => raw.exec('UPDATE ledger SET nano = 1'), /append-only/);
  assert.throws(() => raw.exec('DELETE FROM ledger'), /append-only/);
});

test('budgets, charges and the ledger survive closing and reopening the store', async (t) => {
  const path = tempDb(t);
  const first = await BudgetStore.open(path);
  await first.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
  const c = accepted(await first.charge({ subject: ACME, dataset: 'd', rho: 0.7, queryId: 'q', at: JAN(5) }));
  await first.markReleased(c.chargeId);
  const before = await first.history();
  await first.close();
  await rejectsWith(first.status(ACME, 'd'), 'BUDGET_STORE_UNAVAILABLE');

  const second = await openStore(t, path);
  const s = await second.status(ACME, 'd', JAN(6));
  assert.deepEqual([s!.spentRho, s!.capRho, s!.resetsAt], [0.7, 1, '2025-02-01T00:00:00.000Z']);
  assert.deepEqual(await second.history(), before);
  denied(await second.charge({ subject: ACME, dataset: 'd', rho: 0.5, queryId: 'q2', at: JAN(7) }));
  await rejectsWith(second.refund(c.chargeId, 'x'), 'BUDGET_REFUND_AFTER_RELEASE');
});

test('when another writer holds the lock through every retry, the charge fails with BUDGET_STORE_BUSY and spends nothing', async (t) => {
  const path = tempDb(t);
  const store = await openStore(t, path, { busyTimeoutMs: 5, maxRetries: 2 });
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
  const blocker = new DatabaseSync(path);
  blocker.exec('BEGIN IMMEDIATE');
  await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q' }), 'BUDGET_STORE_BUSY');
  blocker.exec('ROLLBACK');
  blocker.close();
  assert.equal((await store.status(ACME, 'd'))!.spentRho, 0);
  accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 0.1, queryId: 'q' }));
});

test('outcomes describe themselves for the audit log without principal ids', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: 'alice@example.org', dataset: 'd', capRho: 1, window: { kind: 'calendar-month' } });
  const c = accepted(await store.charge({ subject: 'alice@example.org', dataset: 'd', rho: 0.5, queryId: 'q', at: JAN(1) }));
  const [line] = budgetAuditReasons(c);
  assert.equal(line, `dp-budget charge charge=${c.chargeId} subject=principal dataset="d" query="q" rho=0.5 spent=0.5 cap=1 remaining=0.5 window=2025-01-01T00:00:00.000Z resets=2025-02-01T00:00:00.000Z replayed=false`);
  assert.ok(!line!.includes('alice'));
  const r = await store.refund(c.chargeId, 'ENGINE_ERROR', JAN(1, 13));
  assert.match(budgetAuditReasons(r)[0]!, /^dp-budget refund charge=chg_\S+ subject=principal .* repeat=false reason="ENGINE_ERROR"$/);
  const d = denied(await store.charge({ subject: 'alice@example.org', dataset: 'd', rho: 2, queryId: 'big', at: JAN(1) }));
  assert.match(budgetAuditReasons(d)[0]!, /^dp-budget denied reason=insufficient-budget subject=principal /);
});

test('hostile ρ values — NaN, ±Infinity, −0, 0, negatives, huge, sub-unit, non-numbers — are refused with BUDGET_RHO_INVALID', async (t) => {
  const store = await openStore(t);
  await store.defineBudget({ subject: ACME, dataset: 'd', capRho: 1, window: null });
  const bad: unknown[] = [NaN, Infinity, -Infinity, -0, 0, -0.1, -5e-324, MAX_RHO * 2, Number.MAX_VALUE, '0.1', null, undefined, 10n, {}];
  for (const rho of bad) {
    await rejectsWith(store.charge({ subject: ACME, dataset: 'd', rho: rho as number, queryId: 'q' }), 'BUDGET_RHO_INVALID');
    await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'e', capRho: rho as number, window: null }), 'BUDGET_RHO_INVALID');
  }
  // A cap below one accounting unit would round down to nothing: refused.
  for (const cap of [5e-324, 1e-10]) await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'e', capRho: cap, window: null }), 'BUDGET_RHO_INVALID');
  assert.deepEqual(await store.history(), []);
  assert.equal((await store.status(ACME, 'd'))!.spentRho, 0);
  // A charge below one unit rounds up to one unit: never free.
  assert.equal(accepted(await store.charge({ subject: ACME, dataset: 'd', rho: 5e-324, queryId: 'tiny' })).rho, 1e-9);
});

test('hostile subjects, datasets, ids, reasons, times and windows are refused with stable codes', async (t) => {
  const store = await openStore(t);
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
  await rejectsWith(store.refund('chg_x', ''), 'BUDGET_ARGUMENT_INVALID');
  await rejectsWith(store.refund('chg_x', 'y'.repeat(501)), 'BUDGET_ARGUMENT_INVALID');
  await rejectsWith(store.history({ limit: 0 }), 'BUDGET_ARGUMENT_INVALID');
  await rejectsWith(store.history({ limit: 1.5 }), 'BUDGET_ARGUMENT_INVALID');
  for (const window of [{ kind: 'weekly' }, { kind: 'rolling-days' }, { kind: 'rolling-days', days: 0 }, { kind: 'rolling-days', days: 1.5 },
    { kind: 'rolling-days', days: NaN }, { kind: 'rolling-days', days: 4000 }, { kind: 'calendar-month', days: 3 }, 'monthly', undefined]) {
    await rejectsWith(store.defineBudget({ subject: ACME, dataset: 'w', capRho: 1, window: window as never }), 'BUDGET_WINDOW_INVALID');
  }
  // Text that looks like SQL is just text: stored and matched literally.
  const sneaky = "x' OR '1'='1";
  await store.defineBudget({ subject: sneaky, dataset: 'd', capRho: 1, window: null });
  accepted(await store.charge({ ...ok, subject: sneaky }));
  assert.equal((await store.history({ subject: sneaky })).length, 1);
  assert.equal((await store.status(ACME, 'd'))!.spentRho, 0);
});

function runChild(path: string, worker: number, startAt: number, count: number): Promise<{ accepted: { chargeId: string; nano: number; refunded: boolean }[]; denied: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, path, String(worker), String(startAt), String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`child ${worker} exited with ${code}: ${err.slice(0, 2000)}`));
      else resolve(JSON.parse(out));
    });
  });
}

test('many concurrent charges and refunds from 6 processes on one database never exceed the cap, and the ledger agrees', { timeout: 60_000 }, async (t) => {
  const path = tempDb(t);
  const CAP = 1;
  const setup = await BudgetStore.open(path);
  await setup.defineBudget({ subject: ACME, dataset: 'patients', capRho: CAP, window: null });
  await setup.close();

  const WORKERS = 6;
  const PER_WORKER = 70; // 420 attempts averaging ρ 0.0065: ≈ 2.7 ρ asked of a cap of 1
  const startAt = Date.now() + 600;
  const results = await Promise.all(Array.from({ length: WORKERS }, (_, w) => runChild(path, w, startAt, PER_WORKER)));

  const all = results.flatMap((r) => r.accepted);
  const netNano = all.filter((c) => !c.refunded).reduce((s, c) => s + c.nano, 0);
  assert.ok(netNano <= rhoToNano(CAP, 'floor'), `processes spent ${netNano} nano-ρ of a cap of ${CAP}`);
  assert.ok(results.reduce((s, r) => s + r.denied, 0) > 0, 'the cap was actually contended');
  assert.equal(new Set(all.map((c) => c.chargeId)).size, all.length, 'charge ids are unique');

  const store = await openStore(t, path);
  const ledger = await store.history({ limit: 100_000 });
  const charges = ledger.filter((e) => e.kind === 'charge');
  const refunds = ledger.filter((e) => e.kind === 'refund');
  assert.equal(charges.length, all.length, 'one ledger row per accepted charge');
  assert.equal(refunds.length, all.filter((c) => c.refunded).length, 'one ledger row per refund');
  const ledgerNet = charges.reduce((s, e) => s + e.nanoRho, 0) - refunds.reduce((s, e) => s + e.nanoRho, 0);
  assert.equal(ledgerNet, netNano);
  const status = await store.status(ACME, 'patients');
  assert.equal(Math.round(status!.spentRho * 1e9), netNano);

  // Replaying the ledger in order, the running net spend never exceeded the cap at any point.
  let running = 0;
  for (const e of ledger) {
    running += e.kind === 'charge' ? e.nanoRho : -e.nanoRho;
    assert.ok(running <= rhoToNano(CAP, 'floor'), `ledger seq ${e.seq} took the spend to ${running}`);
  }
});
