/**
 * Issue 15, "Joins written in WHERE": the error guard (TRY) wraps only the conjuncts that can
 * fail, so a join written as `FROM a, b, c WHERE a.k = b.k AND ...` stays a hash join on
 * DuckDB instead of becoming a cross product filtered by one opaque TRY(...). Proven on the
 * governed SQL (bind, govern with a mask and a row filter, render for the engine) with
 * EXPLAIN; and the guard still holds where it must: a conjunct that can fail on some row
 * (an overflow) neither fails the query nor is left bare, and a comparison whose types need
 * a run-time conversion (DATE with TIMESTAMP) is still guarded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDbEngine } from '../src/engine/duckdb.ts';
import type { ColumnDef, DatasetDef, ObligationDef, PrincipalDef, Workspace } from '../src/model/types.ts';
import { bindQuery } from '../src/query/bind.ts';
import { govern } from '../src/query/govern/index.ts';
import { loadParser, parseSql } from '../src/query/parse.ts';
import { renderSelect } from '../src/query/render/sql.ts';

const col = (name: string, type: ColumnDef['type'], extra: Partial<ColumnDef> = {}): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds: null, description: null, ...extra });
const TABLES = ['a', 'b', 'c', 'd', 'e'] as const;

describe('joins written in WHERE stay joins under governance', () => {
  let dir: string;
  let engine: DuckDbEngine;
  let ws: Workspace;
  const principal: PrincipalDef = { id: 'pat', kind: 'user', displayName: null, groups: [], attributes: { region: 'north' }, apiKeySha256: [] } as unknown as PrincipalDef;

  before(async () => {
    await loadParser();
    dir = mkdtempSync(join(tmpdir(), 'gh-joins-where-'));
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    // Five tables of 20,000 rows each, linked by integer keys: a cross product of even two is 4·10^8 rows.
    for (const t of TABLES) {
      await c.run(`COPY (SELECT i AS id, (i * 7) % 20000 AS next_id, CASE WHEN i % 2 = 0 THEN 'north' ELSE 'south' END AS region,
        'p' || i AS email, DATE '2024-01-01' + (i % 365)::INTEGER AS day, TIMESTAMP '2024-01-01 00:00:00' + to_seconds(i) AS at,
        CASE WHEN i = 17 THEN 9223372036854775807 ELSE i END AS big FROM range(20000) r(i)) TO '${join(dir, `${t}.parquet`)}' (FORMAT parquet)`);
    }
    c.closeSync(); db.closeSync();
    const datasets: DatasetDef[] = TABLES.map((t) => ({
      name: t, description: null, source: { kind: 'parquet', path: join(dir, `${t}.parquet`) }, classification: 'internal', tags: [], privacyUnit: null, region: null, owner: null, purposes: [],
      columns: [col('id', 'BIGINT'), col('next_id', 'BIGINT'), col('region', 'VARCHAR'), col('email', 'VARCHAR', { mask: { kind: 'hash' } }), col('day', 'DATE'), col('at', 'TIMESTAMP'), col('big', 'BIGINT')],
    } as DatasetDef));
    ws = {
      dir, name: 'joins', defaults: { rowCap: 1000, statementTimeoutMs: 20_000, memoryLimit: '512MB' },
      datasets: new Map(datasets.map((d) => [d.name, d])), obligations: new Map(), principals: new Map([['pat', principal]]),
      policyFiles: new Map(), cedarSchema: '', hashKey: Buffer.alloc(32, 7), policyVersion: 'sha256:test',
    } as unknown as Workspace;
    engine = await DuckDbEngine.open(ws, { poolSize: 1 });
  });
  after(async () => { await engine?.close(); rmSync(dir, { recursive: true, force: true }); });

  /** The SQL Gatehouse runs for `sql`: bound, governed (row filter on `a`, masks), rendered for DuckDB. */
  const governedSql = (sql: string): string => {
    const bound = bindQuery(parseSql(sql), { dataset: (n) => ws.datasets.get(n) });
    const regional: ObligationDef = { name: 'regional', rowFilter: 'region = principal.region', aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: [], differentialPrivacy: null } as unknown as ObligationDef;
    // The row filter as the workspace loader keeps it: parsed, names bound per dataset at govern time.
    const rowFilters = new Map([['regional', parseSql('SELECT 1 WHERE region = principal.region').where!]]);
    const g = govern(bound, { principal, datasets: ws.datasets, defaultRowCap: 1000, rowFilters, obligations: new Map([['a', [regional]]]), columnsUsed: new Set(bound.columns) });
    return renderSelect(g.query, engine.dialect);
  };
  const plan = async (sql: string): Promise<string> => (await engine.run(`EXPLAIN ${sql}`, { timeoutMs: 20_000 })).rows.map((r) => r.join('\n')).join('\n');

  it('plans a governed 5-way join written in WHERE as hash joins, with no cross product or nested loop', async () => {
    const sql = governedSql(`SELECT a.region, count(*) AS n FROM a, b, c, d, e
      WHERE a.next_id = b.id AND b.next_id = c.id AND c.next_id = d.id AND d.email = e.email AND e.region = 'north' AND a.big * 4 > 0
      GROUP BY a.region`);
    assert.match(sql, /TRY\(/, 'the conjunct that can overflow is still guarded');
    const p = await plan(sql);
    assert.equal((p.match(/HASH_JOIN/g) ?? []).length, 4, `four hash joins:\n${p}`);
    assert.doesNotMatch(p, /CROSS_PRODUCT|NESTED_LOOP_JOIN|BLOCKWISE_NL_JOIN|PIECEWISE_MERGE_JOIN/, p);
    const r = await engine.run(sql, { timeoutMs: 20_000 });
    assert.equal(r.rows.length, 1);
  });

  it('keeps a join on masked keys a hash join (both sides have the mask\'s type)', async () => {
    const p = await plan(governedSql('SELECT count(*) AS n FROM a, b WHERE a.email = b.email'));
    assert.match(p, /HASH_JOIN/);
    assert.doesNotMatch(p, /CROSS_PRODUCT|NESTED_LOOP_JOIN|BLOCKWISE_NL_JOIN/);
  });

  it('guards a conjunct that fails on one row: the query answers, the row is dropped, and no error tells about it', async () => {
    // a.big is 2^63−1 on id 17 only: a.big * 4 overflows there. Unguarded, the query would fail
    // exactly when that row passes the other filters — one bit about a hidden row.
    const sql = governedSql('SELECT count(*) AS n FROM a, b WHERE a.id = b.id AND a.big * 4 > 0');
    assert.match(sql, /TRY\(/);
    const r = await engine.run(sql, { timeoutMs: 20_000 });
    // a keeps even ids (row filter region = north); ids 1..19998 even have big > 0; id 0 has big 0; id 17 is odd.
    assert.equal(Number(r.rows[0]![0]), 9_999);
  });

  it('still guards a comparison whose types need a run-time conversion (DATE with TIMESTAMP)', () => {
    const sql = governedSql('SELECT count(*) AS n FROM a, b WHERE a.id = b.id AND a.day = b.at');
    assert.match(sql, /TRY\(\("a"\."day" = "b"\."at"\)\)/, sql);
    assert.match(sql, / AND \("a"\."id" = "b"\."id"\)|\("a"\."id" = "b"\."id"\) AND /, sql);
  });
});
