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

const col = (name: string, type: ColumnDef['type'] = 'BIGINT', extra: Partial<ColumnDef> = {}): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds: null, description: null, ...extra });
const ds = (name: string, oneRowPerUnit = false, extra: ColumnDef[] = []): DatasetDef => ({ name, description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'pid', ...(oneRowPerUnit ? { oneRowPerUnit: true } : {}), region: null, owner: null, purposes: [], columns: [col('pid'), col('v'), col('day', 'DATE'), col('at', 'TIMESTAMP'), col('email', 'VARCHAR'), ...extra] });
const datasets = new Map([['big', ds('big')], ['huge', ds('huge')], ['people', ds('people', true)], ['unsized', ds('unsized')],
  ['t1', ds('t1')], ['t2', ds('t2')], ['t3', ds('t3')],
  // A key declared by the owner, and a declared-unique column the caller sees only hashed.
  ['keyed', ds('keyed', false, [col('id', 'BIGINT', { unique: true }), col('code', 'VARCHAR', { unique: true, mask: { kind: 'hash' } })])]]);
const rowEstimates = new Map([['big', 100_000], ['huge', 2_000_000], ['people', 50_000], ['t1', 20_000], ['t2', 20_000], ['t3', 20_000], ['keyed', 50_000]]);

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

  it('estimates a join written in WHERE like the same join written with ON', () => {
    const where = 'SELECT count(*) FROM t1 a, t2 b, t3 c WHERE a.pid = b.v AND b.pid = c.v';
    assert.ok(!costly(where), 'three 20,000-row tables chained by WHERE equalities are admitted');
    assert.ok(!costly('SELECT count(*) FROM t1 a JOIN t2 b ON a.pid = b.v JOIN t3 c ON b.pid = c.v'));
    assert.ok(costly(where, 20_000 * 100 * 100 - 1) && !costly(where, 20_000 * 100 * 100), 'the same fan-out bound as ON: 20,000 × 100 × 100');
    assert.ok(!costly('SELECT count(*) FROM t1 a CROSS JOIN t2 b JOIN t3 c ON b.pid = c.v WHERE a.pid = b.v'), 'WHERE also reaches an explicit CROSS JOIN');
    assert.ok(!costly('SELECT count(*) FROM t1 a, t3 c, t2 b WHERE a.pid = b.v AND b.pid = c.v'), 'whatever order the tables are written in');
    assert.ok(costly('SELECT count(*) FROM t1 a, t3 c, t2 b WHERE a.pid = b.v AND b.pid = c.v', 20_000 * 100 * 100 - 1), 'and with the same bound');
  });

  it('still refuses a cross join whose WHERE only filters, or relates one side to itself', () => {
    assert.ok(costly('SELECT count(*) FROM t1 a, t2 b, t3 c WHERE a.v = 1 AND b.v < 5'));
    assert.ok(costly('SELECT count(*) FROM t1 a, t2 b, t3 c WHERE a.pid = b.v AND a.v = a.pid'), 'c is joined to nothing');
    assert.ok(costly('SELECT count(*) FROM t1 a, t2 b, t3 c WHERE a.pid = b.v OR b.pid = c.v'), 'OR is no join condition');
    assert.ok(costly('SELECT count(*) FROM t1 a, t2 b, t3 c WHERE a.pid + 0 = b.v AND b.pid = c.v'), 'an expression is no hash key');
  });

  it('refuses the attacker\'s cross join guarded by a predicate on one person, whatever the value', () => {
    for (const v of [0, 1, 987654321]) {
      assert.ok(costly(`SELECT count(*) AS n FROM big a CROSS JOIN huge b CROSS JOIN big c WHERE a.pid = 42 AND a.v >= ${v}`));
      assert.ok(costly(`SELECT count(*) AS n FROM big a, huge b, big c WHERE a.pid = 42 AND a.v >= ${v} AND c.pid = 42`));
    }
  });

  it('does not pass WHERE to the nullable side of an outer join, but does to its preserved side', () => {
    assert.ok(!costly('SELECT count(*) FROM big x JOIN (big a CROSS JOIN huge b) ON x.pid = a.pid WHERE a.pid = b.pid', 1e11));
    assert.ok(costly('SELECT count(*) FROM big x LEFT JOIN (big a CROSS JOIN huge b) ON x.pid = a.pid WHERE a.pid = b.pid', 1e11));
    assert.ok(costly('SELECT count(*) FROM (big a CROSS JOIN huge b) RIGHT JOIN big x ON x.pid = a.pid WHERE a.pid = b.pid', 1e11));
    assert.ok(costly('SELECT count(*) FROM big x FULL JOIN (big a CROSS JOIN huge b) ON x.pid = a.pid WHERE a.pid = b.pid', 1e11));
    assert.ok(!costly('SELECT count(*) FROM big a CROSS JOIN huge b LEFT JOIN people x ON x.pid = a.pid WHERE a.pid = b.pid'), 'a and b are preserved');
  });

  it('estimates an equality the renderer must guard (DATE with TIMESTAMP) as the cross product it runs as', () => {
    assert.ok(!costly('SELECT count(*) FROM big a, huge b WHERE a.day = b.day'), 'DATE = DATE is a hash key');
    assert.ok(costly('SELECT count(*) FROM big a, huge b WHERE a.day = b.at'), 'DATE = TIMESTAMP in WHERE is guarded');
    assert.ok(costly('SELECT count(*) FROM big a JOIN huge b ON a.day = b.at'), 'and in ON');
    assert.ok(!costly('SELECT count(*) FROM big a JOIN huge b ON a.day = b.at AND a.pid = b.pid'), 'a bare key beside it still makes a hash join');
    assert.ok(costly('SELECT count(*) FROM big a, (SELECT at FROM huge) b WHERE a.day = b.at'), 'types are followed through a derived table');
    assert.ok(costly('WITH h AS (SELECT at FROM huge) SELECT count(*) FROM big a, h WHERE a.day = h.at'), 'and through a CTE');
    assert.ok(!costly('WITH h AS (SELECT day FROM huge) SELECT count(*) FROM big WHERE pid IN (SELECT a.pid FROM big a, h WHERE a.day = h.day)'), 'a CTE seen from an expression subquery keeps its types');
  });

  it('gives an equi-join on a column declared unique a fan-out of one, unless the caller sees it masked', () => {
    const limit = 2_000_000;
    assert.ok(!costly('SELECT count(*) FROM huge b JOIN keyed k ON b.v = k.id', limit), 'each huge row meets at most one keyed row');
    assert.ok(!costly('SELECT count(*) FROM huge b, keyed k WHERE k.id = b.v', limit), 'written in WHERE too');
    assert.ok(costly('SELECT count(*) FROM huge b JOIN keyed k ON b.pid = k.pid', limit), 'an undeclared column keeps the fan-out of 100');
    assert.ok(costly('SELECT count(*) FROM huge b JOIN keyed k ON b.email = k.code', limit), 'a hash mask may map two values to one');
    assert.ok(costly('SELECT count(*) FROM huge b JOIN (keyed k CROSS JOIN big c) ON b.v = k.id', 1e11), 'a key is unique in its dataset, not in a cross join');
  });

  it('keeps a key through a join that does not repeat its rows, and drops it through one that does', () => {
    // a ⋈ b on b's key: each a row meets at most one b row, so a.id is still a key of the join.
    assert.ok(!costly('SELECT count(*) FROM keyed a, keyed b, big c WHERE b.id = a.v AND c.v = a.id', 1e6));
    // a ⋈ b on a's key: many b rows may meet one a row, so a.id repeats and c meets up to 100 of each.
    assert.ok(costly('SELECT count(*) FROM keyed a, keyed b, big c WHERE a.id = b.v AND c.v = a.id', 1e6));
    assert.ok(!costly('SELECT count(*) FROM keyed a, keyed b, big c WHERE a.id = b.v AND c.v = b.id', 1e6), 'b.id survives: b is joined to a on a\'s key');
  });

  it('gives no estimate, and no refusal, for a dataset whose size was not recorded', () => {
    assert.ok(!costly('SELECT count(*) FROM unsized a CROSS JOIN huge b'));
  });
});
