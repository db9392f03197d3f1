/**
 * Bind-time type check (typecheck.ts): a comparison the engine would resolve with a per-row
 * cast fails for every row or none, at bind, never at run time depending on data.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../errors.ts';
import type { ColumnDef, ColumnType, DatasetDef } from '../model/types.ts';
import { bindQuery } from './bind.ts';
import { govern } from './govern/index.ts';
import { loadParser, parseSql } from './parse.ts';
import { duckdbDialect } from './render/duckdb.ts';
import { renderSelect } from './render/sql.ts';

const col = (name: string, type: ColumnType): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds: null, description: null });
const people: DatasetDef = {
  name: 'people', description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'id', region: null, owner: null, purposes: [],
  columns: [col('id', 'BIGINT'), col('code', 'VARCHAR'), col('v', 'INTEGER'), col('dob', 'DATE'), col('ok', 'BOOLEAN'), col('amount', 'DOUBLE')],
};
const datasets = new Map([['people', people]]);
const bind = (sql: string) => bindQuery(parseSql(sql), { dataset: (n) => datasets.get(n) });
const invalid = (sql: string): void => {
  assert.throws(() => bind(sql), (e: unknown) => e instanceof GatehouseError && e.code === 'SQL_INVALID' && e.hint !== null, sql);
};

before(loadParser);

describe('the bind-time type check', () => {
  it('refuses comparing a text column with an integer column (the error oracle), whatever the rest of the WHERE', () => {
    invalid('SELECT count(*) FROM people WHERE id = 7 AND v >= 40 AND code = v');
    invalid('SELECT count(*) FROM people a JOIN people b ON a.code = b.id');
    invalid('SELECT count(*) FROM people WHERE code IN (SELECT v FROM people)');
    invalid('SELECT count(*) FROM people WHERE v BETWEEN code AND 3');
    invalid('SELECT count(*) FROM people WHERE code > dob');
  });

  it('refuses arithmetic, functions and conditions on the wrong kind of value', () => {
    invalid('SELECT code + 1 FROM people');
    invalid('SELECT sum(code) FROM people');
    invalid('SELECT lower(v) FROM people');
    invalid('SELECT count(*) FROM people WHERE v');
    invalid("SELECT CASE WHEN ok THEN v ELSE dob END FROM people");
    invalid('SELECT coalesce(v, code) FROM people');
  });

  it('accepts matching types, literals the engine converts once at plan time, and explicit casts', () => {
    for (const sql of [
      "SELECT count(*) FROM people WHERE code = 'x' AND v >= 3 AND dob > '1990-01-01' AND amount < '12.5'",
      'SELECT count(*) FROM people WHERE CAST(code AS BIGINT) = v',
      "SELECT code || v AS s, v + amount AS t, dob + INTERVAL '1 day' AS d, year(dob) AS y FROM people",
      'SELECT count(*) FROM people a JOIN people b ON a.id = b.id WHERE a.v < b.amount',
      "SELECT CASE WHEN ok THEN v ELSE NULL END AS c, substr(code, 1, 2) AS s FROM people",
    ]) assert.doesNotThrow(() => bind(sql), sql);
  });

  it('refuses a string literal that could only fail to convert, not one the engine converts', () => {
    invalid("SELECT count(*) FROM people WHERE v = 'seven'");
    invalid("SELECT count(*) FROM people WHERE dob = 'yesterday'");
  });
});

describe('the renderer guard', () => {
  const dialect = duckdbDialect({ sourceOf: () => '"t"', hashKey: Buffer.from('k') });
  it('leaves join keys and same-typed column comparisons plain, and guards each conjunct that can fail on its own', () => {
    const b = bind('SELECT count(*) FROM people a JOIN people b ON a.id = b.id WHERE a.v < b.v AND a.v + b.v > 3');
    const g = govern(b, { principal: { id: 'p', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] }, datasets, obligations: new Map([['people', []]]), rowFilters: new Map(), defaultRowCap: 100 });
    const sql = renderSelect(g.query, dialect);
    assert.match(sql, /ON \("a"\."id" = "b"\."id"\)/);
    // Issue 15: an INTEGER compared with an INTEGER cannot fail, so it stays visible to the
    // optimiser; the sum can overflow on some rows, so it alone is guarded.
    assert.match(sql, /WHERE \("a"\."v" < "b"\."v"\) AND TRY\(\(\("a"\."v" \+ "b"\."v"\) > 3\)\)/);
  });

  it('leaves IN lists and BETWEEN of a column with literals plain, so the engine can push them into the scan, but guards one whose comparand is computed', () => {
    const b = bind('SELECT count(*) FROM people WHERE id IN (1, 2, 3) AND NOT (v BETWEEN 10 AND 20) AND v IN (1, 100 / id) AND id BETWEEN 1 AND v * 1000');
    const g = govern(b, { principal: { id: 'p', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] }, datasets, obligations: new Map([['people', []]]), rowFilters: new Map(), defaultRowCap: 100 });
    const sql = renderSelect(g.query, dialect);
    assert.match(sql, /WHERE \("people"\."id" IN \(1, 2, 3\)\) AND \(NOT \("people"\."v" BETWEEN 10 AND 20\)\) AND TRY\(/);
    // A division by a value from the data and a product that may overflow can fail per row: still guarded.
    assert.match(sql, /TRY\(\("people"\."v" IN \(1, /);
    assert.match(sql, /TRY\(\("people"\."id" BETWEEN 1 AND /);
  });
});
