/**
 * Several Gatehouse nodes charging one privacy budget in PostgreSQL at once: two separate
 * pg Pools (as two nodes would have), each with several connections, hammer the same
 * budget. The cap must hold exactly — never one nano-ρ over, and not one charge fewer than
 * fits — and the ledger must agree with the spent total at every point of its order.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { BudgetStore, rhoToNano, type ChargeAccepted, type ChargeOutcome } from '../src/privacy/accounting/budget-store.ts';
import { PgDriver } from '../src/sql/postgres.ts';
import { migrate } from '../src/sql/migrations.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
const pools: pg.Pool[] = [];
let schemas = 0;

before(async () => { cluster = await startPostgres(); });
after(async () => {
  for (const p of pools) await p.end();
  await cluster?.stop();
});

/** Two "nodes": their own pools and stores, on one fresh schema. */
async function twoNodes(): Promise<[BudgetStore, BudgetStore]> {
  const schema = `conc_${++schemas}`;
  const a = new pg.Pool({ connectionString: cluster.superuserUrl, max: 6 });
  const b = new pg.Pool({ connectionString: cluster.superuserUrl, max: 6 });
  pools.push(a, b);
  const c = await a.connect();
  try { await migrate(c, schema); } finally { c.release(); }
  return [BudgetStore.on(new PgDriver(a, { schema }), { maxRetries: 100 }), BudgetStore.on(new PgDriver(b, { schema }), { maxRetries: 100 })];
}

const ACME = 'org:acme';

test('300 charges of ρ 0.01 from two pools on a cap of 1 accept exactly 100, and the spent total is exactly the cap', { timeout: 60_000 }, async () => {
  const [n1, n2] = await twoNodes();
  await n1.defineBudget({ subject: ACME, dataset: 'patients', capRho: 1, window: null });
  const attempts = Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? n1 : n2).charge({ subject: ACME, dataset: 'patients', rho: 0.01, queryId: `q${i}` }));
  const outcomes = await Promise.all(attempts);
  const ok = outcomes.filter((o) => o.ok) as ChargeAccepted[];
  assert.equal(ok.length, 100, 'exactly the charges that fit were accepted');
  assert.ok(ok.some((o) => outcomes.indexOf(o) % 2 === 0) && ok.some((o) => outcomes.indexOf(o) % 2 === 1), 'both nodes got charges through');
  assert.ok(outcomes.every((o) => o.ok || o.reason === 'insufficient-budget'));
  assert.ok(ok.every((o) => o.spentRho <= 1), 'no accepted charge saw a spend beyond the cap');
  assert.equal(new Set(ok.map((o) => o.chargeId)).size, 100);

  for (const node of [n1, n2]) {
    const s = await node.status(ACME, 'patients');
    assert.deepEqual([s!.spentRho, s!.remainingRho], [1, 0]);
  }
  const ledger = await n2.history({ limit: 100_000 });
  assert.equal(ledger.length, 100);
  assert.equal(ledger.reduce((s, e) => s + e.nanoRho, 0), rhoToNano(1, 'floor'));
});

test('concurrent charges, refunds and releases from two pools never overspend, and replaying the ledger never exceeds the cap', { timeout: 60_000 }, async () => {
  const [n1, n2] = await twoNodes();
  const CAP = 0.5;
  await n1.defineBudget({ subject: ACME, dataset: 'd', capRho: CAP, window: null });
  const SIZES = [0.003, 0.005, 0.007, 0.011];
  const worker = async (node: BudgetStore, w: number) => {
    const accepted: { nano: number; refunded: boolean }[] = [];
    let denied = 0;
    for (let i = 0; i < 60; i++) {
      const rho = SIZES[(i + w) % SIZES.length]!;
      const out = await node.charge({ subject: ACME, dataset: 'd', rho, queryId: `w${w}-q${i}` });
      if (!out.ok) { denied++; continue; }
      const refunded = accepted.length % 4 === 3;
      if (refunded) await node.refund(out.chargeId, 'engine failed before release');
      else await node.markReleased(out.chargeId);
      accepted.push({ nano: rhoToNano(rho, 'ceil'), refunded });
    }
    return { accepted, denied };
  };
  // Eight workers, four per node, each with its own stream of charges.
  const results = await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w % 2 === 0 ? n1 : n2, w)));
  const all = results.flatMap((r) => r.accepted);
  const net = all.filter((c) => !c.refunded).reduce((s, c) => s + c.nano, 0);
  assert.ok(results.reduce((s, r) => s + r.denied, 0) > 0, 'the cap was actually contended');
  assert.ok(net <= rhoToNano(CAP, 'floor'), `spent ${net} nano-ρ of a cap of ${CAP}`);

  const ledger = await n1.history({ limit: 100_000 });
  assert.equal(ledger.filter((e) => e.kind === 'charge').length, all.length);
  assert.equal(ledger.filter((e) => e.kind === 'refund').length, all.filter((c) => c.refunded).length);
  let running = 0;
  for (const e of ledger) {
    running += e.kind === 'charge' ? e.nanoRho : -e.nanoRho;
    assert.ok(running <= rhoToNano(CAP, 'floor'), `ledger seq ${e.seq} took the spend to ${running}`);
  }
  assert.equal(running, net);
  assert.equal(Math.round((await n2.status(ACME, 'd'))!.spentRho * 1e9), net);
});

test('chargeAll batches that name the same two budgets in opposite orders on two pools neither deadlock nor overspend the organisation', { timeout: 60_000 }, async () => {
  const [n1, n2] = await twoNodes();
  await n1.defineBudget({ subject: 'alice', dataset: 'd', capRho: 10, window: null });
  await n1.defineBudget({ subject: 'bob', dataset: 'd', capRho: 10, window: null });
  await n1.defineBudget({ subject: ACME, dataset: 'd', capRho: 0.3, window: null });
  const batches: Promise<ChargeOutcome[]>[] = [];
  for (let i = 0; i < 120; i++) {
    const who = i % 3 === 0 ? 'bob' : 'alice';
    const pair = [{ subject: who, dataset: 'd', rho: 0.01, queryId: `b${i}` }, { subject: ACME, dataset: 'd', rho: 0.01, queryId: `b${i}` }];
    batches.push((i % 2 === 0 ? n1 : n2).chargeAll(i % 4 < 2 ? pair : pair.reverse()));
  }
  const outcomes = await Promise.all(batches);
  const full = outcomes.filter((o) => o.every((x) => x.ok)).length;
  assert.equal(full, 30, 'exactly the 30 batches that fit the organisation cap were charged');
  assert.ok(outcomes.every((o) => o.every((x) => x.ok) || o.every((x) => !x.ok)), 'every batch is all-or-nothing');
  const org = await n2.status(ACME, 'd');
  const alice = await n2.status('alice', 'd');
  const bob = await n2.status('bob', 'd');
  assert.equal(org!.spentRho, 0.3);
  assert.equal(Math.round((alice!.spentRho + bob!.spentRho) * 100), 30, 'the principals were charged exactly for the accepted batches');
});
