import { after, before, test, type TestContext } from 'node:test';
import pg from 'pg';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BudgetStore } from './budget-store.ts';
import { rhoForEpsilonDelta } from './zcdp.ts';
import { describeDenial } from './describe.ts';
import { PgDriver } from '../../sql/postgres.ts';
import { migrate } from '../../sql/migrations.ts';
import { startPostgres, type PgCluster } from '../../../test/support/postgres.ts';

let cluster: PgCluster | undefined;
before(async () => { cluster = await startPostgres(); });
after(async () => { await cluster?.stop(); });

const CHILD = fileURLToPath(new URL('./testing/tight-charge-child.ts', import.meta.url));
const TARGET = { epsilon: 10, delta: 1e-6 };
const LAPLACE_1 = { pure: [1], mu2: 0, delta: 0 };

async function openStore(t: TestContext): Promise<{ store: BudgetStore; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-budget-tight-'));
  const path = join(dir, 'budgets.db');
  const store = await BudgetStore.open(path);
  t.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  await store.defineBudget({ subject: 'org:acme', dataset: 'patients', capRho: rhoForEpsilonDelta(10, 1e-6), window: null, target: TARGET });
  return { store, path };
}

test('a (10, 1e-6) budget admits ten Laplace ε = 1 releases by optimal composition, not three by ρ, and denies the eleventh', async (t) => {
  const { store } = await openStore(t);
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const out = await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, loss: LAPLACE_1, queryId: `q${i}` });
    assert.equal(out.ok, true, `release ${i + 1} fits`);
    if (out.ok) ids.push(out.chargeId);
  }
  const eleventh = await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, loss: LAPLACE_1, queryId: 'q10' });
  assert.equal(eleventh.ok, false);
  assert.equal(eleventh.ok ? null : eleventh.reason, 'insufficient-budget');
  const st = await store.status('org:acme', 'patients');
  assert.ok(st?.tight && st.tight.spentEpsilon <= 10 && st.tight.spentEpsilon > 9.999, `spent ε ${st?.tight?.spentEpsilon}`);
  // A refunded release gives its loss back: one more fits.
  await store.refund(ids[0]!, 'the query failed before release');
  assert.equal((await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, loss: LAPLACE_1, queryId: 'q11' })).ok, true);
});

test('charges partition selection δ: releases paying δ = 3e-7 each run out of δ after three', async (t) => {
  const { store } = await openStore(t);
  const loss = { pure: [0.1], mu2: 0, delta: 3e-7 };
  const outcomes = [];
  for (let i = 0; i < 5; i++) outcomes.push((await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.005, loss, queryId: `s${i}` })).ok);
  assert.deepEqual(outcomes, [true, true, true, false, false]);
});

test('a window holding a ρ-only charge keeps the ρ rule, so old and new charges never mix unsoundly', async (t) => {
  const { store } = await openStore(t);
  assert.equal((await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, queryId: 'old' })).ok, true);
  let n = 1;
  while ((await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, loss: LAPLACE_1, queryId: `n${n}` })).ok) n++;
  assert.equal(n, Math.floor(rhoForEpsilonDelta(10, 1e-6) / 0.5), 'only as many as ρ allows');
});

test('never admits more than optimal composition allows when four processes charge at once', async (t) => {
  const { store, path } = await openStore(t);
  const startAt = Date.now() + 600;
  const runs = await Promise.all([0, 1, 2, 3].map((w) => new Promise<{ accepted: number; denied: number }>((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, path, String(w), String(startAt), '6'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { accepted: number; denied: number }) : reject(new Error(`child exited ${code}`))));
  })));
  assert.equal(runs.reduce((s, r) => s + r.accepted, 0), 10);
  assert.equal(runs.reduce((s, r) => s + r.denied, 0), 14);
  const st = await store.status('org:acme', 'patients');
  assert.ok(st?.tight && st.tight.spentEpsilon <= 10 + 1e-9);
});

test('on PostgreSQL, two nodes charging one budget at once admit exactly what optimal composition allows', async () => {
  const pools = [new pg.Pool({ connectionString: cluster!.superuserUrl, max: 4 }), new pg.Pool({ connectionString: cluster!.superuserUrl, max: 4 })];
  try {
    const c = await pools[0]!.connect();
    try { await migrate(c, 'tight'); } finally { c.release(); }
    const nodes = pools.map((p) => BudgetStore.on(new PgDriver(p, { schema: 'tight' }), { maxRetries: 200 }));
    await nodes[0]!.defineBudget({ subject: 'org:acme', dataset: 'patients', capRho: rhoForEpsilonDelta(10, 1e-6), window: null, target: TARGET });
    const outcomes = await Promise.all(Array.from({ length: 24 }, (_, i) => nodes[i % 2]!.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, loss: LAPLACE_1, queryId: `pg${i}` })));
    assert.equal(outcomes.filter((o) => o.ok).length, 10);
    const st = await nodes[1]!.status('org:acme', 'patients');
    assert.ok(st?.tight && st.tight.spentEpsilon <= 10);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('a denial under tight accounting says what was spent in ε at the budget’s δ, not in ρ', async (t) => {
  const { store } = await openStore(t);
  for (let i = 0; i < 10; i++) await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, loss: LAPLACE_1, queryId: `d${i}` });
  const out = await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, loss: LAPLACE_1, queryId: 'd10' });
  assert.equal(out.ok, false);
  if (!out.ok) assert.match(describeDenial(out), /spent ε=10 of ε=10 at δ=0\.000001, and with this query their composition would exceed it/);
});
