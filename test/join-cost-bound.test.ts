/**
 * Cost is bounded before execution (issue 12 §2, invariant 11): a join whose estimated
 * output exceeds `defaults.maxJoinRows` is refused from the catalog's row counts before any
 * engine runs it, so whether it fails, and how fast, cannot depend on a hidden value. The
 * attacker's timeout oracle — a cross join guarded by a predicate on one person — gets the
 * same refusal, in the same short time, whatever that person's value.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoFixture, type Fixture } from './helpers/workspace.ts';

let fx: Fixture;
before(async () => {
  fx = await demoFixture({
    patients: 2000,
    // A limit the demo's own sizes can reach: claims × encounters is far above a million rows.
    edit: (ws) => { const f = join(ws, 'gatehouse.yaml'); writeFileSync(f, readFileSync(f, 'utf8').replace(/^defaults:\n/m, 'defaults:\n  maxJoinRows: 1000000\n')); },
  });
});
after(async () => { await fx.close(); });

async function attempt(sql: string): Promise<{ code: string | null; message: string; ms: number }> {
  const t0 = performance.now();
  try { await fx.query('ada', sql); return { code: null, message: '', ms: performance.now() - t0 }; }
  catch (err) { const e = err as { code?: string; message: string }; return { code: e.code ?? 'NO_CODE', message: e.message, ms: performance.now() - t0 }; }
}

describe('join cost bound', () => {
  it('refuses a guarded cross join up front, identically and quickly whatever the guarded value', async () => {
    const [[claim, amount]] = (await fx.query('ada', 'SELECT claim_id, amount_billed FROM claims ORDER BY claim_id LIMIT 1')).rows as [number, number][];
    const probe = (c: number) => `SELECT count(*) AS n FROM claims a CROSS JOIN encounters b CROSS JOIN claims c WHERE a.claim_id = ${claim} AND a.amount_billed >= ${c}`;
    const before = fx.log.size;
    const below = await attempt(probe(Number(amount) - 1));
    const above = await attempt(probe(Number(amount) + 1));
    assert.equal(below.code, 'QUERY_TOO_COSTLY');
    assert.deepEqual([above.code, above.message], [below.code, below.message], 'the refusal does not depend on the secret');
    assert.ok(below.ms < 1000 && above.ms < 1000, `refused in ${Math.round(below.ms)} / ${Math.round(above.ms)} ms, not after running`);
    assert.ok(!/\d{4,}/.test(below.message.replace('1 million', '')), 'the message names no dataset size');
    const entry = fx.log.leaf(before).entry;
    assert.equal(entry.errorCode, 'QUERY_TOO_COSTLY', 'the refusal is audited');
  });

  it('refuses a non-equi join and a cross join hidden in a subquery or CTE', async () => {
    assert.equal((await attempt('SELECT count(*) AS n FROM claims a JOIN encounters b ON a.amount_billed > b.cost')).code, 'QUERY_TOO_COSTLY');
    assert.equal((await attempt('SELECT count(*) AS n FROM patients WHERE patient_id IN (SELECT a.patient_id FROM claims a, encounters b)')).code, 'QUERY_TOO_COSTLY');
    assert.equal((await attempt('WITH x AS (SELECT a.patient_id FROM claims a CROSS JOIN encounters b) SELECT count(*) AS n FROM x')).code, 'QUERY_TOO_COSTLY');
  });

  it('lets ordinary equi-joins on keys run', async () => {
    const r = await fx.query('ada', 'SELECT count(*) AS n FROM claims c JOIN patients p ON c.patient_id = p.patient_id');
    assert.ok(Number((r.rows as unknown[][])[0]![0]) > 0);
    const e = await fx.query('ada', 'SELECT p.sex, count(*) AS n FROM encounters e JOIN patients p ON e.patient_id = p.patient_id GROUP BY p.sex');
    assert.ok(e.rows.length > 0);
  });
});
