/**
 * `oneRowPerUnit` (issue 15): where the owner declares one row per privacy unit, the plans
 * skip per-unit work that cannot change the numbers — DP's per-unit bounding stage and
 * ranking window, aggregation-only's DISTINCT — and give the same aggregates on DuckDB as
 * the general plan. A join (which can repeat a unit's row) keeps the general plan.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance } from '@duckdb/node-api';
import type { ColumnDef, ColumnType, DatasetDef, DifferentialPrivacyDef, ObligationDef } from '../../model/types.ts';
import { bindQuery } from '../bind.ts';
import { loadParser, parseSql } from '../parse.ts';
import { duckdbDialect } from '../render/duckdb.ts';
import { quoteIdent, renderSelect } from '../render/sql.ts';
import { govern } from './index.ts';

const col = (name: string, type: ColumnType, bounds: [number, number] | null = null): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds, description: null });
const patients = (oneRow: boolean): DatasetDef => ({
  name: 'patients', description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'patient_id', region: null, owner: null, purposes: [],
  columns: [col('patient_id', 'BIGINT'), col('sex', 'VARCHAR'), col('age', 'INTEGER', [0, 100])], ...(oneRow ? { oneRowPerUnit: true } : {}),
});
const claims: DatasetDef = {
  name: 'claims', description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'patient_id', region: null, owner: null, purposes: [],
  columns: [col('patient_id', 'BIGINT'), col('amount', 'DOUBLE')],
};
const dp: DifferentialPrivacyDef = { mechanism: 'gaussian', epsilon: 1, delta: 1e-6, maxGroupsPerUnit: 2, maxRowsPerUnitPerGroup: 3, publicGroups: { sex: ['f', 'm'] }, budget: { epsilon: 10, delta: 1e-5, window: 'month', per: 'principal' } } as unknown as DifferentialPrivacyDef;
const obligation = (o: Partial<ObligationDef>): ObligationDef => ({ name: 'o', rowFilter: null, aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: ['patient_id'], ...o }) as ObligationDef;

function governed(sql: string, oneRow: boolean, o: ObligationDef) {
  const datasets = new Map([['patients', patients(oneRow)], ['claims', claims]]);
  const b = bindQuery(parseSql(sql), { dataset: (n) => datasets.get(n) });
  return govern(b, {
    principal: { id: 'rhea', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] },
    datasets, obligations: new Map(b.datasets.map((d) => [d, [o]])), rowFilters: new Map(), defaultRowCap: 100,
  });
}

const dialect = duckdbDialect({ sourceOf: (n) => quoteIdent(n), hashKey: Buffer.from('k') });

before(loadParser);

describe('datasets with one row per unit', () => {
  it('DP skips the per-unit stage and the ranking window, and the engine returns the same bounded aggregates', async () => {
    const sql = 'SELECT sex, count(*) AS n, sum(age) AS s, avg(age) AS a, median(age) AS m FROM patients GROUP BY sex';
    const general = governed(sql, false, obligation({ differentialPrivacy: dp }));
    const single = governed(sql, true, obligation({ differentialPrivacy: dp }));
    const one = renderSelect(single.query, dialect), all = renderSelect(general.query, dialect);
    assert.doesNotMatch(one, /row_number|__gh_pug|__gh_ranked/, one);
    assert.match(all, /row_number/);
    assert.deepEqual(single.dp!.measures, general.dp!.measures, 'the same measures and sensitivities');
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      await c.run(`CREATE TABLE patients AS SELECT i AS patient_id, CASE WHEN i % 3 = 0 THEN 'f' ELSE 'm' END AS sex, CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 37) % 130 END::INTEGER AS age FROM range(5000) r(i)`);
      const rows = async (q: string) => (await c.runAndReadAll(`${q} ORDER BY 1`)).getRowsJS().map((r) => r.map((x) => (typeof x === 'bigint' ? Number(x) : x)));
      assert.deepEqual(await rows(one), await rows(all));
    } finally { c.closeSync(); db.closeSync(); }
  });

  it('aggregation-only counts units without DISTINCT on the dataset alone, and with DISTINCT once it is joined', () => {
    const agg = obligation({ aggregationOnly: { minGroupSize: 11 } });
    assert.match(renderSelect(governed('SELECT sex, count(*) AS n FROM patients GROUP BY sex', true, agg).query, dialect), /count\("patients"\."__gh_unit"\)/);
    // Without the declaration, rows per unit are bounded by one aggregate per (unit, group):
    // each unit is one cell of its group, so the cells are counted without DISTINCT.
    const many = renderSelect(governed('SELECT sex, count(*) AS n FROM patients GROUP BY sex', false, agg).query, dialect);
    assert.match(many, /count\("__gh_cells"\."__gh_u0"\)/);
    assert.match(many, /GROUP BY "patients"\."sex", "patients"\."__gh_unit"/);
    // Once joined, a cell is keyed by both units and one patient can span cells: DISTINCT.
    const joined = renderSelect(governed('SELECT p.sex, count(*) AS n FROM patients p JOIN claims c ON p.patient_id = c.patient_id GROUP BY p.sex', true, agg).query, dialect);
    assert.doesNotMatch(joined, /count\("__gh_cells"\."__gh_u\d"\)/, 'a join can repeat a patient row');
    assert.match(joined, /count\(DISTINCT "__gh_cells"\."__gh_u0"\)/);
    assert.match(joined, /PARTITION BY "p"\."__gh_unit"/);
    assert.doesNotMatch(renderSelect(governed('SELECT sex, count(*) AS n FROM patients GROUP BY sex', true, agg).query, dialect), /row_number/, 'one row per unit, alone: nothing to bound');
  });
});
