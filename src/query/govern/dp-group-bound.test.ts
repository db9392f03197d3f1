/**
 * The DP plan's ≤ L groups per unit (issue 15, session 6): the per-unit ranking window is
 * left out only when the query cannot reach more than L groups — no GROUP BY key, or every
 * key restricted to a public domain whose sizes multiply to ≤ L. Otherwise the ranking stays,
 * and a unit that spans more than L groups still counts in only L of them (run on DuckDB:
 * the test fails if the bound were dropped). Without the ranking the numbers are the same
 * as with it, because no unit can exceed L groups there.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance, type DuckDBConnection, type DuckDBInstance as Instance } from '@duckdb/node-api';
import type { ColumnDef, ColumnType, DatasetDef, DifferentialPrivacyDef, ObligationDef } from '../../model/types.ts';
import { bindQuery } from '../bind.ts';
import { loadParser, parseSql } from '../parse.ts';
import { duckdbDialect } from '../render/duckdb.ts';
import { quoteIdent, renderSelect } from '../render/sql.ts';
import { govern } from './index.ts';

const col = (name: string, type: ColumnType, bounds: [number, number] | null = null): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds, description: null });
const visits: DatasetDef = {
  name: 'visits', description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'patient_id', region: null, owner: null, purposes: [],
  columns: [col('patient_id', 'BIGINT'), col('ward', 'VARCHAR'), col('shift', 'VARCHAR'), col('cost', 'DOUBLE', [0, 100])],
};
const dpDef = (L: number, publicGroups: Record<string, string[]>): DifferentialPrivacyDef => ({
  mechanism: 'gaussian', epsilon: 1, delta: 1e-6, maxGroupsPerUnit: L, maxRowsPerUnitPerGroup: 2, publicGroups,
  budget: { epsilon: 10, delta: 1e-5, window: 'month', per: 'principal' },
}) as unknown as DifferentialPrivacyDef;

function rendered(sql: string, dp: DifferentialPrivacyDef): string {
  const datasets = new Map([['visits', visits]]);
  const b = bindQuery(parseSql(sql), { dataset: (n) => datasets.get(n) });
  const o = { name: 'o', rowFilter: null, aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: ['patient_id'], differentialPrivacy: dp } as unknown as ObligationDef;
  const g = govern(b, {
    principal: { id: 'rhea', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] },
    datasets, obligations: new Map(b.datasets.map((d) => [d, [o]])), rowFilters: new Map(), defaultRowCap: 100,
  });
  return renderSelect(g.query, duckdbDialect({ sourceOf: (n) => quoteIdent(n), hashKey: Buffer.from('k') }));
}

let db: Instance;
let c: DuckDBConnection;
const rows = async (q: string) => (await c.runAndReadAll(`${q} ORDER BY ALL`)).getRowsJS().map((r) => r.map((x) => (typeof x === 'bigint' ? Number(x) : x)));

before(async () => {
  await loadParser();
  db = await DuckDBInstance.create(':memory:');
  c = await db.connect();
  // 200 ordinary patients with one visit in ward a; patient 0 visits every ward (a–e) and
  // both shifts, 10 times each: with L = 1 it must count in one ward only.
  await c.run(`CREATE TABLE visits AS
    SELECT i AS patient_id, 'a' AS ward, 'day' AS shift, 10.0::DOUBLE AS cost FROM range(1, 201) r(i)
    UNION ALL
    SELECT 0, chr(97 + (i % 5)::INTEGER), CASE WHEN i % 2 = 0 THEN 'day' ELSE 'night' END, 50.0 FROM range(100) r(i)`);
});
after(() => { c.closeSync(); db.closeSync(); });

describe('the DP plan bounds each unit to L groups', () => {
  it('keeps the ranking when the query can reach more groups than L, and a unit spanning five wards counts in one', async () => {
    const sql = rendered('SELECT ward, count(*) AS n, sum(cost) AS s FROM visits GROUP BY ward', dpDef(1, { ward: ['a', 'b', 'c', 'd', 'e'] }));
    assert.match(sql, /row_number\(\) OVER \(PARTITION BY "__gh_pug"\."__gh_u"/);
    const out = await rows(sql);
    const total = out.reduce((n, r) => n + Number(r[1]), 0);
    // 200 rows from the ordinary patients, plus at most C = 2 rows of patient 0 in ONE ward.
    assert.equal(total, 202, `rows over all wards: ${JSON.stringify(out)}`);
    const baseline = (ward: unknown) => (ward === 'a' ? 200 : 0);
    assert.equal(out.filter((r) => Number(r[1]) > baseline(r[0])).length, 1, 'patient 0 counts in exactly one ward');
  });

  it('keeps the ranking for a key without a public domain, whatever L is', () => {
    assert.match(rendered('SELECT shift, count(*) AS n FROM visits GROUP BY shift', dpDef(5, { ward: ['a'] })), /row_number/);
  });

  it('leaves the ranking out for a global aggregate, with the same numbers as the ranked plan', async () => {
    const sql = rendered('SELECT count(*) AS n, sum(cost) AS s FROM visits', dpDef(1, {}));
    assert.doesNotMatch(sql, /row_number|__gh_ranked/, sql);
    // 200 ordinary rows + patient 0 bounded to C = 2 rows (at its own mean, 50).
    assert.deepEqual(await rows(sql), [[202, 2100]]);
  });

  it('leaves the ranking out when the public domains multiply to at most L, and the numbers match the ranked plan', async () => {
    const groups = { ward: ['a', 'b', 'c'], shift: ['day', 'night'] };
    const unranked = rendered('SELECT ward, shift, count(*) AS n, sum(cost) AS s FROM visits GROUP BY ward, shift', dpDef(6, groups));
    const ranked = rendered('SELECT ward, shift, count(*) AS n, sum(cost) AS s FROM visits GROUP BY ward, shift', dpDef(5, groups));
    assert.doesNotMatch(unranked, /row_number/, unranked);
    assert.match(ranked, /row_number/, 'six possible groups exceed L = 5');
    // With L = 6 nobody can exceed L groups: the unranked plan equals the same bound ranked.
    const rankedL6 = ranked.replace(/"__gh_rank" <= 5\b/, '"__gh_rank" <= 6');
    assert.notEqual(rankedL6, ranked);
    assert.deepEqual(await rows(unranked), await rows(rankedL6));
  });
});
