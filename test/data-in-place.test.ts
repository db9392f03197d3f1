/**
 * Issue 15, "Data in place": file datasets are queried where they lie. The engine opens
 * views over the declared files instead of copying them; it may open exactly those files
 * and nothing else (not a sibling in the same folder, not through a view a query defines);
 * a hive-partitioned glob works and a governed query's row filter skips whole files; a
 * source whose values cannot all become the declared type is refused at open, and a CSV
 * value that does not parse is a clear error that never carries the value.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDbEngine } from '../src/engine/duckdb.ts';
import type { ColumnDef, DatasetDef, DatasetSource, Workspace } from '../src/model/types.ts';
import { WorkspaceInvalid } from '../src/workspace/load.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { bindQuery } from '../src/query/bind.ts';
import { govern } from '../src/query/govern/index.ts';
import { parseSql } from '../src/query/parse.ts';
import { renderSelect } from '../src/query/render/sql.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import { codeOf, KEYS } from './helpers/workspace.ts';

const q = (s: string): string => `'${s.replaceAll("'", "''")}'`;
const col = (name: string, type: ColumnDef['type']): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds: null, description: null });
const dataset = (name: string, source: DatasetSource, columns: ColumnDef[]): DatasetDef => ({
  name, description: null, source, classification: 'internal', tags: [], privacyUnit: null, region: null, owner: null, purposes: [], columns,
});
const workspace = (dir: string, datasets: DatasetDef[]): Workspace => ({
  dir, name: 'in-place', defaults: { rowCap: 1000, statementTimeoutMs: 10_000, memoryLimit: '256MB' },
  datasets: new Map(datasets.map((d) => [d.name, d])),
  obligations: new Map(), principals: new Map(), policyFiles: new Map(), cedarSchema: '', hashKey: Buffer.alloc(32, 7), policyVersion: 'sha256:test',
});

async function duck(work: (run: (sql: string) => Promise<void>) => Promise<void>): Promise<void> {
  const db = await DuckDBInstance.create(':memory:', { temp_directory: '' });
  const c = await db.connect();
  try { await work(async (sql) => { await c.run(sql); }); } finally { c.closeSync(); db.closeSync(); }
}

/** "Scanning Files: k/n" of the first Parquet scan in an EXPLAIN ANALYZE. */
async function filesScanned(engine: DuckDbEngine, sql: string): Promise<{ scanned: number; total: number }> {
  const r = await engine.run(`EXPLAIN ANALYZE ${sql}`, { timeoutMs: 10_000 });
  const plan = r.rows.map((row) => row.join('\n')).join('\n');
  const m = /Scanning Files: (\d+)\/(\d+)/.exec(plan);
  assert.ok(m, `the plan shows which files were scanned:\n${plan}`);
  return { scanned: Number(m[1]), total: Number(m[2]) };
}

describe('file datasets queried where they lie', () => {
  let dir: string;
  let engine: DuckDbEngine;
  const claims = (): DatasetDef => dataset('claims', { kind: 'parquet', path: join(dir, 'claims', '**', '*.parquet'), hivePartitioning: true },
    [col('id', 'BIGINT'), col('year', 'INTEGER'), col('region', 'VARCHAR'), col('amount', 'DECIMAL')]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-in-place-'));
    mkdirSync(join(dir, 'outside'));
    await duck(async (run) => {
      await run(`COPY (SELECT i AS id, (2020 + i % 4)::INTEGER AS year, ['north', 'south', 'west'][1 + i % 3] AS region, (i % 1000)::DECIMAL(10,2) AS amount FROM range(60000) t(i) ORDER BY id)
                 TO ${q(join(dir, 'claims'))} (FORMAT parquet, PARTITION_BY (year, region))`);
      await run(`COPY (SELECT 'TOPSECRET-OUTSIDE' AS s) TO ${q(join(dir, 'outside', 'secret.parquet'))} (FORMAT parquet)`);
      await run(`COPY (SELECT 'TOPSECRET-SIBLING' AS s) TO ${q(join(dir, 'claims', 'sibling.csv'))} (FORMAT csv)`);
      await run(`COPY (SELECT i AS id, i::VARCHAR AS code FROM range(100) t(i)) TO ${q(join(dir, 'codes.parquet'))} (FORMAT parquet)`);
      await run(`ATTACH ${q(join(dir, 'people.duckdb'))} AS p; CREATE TABLE p.people AS SELECT i AS id, 'person ' || i AS name FROM range(500) t(i); DETACH p`);
    });
    writeFileSync(join(dir, 'visits.csv'), `id,amount\n${Array.from({ length: 5000 }, (_, i) => `${i},${i === 4000 ? 'SECRET-4000' : i * 2}`).join('\n')}\n`);
    engine = await DuckDbEngine.open(workspace(dir, [
      claims(),
      dataset('visits', { kind: 'csv', path: join(dir, 'visits.csv') }, [col('id', 'BIGINT'), col('amount', 'INTEGER')]),
      dataset('people', { kind: 'duckdb', path: join(dir, 'people.duckdb'), table: 'people' }, [col('id', 'BIGINT'), col('name', 'VARCHAR')]),
    ]), { poolSize: 1 });
  });
  after(async () => { await engine?.close(); rmSync(dir, { recursive: true, force: true }); });

  const run = (sql: string) => engine.run(sql, { timeoutMs: 10_000 });

  it('defines each dataset as a view over its files instead of copying the rows into memory', async () => {
    const tables = await run("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'gh_ds_%'");
    const views = await run("SELECT view_name FROM duckdb_views() WHERE view_name LIKE 'gh_ds_%' ORDER BY 1");
    assert.deepEqual(tables.rows, [[0]]);
    assert.deepEqual(views.rows, [['gh_ds_claims'], ['gh_ds_people'], ['gh_ds_visits']]);
    const r = await run('SELECT count(*), sum(amount), min(year), max(year) FROM "memory"."main"."gh_ds_claims"');
    assert.deepEqual(r.rows, [[60000, 29_970_000, 2020, 2023]]);
    assert.deepEqual((await run('SELECT count(*) FROM "memory"."main"."gh_ds_people"')).rows, [[500]]);
  });

  it('exposes exactly the declared columns, as the declared types, with partition folders as typed columns', async () => {
    const r = await run('SELECT * FROM "memory"."main"."gh_ds_claims" LIMIT 1');
    assert.deepEqual(r.columns, [{ name: 'id', type: 'BIGINT' }, { name: 'year', type: 'INTEGER' }, { name: 'region', type: 'VARCHAR' }, { name: 'amount', type: 'DOUBLE' }]);
  });

  it('scans only the files of the partitions a filter selects', async () => {
    const one = await filesScanned(engine, `SELECT count(*) FROM "memory"."main"."gh_ds_claims" WHERE region = 'south' AND year = 2021`);
    assert.deepEqual(one, { scanned: 1, total: 12 });
    const region = await filesScanned(engine, `SELECT count(*) FROM "memory"."main"."gh_ds_claims" WHERE region = 'south'`);
    assert.deepEqual(region, { scanned: 4, total: 12 });
  });

  it('refuses to open any file but the declared ones: outside their folder, beside them, or listing the folder', async () => {
    const attempts = [
      `SELECT * FROM read_parquet(${q(join(dir, 'outside', 'secret.parquet'))})`,
      `SELECT * FROM read_csv(${q(join(dir, 'claims', 'sibling.csv'))})`,
      `SELECT * FROM read_text(${q(join(dir, 'claims', 'sibling.csv'))})`,
      `SELECT * FROM read_parquet(${q(join(dir, 'codes.parquet'))})`,
      `SELECT * FROM glob(${q(join(dir, '*'))})`,
      `SELECT * FROM glob(${q(join(dir, 'claims', '*'))})`,
      "SELECT * FROM read_text('/etc/passwd')",
      `ATTACH ${q(join(dir, 'outside', 'x.duckdb'))} AS x`,
      `COPY (SELECT 1) TO ${q(join(dir, 'claims', 'planted.csv'))}`,
    ];
    for (const sql of attempts) {
      const out = await run(sql).then((r) => r, (e: Error) => e);
      if (out instanceof Error) {
        assert.equal((out as { code?: string }).code, 'ENGINE_ERROR', sql);
        assert.doesNotMatch(out.message, /TOPSECRET/);
      } else {
        // glob() over a folder may answer with nothing; it must never list a file.
        assert.deepEqual(out.rows, [], sql);
      }
    }
    assert.deepEqual(readdirSync(join(dir, 'claims')).sort(), ['sibling.csv', 'year=2020', 'year=2021', 'year=2022', 'year=2023']);
  });

  it('cannot be widened by a query: the allow list names files only, and the configuration is locked', async () => {
    const s = await run("SELECT name, value FROM duckdb_settings() WHERE name IN ('allowed_directories', 'enable_external_access', 'lock_configuration') ORDER BY name");
    assert.deepEqual(s.rows, [['allowed_directories', '[]'], ['enable_external_access', 'false'], ['lock_configuration', 'true']]);
    for (const sql of [`SET allowed_directories = [${q(dir)}]`, `SET allowed_paths = [${q(join(dir, 'outside', 'secret.parquet'))}]`, 'SET enable_external_access = true']) {
      assert.equal(await codeOf(run(sql)), 'ENGINE_ERROR', sql);
    }
    // A view a query defines reads with the same permissions as the query itself.
    assert.equal(await codeOf(run(`CREATE VIEW memory.main.probe AS SELECT * FROM read_parquet(${q(join(dir, 'outside', 'secret.parquet'))})`)), 'ENGINE_ERROR');
  });

  it('attaches a DuckDB file read-only', async () => {
    assert.equal(await codeOf(run('INSERT INTO "gh_src_people"."main"."people" VALUES (1000, \'x\')')), 'ENGINE_ERROR');
    assert.deepEqual((await run('SELECT count(*) FROM "memory"."main"."gh_ds_people"')).rows, [[500]]);
  });

  it('reports a CSV value that does not parse as the declared type by dataset, column and line, never the value', async () => {
    // Line 4002 is past the sample checked at open: the first query that reads it finds it.
    const err = await run('SELECT sum(amount) FROM "memory"."main"."gh_ds_visits"').then(() => null, (e: Error) => e);
    assert.ok(err);
    assert.equal((err as { code?: string }).code, 'ENGINE_ERROR');
    assert.match(err.message, /CSV source of dataset visits does not match its declared types: column amount on line 4002 does not parse as INTEGER/);
    assert.doesNotMatch(JSON.stringify(err), /SECRET-4000|4000,/);
    // The rows before it are fine; the dataset answers what does not touch the bad value.
    assert.deepEqual((await run('SELECT count(id) FROM "memory"."main"."gh_ds_visits"')).rows, [[5000]]);
  });

  it('refuses at open a CSV whose sample does not parse, and a declared type some source values cannot become', async () => {
    writeFileSync(join(dir, 'bad.csv'), 'id,amount\n1,10\n2,PRIVATE-VALUE\n');
    await duck(async (r) => { await r(`COPY (SELECT 'A-' || i AS code FROM range(10) t(i)) TO ${q(join(dir, 'text-codes.parquet'))} (FORMAT parquet)`); });
    const err = await DuckDbEngine.open(workspace(dir, [
      dataset('bad', { kind: 'csv', path: join(dir, 'bad.csv') }, [col('id', 'BIGINT'), col('amount', 'INTEGER')]),
      dataset('codes', { kind: 'parquet', path: join(dir, 'text-codes.parquet') }, [col('code', 'BIGINT')]),
      dataset('missing', { kind: 'parquet', path: join(dir, 'codes.parquet') }, [col('id', 'BIGINT'), col('nope', 'VARCHAR')]),
    ])).then(() => null, (e: Error) => e);
    assert.ok(err instanceof WorkspaceInvalid);
    const messages = err.problems.map((p) => p.message);
    assert.deepEqual(messages, [
      'datasets.bad: the CSV source of dataset bad does not match its declared types: column amount on line 3 does not parse as INTEGER',
      'datasets.codes: column code is declared BIGINT but is VARCHAR in the source, and not every VARCHAR value converts to BIGINT: declare it as VARCHAR or convert the file',
      'datasets.missing: column nope is declared but the source has no such column',
    ]);
    assert.doesNotMatch(messages.join('\n'), /PRIVATE-VALUE|A-\d/);
  });
});

describe('partition pruning on governed queries, end to end', () => {
  let root: string;
  let node: GatehouseNode;
  const IVAN_SQL = 'SELECT region, count(*) AS n, sum(amount_billed) AS billed FROM claims GROUP BY region';

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'gh-in-place-node-'));
    const wsDir = join(root, 'ws');
    await createTestDemoWorkspace(wsDir, { patients: 2000, keys: KEYS });
    // The demo's claims, rewritten as a folder partitioned by region (one file each).
    const data = join(wsDir, 'data');
    await duck(async (run) => {
      await run(`COPY (SELECT * FROM read_parquet(${q(join(data, 'claims.parquet'))})) TO ${q(join(data, 'claims'))} (FORMAT parquet, PARTITION_BY (region))`);
    });
    rmSync(join(data, 'claims.parquet'));
    const yaml = join(wsDir, 'gatehouse.yaml');
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(yaml, 'utf8');
    assert.match(text, /source: \{ parquet: data\/claims\.parquet \}/);
    writeFileSync(yaml, text.replace('source: { parquet: data/claims.parquet }', 'source: { parquet: "data/claims/*/*.parquet", hivePartitioning: true }'));
    node = await startNode({ workspaceDir: wsDir, auditDir: join(root, 'audit'), demo: true, engineOptions: { poolSize: 1 }, http: null, wire: null, tls: null, setup: { demoGovernance: false } });
  });
  after(async () => { await node?.close(); rmSync(root, { recursive: true, force: true }); });

  it('answers a governed query over the partitioned folder with the row filter applied', async () => {
    const r = await node.gatehouse.query({ credential: KEYS.ivan, sql: IVAN_SQL, purpose: 'claims-processing', source: '127.0.0.1', channel: 'test' });
    assert.deepEqual(r.rows.map((row) => row[0]), ['us-east']);
    assert.ok(Number(r.rows[0]![1]) > 0);
  });

  it('refuses a governed query that names a declared file itself, which would bypass the row filter', async () => {
    const dir = join(node.gatehouse.workspace.workspace.dir, 'data', 'claims');
    const file = join(dir, 'region=us-west', readdirSync(join(dir, 'region=us-west'))[0]!);
    for (const sql of [`SELECT * FROM read_parquet(${q(file)})`, `SELECT * FROM read_parquet(${q(join(dir, '*', '*.parquet'))})`, `SELECT count(*) FROM claims WHERE EXISTS (SELECT 1 FROM read_parquet(${q(file)}))`]) {
      const code = await codeOf(node.gatehouse.query({ credential: KEYS.ivan, sql, purpose: 'claims-processing', source: '127.0.0.1', channel: 'test' }));
      assert.ok(['SQL_UNSUPPORTED', 'SQL_FUNCTION_NOT_ALLOWED', 'SQL_UNKNOWN_DATASET'].includes(code), `${sql} → ${code}`);
    }
  });

  it('scans only the partition the row filter selects (EXPLAIN ANALYZE of the governed SQL)', async () => {
    const l = await loadWorkspace(node.gatehouse.workspace.workspace.dir);
    const ws = l.workspace;
    const ivan = ws.principals.get('ivan')!;
    const decision = l.policy.decide(ivan, ws.datasets.get('claims')!, { purpose: 'claims-processing', sourceIp: '127.0.0.1', channel: 'test', time: new Date() });
    assert.ok(decision.allowed);
    const bound = bindQuery(parseSql(IVAN_SQL), { dataset: (n) => ws.datasets.get(n) });
    const governed = govern(bound, { principal: ivan, datasets: ws.datasets, defaultRowCap: ws.defaults.rowCap, rowFilters: l.rowFilters, obligations: new Map([['claims', decision.obligations]]), columnsUsed: new Set(bound.columns) });
    assert.ok(governed.obligationsApplied.some((o) => o.includes('insurer-claims')), governed.obligationsApplied.join(', '));
    const engine = await DuckDbEngine.open(ws, { poolSize: 1 });
    try {
      const sql = renderSelect(governed.query, engine.dialect);
      assert.deepEqual(await filesScanned(engine, sql), { scanned: 1, total: 3 });
    } finally {
      await engine.close();
    }
  });

  it('never opens the files of other partitions: a corrupted one does not disturb the governed query', async () => {
    const dir = join(node.gatehouse.workspace.workspace.dir, 'data', 'claims', 'region=us-west');
    for (const f of readdirSync(dir)) writeFileSync(join(dir, f), 'this is not a parquet file');
    const r = await node.gatehouse.query({ credential: KEYS.ivan, sql: `${IVAN_SQL} HAVING count(*) > 0`, purpose: 'claims-processing', source: '127.0.0.1', channel: 'test' });
    assert.deepEqual(r.rows.map((row) => row[0]), ['us-east']);
    // The control: a query with no filter on region (ada, no row filter) must open that file, and fails.
    assert.equal(await codeOf(node.gatehouse.query({ credential: KEYS.ada, sql: 'SELECT count(*) AS n FROM claims', purpose: 'operations', source: '127.0.0.1', channel: 'test' })), 'ENGINE_ERROR');
  });
});

describe('declaring a glob source in gatehouse.yaml', () => {
  let root: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'gh-in-place-ws-'));
    await createTestDemoWorkspace(join(root, 'demo'), { patients: 200, keys: KEYS });
  });
  after(() => { rmSync(root, { recursive: true, force: true }); });

  async function problemsWith(source: string): Promise<string[]> {
    const { cpSync, readFileSync } = await import('node:fs');
    const dir = join(root, `trial-${Math.random().toString(36).slice(2)}`);
    cpSync(join(root, 'demo'), dir, { recursive: true });
    const yaml = join(dir, 'gatehouse.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('source: { parquet: data/claims.parquet }', `source: ${source}`));
    try { await loadWorkspace(dir); return []; } catch (err) {
      if (err instanceof WorkspaceInvalid) return err.problems.map((p) => p.message);
      throw err;
    }
  }

  it('accepts a glob that matches files, with hive partitioning on', async () => {
    assert.deepEqual(await problemsWith('{ parquet: "data/*.parquet", hivePartitioning: true }'), []);
  });

  it('refuses a glob that matches no file, and a hivePartitioning that is not a boolean', async () => {
    assert.deepEqual(await problemsWith('{ parquet: "data/claims/**/*.parquet" }'), [
      'datasets.claims.source.parquet: no file matches data/claims/**/*.parquet (relative patterns are resolved against the workspace directory; * and ? match within a folder, ** across folders)',
    ]);
    assert.deepEqual(await problemsWith('{ parquet: "data/claims.parquet", hivePartitioning: "yes" }'), ['datasets.claims.source.hivePartitioning: must be true or false']);
    assert.match((await problemsWith('{ csv: "data/*.csv", hivePartitioning: true }')).join('\n'), /must be exactly one of \{parquet: FILE_OR_GLOB, hivePartitioning\?: true\}/);
  });
});
