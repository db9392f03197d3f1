/**
 * Output protection end to end, through the one request path (Gatehouse.query / estimate
 * and the HTTP API): differential privacy for the research contractor on `encounters`
 * (obligation research-dp), privacy budgets, cost estimates, and disclosure control for
 * aggregation-only results on `patients` (obligation research-aggregates, ≥ 11 patients).
 *
 * Every request here is run through `once`, which checks it left exactly one audit entry.
 * Randomised assertions use margins whose failure probability is below 1e-8 per run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import type { CellValue } from '../src/engine/engine.ts';
import { startNode } from '../src/node/start.ts';
import type { QueryEstimate, QueryResponse } from '../src/pipeline/gatehouse.ts';
import { rhoToNano } from '../src/privacy/accounting/budget-store.ts';
import { epsilonForDelta, rhoForEpsilonDelta } from '../src/privacy/accounting/zcdp.ts';
import { releasesThatFit } from '../src/privacy/accounting/pld.ts';
import { analyticGaussianMu } from '../src/privacy/mechanisms/analytic-gaussian.ts';
import { demoFixture, KEYS, type Fixture, type ServerFixture, type Who } from './helpers/workspace.ts';

const DEPARTMENTS = ['emergency', 'cardiology', 'oncology', 'primary-care', 'orthopedics', 'obstetrics', 'nephrology', 'psychiatry'];
const REGIONS = ['us-east', 'us-west', 'us-central'];
/** The demo's research-dp obligation: ε = 1 and δ = 1e-7 per query; budget ε = 10, δ = 1e-6 per org and calendar month. */
const QUERY_RHO = analyticGaussianMu(1, 1e-7) ** 2 / 2;
const ORG = 'org:northwind-research';

/** An audit log entry as stored. */
type AuditEntry = ReturnType<Fixture['log']['leaf']>['entry'];

interface Outcome<T> {
  readonly value: T | undefined;
  readonly error: (Error & { code?: string; hint?: string | null; reasons?: readonly string[] }) | undefined;
  readonly entry: AuditEntry;
}

/** Runs one request and checks it left exactly one audit entry, which it returns. */
async function once<T>(f: { log: Fixture['log'] }, run: () => Promise<T>): Promise<Outcome<T>> {
  const before = f.log.size;
  let value: T | undefined;
  let error: Outcome<T>['error'];
  try { value = await run(); } catch (err) { error = err as Outcome<T>['error']; }
  assert.equal(f.log.size, before + 1, 'every request leaves exactly one audit entry');
  return { value, error, entry: f.log.leaf(before).entry };
}

async function ok(f: Fixture, who: Who, sql: string, purpose?: string): Promise<QueryResponse & { entry: AuditEntry }> {
  const o = await once(f, () => f.query(who, sql, purpose));
  if (o.error) assert.fail(`${who}: ${sql}\n→ ${o.error.code}: ${o.error.message}`);
  return { ...o.value!, entry: o.entry };
}

async function refused(f: Fixture, who: Who, sql: string, purpose?: string): Promise<NonNullable<Outcome<unknown>['error']> & { entry: AuditEntry }> {
  const o = await once(f, () => f.query(who, sql, purpose));
  assert.ok(o.error, `expected a refusal for: ${sql}`);
  return Object.assign(o.error, { entry: o.entry });
}

async function estimate(f: Fixture, who: Who, sql: string, purpose = 'research'): Promise<QueryEstimate> {
  const o = await once(f, () => f.gh.estimate({ credential: KEYS[who], sql, purpose, source: '127.0.0.1', channel: 'test' }));
  if (o.error) assert.fail(`estimate: ${sql}\n→ ${o.error.code}: ${o.error.message}`);
  assert.equal(o.entry.action, 'query.estimate');
  return o.value!;
}

/** What remains of rhea's organisation budget on encounters, read without spending any. */
async function remainingRho(f: Fixture): Promise<number> {
  const e = await estimate(f, 'rhea', 'SELECT count(*) FROM encounters');
  return e.privacy!.budget!.remainingRho;
}

function nextMonthUtc(now = new Date()): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
}

function editYaml(wsDir: string, edit: (text: string) => string): void {
  const file = join(wsDir, 'gatehouse.yaml');
  const before = readFileSync(file, 'utf8');
  const after = edit(before);
  assert.notEqual(after, before, 'the workspace edit changed nothing');
  writeFileSync(file, after);
}

const withBudgetEpsilon = (epsilon: number) => (wsDir: string) =>
  editYaml(wsDir, (t) => t.replace('budget: { epsilon: 10,', `budget: { epsilon: ${epsilon},`));

const num = (v: CellValue | undefined): number => Number(v);
/** The 95 % half-width of a count or sum output (quantiles have per-value intervals only). */
const ci = (n: { readonly output: string; readonly ci95: number | null } | undefined): number => {
  assert.ok(n && typeof n.ci95 === 'number', `output ${n?.output} has a single 95 % half-width`);
  return n.ci95;
};
const byKey = (rows: readonly (readonly CellValue[])[]): Map<string, readonly CellValue[]> => new Map(rows.map((r) => [String(r[0]), r]));

let fx: ServerFixture;
before(async () => { fx = await demoFixture({ patients: 3000, http: true }); });
after(async () => { await fx.close(); });

describe('differential privacy for the research contractor on encounters', () => {
  it('answers with a 95 % interval for every noisy value and shows mechanism, ε, δ, ρ, noise and budget', async () => {
    const remainingBefore = await remainingRho(fx);
    const r = await ok(fx, 'rhea', 'SELECT facility_region, count(DISTINCT patient_id) AS patients, count(*) AS encounters FROM encounters GROUP BY facility_region ORDER BY facility_region');
    assert.deepEqual(r.columns.map((c) => c.name), ['facility_region', 'patients', 'encounters']);
    assert.deepEqual(r.rows.map((row) => row[0]), [...REGIONS].sort());
    assert.ok(r.intervals, 'a DP result carries intervals');
    assert.equal(r.intervals.length, r.rows.length);
    const p = r.governance.privacy;
    assert.ok(p, 'governance.privacy is present');
    assert.equal(p.mechanism, 'gaussian');
    assert.match(p.guarantee, /^user-level \(3 group\(s\) and 3 row\(s\) per group per privacy unit of "encounters"\)$/);
    assert.equal(p.epsilon, 1);
    assert.equal(p.delta, 1e-7, 'every key is public, so no partition selection and δ is not doubled');
    assert.ok(p.rho <= QUERY_RHO && p.rho > QUERY_RHO * 0.99, `ρ ${p.rho} is μ²/2 of the analytic Gaussian at the per-query (ε, δ)`);
    assert.deepEqual(p.noise.map((n) => n.output), ['patients', 'encounters']);
    for (const n of p.noise) assert.ok(n.scale > 0 && ci(n) > n.scale, `${n.output}: scale ${n.scale}, ci95 ${n.ci95}`);
    r.rows.forEach((row, i) => {
      const iv = r.intervals![i]!;
      assert.equal(iv[0], null, 'a group key has no interval');
      for (const [col, noise] of [[1, p.noise[0]!], [2, p.noise[1]!]] as const) {
        const [lo, hi] = iv[col]!;
        assert.ok(Math.abs((hi - lo) / 2 - ci(noise)) < 1e-9, 'the interval is ± ci95');
        assert.ok(lo <= num(row[col]) && num(row[col]) <= hi, 'a positive count lies in its own interval');
      }
    });
    const b = p.budget;
    assert.ok(b);
    assert.equal(b.subject, ORG, 'the demo budget is per organisation');
    assert.equal(b.epsilon, 10);
    assert.equal(b.delta, 1e-6);
    assert.equal(b.capRho, rhoToNano(rhoForEpsilonDelta(10, 1e-6), 'floor') * 1e-9);
    assert.ok(Math.abs(b.remainingRho - (remainingBefore - p.rho)) < 2e-9, 'the query spent exactly its ρ');
    const spent = b.capRho - b.remainingRho;
    assert.ok(b.spentEpsilon > 0 && b.spentEpsilon < epsilonForDelta(spent, 1e-6), 'spent ε is the tight (PLD) composition, below the ρ view at the budget\'s δ');
    assert.equal(b.resetsAt, nextMonthUtc(), 'a calendar-month budget resets at 00:00 UTC on the 1st of next month');
    assert.equal(r.entry.decision, 'allow');
    assert.ok(r.entry.obligations.some((o) => o.startsWith('differentialPrivacy:encounters(gaussian')));
    assert.ok(r.entry.reasons.some((x) => x.startsWith('dp-budget charge ') && x.includes(`subject=${ORG}`)), 'the charge is audited');
    assert.equal(r.entry.rowsReturned, 3);
  });

  it('stays near the exact answer where contribution bounding does not bind (distinct patients per region)', async () => {
    const sql = 'SELECT facility_region, count(DISTINCT patient_id) AS patients FROM encounters GROUP BY facility_region ORDER BY facility_region';
    const exact = byKey((await ok(fx, 'ada', sql)).rows);
    const dp = await ok(fx, 'rhea', sql);
    const ci95 = ci(dp.governance.privacy!.noise[0]);
    for (const row of dp.rows) {
      const truth = num(exact.get(String(row[0]))![1]);
      assert.ok(Math.abs(num(row[1]) - truth) <= 3 * ci95, `${row[0]}: ${row[1]} vs exact ${truth} (ci95 ${ci95})`);
    }
    const total = await ok(fx, 'rhea', 'SELECT count(DISTINCT patient_id) AS n FROM encounters');
    const truth = num((await ok(fx, 'ada', 'SELECT count(DISTINCT patient_id) FROM encounters')).rows[0]![0]);
    assert.ok(Math.abs(num(total.rows[0]![0]) - truth) <= 3 * ci(total.governance.privacy!.noise[0]));
  });

  it('estimates count(*) and sum(cost) over at most 3 encounters per patient and group, as documented', async () => {
    // A patient counts at most C = 3 rows per group; with more, their sum counts as 3 × their
    // mean (sum · 3 / n), so sum and count describe the same 3 rows;
    // facility_region has 3 values, so the L = 3 groups-per-patient cap never binds here.
    const bounded = byKey((await ok(fx, 'ada',
      'SELECT facility_region, sum(least(n, 3)) AS rows3, sum(CASE WHEN n > 3 THEN s * 3 / n ELSE s END) AS cost3, sum(n) AS n FROM '
      + '(SELECT facility_region, patient_id, count(*) AS n, sum(least(cost, 40000)) AS s FROM encounters GROUP BY facility_region, patient_id) t GROUP BY facility_region')).rows);
    const dp = await ok(fx, 'rhea', 'SELECT facility_region, count(*) AS n, sum(cost) AS cost FROM encounters GROUP BY facility_region');
    const [nNoise, costNoise] = dp.governance.privacy!.noise;
    for (const row of dp.rows) {
      const truth = bounded.get(String(row[0]))!;
      assert.ok(Math.abs(num(row[1]) - num(truth[1])) <= 3 * ci(nNoise), `${row[0]} count: ${row[1]} vs bounded ${truth[1]}`);
      assert.ok(Math.abs(num(row[2]) - num(truth[2])) <= 3 * ci(costNoise), `${row[0]} cost: ${row[2]} vs bounded ${truth[2]}`);
      assert.ok(num(truth[1]) < num(truth[3]), 'bounding does bind on count(*): the released count is below the raw row count');
    }
  });

  it('estimates avg(length_of_stay_days) near the true mean under the demo bounds', {
  }, async () => {
    const truth = num((await ok(fx, 'ada', 'SELECT avg(length_of_stay_days) FROM encounters')).rows[0]![0]);
    const dp = await ok(fx, 'rhea', 'SELECT avg(length_of_stay_days) AS a FROM encounters');
    const [lo, hi] = dp.intervals![0]![0]!;
    const half = (hi - lo) / 2;
    assert.ok(Math.abs(num(dp.rows[0]![0]) - truth) <= 3 * half, `avg ${dp.rows[0]![0]} ± ${half} vs true mean ${truth}`);
  });

  it('answers median(cost) from a noisy bounded histogram, with an interval that covers the true median', async () => {
    const truth = num((await ok(fx, 'ada', 'SELECT median(cost) FROM encounters')).rows[0]![0]);
    const r = await ok(fx, 'rhea', 'SELECT median(cost) AS median_cost FROM encounters');
    const value = num(r.rows[0]![0]);
    const [lo, hi] = r.intervals![0]![0]!;
    const bucket = 40000 / 64;
    assert.ok(lo >= 0 && hi <= 40000 && lo <= value && value <= hi, `median ${value} in its interval [${lo}, ${hi}] within the bounds`);
    assert.ok(lo - bucket <= truth && truth <= hi + bucket, `the true median ${truth} lies in [${lo}, ${hi}] (± one bucket)`);
    const noise = r.governance.privacy!.noise[0]!;
    assert.equal(noise.output, 'median_cost');
    assert.equal(noise.ci95, null, 'a quantile has per-value intervals, not one half-width');
    assert.ok(noise.scale > 0);
  });

  it('keeps a high quantile of a small group within its interval (quantile_cont(length_of_stay_days, 0.9) by region)', {
  }, async () => {
    const exact = byKey((await ok(fx, 'ada', 'SELECT facility_region, quantile_cont(length_of_stay_days, 0.9) FROM encounters GROUP BY facility_region')).rows);
    const r = await ok(fx, 'rhea', 'SELECT facility_region, quantile_cont(length_of_stay_days, 0.9) AS q90 FROM encounters GROUP BY facility_region');
    r.rows.forEach((row, i) => {
      const truth = num(exact.get(String(row[0]))![1]);
      const [lo, hi] = r.intervals![i]![1]!;
      // The interval comes from histogram bucket edges (64 buckets over the bounds [0, 60]);
      // as for the median above, the truth must lie within it up to one bucket.
      const bucket = 60 / 64;
      assert.ok(lo - bucket <= truth && truth <= hi + bucket, `${row[0]}: q90 ${row[1]} in [${lo}, ${hi}] (± one bucket) vs true ${truth}`);
    });
  });

  it('adds fresh noise each time: the same query twice gives different answers', async () => {
    const sql = 'SELECT department, count(*) AS n FROM encounters GROUP BY department ORDER BY department';
    const a = await ok(fx, 'rhea', sql);
    const b = await ok(fx, 'rhea', sql);
    assert.deepEqual(a.rows.map((r) => r[0]), b.rows.map((r) => r[0]));
    assert.notDeepEqual(a.rows.map((r) => r[1]), b.rows.map((r) => r[1]));
    assert.notEqual(a.entry.resultDigest, b.entry.resultDigest);
  });

  it('lists every public group, including one the WHERE clause left without rows', async () => {
    const r = await ok(fx, 'rhea', "SELECT department, count(*) AS n FROM encounters WHERE department <> 'oncology' GROUP BY department ORDER BY department");
    assert.deepEqual(r.rows.map((row) => row[0]), [...DEPARTMENTS].sort(), 'all 8 declared departments, oncology included');
    const ci95 = ci(r.governance.privacy!.noise[0]);
    const oncology = r.rows.find((row) => row[0] === 'oncology')!;
    assert.ok(num(oncology[1]) <= 3 * ci95, `the empty group is pure noise: ${oncology[1]} (ci95 ${ci95})`);
    assert.ok(r.rows.filter((row) => row[0] !== 'oncology').every((row) => num(row[1]) > 3 * ci95), 'the other groups are far from zero');
    const two = await ok(fx, 'rhea', "SELECT facility_region, department, count(*) AS n FROM encounters WHERE facility_region <> 'us-west' GROUP BY facility_region, department");
    assert.equal(two.rows.length, REGIONS.length * DEPARTMENTS.length, 'two public keys: the full cross product');
    assert.equal(two.governance.privacy!.delta, 1e-7);
  });

  it('never releases a group of one patient when the key is not public (partition selection)', async () => {
    const lone = num((await ok(fx, 'ada', "SELECT min(patient_id) FROM encounters WHERE diagnosis_code = 'B20'")).rows[0]![0]);
    const exact = await ok(fx, 'ada', `SELECT count(DISTINCT patient_id) FROM encounters WHERE diagnosis_code = 'B20' AND patient_id = ${lone}`);
    assert.equal(num(exact.rows[0]![0]), 1, 'the B20 group below has exactly one patient');
    const sql = `SELECT diagnosis_code, count(*) AS n FROM encounters WHERE diagnosis_code <> 'B20' OR patient_id = ${lone} GROUP BY diagnosis_code`;
    for (let i = 0; i < 2; i++) {
      const r = await ok(fx, 'rhea', sql);
      assert.ok(!r.rows.some((row) => row[0] === 'B20'), 'the one-patient group is not released');
      assert.equal(r.rows.length, 14, 'the 14 large diagnosis groups are released');
      assert.equal(r.governance.privacy!.delta, 2e-7, 'partition selection doubles δ for the Gaussian');
      assert.equal(r.governance.rowsSuppressed, 0);
    }
  });

  it('does not report a user LIMIT as truncation by the row cap', {
  }, async () => {
    const r = await ok(fx, 'rhea', 'SELECT diagnosis_code, count(DISTINCT patient_id) AS patients FROM encounters GROUP BY diagnosis_code ORDER BY patients DESC LIMIT 5');
    assert.equal(r.rows.length, 5);
    assert.equal(r.governance.truncated, false);
  });

  it('releases nothing for GROUP BY encounter_id (every group is one patient)', async () => {
    // Each one-patient group is released with probability ≤ δ/L ≈ 3.3e-8 (that is the
    // guarantee, not a bug): 600 groups keep this test's false-alarm rate near 2e-5.
    const r = await ok(fx, 'rhea', 'SELECT encounter_id, count(*) AS n FROM encounters WHERE encounter_id <= 600 GROUP BY encounter_id');
    assert.deepEqual(r.rows, []);
    assert.deepEqual(r.intervals, []);
    assert.equal(r.entry.rowsReturned, 0);
    assert.ok(r.governance.privacy!.budget!.remainingRho < r.governance.privacy!.budget!.capRho, 'an empty release still spends its ρ');
  });
});

describe('differential privacy refuses what it cannot protect', () => {
  const cases: [string, string, RegExp][] = [
    ['a join', 'SELECT count(*) FROM encounters e JOIN patients p ON p.patient_id = e.patient_id', /exactly one dataset, without joins|read inside a subquery, CTE or derived table/],
    ['a derived table', 'SELECT count(*) FROM (SELECT * FROM encounters) t', /subquery, CTE or derived table/],
    ['an IN subquery', 'SELECT count(*) FROM encounters WHERE patient_id IN (SELECT patient_id FROM encounters WHERE cost > 30000)', /subquery, CTE or derived table/],
    ['a CTE', 'WITH t AS (SELECT * FROM encounters) SELECT count(*) FROM t', /subquery, CTE or derived table/],
    ['HAVING', 'SELECT department, count(*) FROM encounters GROUP BY department HAVING count(*) > 10', /HAVING is not available/],
    ['a window function', 'SELECT department, count(*) OVER () FROM encounters', /window functions are not available/],
    ['min()', 'SELECT min(cost) FROM encounters', /min\(\) is not available under differential privacy/],
    ['max()', 'SELECT department, max(cost) FROM encounters GROUP BY department', /max\(\) is not available under differential privacy/],
    ['mode()', 'SELECT mode(department) FROM encounters', /mode\(\) is not available under differential privacy/],
    ['count(DISTINCT) of a column other than the privacy unit', 'SELECT count(DISTINCT facility_id) FROM encounters', /counts only the privacy unit/],
    ['an expression inside an aggregate', 'SELECT sum(cost * 2) FROM encounters', /must be a column of "encounters"/],
    ['a row-level SELECT', 'SELECT department FROM encounters', /GROUP BY key or an aggregate/],
    ['sum over a column without bounds', 'SELECT sum(encounter_id) FROM encounters', /need declared bounds/],
  ];
  for (const [what, sql, message] of cases) {
    it(`refuses ${what} with OBLIGATION_VIOLATION, a hint, and no budget spent`, async () => {
      const before = await remainingRho(fx);
      const e = await refused(fx, 'rhea', sql);
      assert.equal(e.code, 'OBLIGATION_VIOLATION', `${e.code}: ${e.message}`);
      assert.match(e.message, message);
      assert.ok(e.hint, 'the refusal says what to do instead');
      assert.equal(e.entry.decision, 'deny');
      assert.equal(e.entry.errorCode, 'OBLIGATION_VIOLATION');
      assert.ok(!e.entry.reasons.some((r) => r.startsWith('dp-budget')), 'nothing was charged');
      assert.equal(await remainingRho(fx), before);
    });
  }

  it('refuses sum(cost) once the owner removes the column\'s bounds', async () => {
    const local = await demoFixture({ patients: 300, edit: (ws) => editYaml(ws, (t) => t.replace(/(cost: +\{ type: DOUBLE, +classification: confidential), bounds: \[0, 40000\]/, '$1')) });
    try {
      for (const sql of ['SELECT sum(cost) FROM encounters', 'SELECT department, avg(cost) FROM encounters GROUP BY department']) {
        const e = await refused(local, 'rhea', sql);
        assert.equal(e.code, 'OBLIGATION_VIOLATION');
        assert.match(e.message, /over "encounters\.cost" need declared bounds under differential privacy/);
        assert.equal(e.entry.decision, 'deny');
      }
      await ok(local, 'rhea', 'SELECT sum(length_of_stay_days) FROM encounters');
    } finally {
      await local.close();
    }
  });
});

describe('privacy budget', () => {
  it('refuses the query that would overspend with BUDGET_EXHAUSTED and names the reset date', async () => {
    const local = await demoFixture({ patients: 300, edit: withBudgetEpsilon(1.2) });
    try {
      const cap = rhoToNano(rhoForEpsilonDelta(1.2, 1e-6), 'floor');
      assert.equal(Math.floor(cap / rhoToNano(QUERY_RHO, 'ceil')), 1, 'the test budget fits exactly one query');
      const first = await ok(local, 'rhea', 'SELECT count(*) FROM encounters');
      assert.ok(first.governance.privacy!.budget!.remainingRho < QUERY_RHO);
      const e = await refused(local, 'rhea', 'SELECT count(*) FROM encounters');
      const reset = nextMonthUtc();
      assert.equal(e.code, 'BUDGET_EXHAUSTED');
      assert.match(e.message, /privacy budget for dataset "encounters" is insufficient/);
      assert.ok(e.message.includes(`the budget resets to the full cap at ${reset}`), e.message);
      assert.ok(e.hint?.includes(reset), 'the hint names the reset date too');
      assert.equal(e.entry.decision, 'deny');
      assert.equal(e.entry.errorCode, 'BUDGET_EXHAUSTED');
      const est = await estimate(local, 'rhea', 'SELECT count(*) FROM encounters');
      assert.equal(est.privacy!.affordable, false, 'an estimate says the query no longer fits');
      // A different dataset has its own (absent) budget: aggregation-only queries still run.
      await ok(local, 'rhea', 'SELECT region, count(*) FROM patients GROUP BY region');
    } finally {
      await local.close();
    }
  });

  it('records a denied charge in the audit entry as a "dp-budget denied" line', {
  }, async () => {
    const local = await demoFixture({ patients: 300, edit: withBudgetEpsilon(1.2) });
    try {
      await ok(local, 'rhea', 'SELECT count(*) FROM encounters');
      const e = await refused(local, 'rhea', 'SELECT count(*) FROM encounters');
      assert.equal(e.entry.decision, 'deny');
      assert.ok(e.entry.reasons.some((r) => r.startsWith('dp-budget denied reason=insufficient-budget')), JSON.stringify(e.entry.reasons));
    } finally {
      await local.close();
    }
  });

  it('refunds a query that fails in the engine after it was charged', async () => {
    // A 1 ms statement timeout and a query that takes hundreds of ms: the engine is
    // interrupted after the charge, so the charge must be refunded.
    const local = await demoFixture({ patients: 3000, edit: (ws) => editYaml(ws, (t) => t.replace('statementTimeoutMs: 20000', 'statementTimeoutMs: 1')) });
    try {
      const before = await remainingRho(local);
      // (Within the expression cost bound of src/query/cost.ts: 240 copies of a column.)
      const inner = `concat(${Array(20).fill('diagnosis').join(', ')})`;
      const slow = `SELECT count(*) AS n FROM encounters WHERE regexp_matches(concat(${Array(12).fill(inner).join(', ')}), 'x[0-9]+y')`;
      const e = await refused(local, 'rhea', slow);
      assert.equal(e.code, 'QUERY_TIMEOUT', `${e.code}: ${e.message}`);
      assert.equal(e.entry.decision, 'error');
      const charge = e.entry.reasons.find((r) => r.startsWith('dp-budget charge '));
      const refund = e.entry.reasons.find((r) => r.startsWith('dp-budget refund '));
      assert.ok(charge, `the charge is audited: ${JSON.stringify(e.entry.reasons)}`);
      assert.ok(refund, 'and so is its refund');
      assert.equal(/charge=(\S+)/.exec(refund)![1], /charge=(\S+)/.exec(charge)![1], 'the refund names the charge it returns');
      assert.match(refund, /repeat=false reason="the query failed before any result was released"/);
      assert.equal(await remainingRho(local), before, 'the budget is back where it was');
    } finally {
      await local.close();
    }
  });

  it('never spends more than the cap under 40 concurrent queries', async () => {
    // All 40 are admitted at once (defaults.concurrency), so only the budget decides.
    const admitAll = (ws: string): void => editYaml(ws, (t) => t.replace('defaults:\n', 'defaults:\n  concurrency: { total: 40, perPrincipal: 40, perOrganisation: 40, queuePerPrincipal: 40 }\n'));
    const local = await demoFixture({ patients: 300, edit: (ws) => { withBudgetEpsilon(3)(ws); admitAll(ws); } });
    try {
      // The budget is (3, 1e-6) composed by the PLD accountant: each query is one Gaussian of μ² = 2ρ.
      const probe = await ok(local, 'rhea', 'SELECT department, count(*) AS probe FROM encounters GROUP BY department');
      const queryRho = probe.governance.privacy!.rho;
      const fits = releasesThatFit({ pure: [], mu2: 2 * queryRho, delta: 2e-15 }, { epsilon: 3, delta: 1e-6 }) - 1;
      assert.ok(fits >= 5 && fits < 40, `the test budget fits ${fits} more queries`);
      const start = local.log.size;
      const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => local.query('rhea', `SELECT department, count(*) AS n${i} FROM encounters GROUP BY department`)));
      assert.equal(local.log.size, start + 40, 'one audit entry per request');
      const accepted = results.filter((r): r is PromiseFulfilledResult<QueryResponse> => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (const r of rejected) assert.equal((r.reason as { code?: string }).code, 'BUDGET_EXHAUSTED', String(r.reason));
      assert.equal(accepted.length, fits, 'every query that fits is accepted, and no more');
      for (const r of accepted) assert.equal(r.value.governance.privacy!.rho, queryRho);
      const last = accepted.map((r) => r.value.governance.privacy!.budget!.spentEpsilon).sort((a, b) => b - a)[0]!;
      assert.ok(last <= 3, `the composed spend ${last} stays within ε = 3 at δ = 1e-6`);
      let denied = 0;
      for (let i = start; i < start + 40; i++) if (local.log.leaf(i).entry.errorCode === 'BUDGET_EXHAUSTED') denied++;
      assert.equal(denied, rejected.length, 'each refusal is audited as such');
    } finally {
      await local.close();
    }
  });

  it('keeps the budget across closing and reopening Gatehouse on the same workspace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-privacy-'));
    const wsDir = join(dir, 'ws');
    await createTestDemoWorkspace(wsDir, { patients: 300, keys: KEYS });
    const open = async (n: number) => {
      const node = await startNode({ workspaceDir: wsDir, auditDir: join(dir, `audit-${n}`), demo: true, engineOptions: { poolSize: 1 } });
      const gh = node.gatehouse;
      const f: Fixture = { dir, wsDir, log: node.audit, gh, node, http: node.http, wire: node.wire, query: (who: Who, sql: string) => gh.query({ credential: KEYS[who], sql, purpose: 'research', source: '127.0.0.1', channel: 'test' }), close: () => node.close() };
      return f;
    };
    try {
      const first = await open(1);
      let afterTwo: number;
      try {
        await ok(first, 'rhea', 'SELECT count(*) FROM encounters');
        afterTwo = (await ok(first, 'rhea', 'SELECT count(*) FROM encounters')).governance.privacy!.budget!.remainingRho;
      } finally {
        await first.close();
      }
      const second = await open(2);
      try {
        assert.equal(await remainingRho(second), afterTwo, 'the spend survived the restart');
        const third = await ok(second, 'rhea', 'SELECT count(*) FROM encounters');
        assert.ok(Math.abs(third.governance.privacy!.budget!.remainingRho - (afterTwo - third.governance.privacy!.rho)) < 2e-9);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('estimating a query before running it', () => {
  let app: FastifyInstance;
  before(() => { app = fx.http.app; });

  const post = (url: string, who: Who, sql: string, purpose: string) =>
    once(fx, () => app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${KEYS[who]}` }, payload: { sql, purpose } }));

  it('gives the cost and error bars of a DP query without spending budget, and the query then costs exactly that', async () => {
    const sql = 'SELECT department, count(*) AS n, avg(cost) AS mean_cost FROM encounters GROUP BY department';
    const a = await estimate(fx, 'rhea', sql);
    const b = await estimate(fx, 'rhea', sql);
    assert.ok(a.privacy && b.privacy);
    assert.equal(b.privacy.budget!.remainingRho, a.privacy.budget!.remainingRho, 'estimating spends nothing');
    assert.equal(a.privacy.affordable, true);
    assert.equal(a.privacy.epsilon, 1);
    assert.equal(a.privacy.delta, 1e-7);
    assert.deepEqual(a.privacy.noise.map((n) => n.output), ['n', 'mean_cost']);
    const r = await ok(fx, 'rhea', sql);
    const p = r.governance.privacy!;
    assert.equal(p.rho, a.privacy.rho);
    assert.deepEqual(p.noise, a.privacy.noise, 'the estimate\'s error bars are the ones the answer carries');
    assert.ok(Math.abs(p.budget!.remainingRho - (a.privacy.budget!.remainingRho - p.rho)) < 2e-9);
  });

  it('answers POST /v1/query/estimate over HTTP, and privacy null for queries without DP', async () => {
    const sql = 'SELECT facility_region, count(*) AS n FROM encounters GROUP BY facility_region';
    const before = await remainingRho(fx);
    const dp = await post('/v1/query/estimate', 'rhea', sql, 'research');
    assert.equal(dp.value!.statusCode, 200, dp.value!.body);
    const body = dp.value!.json();
    assert.equal(body.privacy.mechanism, 'gaussian');
    assert.ok(body.privacy.rho <= QUERY_RHO && body.privacy.rho > QUERY_RHO * 0.99, `ρ ${body.privacy.rho} is the analytic Gaussian's μ²/2`);
    assert.ok(body.privacy.noise[0].ci95 > 0);
    assert.equal(body.privacy.budget.resetsAt, nextMonthUtc());
    assert.equal(body.privacy.affordable, true);
    assert.equal(dp.entry.action, 'query.estimate');
    assert.equal(dp.entry.decision, 'allow');
    assert.equal(await remainingRho(fx), before, 'nothing was spent');
    for (const [who, q, purpose] of [['ada', sql, 'operations'], ['rhea', 'SELECT region, count(*) FROM patients GROUP BY region', 'research']] as const) {
      const plain = await post('/v1/query/estimate', who, q, purpose);
      assert.equal(plain.value!.statusCode, 200, plain.value!.body);
      assert.equal(plain.value!.json().privacy, null, `${who}: no DP applies`);
    }
    const denied = await post('/v1/query/estimate', 'rhea', 'SELECT max(cost) FROM encounters', 'research');
    assert.equal(denied.value!.statusCode, 403);
    assert.equal(denied.value!.json().error.code, 'OBLIGATION_VIOLATION', 'an estimate refuses what the query would refuse');
    assert.equal(denied.entry.decision, 'deny');
  });

  it('returns intervals and the privacy account over POST /v1/query', async () => {
    const r = await post('/v1/query', 'rhea', 'SELECT facility_region, count(*) AS n FROM encounters GROUP BY facility_region', 'research');
    assert.equal(r.value!.statusCode, 200, r.value!.body);
    const body = r.value!.json();
    assert.equal(body.rows.length, 3);
    assert.equal(body.intervals.length, 3);
    assert.equal(body.intervals[0][0], null);
    assert.equal(body.intervals[0][1].length, 2);
    assert.equal(body.governance.privacy.budget.subject, ORG);
    assert.equal(body.governance.privacy.noise[0].output, 'n');
  });
});

/** Whether a hidden cell of a table is determined by the published lines (rank test, exact on 0/1 systems this small). */
function determined(lines: number[][], cell: number, unknowns: number): boolean {
  const rank = (rows: number[][]): number => {
    const m = rows.map((r) => [...r]);
    let rk = 0;
    for (let c = 0; c < unknowns && rk < m.length; c++) {
      const p = m.findIndex((r, i) => i >= rk && Math.abs(r[c]!) > 1e-9);
      if (p < 0) continue;
      [m[rk], m[p]] = [m[p]!, m[rk]!];
      for (let i = 0; i < m.length; i++) {
        if (i === rk) continue;
        const f = m[i]![c]! / m[rk]![c]!;
        for (let j = 0; j < unknowns; j++) m[i]![j]! -= f * m[rk]![j]!;
      }
      rk++;
    }
    return rk;
  };
  const e = Array.from({ length: unknowns }, (_, j) => (j === cell ? 1 : 0));
  return rank([...lines, e]) === rank(lines);
}

describe('disclosure control for aggregation-only results', () => {
  // Small groups are made with a zip code (the patient id cannot be used in WHERE under
  // aggregation-only): the us-west patients of one zip code.
  let SMALL_WEST = '';
  const firstZip = async (where: string): Promise<string> => String((await ok(fx, 'ada', `SELECT zip FROM patients WHERE ${where} ORDER BY zip LIMIT 1`)).rows[0]![0]);

  it('withholds a small group with a complement, so subtracting the visible groups from the total does not recover it', async () => {
    SMALL_WEST = `WHERE region <> 'us-west' OR zip = '${await firstZip("region = 'us-west'")}'`;
    const exact = byKey((await ok(fx, 'ada', `SELECT region, count(*) AS n FROM patients ${SMALL_WEST} GROUP BY region`)).rows);
    const small = num(exact.get('us-west')![1]);
    assert.ok(small > 0 && small < 11, `us-west has ${small} patients under this WHERE`);
    const r = await ok(fx, 'rhea', `SELECT region, count(*) AS n FROM patients ${SMALL_WEST} GROUP BY region`);
    assert.ok(!r.rows.some((row) => row[0] === 'us-west'), 'the small group is withheld');
    assert.ok(r.rows.length <= REGIONS.length - 2, 'and at least one complement with it');
    assert.equal(r.governance.rowsSuppressed, REGIONS.length - r.rows.length, 'rowsSuppressed counts the withheld groups');
    for (const row of r.rows) assert.equal(num(row[1]), num(exact.get(String(row[0]))![1]), 'published groups are exact (no rounding configured)');
    assert.ok(r.entry.obligations.some((o) => /^disclosureControl\(threshold 11 units, secondary applied/.test(o)), JSON.stringify(r.entry.obligations));
    // The attacker's subtraction: the total (a large group, so published) minus what is visible.
    const total = await ok(fx, 'rhea', `SELECT count(*) AS n FROM patients ${SMALL_WEST}`);
    const residue = num(total.rows[0]![0]) - r.rows.reduce((s, row) => s + num(row[1]), 0);
    assert.notEqual(residue, small, 'the residue is not the small group');
    assert.ok(residue >= small + 11, 'it mixes the small group with at least one large withheld group');
    const everything = await ok(fx, 'rhea', 'SELECT count(*) AS n FROM patients');
    assert.notEqual(num(everything.rows[0]![0]) - r.rows.reduce((s, row) => s + num(row[1]), 0), small);
  });

  it('withholds cells of a two-way table so that no combination of margins determines a small cell', async () => {
    const W = `WHERE NOT (region = 'us-west' AND sex = 'F') OR zip = '${await firstZip("region = 'us-west' AND sex = 'F'")}'`;
    const exact = (await ok(fx, 'ada', `SELECT sex, region, count(*) AS n FROM patients ${W} GROUP BY sex, region`)).rows;
    const smallCell = exact.find((row) => row[0] === 'F' && row[1] === 'us-west')!;
    assert.ok(num(smallCell[2]) > 0 && num(smallCell[2]) < 11);
    const r = await ok(fx, 'rhea', `SELECT sex, region, count(*) AS n FROM patients ${W} GROUP BY sex, region`);
    assert.ok(!r.rows.some((row) => row[0] === 'F' && row[1] === 'us-west'));
    assert.equal(r.governance.rowsSuppressed, exact.length - r.rows.length);
    // The attacker knows every margin (each is a large group rhea may query) and the visible cells.
    const bySex = byKey((await ok(fx, 'rhea', `SELECT sex, count(*) FROM patients ${W} GROUP BY sex`)).rows);
    const byRegion = byKey((await ok(fx, 'rhea', `SELECT region, count(*) FROM patients ${W} GROUP BY region`)).rows);
    const visible = new Set(r.rows.map((row) => `${row[0]}|${row[1]}`));
    const hidden = exact.filter((row) => !visible.has(`${row[0]}|${row[1]}`)).map((row) => `${row[0]}|${row[1]}`);
    // Release auditing may withhold a margin too: whatever is published, no combination of it
    // may determine a hidden cell.
    assert.ok(bySex.size + byRegion.size >= 3, 'most margins are published');
    const lines: number[][] = [];
    for (const [k, pos] of [[0, 'sex'], [1, 'region']] as const) {
      for (const value of (pos === 'sex' ? bySex : byRegion).keys()) lines.push(hidden.map((h) => (h.split('|')[k] === value ? 1 : 0)));
    }
    lines.push(hidden.map(() => 1));
    assert.equal(determined(lines, hidden.indexOf('F|us-west'), hidden.length), false, 'the small cell is not determined by the margins');
    for (let i = 0; i < hidden.length; i++) assert.equal(determined(lines, i, hidden.length), false, `hidden cell ${hidden[i]} is not determined either`);
  });

  it('withholds a zero count instead of publishing it', async () => {
    const r = await ok(fx, 'rhea', "SELECT count(*) AS n FROM patients WHERE region = 'nowhere'");
    assert.deepEqual(r.rows, []);
    assert.equal(r.governance.rowsSuppressed, 1);
    assert.equal(r.entry.rowsReturned, 0);
  });

  it('never evaluates a user HAVING on a small group: no error, and the answer does not depend on the small count', async () => {
    // One us-east patient plus every other region: a group of one patient next to two large ones.
    const zip = String((await ok(fx, 'ada', "SELECT zip FROM patients WHERE region = 'us-east' GROUP BY zip HAVING count(*) = 1 ORDER BY zip LIMIT 1")).rows[0]![0]);
    const base = `SELECT region, count(*) AS n FROM patients WHERE region <> 'us-east' OR zip = '${zip}' GROUP BY region`;
    const reference = await ok(fx, 'rhea', base);
    assert.ok(!reference.rows.some((row) => row[0] === 'us-east'));
    assert.equal(reference.governance.rowsSuppressed, 2, 'the one-patient group and a complement are withheld');
    // On the one-patient group, ln(count - 2) is ln(-1), 1 / (count - 1) divides by zero, sqrt(count - 5) is sqrt(-4).
    for (const having of ['ln(count(*) - 2) > 0', '1 / (count(*) - 1) > 0', 'sqrt(count(*) - 5) > 1']) {
      const r = await ok(fx, 'rhea', `${base} HAVING ${having}`);
      assert.deepEqual(r.rows, reference.rows, having);
      assert.equal(r.governance.rowsSuppressed, 2, having);
    }
    // A HAVING that would drop the small group only if its count were k must not tell k apart
    // (were it evaluated there, k = 1 would remove the primary cell and its complement would reappear).
    for (let k = 1; k <= 10; k++) {
      const r = await ok(fx, 'rhea', `${base} HAVING count(*) <> ${k}`);
      assert.deepEqual(r.rows, reference.rows, `HAVING count(*) <> ${k}`);
      assert.equal(r.governance.rowsSuppressed, 2, `HAVING count(*) <> ${k}`);
    }
  });

  it('does not report a user LIMIT as truncation by the row cap', {
  }, async () => {
    const r = await ok(fx, 'rhea', 'SELECT payer, count(*) AS claims FROM claims GROUP BY payer ORDER BY payer LIMIT 2');
    assert.equal(r.rows.length, 2);
    assert.equal(r.governance.truncated, false);
  });

  it('rounds published counts when the obligation asks for it', async () => {
    const local = await demoFixture({ patients: 300, edit: (ws) => editYaml(ws, (t) => t.replace('aggregationOnly: { minGroupSize: 11 }', 'aggregationOnly: { minGroupSize: 11, rounding: nearest5 }')) });
    try {
      const exact = byKey((await ok(local, 'ada', 'SELECT payer, count(*) AS n FROM claims GROUP BY payer')).rows);
      const r = await ok(local, 'rhea', 'SELECT payer, count(*) AS n, sum(amount_billed) AS billed FROM claims GROUP BY payer');
      assert.equal(r.rows.length, exact.size);
      for (const row of r.rows) {
        assert.equal(num(row[1]) % 5, 0, `${row[0]}: ${row[1]} is a multiple of 5`);
        assert.ok(Math.abs(num(row[1]) - num(exact.get(String(row[0]))![1])) <= 2, 'and the nearest one');
      }
      assert.ok(r.entry.obligations.some((o) => o.includes('rounding nearest5')));
    } finally {
      await local.close();
    }
  });
});
