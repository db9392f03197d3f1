/**
 * The erasure transformer over erased copies (src/query/govern/erasure.ts `erasureOver`):
 * a scan whose engine copy already excludes every erased subject carries no per-row filter;
 * a subject erased after the copy was built is still filtered (never a window where the
 * subject reappears); a copy of another unit column counts for nothing. Executed on DuckDB,
 * with the "engine copy" a real table lacking the copy's subjects.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { ColumnDef, ColumnType, DatasetDef, ObligationDef } from '../src/model/types.ts';
import { bindQuery } from '../src/query/bind.ts';
import { loadParser, parseSql } from '../src/query/parse.ts';
import { duckdbDialect } from '../src/query/render/duckdb.ts';
import { quoteIdent, renderSelect } from '../src/query/render/sql.ts';
import { govern } from '../src/query/govern/index.ts';
import { erasureOver, type ErasedCopies } from '../src/query/govern/erasure.ts';
import type { GovernContext } from '../src/query/govern/context.ts';

const col = (name: string, type: ColumnType): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds: null, description: null });
const enc: DatasetDef = {
  name: 'enc', description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'patient_id', region: null, owner: null, purposes: [],
  columns: [col('id', 'BIGINT'), col('patient_id', 'BIGINT')],
};
const open: ObligationDef = { name: 'open', rowFilter: null, aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: [] } as unknown as ObligationDef;

describe('erasure over erased copies', () => {
  let inst: DuckDBInstance;
  let c: DuckDBConnection;
  const datasets = new Map([['enc', enc]]);
  const dialect = duckdbDialect({ sourceOf: () => quoteIdent('enc_copy'), hashKey: Buffer.from('k') });

  /** Governs `sql` with `erased` for the request and the engine's `copies`; returns SQL, labels and the rows it reads. */
  async function run(sql: string, erased: string[], copies: ErasedCopies) {
    const b = bindQuery(parseSql(sql), { dataset: (n) => datasets.get(n) });
    const ctx: GovernContext = {
      principal: { id: 'ada', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] },
      datasets, obligations: new Map([['enc', [open]]]), rowFilters: new Map(), defaultRowCap: 100_000,
    };
    const base = govern(b, ctx).query;
    const r = erasureOver(copies).apply(base, { ...ctx, erased: new Map([['patient_id', erased]]) });
    const text = renderSelect(r.query, dialect);
    const rows = (await c.runAndReadAll(text)).getRowsJS().map((x) => Number(x[0]));
    return { text, applied: r.applied, rows };
  }

  before(async () => {
    await loadParser();
    inst = await DuckDBInstance.create(':memory:', { threads: '1' });
    c = await inst.connect();
    // The engine's copy, built when subjects 3 and 7 were the erased set.
    await c.run('CREATE TABLE enc_copy AS SELECT i AS id, (i % 10) + 1 AS patient_id FROM range(100) t(i) WHERE (i % 10) + 1 NOT IN (3, 7)');
  });
  after(() => { c.closeSync(); inst.closeSync(); });

  const copyOf37: ErasedCopies = new Map([['enc', { unit: 'patient_id', values: new Set(['3', '7']) }]]);

  test('a scan whose copy already excludes every erased subject has no per-row filter, and says erasure applied', async () => {
    const r = await run('SELECT patient_id FROM enc', ['3', '7'], copyOf37);
    assert.doesNotMatch(r.text, /IN \(/);
    assert.deepEqual(r.applied, ['erasure:enc']);
    assert.ok(!r.rows.includes(3) && !r.rows.includes(7));
  });

  test('a subject erased after the copy was built is still filtered', async () => {
    const r = await run('SELECT patient_id FROM enc', ['3', '7', '9'], copyOf37);
    assert.match(r.text, /IN \(/);
    assert.equal(r.rows.filter((p) => p === 9).length, 0);
    assert.equal(r.rows.length, 70);
  });

  test('a copy of another unit column counts for nothing: every subject is filtered', async () => {
    const other: ErasedCopies = new Map([['enc', { unit: 'member_id', values: new Set(['3', '7', '9']) }]]);
    const r = await run('SELECT patient_id FROM enc', ['9'], other);
    assert.match(r.text, /IN \(/);
    assert.equal(r.rows.filter((p) => p === 9).length, 0);
  });

  test('without copies every erased subject is filtered, as before', async () => {
    const r = await run('SELECT patient_id FROM enc', ['1'], new Map());
    assert.match(r.text, /IN \(/);
    assert.equal(r.rows.filter((p) => p === 1).length, 0);
  });
});
