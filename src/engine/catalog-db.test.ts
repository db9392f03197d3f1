/**
 * The wire catalog evaluator on its own: psql's and BI tools' catalog queries answered
 * from catalog rows, and the allowlist holding against hostile trees (functions, relations,
 * literals and identifiers that try to break out of the rendered SQL).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DatasetView } from '../model/dataset-view.ts';
import { loadParser } from '../query/parse.ts';
import { CatalogDb, renderCatalogQuery, type CatalogSession } from './catalog-db.ts';

const view = (name: string, columns: [string, string, string | null][], description: string | null = null): DatasetView => ({
  name, description, classification: 'internal', region: null, purposes: ['research'], privacyUnit: null, rowFilter: false, aggregationOnly: null, rowCap: 1000,
  columns: columns.map(([n, type, masked]) => ({ name: n, type, classification: 'internal', tags: [], masked, joinOnly: false, description: null })),
});
const VIEWS = [
  view('patients', [['patient_id', 'BIGINT', null], ['ssn', 'VARCHAR', 'last 4 characters'], ['date_of_birth', 'DATE', null]], 'one row per patient'),
  view('claims', [['claim_id', 'BIGINT', null], ['amount', 'DECIMAL', null]]),
];
const SESSION: CatalogSession = { user: 'ivan', database: 'gatehouse', setting: (n) => (n === 'server_version' ? '15.0' : null) };

let db: CatalogDb;
before(async () => { await loadParser(); db = await CatalogDb.create(VIEWS, 'gatehouse'); });
after(() => db.close());

const run = (sql: string, params: (string | null)[] = []) => db.run(renderCatalogQuery(sql, SESSION, params), 5_000);
const refusal = (sql: string): string => {
  try { renderCatalogQuery(sql, SESSION, []); } catch (err) { return (err as { code: string }).code; }
  return 'RENDERED';
};

describe('catalog queries psql and BI tools send', () => {
  it('answers psql \\dt with the visible datasets and their owner', async () => {
    const r = await run(`SELECT n.nspname as "Schema", c.relname as "Name",
      CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END as "Type", pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
      FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
      WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' AND n.nspname <> 'information_schema'
        AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2;`);
    assert.deepEqual(r.columns.map((c) => c.name), ['Schema', 'Name', 'Type', 'Owner']);
    assert.deepEqual(r.rows, [['public', 'claims', 'table', 'gatehouse'], ['public', 'patients', 'table', 'gatehouse']]);
  });

  it('answers psql \\d table: the relation by regex, then its columns with PostgreSQL type names', async () => {
    const rel = await run(`SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname OPERATOR(pg_catalog.~) '^(patients)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;`);
    assert.equal(rel.rows.length, 1);
    const oid = String(rel.rows[0]![0]);
    const cols = await run(`SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
      (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
      a.attnotnull, (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = '${oid}' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;`);
    assert.deepEqual(cols.columns.map((c) => c.name), ['attname', 'format_type', 'pg_get_expr', 'attnotnull', 'attcollation']);
    assert.deepEqual(cols.rows.map((r) => [r[0], r[1]]), [['patient_id', 'bigint'], ['ssn', 'character varying'], ['date_of_birth', 'date']]);
    const desc = await run('SELECT obj_description($1::oid, \'pg_class\') AS t, col_description($1::oid, 2) AS c', [oid]);
    assert.deepEqual(desc.rows, [['one row per patient', 'masked: last 4 characters']]);
  });

  it('answers the psql \\d publication query, with its UNION, generate_series and array subscripts, with no rows', async () => {
    const r = await run(`SELECT pubname, NULL, NULL FROM pg_catalog.pg_publication p JOIN pg_catalog.pg_publication_namespace pn ON p.oid = pn.pnpubid
      JOIN pg_catalog.pg_class pc ON pc.relnamespace = pn.pnnspid WHERE pc.oid ='16400' and pg_catalog.pg_relation_is_publishable('16400')
      UNION SELECT pubname, pg_get_expr(pr.prqual, c.oid), (CASE WHEN pr.prattrs IS NOT NULL THEN (SELECT string_agg(attname, ', ')
        FROM pg_catalog.generate_series(0, pg_catalog.array_upper(pr.prattrs::pg_catalog.int2[], 1)) s, pg_catalog.pg_attribute
        WHERE attrelid = pr.prrelid AND attnum = prattrs[s]) ELSE NULL END) FROM pg_catalog.pg_publication p
      JOIN pg_catalog.pg_publication_rel pr ON p.oid = pr.prpubid JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid WHERE pr.prrelid = '16400' ORDER BY 1;`);
    assert.deepEqual(r.rows, []);
  });

  it('answers information_schema and the session functions with the names PostgreSQL gives their columns', async () => {
    const cols = await run("SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position");
    assert.deepEqual(cols.rows, [['claims', 'claim_id', 'bigint'], ['claims', 'amount', 'numeric'], ['patients', 'patient_id', 'bigint'], ['patients', 'ssn', 'character varying'], ['patients', 'date_of_birth', 'date']]);
    const s = await run('SELECT version(), current_schema(), current_database(), current_user, pg_catalog.current_schemas(false)');
    assert.deepEqual(s.columns.map((c) => c.name), ['version', 'current_schema', 'current_database', 'current_user', 'current_schemas']);
    assert.match(String(s.rows[0]![0]), /^PostgreSQL 15\.0 \(Gatehouse/);
    assert.deepEqual(s.rows[0]!.slice(1), ['public', 'gatehouse', 'ivan', ['public']]);
  });
});

describe('the catalog allowlist', () => {
  it('refuses every function that reads files, settings, the environment or the engine catalog', () => {
    for (const f of ["read_blob('x')", "read_text('x')", "read_csv('x')", "read_parquet('x')", "read_json('x')", "glob('*')", "getenv('HOME')", 'duckdb_settings()',
      'duckdb_functions()', "pg_read_file('x')", "pg_ls_dir('.')", "current_setting_x('a')", "query('SELECT 1')", "system.main.read_text('x')", "pg_catalog.read_blob('x')", 'txid_current()', "set_config('a', 'b', false)"]) {
      assert.equal(refusal(`SELECT ${f} FROM pg_class`), 'SQL_FUNCTION_NOT_ALLOWED', f);
    }
    for (const f of ["read_blob('x')", "glob('*')", "read_csv_auto('x')", 'duckdb_settings()', "pg_ls_dir('.')"]) {
      assert.equal(refusal(`SELECT * FROM pg_class, ${f}`), 'SQL_FUNCTION_NOT_ALLOWED', f);
    }
  });

  it('refuses relations outside the catalog, and constructs it does not know', () => {
    for (const sql of ['SELECT * FROM pg_file_settings', 'SELECT * FROM pg_stat_activity', 'SELECT * FROM pg_catalog.duckdb_settings', 'SELECT * FROM information_schema.pg_class',
      'SELECT * FROM memory.main.pg_class', 'SELECT * FROM gatehouse.pg_catalog.pg_class', 'SELECT * FROM pg_class, patients', 'SELECT 1 FROM pg_class FOR UPDATE',
      'WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n + 1 FROM r) SELECT * FROM r, pg_class', 'SELECT row_number() FROM pg_class',
      'SELECT count(*) OVER (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM pg_class', 'SELECT lower(relname) OVER () FROM pg_class', 'SELECT * FROM (VALUES (1)) v, pg_class', 'SELECT relname FROM pg_class; SELECT 1', 'DELETE FROM pg_class']) {
      assert.ok(['SQL_UNSUPPORTED', 'SQL_FUNCTION_NOT_ALLOWED'].includes(refusal(sql)), sql);
    }
  });

  it('renders constants and lookups for catalog functions, so the client\'s function names never reach the engine', () => {
    const { sql } = renderCatalogQuery("SELECT version(), pg_get_userbyid(relowner), pg_table_is_visible(oid), current_setting('data_directory'), format_type(atttypid, NULL) FROM pg_class, pg_attribute", SESSION, []);
    for (const call of ['version(', 'pg_get_userbyid(', 'pg_table_is_visible(', 'current_setting(', 'format_type(', '"pg_catalog".', 'pg_catalog.', 'information_schema.']) assert.ok(!sql.includes(call), `${call} in ${sql}`);
    assert.ok(!sql.includes('data_directory'), 'the setting name is answered by Gatehouse, not looked up by the engine');
  });

  it('keeps literals, parameters and quoted identifiers inside their quotes', async () => {
    assert.deepEqual((await run("SELECT relname FROM pg_class WHERE relname = 'x'' OR ''1''=''1'")).rows, []);
    assert.deepEqual((await run('SELECT relname FROM pg_class WHERE relname = $1', ["x' OR '1'='1"])).rows, []);
    assert.deepEqual((await run('SELECT relname FROM pg_class WHERE relname = $1', ['claims'])).rows, [['claims']]);
    await assert.rejects(run('SELECT "relname"" FROM read_blob(\'x\') --" FROM pg_class'), (e: { code?: string }) => e.code === 'SQL_UNSUPPORTED');
    await assert.rejects(run('SELECT 1 AS "a"" FROM read_blob(\'x\')--" FROM pg_class').then((r) => { throw Object.assign(new Error('ran'), { code: r.columns[0]!.name }); }),
      (e: { code?: string }) => e.code === 'a" FROM read_blob(\'x\')--');
  });

  it('answers pg_settings with compiled-in constants only, never the server configuration', async () => {
    const r = await run('SELECT name, setting FROM pg_settings ORDER BY name');
    assert.deepEqual(r.rows.map((x) => x[0]), ['block_size', 'max_identifier_length', 'max_index_keys', 'server_version_num']);
    assert.deepEqual((await run("SELECT setting FROM pg_catalog.pg_settings WHERE name = 'data_directory'")).rows, []);
  });

  it('answers nothing of the host: unknown settings are NULL, no function list, no row counts', async () => {
    const r = await run("SELECT current_setting('data_directory'), current_setting('server_version'), (SELECT count(*) FROM pg_proc), (SELECT max(reltuples) FROM pg_class)");
    assert.deepEqual(r.rows, [[null, '15.0', 0, -1]]);
  });
});
