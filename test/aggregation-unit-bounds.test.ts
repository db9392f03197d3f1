/**
 * Issue 12 §2, per-unit contribution bounding under aggregation-only without DP: a patient
 * with very many large claims (planted by the attacker's accomplice, or simply a heavy
 * user the attacker knows of) cannot dominate a group's count or sum beyond C rows, alone
 * or through a join, and the disclosure-control threshold still counts distinct patients.
 * Real demo data on a real DuckDB, planned as the research contractor (research-aggregates).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { DuckDbEngine } from '../src/engine/duckdb.ts';
import type { CellValue, EngineResult } from '../src/engine/engine.ts';
import type { LoadedWorkspace } from '../src/workspace/validate.ts';
import { bindQuery } from '../src/query/bind.ts';
import { DEFAULT_MAX_ROWS_PER_UNIT } from '../src/query/govern/aggregation-only.ts';
import { govern } from '../src/query/govern/index.ts';
import { loadParser, parseSql } from '../src/query/parse.ts';
import { renderSelect } from '../src/query/render/sql.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { protectRelease } from '../src/privacy/disclosure.ts';

const TARGET = 424_242_424;        // a patient id outside the demo's range
const HEAVY = 400;                 // the target's claims, each billed the column's maximum
const AMOUNT = 100_000;
const C = DEFAULT_MAX_ROWS_PER_UNIT;
const LONGEST = 60;
const DEAREST = 40_000;
const LONELY = 15;

let dir: string;
let loaded: LoadedWorkspace;
let engine: DuckDbEngine;

before(async () => {
  await loadParser();
  dir = mkdtempSync(join(tmpdir(), 'gh-unit-bounds-'));
  await createTestDemoWorkspace(join(dir, 'ws'), { patients: 600 });
  // The planted patient: one patients row and HEAVY Medicare claims of the maximum amount.
  const data = join(dir, 'ws', 'data');
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  for (const [t, extra] of [
    ['claims', `SELECT 9000000000 + i AS claim_id, 9000000000 + i AS encounter_id, ${TARGET}::BIGINT AS patient_id, 'Medicare' AS payer, region, ${AMOUNT}::DOUBLE AS amount_billed, ${AMOUNT}::DOUBLE AS amount_paid, status, submitted_on FROM (SELECT * FROM read_parquet('${data}/claims.parquet') LIMIT 1), range(${HEAVY}) r(i)`],
    // Ten other planted patients, 40 claims each, alone under payer 'Shadow': 400 rows, 10 units.
    ['claims', `SELECT 9100000000 + i AS claim_id, 9100000000 + i AS encounter_id, (${TARGET} + 1 + i % 10)::BIGINT AS patient_id, 'Shadow' AS payer, region, 10::DOUBLE AS amount_billed, 10::DOUBLE AS amount_paid, status, submitted_on FROM (SELECT * FROM read_parquet('${data}/claims.parquet') LIMIT 1), range(400) r(i)`],
    // 100 claims that belong to no one (no patient id), alone under payer 'Orphan'.
    ['claims', `SELECT 9200000000 + i AS claim_id, 9200000000 + i AS encounter_id, NULL::BIGINT AS patient_id, 'Orphan' AS payer, region, 10::DOUBLE AS amount_billed, 10::DOUBLE AS amount_paid, status, submitted_on FROM (SELECT * FROM read_parquet('${data}/claims.parquet') LIMIT 1), range(100) r(i)`],
    // The target also stays HEAVY times in cardiology, each stay the longest and dearest.
    ['encounters', `SELECT * REPLACE (9000000000 + i AS encounter_id, ${TARGET}::BIGINT AS patient_id, 'cardiology' AS department, ${LONGEST}::INTEGER AS length_of_stay_days, ${DEAREST}::DOUBLE AS cost) FROM (SELECT * FROM read_parquet('${data}/encounters.parquet') LIMIT 1), range(${HEAVY}) r(i)`],
    ['patients', `SELECT * REPLACE (${TARGET}::BIGINT AS patient_id) FROM (SELECT * FROM read_parquet('${data}/patients.parquet') LIMIT 1)`],
    // LONELY patients without any claim (the unmatched side of a LEFT JOIN).
    ['patients', `SELECT * REPLACE (${TARGET} + 100 + i AS patient_id) FROM (SELECT * FROM read_parquet('${data}/patients.parquet') LIMIT 1), range(${LONELY}) r(i)`],
  ] as const) {
    await c.run(`COPY (SELECT * FROM read_parquet('${data}/${t}.parquet') UNION ALL BY NAME ${extra}) TO '${data}/${t}.new.parquet' (FORMAT parquet)`);
    await c.run(`COPY (SELECT * FROM read_parquet('${data}/${t}.new.parquet')) TO '${data}/${t}.parquet' (FORMAT parquet)`);
  }
  c.closeSync(); db.closeSync();
  loaded = await loadWorkspace(join(dir, 'ws'));
  engine = await DuckDbEngine.open(loaded.workspace, { poolSize: 1 });
});
after(async () => { await engine?.close(); rmSync(dir, { recursive: true, force: true }); });

/** The governed plan for the research contractor (research-aggregates on every dataset). */
function planned(sql: string) {
  const ws = loaded.workspace;
  const b = bindQuery(parseSql(sql), { dataset: (n) => ws.datasets.get(n) });
  return govern(b, {
    principal: { id: 'rhea', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] },
    datasets: ws.datasets, obligations: new Map(b.datasets.map((d) => [d, [ws.obligations.get('research-aggregates')!]])), rowFilters: loaded.rowFilters, defaultRowCap: 10_000,
  });
}
/** What the engine returns for the governed plan, before disclosure control (hidden units last). */
async function governedResult(sql: string): Promise<{ rendered: string; result: EngineResult }> {
  const rendered = renderSelect(planned(sql).query, engine.dialect);
  return { rendered, result: await engine.run(rendered, { timeoutMs: 20_000 }) };
}
/** What the research contractor would be released (before differencing and auditing). */
async function released(sql: string): Promise<(readonly CellValue[])[]> {
  const p = planned(sql);
  const result = await engine.run(renderSelect(p.query, engine.dialect), { timeoutMs: 20_000 });
  return [...protectRelease(p.disclosure!, result, p.rowLimit).rows];
}
async function truthResult(sql: string): Promise<EngineResult> {
  return engine.run(sql.replaceAll(/\b(claims|patients|encounters)\b/g, (t) => engine.dialect.source(t)), { timeoutMs: 20_000 });
}
async function truth(sql: string): Promise<CellValue[][]> {
  return (await truthResult(sql)).rows as CellValue[][];
}
const n = (v: CellValue | undefined): number => Number(v);

describe('per-unit contribution bounding under aggregation-only', () => {
  it('a patient with 400 maximum claims adds at most C of them to the payer\'s count and sum', async () => {
    const [[othersRows, othersSum, maxPerOther]] = await truth(`SELECT count(*), sum(amount_billed), (SELECT max(k) FROM (SELECT count(*) AS k FROM claims WHERE payer = 'Medicare' AND patient_id <> ${TARGET} GROUP BY patient_id)) FROM claims WHERE payer = 'Medicare' AND patient_id <> ${TARGET}`);
    assert.ok(n(maxPerOther) <= C, 'ordinary patients have at most C Medicare claims: their rows are unchanged');
    const rows = await released('SELECT payer, count(*) AS n, sum(amount_billed) AS s FROM claims GROUP BY payer');
    const medicare = rows.find((r) => r[0] === 'Medicare')!;
    assert.ok(medicare, 'the Medicare cell is released');
    assert.equal(n(medicare[1]), n(othersRows) + C, 'the target counts C rows, not 400');
    assert.ok(Math.abs(n(medicare[2]) - (n(othersSum) + C * AMOUNT)) < 1e-3, 'and C claims\' worth of sum');
    const [[allSum]] = await truth(`SELECT sum(amount_billed) FROM claims WHERE payer = 'Medicare'`);
    assert.ok(n(allSum) - n(medicare[2]) >= (HEAVY - C) * AMOUNT - 1e-3, 'the unbounded total would have been dominated by the target');
  });

  it('a join to the patients table cannot multiply the target either', async () => {
    const rows = await released('SELECT p.sex, count(*) AS n, sum(c.amount_billed) AS s FROM patients p JOIN claims c ON p.patient_id = c.patient_id GROUP BY p.sex');
    const [[sex]] = await truth(`SELECT sex FROM patients WHERE patient_id = ${TARGET}`);
    const [[othersRows, othersSum]] = await truth(`SELECT count(*), sum(c.amount_billed) FROM patients p JOIN claims c ON p.patient_id = c.patient_id WHERE p.sex = '${sex}' AND p.patient_id <> ${TARGET}`);
    const cell = rows.find((r) => r[0] === sex)!;
    assert.equal(n(cell[1]), n(othersRows) + C);
    assert.ok(Math.abs(n(cell[2]) - (n(othersSum) + C * AMOUNT)) < 1e-3);
  });

  it('honest queries where each patient has few rows per group are exactly the truth', async () => {
    const rows = await released('SELECT status, count(*) AS n, sum(amount_paid) AS s FROM claims WHERE payer <> \'Medicare\' GROUP BY status ORDER BY status');
    const t = await truth('SELECT status, count(*), sum(amount_paid) FROM claims WHERE payer <> \'Medicare\' GROUP BY status ORDER BY status');
    assert.ok(rows.length > 0);
    assert.deepEqual(rows.map((r) => [r[0], n(r[1]), Math.round(n(r[2]))]), t.filter((r) => rows.some((x) => x[0] === r[0])).map((r) => [r[0], n(r[1]), Math.round(n(r[2]))]));
  });

  it('the threshold still counts distinct patients: 10 patients with 400 rows between them make no publishable group', async () => {
    const [[units, all]] = await truth(`SELECT count(DISTINCT patient_id), count(*) FROM claims WHERE payer = 'Shadow'`);
    assert.equal(n(units), 10);
    assert.equal(n(all), 400);
    const rows = await released('SELECT payer, count(*) AS n FROM claims GROUP BY payer');
    assert.ok(rows.some((r) => r[0] === 'Medicare'));
    assert.equal(rows.find((r) => r[0] === 'Shadow'), undefined, 'a group below 11 patients is withheld whatever its row count');
  });
});

describe('one aggregate per patient and group, then the group aggregate (issue 15)', () => {
  it('plans a bounded query as two GROUP BYs: no row ranking, no count(DISTINCT) over the base rows', async () => {
    const { rendered } = await governedResult('SELECT payer, count(*) AS n, sum(amount_billed) AS s, avg(amount_paid) AS a FROM claims GROUP BY payer');
    assert.doesNotMatch(rendered, /row_number|OVER \(/i, 'no window over the rows');
    assert.doesNotMatch(rendered, /DISTINCT/i, 'distinct patients are counted as the cells of one group');
    assert.equal(rendered.match(/GROUP BY/g)?.length, 2, 'one pre-aggregation per (patient, payer), then one per payer');
  });

  it('keeps the types and the exact values of the user\'s aggregates where nobody exceeds C rows', async () => {
    const sql = "SELECT department, count(*) AS n, count(length_of_stay_days) AS k, sum(length_of_stay_days) AS days, avg(length_of_stay_days) AS mean_days, sum(cost) AS cost, avg(cost) AS mean_cost FROM encounters WHERE department <> 'cardiology' GROUP BY department ORDER BY department";
    const { result } = await governedResult(sql);
    const plain = await truthResult(sql);
    assert.deepEqual(result.columns.slice(0, plain.columns.length).map((c) => c.type), plain.columns.map((c) => c.type), 'count stays BIGINT, an integer sum HUGEINT, avg DOUBLE');
    assert.ok(plain.rows.length > 3);
    assert.equal(result.rows.length, plain.rows.length);
    plain.rows.forEach((row, i) => row.forEach((v, j) => {
      const got = result.rows[i]![j];
      if (typeof v === 'number') assert.ok(Math.abs(n(got) - v) <= 1e-9 * Math.max(1, Math.abs(v)), `${plain.columns[j]!.name} of ${row[0]}: ${got} vs ${v}`);
      else assert.equal(got, v);
    }));
  });

  it('counts a patient with 400 of the longest, dearest stays as C stays at their own mean in an integer sum and an average', async () => {
    const sql = "SELECT department, count(*) AS n, sum(length_of_stay_days) AS days, avg(length_of_stay_days) AS mean_days, avg(cost) AS mean_cost FROM encounters GROUP BY department";
    const [[rows, days, cost, maxPerOther]] = await truth(`SELECT count(*), sum(length_of_stay_days), sum(cost), (SELECT max(k) FROM (SELECT count(*) AS k FROM encounters WHERE department = 'cardiology' AND patient_id <> ${TARGET} GROUP BY patient_id)) FROM encounters WHERE department = 'cardiology' AND patient_id <> ${TARGET}`);
    assert.ok(n(maxPerOther) <= C);
    const cell = (await released(sql)).find((r) => r[0] === 'cardiology')!;
    assert.equal(n(cell[1]), n(rows) + C);
    assert.equal(n(cell[2]), n(days) + C * LONGEST, 'an integer sum stays exact: C stays of the longest');
    assert.ok(Math.abs(n(cell[3]) - (n(days) + C * LONGEST) / (n(rows) + C)) < 1e-9, 'the mean weighs the target as C stays');
    assert.ok(Math.abs(n(cell[4]) - (n(cost) + C * DEAREST) / (n(rows) + C)) < 1e-6);
    const { result } = await governedResult(sql);
    assert.equal(result.columns[2]!.type, 'HUGEINT', 'the scaled integer sum keeps the type of sum(INTEGER)');
  });

  it('keeps a LEFT JOIN\'s patients without claims and bounds the heavy patient by their claims', async () => {
    const sql = 'SELECT p.sex, count(*) AS n, count(c.claim_id) AS with_claim FROM patients p LEFT JOIN claims c ON p.patient_id = c.patient_id GROUP BY p.sex';
    const [[sex]] = await truth(`SELECT sex FROM patients WHERE patient_id = ${TARGET}`);
    const [[others, othersWith]] = await truth(`SELECT count(*), count(c.claim_id) FROM patients p LEFT JOIN claims c ON p.patient_id = c.patient_id WHERE p.sex = '${sex}' AND p.patient_id <> ${TARGET}`);
    const [[lonely]] = await truth(`SELECT count(*) FROM patients p WHERE p.sex = '${sex}' AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.patient_id = p.patient_id)`);
    assert.ok(n(lonely) >= LONELY, 'the planted patients without claims are in the target\'s group');
    const cell = (await released(sql)).find((r) => r[0] === sex)!;
    assert.equal(n(cell[1]), n(others) + C, 'every patient without a claim still counts one row');
    assert.equal(n(cell[2]), n(othersWith) + C);
  });

  it('does not bound rows that belong to no one, and counts no unit for them', async () => {
    const { result } = await governedResult('SELECT payer, count(*) AS n FROM claims GROUP BY payer');
    const orphan = result.rows.find((r) => r[0] === 'Orphan')!;
    assert.deepEqual([n(orphan[1]), n(orphan[2])], [100, 0], '100 rows without a patient: all counted, no patient behind them');
    assert.equal((await released('SELECT payer, count(*) AS n FROM claims GROUP BY payer')).find((r) => r[0] === 'Orphan'), undefined, 'and the group is withheld');
  });

  it('answers 0, not NULL, for a count over no rows (one group without GROUP BY)', async () => {
    const { result } = await governedResult("SELECT count(*) AS n, count(amount_billed) AS k FROM claims WHERE payer = 'nobody'");
    assert.deepEqual(result.rows.map((r) => r.map(n)), [[0, 0, 0]]);
  });

  it('keeps the row-ranking plan for stddev, which cannot be rebuilt from per-patient partials, and still bounds it', async () => {
    const { rendered } = await governedResult('SELECT payer, count(*) AS n, stddev(amount_billed) AS sd FROM claims GROUP BY payer');
    assert.match(rendered, /row_number\(\) OVER/);
    const [[othersRows]] = await truth(`SELECT count(*) FROM claims WHERE payer = 'Medicare' AND patient_id <> ${TARGET}`);
    const medicare = (await released('SELECT payer, count(*) AS n, stddev(amount_billed) AS sd FROM claims GROUP BY payer')).find((r) => r[0] === 'Medicare')!;
    assert.equal(n(medicare[1]), n(othersRows) + C);
  });

  it('evaluates the user\'s HAVING on the bounded aggregates, only for groups that reach the threshold', async () => {
    const [[othersRows]] = await truth(`SELECT count(*) FROM claims WHERE payer = 'Medicare' AND patient_id <> ${TARGET}`);
    const at = n(othersRows) + C;
    const kept = await released(`SELECT payer, count(*) AS n FROM claims GROUP BY payer HAVING count(*) <= ${at}`);
    assert.ok(kept.some((r) => r[0] === 'Medicare'), 'HAVING sees the bounded count, not the raw one');
    const dropped = await released(`SELECT payer, count(*) AS n FROM claims GROUP BY payer HAVING count(*) < ${at}`);
    assert.equal(dropped.find((r) => r[0] === 'Medicare'), undefined);
  });
});
