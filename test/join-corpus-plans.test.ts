/**
 * Issue 15, on a public corpus: SQLite's sqllogictest select4/select5 (vendored under
 * bench/data/sqllogictest/), whose multi-table SELECTs write their joins and filters in WHERE.
 * For a sample of them, the SQL Gatehouse renders — bound, governed with a row filter and a
 * keyed-hash mask on every table, rendered for DuckDB with its error guards — must plan the
 * same join operators as the user's SQL on plain DuckDB (hash joins stay hash joins, no cross
 * product appears), and without obligations it must answer exactly what plain DuckDB answers.
 * bench/join-corpus.ts measures the whole corpus; this keeps the renderer honest on it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parseSlt, tablesInFrom, type SltRecord } from '../bench/join-corpus.ts';
import type { ColumnDef, DatasetDef, ObligationDef, PrincipalDef } from '../src/model/types.ts';
import { bindQuery } from '../src/query/bind.ts';
import { govern } from '../src/query/govern/index.ts';
import type { Expr } from '../src/query/ir.ts';
import { loadParser, parseSql } from '../src/query/parse.ts';
import { duckdbDialect } from '../src/query/render/duckdb.ts';
import { quoteIdent, renderSelect } from '../src/query/render/sql.ts';

const CORPUS = join(import.meta.dirname, '..', 'bench', 'data', 'sqllogictest');
const principal = { id: 'pat', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] } as unknown as PrincipalDef;
const JOINS = /HASH_JOIN|CROSS_PRODUCT|NESTED_LOOP_JOIN|BLOCKWISE_NL_JOIN|PIECEWISE_MERGE_JOIN/g;

/** One corpus file in a scratch DuckDB, with the catalog and obligations Gatehouse would have for it. */
async function corpus(file: string): Promise<{ conn: DuckDBConnection; close: () => void; joins: SltRecord[]; datasets: Map<string, DatasetDef>; rowFilters: Map<string, Expr>; obligations: Map<string, ObligationDef[]> }> {
  const records = parseSlt(gunzipSync(readFileSync(join(CORPUS, `${file}.test.gz`))).toString('utf8'));
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  for (const s of records.filter((r) => r.kind === 'statement')) if (!/^\s*CREATE\s+(UNIQUE\s+)?INDEX/i.test(s.sql)) await conn.run(s.sql);
  const cols = (await conn.runAndReadAll("SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' ORDER BY table_name, column_index")).getRowsJS();
  const datasets = new Map<string, DatasetDef>();
  const rowFilters = new Map<string, Expr>();
  const obligations = new Map<string, ObligationDef[]>();
  for (const [t, c, type] of cols) {
    const name = String(t);
    const column: ColumnDef = { name: String(c), type: String(type).startsWith('VARCHAR') ? 'VARCHAR' : 'INTEGER', classification: 'internal', tags: [], mask: null, bounds: null, description: null };
    const ds = datasets.get(name) ?? { name, description: null, source: { kind: 'parquet', path: `/${name}.parquet` }, classification: 'internal', tags: [], privacyUnit: null, region: null, owner: null, purposes: [], columns: [] } as unknown as DatasetDef;
    datasets.set(name, { ...ds, columns: [...ds.columns, column] });
  }
  for (const ds of datasets.values()) {
    // A row filter on the table's second column and a keyed-hash mask on its text column. The
    // filter keeps every row of the corpus (its values are ≥ 0): one that drops rows can let
    // DuckDB prove a join empty from the query's own constants (b19 = a37 AND a37 = 1 with
    // b19 > 1), a different plan for a good reason.
    const filterCol = ds.columns[1]!.name, text = ds.columns.find((c) => c.type === 'VARCHAR')!.name;
    rowFilters.set(`gov-${ds.name}`, parseSql(`SELECT 1 WHERE ${filterCol} >= 0`).where!);
    obligations.set(ds.name, [{ name: `gov-${ds.name}`, rowFilter: `${filterCol} >= 0`, aggregationOnly: null, rowCap: null, unmask: [], masks: { [text]: { kind: 'hash' } }, joinOnly: [], differentialPrivacy: null } as unknown as ObligationDef]);
  }
  const joins = records.filter((r) => r.kind === 'query' && tablesInFrom(r.sql) >= 2);
  return { conn, close: () => { conn.closeSync(); db.closeSync(); }, joins, datasets, rowFilters, obligations };
}

for (const file of ['select4', 'select5']) {
  describe(`sqllogictest ${file}: joins written in WHERE, governed`, () => {
    let c: Awaited<ReturnType<typeof corpus>>;
    before(async () => { await loadParser(); c = await corpus(file); });
    after(() => c?.close());

    const render = (sql: string, governed: boolean): string => {
      const bound = bindQuery(parseSql(sql), { dataset: (n) => c.datasets.get(n) });
      const g = govern(bound, {
        principal, datasets: c.datasets, defaultRowCap: 1_000_000, rowFilters: c.rowFilters, columnsUsed: new Set(bound.columns),
        obligations: new Map(bound.datasets.map((n) => [n, governed ? c.obligations.get(n)! : []])),
      });
      return renderSelect(g.query, duckdbDialect({ hashKey: Buffer.alloc(32, 7), sourceOf: (n) => quoteIdent(n) }));
    };
    const joinsOf = async (sql: string): Promise<string> => {
      const plan = (await c.conn.runAndReadAll(`EXPLAIN ${sql}`)).getRowsJS().map((r) => r.join('\n')).join('\n');
      return (plan.match(JOINS) ?? []).sort().join(' ');
    };
    /** Every 15th join of the file: a few dozen of every width the file has. */
    const sample = (): SltRecord[] => c.joins.filter((_, i) => i % 15 === 0);

    it('plans the same join operators for the governed SQL (row filter, mask, guards) as for the plain SQL on DuckDB', async () => {
      const differing: string[] = [];
      let hashJoins = 0;
      for (const q of sample()) {
        const raw = await joinsOf(q.sql), governed = await joinsOf(render(q.sql, true));
        if (raw !== governed) differing.push(`line ${q.line}: raw [${raw}] governed [${governed}]`);
        hashJoins += (raw.match(/HASH_JOIN/g) ?? []).length;
      }
      assert.ok(hashJoins > 20, `the sample has hash joins to keep (${hashJoins})`);
      assert.deepEqual(differing, []);
    });

    it('answers exactly what DuckDB answers when no obligation applies', async () => {
      const rows = async (sql: string): Promise<string[]> => (await c.conn.runAndReadAll(sql)).getRowsJS().map((r) => JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? v.toString() : v))).sort();
      let nonEmpty = 0;
      // Narrow joins only (≤ 10^5 rows even as a cross product), so that a regression shows as
      // a failed plan check above rather than a test that runs for minutes.
      const narrow = c.joins.filter((q) => tablesInFrom(q.sql) <= (file === 'select4' ? 3 : 5)).filter((_, i) => i % (file === 'select4' ? 10 : 2) === 0);
      for (const q of narrow) {
        const want = await rows(q.sql);
        assert.deepEqual(await rows(render(q.sql, false)), want, `line ${q.line}`);
        if (want.length > 0) nonEmpty++;
      }
      assert.ok(nonEmpty > 3, `some answers are not empty (${nonEmpty})`);
    });
  });
}
