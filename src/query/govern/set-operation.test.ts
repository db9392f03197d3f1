/**
 * Set operations in the query layer (issue 14): the parser's shape, the bind-time checks,
 * obligations in each branch (masks at the source, row filters, join-only), refusal under
 * aggregation-only and DP, and the SQL rendered for DuckDB and PostgreSQL (golden strings).
 * test/set-operations.test.ts runs the same rules end to end on DuckDB.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../errors.ts';
import type { ColumnDef, ColumnType, DatasetDef, MaskSpec, ObligationDef } from '../../model/types.ts';
import { bindQuery } from '../bind.ts';
import { parseSql, loadParser } from '../parse.ts';
import { duckdbDialect } from '../render/duckdb.ts';
import { postgresDialect } from '../render/postgres.ts';
import { renderSelect } from '../render/sql.ts';
import { govern } from './index.ts';

const col = (name: string, type: ColumnType, mask: MaskSpec | null = null): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask, bounds: null, description: null });
const dataset = (name: string, columns: ColumnDef[]): DatasetDef => ({ name, description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'id', region: null, owner: null, purposes: [], columns });
const patients = dataset('patients', [col('id', 'BIGINT'), col('ssn', 'VARCHAR', { kind: 'last4' }), col('region', 'VARCHAR'), col('key', 'VARCHAR')]);
const visits = dataset('visits', [col('id', 'BIGINT'), col('region', 'VARCHAR'), col('cost', 'DOUBLE')]);
const datasets = new Map([['patients', patients], ['visits', visits]]);
const catalog = { dataset: (n: string) => datasets.get(n) };
const obligation = (o: Partial<ObligationDef>): ObligationDef => ({ name: 'o', rowFilter: null, aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: [], ...o });

function governed(sql: string, o: ObligationDef = obligation({}), rowFilter: string | null = null) {
  const b = bindQuery(parseSql(sql), catalog);
  const withFilter = rowFilter ? { ...o, rowFilter } : o;
  return govern(b, {
    principal: { id: 'ivan', kind: 'user', displayName: null, groups: [], attributes: { region: 'east' }, apiKeySha256: [] },
    datasets, obligations: new Map(b.datasets.map((d) => [d, [withFilter]])),
    rowFilters: rowFilter ? new Map([[withFilter.name, parseSql(`SELECT 1 WHERE ${rowFilter}`).where!]]) : new Map(),
    defaultRowCap: 100, columnsUsed: new Set(b.columns),
  });
}
const duck = duckdbDialect({ sourceOf: (d) => `"gh_ds_${d}"`, hashKey: Buffer.from('k') });
const pg = postgresDialect({ sourceOf: (d) => `"src"."${d}"`, hashKey: Buffer.from('k') });
const fails = (fn: () => unknown, code: string, pattern: RegExp): void => {
  assert.throws(fn, (e: unknown) => e instanceof GatehouseError && e.code === code && pattern.test(e.message), String(fn));
};

before(loadParser);

describe('set operations render for DuckDB and PostgreSQL', () => {
  const sql = "SELECT ssn, region FROM patients UNION ALL SELECT ssn, lower(region) FROM patients WHERE region LIKE 'e%' ORDER BY region DESC, 1 LIMIT 5";
  const masked = (src: string) => `(SELECT (CASE WHEN length("ssn") <= 4 THEN repeat('*', length("ssn")) ELSE repeat('*', length("ssn") - 4) || right("ssn", 4) END) AS "ssn", "region" AS "region" FROM ${src} WHERE ("region" = 'east'))`;

  it('renders each branch over its own governed scan (mask and row filter at the source), with the outer ORDER BY and LIMIT', () => {
    const g = governed(sql, obligation({ name: 'region' }), 'region = principal.region');
    assert.equal(renderSelect(g.query, duck),
      `SELECT "gh_set"."ssn" AS "ssn", "gh_set"."region" AS "region" FROM ((SELECT "patients"."ssn" AS "ssn", "patients"."region" AS "region" FROM ${masked('"gh_ds_patients"')} AS "patients") UNION ALL (SELECT "patients"."ssn" AS "ssn", TRY(lower("patients"."region")) AS "lower" FROM ${masked('"gh_ds_patients"')} AS "patients" WHERE TRY(("patients"."region" LIKE 'e%')))) AS "gh_set" ORDER BY "gh_set"."region" DESC, "gh_set"."ssn" ASC LIMIT 5`);
    assert.deepEqual(g.obligationsApplied, ['mask:patients.ssn=last4', 'rowFilter:patients(region)', 'rowCap:100']);
  });

  it('renders the same tree for PostgreSQL, with EXCEPT ALL / INTERSECT spelled as written', () => {
    const g = governed("SELECT region FROM visits EXCEPT ALL SELECT region FROM patients INTERSECT SELECT 'x'");
    assert.equal(renderSelect(g.query, pg),
      'SELECT "gh_set"."region" AS "region" FROM ((SELECT "visits"."region" AS "region" FROM (SELECT "region" AS "region" FROM "src"."visits") AS "visits") EXCEPT ALL (SELECT "gh_set"."region" AS "region" FROM ((SELECT "patients"."region" AS "region" FROM (SELECT "region" AS "region" FROM "src"."patients") AS "patients") INTERSECT (SELECT \'x\' AS "col1")) AS "gh_set")) AS "gh_set" LIMIT 101');
  });
});

describe('obligations in every branch', () => {
  it('masks the right branch too, so no branch reads a raw value', () => {
    const g = governed('SELECT region FROM visits UNION SELECT ssn FROM patients');
    const text = renderSelect(g.query, duck);
    assert.match(text, /repeat\('\*'/);
    assert.doesNotMatch(text, /SELECT "ssn" AS "ssn"/);
  });

  it('refuses a join-only column in any branch, named or from a star', () => {
    const o = obligation({ joinOnly: ['key'] });
    fails(() => governed('SELECT region FROM visits UNION SELECT key FROM patients', o), 'OBLIGATION_VIOLATION', /patients\.key.*UNION branch/);
    fails(() => governed('SELECT region FROM visits INTERSECT SELECT upper(key) FROM patients', o), 'OBLIGATION_VIOLATION', /patients\.key/);
    fails(() => governed('SELECT * FROM patients EXCEPT SELECT * FROM patients', o), 'OBLIGATION_VIOLATION', /patients\.key/);
    fails(() => governed('SELECT count(*) FROM (SELECT region FROM visits UNION SELECT key FROM patients) AS t', o), 'OBLIGATION_VIOLATION', /patients\.key/);
    // Linking by the key in a branch's WHERE stays allowed, as in a plain query.
    assert.ok(governed("SELECT region FROM visits UNION SELECT region FROM patients WHERE key = 'k'", o));
  });

  it('refuses a set operation over an aggregation-only or differentially private dataset', () => {
    fails(() => governed('SELECT region, count(*) FROM visits GROUP BY region UNION SELECT region, count(*) FROM visits GROUP BY region', obligation({ aggregationOnly: { minGroupSize: 5 } })), 'OBLIGATION_VIOLATION', /UNION is not available on dataset "visits": it is released only as aggregates/);
    const dp = { epsilon: 1, delta: 1e-6, maxGroupsPerUnit: 1, maxRowsPerUnitPerGroup: 1, publicGroups: {} } as unknown as ObligationDef['differentialPrivacy'];
    fails(() => governed('SELECT count(*) FROM visits EXCEPT SELECT 1', obligation({ differentialPrivacy: dp })), 'OBLIGATION_VIOLATION', /EXCEPT is not available on dataset "visits": it is released only with differential privacy/);
  });

  it('puts the row cap on the whole result, one row over to detect truncation', () => {
    const g = governed('SELECT id FROM visits UNION ALL SELECT id FROM patients', obligation({ rowCap: 7 }));
    assert.equal(g.rowLimit, 7);
    assert.equal(g.query.limit, 8);
    assert.match(renderSelect(g.query, duck), /\) AS "gh_set" LIMIT 8$/);
  });
});

describe('parsing and binding', () => {
  it('refuses ORDER BY or LIMIT inside a branch and ORDER BY an expression of the result', () => {
    fails(() => parseSql('(SELECT id FROM visits LIMIT 5) UNION SELECT id FROM patients'), 'SQL_UNSUPPORTED', /inside one branch of UNION/);
    fails(() => parseSql('SELECT id FROM visits UNION SELECT id FROM patients ORDER BY id + 1'), 'SQL_UNSUPPORTED', /ORDER BY an expression/);
  });

  it('names the result by the left branch and checks the branches against each other', () => {
    const b = bindQuery(parseSql('SELECT id AS n, region FROM visits UNION SELECT id, ssn FROM patients ORDER BY n'), catalog);
    assert.deepEqual(b.query.targets.map((t) => t.alias), ['n', 'region']);
    assert.deepEqual(b.datasets, ['visits', 'patients']);
    fails(() => bindQuery(parseSql('SELECT id FROM visits UNION SELECT id, region FROM patients'), catalog), 'SQL_INVALID', /same number of columns \(here 1 and 2\)/);
    fails(() => bindQuery(parseSql('SELECT cost FROM visits INTERSECT SELECT ssn FROM patients'), catalog), 'SQL_INVALID', /number in one branch and text/);
    fails(() => bindQuery(parseSql('SELECT id FROM visits UNION SELECT id FROM patients ORDER BY 3'), catalog), 'SQL_INVALID', /position 3/);
    // Types are checked inside each branch as in any query.
    fails(() => bindQuery(parseSql('SELECT id FROM visits UNION SELECT region + 1 FROM patients'), catalog), 'SQL_INVALID', /cannot combine text/);
  });

  it('accepts WITH before a set operation and a set operation as a subquery', () => {
    const b = bindQuery(parseSql('WITH e AS (SELECT id FROM visits) SELECT id FROM e UNION SELECT id FROM patients WHERE id IN (SELECT id FROM visits EXCEPT SELECT id FROM e)'), catalog);
    assert.deepEqual(b.datasets, ['visits', 'patients']);
  });
});
