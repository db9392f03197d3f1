/**
 * Issue 12 §2, end to end through Gatehouse.query as the research contractor (claims and
 * patients are aggregation-only, minimum 11 patients per group, no differential privacy):
 * the attacks of the outside run, written as the attacker wrote them. Each must learn
 * nothing about the chosen patient: the outcome (answer or refusal, its code and message)
 * may not depend on the secret.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { QueryResponse } from '../src/pipeline/gatehouse.ts';
import { demoFixture, type Fixture } from './helpers/workspace.ts';

// A fresh Gatehouse per attack: each starts with an empty differencing history (a refused
// filter stays remembered until the pipeline reports the refusal; see docs/privacy.md).
let fx: Fixture;
beforeEach(async () => { fx = await demoFixture({ patients: 2000 }); });
afterEach(async () => { await fx.close(); });

interface Outcome { readonly code: string | null; readonly message: string; readonly rows: string; readonly ms: number }
async function attempt(sql: string): Promise<Outcome> {
  const t0 = performance.now();
  try {
    const r: QueryResponse = await fx.query('rhea', sql);
    return { code: null, message: '', rows: JSON.stringify(r.rows), ms: performance.now() - t0 };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { code: e.code ?? 'NO_CODE', message: e.message, rows: '', ms: performance.now() - t0 };
  }
}
/** Ground truth, read by the hospital's own analyst (no aggregation rule). */
async function truth(sql: string): Promise<unknown[][]> { return (await fx.query('ada', sql)).rows as unknown[][]; }
const same = (a: Outcome, b: Outcome): boolean => a.code === b.code && a.message === b.message && a.rows === b.rows;

describe('aggregation-only side channels (issue 12)', () => {
  it('join amplification: a self-join that counts the chosen claim N times is refused whichever claim is chosen', async () => {
    const [[target], [other]] = await truth('SELECT claim_id FROM claims ORDER BY amount_billed DESC LIMIT 2');
    const probe = (x: unknown) => `SELECT count(*) AS n, sum(a.amount_billed) AS s FROM claims a JOIN claims b ON a.claim_id = ${x} OR a.patient_id = b.patient_id`;
    const [hit, miss] = [await attempt(probe(target)), await attempt(probe(other))];
    assert.equal(hit.code, 'OBLIGATION_VIOLATION');
    assert.ok(same(hit, miss), 'the refusal does not depend on the chosen claim');
    assert.equal((await attempt('SELECT count(*) AS n FROM claims a JOIN claims b ON a.patient_id = b.patient_id')).code, 'OBLIGATION_VIOLATION', 'no self-join at all');
  });

  it('error oracle: a 20-step binary search on one claim\'s amount learns nothing (the text = integer comparison is refused at bind)', async () => {
    const [[claim, amount]] = await truth('SELECT claim_id, amount_billed FROM claims ORDER BY claim_id LIMIT 1');
    let lo = 0, hi = 100_000;
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 20; i++) {
      const mid = (lo + hi) / 2;
      const o = await attempt(`SELECT count(*) AS n FROM claims WHERE claim_id = ${claim} AND amount_billed >= ${mid} AND payer = encounter_id`);
      outcomes.push(o);
      // The attacker's rule: an engine error means "the claim passed the test".
      if (o.code === 'ENGINE_ERROR') lo = mid; else hi = mid;
    }
    assert.ok(outcomes.every((o) => same(o, outcomes[0]!)), 'every outcome is identical whatever the secret');
    assert.equal(outcomes[0]!.code, 'SQL_INVALID');
    assert.ok(!outcomes[0]!.message.includes(String(amount)));
    assert.ok(Math.abs(lo - Number(amount)) > 1, 'the search did not converge on the secret');
  });

  it('timeout oracle: a cross join guarded by a predicate on one claim is refused before it runs, quickly and identically', async () => {
    const [[claim, amount]] = await truth('SELECT claim_id, amount_billed FROM claims ORDER BY claim_id LIMIT 1');
    const probe = (c: number) => `SELECT count(*) AS n FROM claims a CROSS JOIN claims b CROSS JOIN claims c WHERE a.claim_id = ${claim} AND a.amount_billed >= ${c}`;
    const below = await attempt(probe(Number(amount) - 1));
    const above = await attempt(probe(Number(amount) + 1));
    assert.equal(below.code, 'OBLIGATION_VIOLATION');
    assert.ok(same(below, above));
    assert.ok(below.ms < 2000 && above.ms < 2000, `refused in ${Math.round(below.ms)} / ${Math.round(above.ms)} ms`);
    const nonEqui = await attempt(`SELECT count(*) AS n FROM claims c JOIN patients p ON c.amount_billed > ${amount}`);
    assert.equal(nonEqui.code, 'OBLIGATION_VIOLATION');
  });

  it('differencing through a subquery: "all claims" then "all claims NOT IN (SELECT one claim)" is refused', async () => {
    const [[claim]] = await truth('SELECT claim_id FROM claims ORDER BY claim_id DESC LIMIT 1');
    assert.equal((await attempt("SELECT count(*) AS n, sum(amount_paid) AS s FROM claims WHERE status <> 'nonexistent'")).code, null);
    const o = await attempt(`SELECT count(*) AS n, sum(amount_paid) AS s FROM claims WHERE status <> 'nonexistent' AND claim_id NOT IN (SELECT ${claim})`);
    assert.equal(o.code, 'DIFFERENCING_DETECTED');
  });

  it('history flushing: twenty-five unrelated queries do not make the history forget the first one', async () => {
    const [[claim]] = await truth('SELECT claim_id FROM claims ORDER BY claim_id LIMIT 1 OFFSET 7');
    const base = "SELECT count(*) AS n FROM claims WHERE submitted_on >= DATE '1900-01-01'";
    assert.equal((await attempt(base)).code, null);
    const payers = (await truth('SELECT DISTINCT payer FROM claims ORDER BY payer')).map((r) => r[0]);
    const statuses = (await truth('SELECT DISTINCT status FROM claims ORDER BY status')).map((r) => r[0]);
    const regions = (await truth('SELECT DISTINCT region FROM claims ORDER BY region')).map((r) => r[0]);
    const flush = [...payers.flatMap((p) => regions.map((r) => `payer = '${p}' AND region = '${r}'`)), ...statuses.flatMap((s) => regions.map((r) => `status = '${s}' AND region = '${r}'`)), ...payers.flatMap((p) => statuses.map((s) => `payer = '${p}' AND status = '${s}'`))].slice(0, 25);
    assert.equal(flush.length, 25);
    for (const f of flush) await attempt(`SELECT count(*) AS n FROM claims WHERE ${f}`);
    const o = await attempt(`${base} AND claim_id <> ${claim}`);
    assert.equal(o.code, 'DIFFERENCING_DETECTED', 'the first filter is still remembered');
  });

  it('the demo\'s Medicare example: the patient id cannot be used in WHERE, and the claim-id form is caught by differencing', async () => {
    const table = await attempt('SELECT payer, count(*) AS n, sum(amount_billed) AS s FROM claims GROUP BY payer');
    assert.equal(table.code, null);
    const [[patient]] = await truth("SELECT patient_id FROM claims WHERE payer = 'Medicare' ORDER BY patient_id LIMIT 1");
    const byId = await attempt(`SELECT count(*) AS n, sum(amount_billed) AS s FROM claims WHERE payer = 'Medicare' AND patient_id <> ${patient}`);
    assert.equal(byId.code, 'OBLIGATION_VIOLATION');
    assert.ok(!byId.message.includes(String(patient)));
    const claims = (await truth(`SELECT claim_id FROM claims WHERE patient_id = ${patient}`)).map((r) => r[0]);
    assert.equal((await attempt("SELECT count(*) AS n, sum(amount_billed) AS s FROM claims WHERE payer = 'Medicare'")).code, null);
    const byClaims = await attempt(`SELECT count(*) AS n, sum(amount_billed) AS s FROM claims WHERE payer = 'Medicare' AND claim_id NOT IN (${claims.join(', ')})`);
    assert.equal(byClaims.code, 'DIFFERENCING_DETECTED');
  });

  it('row minus cell: the total of a filtered table minus the withheld payer\'s complement is refused', async () => {
    const amounts = await truth("SELECT amount_billed FROM claims WHERE payer = 'Medicare' ORDER BY amount_billed DESC LIMIT 4");
    const W = `(payer <> 'Medicare' OR amount_billed >= ${amounts[3]![0]})`;
    const table = await attempt(`SELECT payer, count(*) AS n, sum(amount_billed) AS s FROM claims WHERE ${W} GROUP BY payer`);
    assert.equal(table.code, null);
    assert.ok(!table.rows.includes('"Medicare"'), 'the small Medicare group is withheld');
    assert.equal((await attempt(`SELECT count(*) AS n, sum(amount_billed) AS s FROM claims WHERE ${W}`)).code, null);
    // Total minus everything but Medicare = the withheld Medicare cell (sum as well as count).
    const rest = await attempt(`SELECT count(*) AS n, sum(amount_billed) AS s FROM claims WHERE ${W} AND payer <> 'Medicare'`);
    assert.equal(rest.code, 'DIFFERENCING_DETECTED');
  });

  it('row minus cell: a published payer cell minus "that payer without one patient" is refused, in either order', async () => {
    const [[top]] = await truth("SELECT max(amount_billed) FROM claims WHERE payer = 'Medicaid'");
    assert.equal((await attempt('SELECT payer, count(*) AS n, sum(amount_billed) AS s FROM claims GROUP BY payer')).code, null);
    const o = await attempt(`SELECT count(*) AS n, sum(amount_billed) AS s FROM claims WHERE payer = 'Medicaid' AND amount_billed < ${top}`);
    assert.equal(o.code, 'DIFFERENCING_DETECTED');
    // The other order, by a fresh principal history: the filtered total first, then the table.
    await fx.close();
    fx = await demoFixture({ patients: 2000 });
    assert.equal((await attempt(`SELECT count(*) AS n FROM claims WHERE payer = 'Medicaid' AND amount_billed < ${top}`)).code, null);
    assert.equal((await attempt('SELECT payer, count(*) AS n FROM claims GROUP BY payer')).code, 'DIFFERENCING_DETECTED');
  });

  it('lets an honest analyst slice one payer by status after the per-payer table', async () => {
    assert.equal((await attempt('SELECT payer, count(*) AS n FROM claims GROUP BY payer')).code, null);
    const o = await attempt("SELECT status, count(*) AS n FROM claims WHERE payer = 'Medicaid' GROUP BY status");
    assert.equal(o.code, null, o.message);
  });
});
