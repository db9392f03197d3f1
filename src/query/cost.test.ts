/**
 * Cost bounds (cost.ts): a query that could make the engine build huge strings is refused
 * from its text alone, before it runs (the nested-replace DoS of issue 12 ran 45 s and took
 * 4.5 GB, past the statement timeout).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../errors.ts';
import type { ColumnDef, ColumnType, DatasetDef } from '../model/types.ts';
import { bindQuery } from './bind.ts';
import { MAX_NODES } from './cost.ts';
import { loadParser, parseSql } from './parse.ts';

const col = (name: string, type: ColumnType): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds: null, description: null });
const t: DatasetDef = { name: 't', description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: null, region: null, owner: null, purposes: [], columns: [col('s', 'VARCHAR'), col('n', 'BIGINT')] };
const bind = (sql: string) => bindQuery(parseSql(sql), { dataset: (n) => (n === 't' ? t : undefined) });
const costly = (sql: string): void => {
  assert.throws(() => bind(sql), (e: unknown) => e instanceof GatehouseError && e.code === 'QUERY_TOO_COSTLY' && !e.message.includes('aa'), sql.slice(0, 80));
};

before(loadParser);

describe('expression cost bounds', () => {
  it('refuses nested replace calls that double a string at each level (2 KB of SQL, gigabytes per row)', () => {
    let e = 's';
    for (let i = 0; i < 30; i++) e = `replace(${e}, 'a', 'aa')`;
    assert.ok(e.length < 2048);
    costly(`SELECT count(*) FROM t WHERE length(${e}) > 0`);
  });

  it('refuses replace with a column as the replacement and long concatenation chains', () => {
    costly("SELECT replace(s, 'x', s || s || s) FROM t");
    costly(`SELECT concat(${Array(60).fill('s || s || s || s || s').join(', ')}) AS x FROM t`);
  });

  it('refuses a query with more expression nodes than the limit', () => {
    costly(`SELECT count(*) FROM t WHERE n IN (${Array.from({ length: MAX_NODES }, (_, i) => i).join(', ')})`);
  });

  it('accepts ordinary string work', () => {
    assert.doesNotThrow(() => bind("SELECT replace(replace(lower(s), '-', ''), ' ', '_') AS k, concat(s, '/', s) AS p, left(s || 'x', 3) AS l FROM t"));
    let e = 's';
    for (let i = 0; i < 6; i++) e = `replace(${e}, 'a', 'aa')`;
    assert.doesNotThrow(() => bind(`SELECT ${e} AS x FROM t`));
  });
});
