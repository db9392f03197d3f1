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
import type { CellValue } from '../src/engine/engine.ts';
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
    ['patients', `SELECT * REPLACE (${TARGET}::BIGINT AS patient_id) FROM (SELECT * FROM read_parquet('${data}/patients.parquet') LIMIT 1)`],
  ] as const) {
    await c.run(`COPY (SELECT * FROM read_parquet('${data}/${t}.parquet') UNION ALL BY NAME ${extra}) TO '${data}/${t}.new.parquet' (FORMAT parquet)`);
    await c.run(`COPY (SELECT * FROM read_parquet('${data}/${t}.new.parquet')) TO '${data}/${t}.parquet' (FORMAT parquet)`);
  }
  c.closeSync(); db.closeSync();
  loaded = await loadWorkspace(join(dir, 'ws'));
  engine = await DuckDbEngine.open(loaded.workspace, { poolSize: 1 });
});
after(async () => { await engine?.close(); rmSync(dir, { recursive: true, force: true }); });

/** What the research contractor would be released (before differencing and auditing). */
async function released(sql: string): Promise<(readonly CellValue[])[]> {
  const ws = loaded.workspace;
  const b = bindQuery(parseSql(sql), { dataset: (n) => ws.datasets.get(n) });
  const p = govern(b, {
    principal: { id: 'rhea', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] },
    datasets: ws.datasets, obligations: new Map(b.datasets.map((d) => [d, [ws.obligations.get('research-aggregates')!]])), rowFilters: loaded.rowFilters, defaultRowCap: 10_000,
  });
  const result = await engine.run(renderSelect(p.query, engine.dialect), { timeoutMs: 20_000 });
  return [...protectRelease(p.disclosure!, result, p.rowLimit).rows];
}
async function truth(sql: string): Promise<CellValue[][]> {
  return (await engine.run(sql.replaceAll(/\b(claims|patients)\b/g, (t) => engine.dialect.source(t)), { timeoutMs: 20_000 })).rows as CellValue[][];
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
