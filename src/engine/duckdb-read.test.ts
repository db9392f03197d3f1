/**
 * The engine reads a statement's materialised result chunk by chunk, synchronously (issue 15).
 * Every row of every chunk must arrive, in order, converted exactly as DuckDB's own
 * `getRowsJS()` converts them — for results longer than one chunk, empty results, CTE
 * statements (not kept prepared) and the value types a governed answer carries.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { DuckDbEngine } from './duckdb.ts';
import { emptyEngineWorkspace } from '../../test/helpers/engine-workspace.ts';

const TYPED = `SELECT i AS n, i::BIGINT * 3000000000000 AS big, i / 7 AS ratio, 'r' || i AS label, i % 2 = 0 AS even,
  DATE '2026-01-01' + i::INTEGER AS day, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) SECOND AS at,
  CASE WHEN i % 5 = 0 THEN NULL ELSE i END AS gaps, [i, i + 1] AS pair, {'k': i} AS rec, (i * 1.5)::DECIMAL(9, 2) AS amount
  FROM range(5000) t(i) ORDER BY i`;

describe('reading a result', () => {
  let dir: string;
  let engine: DuckDbEngine;
  let raw: DuckDBInstance;
  let conn: DuckDBConnection;
  before(async () => {
    const ws = emptyEngineWorkspace('read');
    dir = ws.dir;
    engine = await DuckDbEngine.open(ws, { poolSize: 1 });
    raw = await DuckDBInstance.create(':memory:');
    conn = await raw.connect();
  });
  after(async () => { conn?.closeSync(); raw?.closeSync(); await engine?.close(); rmSync(dir, { recursive: true, force: true }); });

  /** What DuckDB's own reader gives, as cells (the conversion the engine applied before). */
  async function expected(sql: string): Promise<unknown[][]> {
    const reader = await conn.runAndReadAll(sql);
    const types = reader.columnTypes().map((t) => t.toString());
    const cell = (v: unknown, type: string): unknown => {
      if (v === null) return null;
      if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
      if (v instanceof Date) return type === 'DATE' ? v.toISOString().slice(0, 10) : v.toISOString();
      if (Array.isArray(v)) return v.map((x) => cell(x, ''));
      if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, cell(x, '')]));
      return v;
    };
    return reader.getRowsJS().map((r) => r.map((v, i) => cell(v, types[i]!)));
  }

  it('returns every row of a result longer than one chunk, in order, with every value as DuckDB converts it', async () => {
    const got = await engine.run(TYPED, { timeoutMs: 20_000 });
    const want = await expected(TYPED);
    assert.equal(got.rows.length, 5000, 'more than two 2,048-row chunks');
    assert.deepEqual(got.rows, want);
    assert.deepEqual(got.columns.map((c) => c.name), ['n', 'big', 'ratio', 'label', 'even', 'day', 'at', 'gaps', 'pair', 'rec', 'amount']);
    assert.equal(got.rows[4999]![1], '14997000000000000', 'a BIGINT past 2^53 stays exact, as text');
  });

  it('reads a statement with a CTE (not kept prepared) the same way', async () => {
    const sql = `WITH t AS (${TYPED}) SELECT * FROM t WHERE n >= 2040`;
    const got = await engine.run(sql, { timeoutMs: 20_000 });
    assert.deepEqual(got.rows, await expected(sql));
    assert.equal(got.rows.length, 2960);
  });

  it('answers an empty result with its columns and no rows, and a prepared statement run again gives the same rows', async () => {
    const empty = await engine.run('SELECT 1 AS a, 2 AS b WHERE false', { timeoutMs: 20_000 });
    assert.deepEqual(empty, { columns: [{ name: 'a', type: 'INTEGER' }, { name: 'b', type: 'INTEGER' }], rows: [] });
    const first = await engine.run(TYPED, { timeoutMs: 20_000 });
    const again = await engine.run(TYPED, { timeoutMs: 20_000 });
    assert.deepEqual(again, first);
  });
});
