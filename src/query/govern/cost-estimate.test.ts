/**
 * The join cost bound reads only catalog row counts and the query's shape: the same query
 * shape gets the same answer whatever its literals, and no engine is involved.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../errors.ts';
import type { ColumnDef, DatasetDef } from '../../model/types.ts';
import { bindQuery } from '../bind.ts';
import { loadParser, parseSql } from '../parse.ts';
import { EQUI_JOIN_FAN_OUT } from './cost-estimate.ts';
import { govern } from './index.ts';

const col = (name: string): ColumnDef => ({ name, type: 'BIGINT', classification: 'internal', tags: [], mask: null, bounds: null, description: null });
const ds = (name: string, oneRowPerUnit = false): DatasetDef => ({ name, description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'pid', ...(oneRowPerUnit ? { oneRowPerUnit: true } : {}), region: null, owner: null, purposes: [], columns: [col('pid'), col('v')] });
const datasets = new Map([['big', ds('big')], ['huge', ds('huge')], ['people', ds('people', true)], ['unsized', ds('unsized')]]);
const rowEstimates = new Map([['big', 100_000], ['huge', 2_000_000], ['people', 50_000]]);

function plan(sql: string, maxJoinRows = 1e9) {
  const b = bindQuery(parseSql(sql), { dataset: (n) => datasets.get(n) });
  return govern(b, {
    principal: { id: 'p', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] },
    datasets, obligations: new Map(b.datasets.map((d) => [d, []])), rowFilters: new Map(), defaultRowCap: 100, rowEstimates, maxJoinRows,
  });
}
const costly = (sql: string, limit?: number): boolean => {
  try { plan(sql, limit); return false; } catch (e) { if (e instanceof GatehouseError && e.code === 'QUERY_TOO_COSTLY') return true; throw e; }
};

before(loadParser);

describe('join cost estimate', () => {
  it('refuses a cross join of two large datasets whatever its WHERE clause', () => {
    for (const v of [0, 1, 123456789]) assert.ok(costly(`SELECT count(*) FROM big a CROSS JOIN huge b WHERE a.v = ${v}`));
    assert.ok(costly('SELECT count(*) FROM big a JOIN huge b ON a.v < b.v'), 'a non-equi join is a product');
    assert.ok(costly('SELECT count(*) FROM big a JOIN huge b ON a.pid = b.pid OR a.v = 1'), 'OR is not an equi-join');
  });

  it('estimates an equi-join as the larger side times a bounded fan-out, and 1 on a one-row-per-unit key', () => {
    assert.ok(!costly('SELECT count(*) FROM big a JOIN huge b ON a.pid = b.pid'));
    assert.ok(costly('SELECT count(*) FROM big a JOIN huge b ON a.pid = b.pid', 2_000_000 * EQUI_JOIN_FAN_OUT - 1));
    assert.ok(!costly('SELECT count(*) FROM people p JOIN huge b ON p.pid = b.pid', 2_000_000), 'each row meets at most one person');
  });

  it('finds costly joins in subqueries, CTEs, derived tables and set operations', () => {
    assert.ok(costly('SELECT count(*) FROM big WHERE pid IN (SELECT a.pid FROM big a, huge b)'));
    assert.ok(costly('WITH x AS (SELECT a.pid FROM big a CROSS JOIN huge b) SELECT count(*) FROM x'));
    assert.ok(costly('WITH x AS (SELECT pid FROM huge) SELECT count(*) FROM big a CROSS JOIN x'));
    assert.ok(costly('SELECT count(*) FROM (SELECT pid FROM huge UNION ALL SELECT pid FROM big) u CROSS JOIN big'));
    assert.ok(!costly('SELECT count(*) FROM (SELECT pid FROM huge LIMIT 10) u CROSS JOIN big'), 'a LIMIT caps the estimate');
  });

  it('gives no estimate, and no refusal, for a dataset whose size was not recorded', () => {
    assert.ok(!costly('SELECT count(*) FROM unsized a CROSS JOIN huge b'));
  });
});
