/**
 * Trino dialect: golden tests of the rendered SQL. No Trino server runs here, so these pin
 * the text (docs/trino.md says what is and is not verified).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../errors.ts';
import type { ColumnDef, ColumnType, DatasetDef, MaskSpec } from '../../model/types.ts';
import type { KnownMaskSpec } from '../masks/registry.ts';
import { bindQuery } from '../bind.ts';
import { govern } from '../govern/index.ts';
import { loadParser, parseSql } from '../parse.ts';
import { renderSelect } from './sql.ts';
import { trinoDialect } from './trino.ts';

const col = (name: string, type: ColumnType, mask: KnownMaskSpec | null = null): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask, bounds: null, description: null });
const ds: DatasetDef = {
  name: 'patients', description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'id', region: null, owner: null, purposes: [],
  columns: [col('id', 'BIGINT'), col('name', 'VARCHAR', { kind: 'hash' }), col('ssn', 'VARCHAR', { kind: 'last4' }), col('age', 'INTEGER'), col('dob', 'DATE', { kind: 'truncate', unit: 'year' })],
};
const datasets = new Map([['patients', ds]]);
const dialect = trinoDialect({ sourceOf: () => '"hive"."clinic"."patients"', hashKey: Buffer.from('k3y') });

function trino(sql: string): string {
  const b = bindQuery(parseSql(sql), { dataset: (n) => datasets.get(n) });
  const g = govern(b, { principal: { id: 'p', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] }, datasets, obligations: new Map([['patients', []]]), rowFilters: new Map(), defaultRowCap: 100 });
  return renderSelect(g.query, dialect);
}

before(loadParser);

describe('the Trino dialect', () => {
  it('renders masks, try(...), try_cast, float division, ILIKE as lower() LIKE lower() and OFFSET before LIMIT', () => {
    assert.equal(trino("SELECT name, ssn, CAST(age AS VARCHAR) AS a, age / 3 AS third FROM patients WHERE ssn ILIKE '%12' ORDER BY id LIMIT 10 OFFSET 5"),
      "SELECT \"patients\".\"name\" AS \"name\", \"patients\".\"ssn\" AS \"ssn\", try(try_cast(\"patients\".\"age\" AS VARCHAR)) AS \"a\", try((CAST(\"patients\".\"age\" AS DOUBLE) / 3)) AS \"third\" FROM (SELECT \"id\" AS \"id\", lower(to_hex(hmac_sha256(to_utf8(CAST(\"name\" AS VARCHAR)), from_hex('6b3379')))) AS \"name\", (CASE WHEN length(\"ssn\") <= 4 THEN rpad('', length(\"ssn\"), '*') ELSE rpad('', length(\"ssn\") - 4, '*') || substr(\"ssn\", length(\"ssn\") - 3) END) AS \"ssn\", \"age\" AS \"age\", CAST(date_trunc('year', \"dob\") AS DATE) AS \"dob\" FROM \"hive\".\"clinic\".\"patients\") AS \"patients\" WHERE try((lower(\"patients\".\"ssn\") LIKE lower('%12'))) ORDER BY \"patients\".\"id\" ASC OFFSET 5 LIMIT 10");
  });

  it('renders date functions, approximate aggregates and unit-named interval literals', () => {
    assert.equal(trino("SELECT year(dob) AS y, median(age) AS m, approx_count_distinct(name) AS n, count(*) AS c FROM patients WHERE dob > DATE '1990-01-01' - INTERVAL '2 year' GROUP BY year(dob)"),
      "SELECT try(year(\"patients\".\"dob\")) AS \"y\", approx_percentile(\"patients\".\"age\", 0.5) AS \"m\", approx_distinct(\"patients\".\"name\") AS \"n\", count(*) AS \"c\" FROM (SELECT \"id\" AS \"id\", lower(to_hex(hmac_sha256(to_utf8(CAST(\"name\" AS VARCHAR)), from_hex('6b3379')))) AS \"name\", (CASE WHEN length(\"ssn\") <= 4 THEN rpad('', length(\"ssn\"), '*') ELSE rpad('', length(\"ssn\") - 4, '*') || substr(\"ssn\", length(\"ssn\") - 3) END) AS \"ssn\", \"age\" AS \"age\", CAST(date_trunc('year', \"dob\") AS DATE) AS \"dob\" FROM \"hive\".\"clinic\".\"patients\") AS \"patients\" WHERE try((\"patients\".\"dob\" > (DATE '1990-01-01' - INTERVAL '2' YEAR))) GROUP BY try(year(\"patients\".\"dob\")) LIMIT 101");
  });

  it('renders the keyed hash as Trino hmac_sha256 over the UTF-8 text with the workspace key', () => {
    assert.equal(dialect.keyedHash('"v"', 'VARCHAR'), `lower(to_hex(hmac_sha256(to_utf8(CAST("v" AS VARCHAR)), from_hex('${Buffer.from('k3y').toString('hex')}'))))`);
  });

  it('refuses what Trino cannot evaluate the same way, with a hint', () => {
    assert.throws(() => dialect.func!('mode', ['"x"'], [], false), (e: unknown) => e instanceof GatehouseError && e.code === 'SQL_UNSUPPORTED' && e.hint !== null);
    assert.throws(() => dialect.literal!({ kind: 'literal', type: 'interval', value: '1 year 2 months' }), (e: unknown) => e instanceof GatehouseError && e.code === 'SQL_UNSUPPORTED');
  });
});
