/**
 * The erasure-filtered copy (src/governance/erasure/erased-copy.ts): its version names
 * exactly one exclusion set; the copy lacks exactly the erased subjects' rows and keeps rows
 * of nobody (NULL unit); subject values are bound, so a hostile identifier is only a value.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { buildErasedCopy, erasureVersion } from '../src/governance/erasure/erased-copy.ts';

describe('an erasure-filtered copy', () => {
  let dir: string;
  let inst: DuckDBInstance;
  let c: DuckDBConnection;
  const count = async (sql: string) => Number((await c.runAndReadAll(sql)).getRowsJS()[0]![0]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-erased-copy-'));
    inst = await DuckDBInstance.create(':memory:', { threads: '1' });
    c = await inst.connect();
    await c.run('CREATE TABLE enc AS SELECT i AS id, CASE WHEN i % 50 = 0 THEN NULL ELSE (i % 100) + 1 END AS patient_id FROM range(1000) t(i)');
    await c.run('CREATE TABLE marker (x INTEGER)');
  });
  after(() => { c.closeSync(); inst.closeSync(); rmSync(dir, { recursive: true, force: true }); });

  test('its version names exactly one exclusion set, whatever the order or repeats', () => {
    assert.equal(erasureVersion('enc', 'patient_id', ['7', '3', '7']), erasureVersion('enc', 'patient_id', ['3', '7']));
    assert.notEqual(erasureVersion('enc', 'patient_id', ['3', '7']), erasureVersion('enc', 'patient_id', ['3', '7', '9']));
    assert.notEqual(erasureVersion('enc', 'patient_id', ['3']), erasureVersion('claims', 'patient_id', ['3']));
  });

  test('the copy lacks exactly the subjects\' rows and keeps rows whose unit is NULL', async () => {
    const target = join(dir, 'a.parquet');
    const kept = await buildErasedCopy(c, { source: 'enc', unit: 'patient_id', values: ['3', '7'], target });
    const erasedRows = await count('SELECT count(*) FROM enc WHERE patient_id IN (3, 7)');
    assert.ok(erasedRows > 0);
    assert.equal(kept, 1000 - erasedRows);
    assert.equal(await count(`SELECT count(*) FROM read_parquet('${target}') WHERE patient_id IN (3, 7)`), 0);
    assert.equal(await count(`SELECT count(*) FROM read_parquet('${target}') WHERE patient_id IS NULL`), await count('SELECT count(*) FROM enc WHERE patient_id IS NULL'));
  });

  test('a hostile identifier is a value, not SQL', async () => {
    const target = join(dir, 'b.parquet');
    const kept = await buildErasedCopy(c, { source: 'enc', unit: 'patient_id', values: ["3') OR true; DROP TABLE marker; --", '5'], target });
    assert.equal(kept, 1000 - await count('SELECT count(*) FROM enc WHERE patient_id = 5'));
    assert.equal(await count('SELECT count(*) FROM marker'), 0, 'the marker table still exists');
    await assert.rejects(buildErasedCopy(c, { source: 'enc', unit: 'patient_id; DROP TABLE marker', values: ['1'], target }), /plain identifier/);
  });
});
