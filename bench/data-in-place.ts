/**
 * Benchmark, issue 15 "Data in place": file datasets are queried where they lie.
 *
 * 1. Start-up vs data size: `DuckDbEngine.open` over a hive-partitioned Parquet dataset of
 *    1× and 10× the rows (same number of files, so only the size changes), against what
 *    the previous engine did (copy the rows into memory: `CREATE TABLE AS SELECT`), each
 *    opened 5 times (3 with --quick), medians. Goal: flat (10× ÷ 1× ≤ 1.2, or both under 0.2 s).
 * 2. Partition pruning: a governed-shape filter on the partition columns, EXPLAIN ANALYZE
 *    "Scanning Files: k/n", and the time against the same query with no partition filter.
 * 3. Row-group pruning by Parquet statistics: the same selective range filter over the same
 *    rows written sorted by the filtered column and shuffled (row groups of 100k rows).
 * 4. Data larger than memory: an aggregation over the 10× data with a memory limit well
 *    below what its rows take in memory, engine ÷ raw DuckDB with the same limit (≤ 1.1×).
 *
 *   npx node bench/data-in-place.ts [--quick]
 *
 * Data is generated once into .gatehouse/bench/in-place-<rows>/ (git-ignored).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDbEngine } from '../src/engine/duckdb.ts';
import type { ColumnDef, ColumnType, DatasetDef, Workspace } from '../src/model/types.ts';
import { CACHE_DIR, isMain, isQuick, log, machineInfo, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'data-in-place';
const q = (s: string): string => `'${s.replaceAll("'", "''")}'`;
const col = (name: string, type: ColumnType): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds: null, description: null });
const COLUMNS = [col('claim_id', 'BIGINT'), col('patient_id', 'BIGINT'), col('year', 'INTEGER'), col('region', 'VARCHAR'), col('payer', 'VARCHAR'), col('amount', 'DOUBLE'), col('submitted_on', 'DATE')];

function workspace(dir: string, datasets: DatasetDef[], memoryLimit = '1GB'): Workspace {
  return {
    dir, name: 'bench', defaults: { rowCap: 10_000, statementTimeoutMs: 120_000, memoryLimit },
    datasets: new Map(datasets.map((d) => [d.name, d])), obligations: new Map(), principals: new Map(), policyFiles: new Map(), cedarSchema: '', hashKey: Buffer.alloc(32, 7), policyVersion: 'bench',
  };
}

function claimsDataset(dir: string): DatasetDef {
  return {
    name: 'claims', description: null, source: { kind: 'parquet', path: join(dir, 'claims', '**', '*.parquet'), hivePartitioning: true },
    classification: 'internal', tags: [], privacyUnit: 'patient_id', region: null, owner: null, purposes: [], columns: COLUMNS,
  };
}

function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? bytesUnder(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

/** Claims partitioned by year (5) and region (4): 20 files, whatever the row count. */
async function generate(rows: number): Promise<string> {
  const dir = join(CACHE_DIR, `in-place-${rows}`);
  if (existsSync(join(dir, 'done'))) return dir;
  mkdirSync(dir, { recursive: true });
  const db = await DuckDBInstance.create(':memory:', { threads: '2', temp_directory: '' });
  const c = await db.connect();
  await c.run("SET preserve_insertion_order = false");
  await c.run(`COPY (SELECT i AS claim_id, i // 5 AS patient_id, (2020 + i % 5)::INTEGER AS year, ['us-east', 'us-west', 'us-central', 'eu-west'][1 + (i // 5) % 4] AS region,
      ['Keystone Mutual', 'Harbor Health Plan', 'Medicare', 'Medicaid'][1 + i % 4] AS payer, ((i * 7919) % 100000) / 37.0 AS amount, DATE '2020-01-01' + (i % 1800)::INTEGER AS submitted_on
      FROM range(${rows}) t(i)) TO ${q(join(dir, 'claims'))} (FORMAT parquet, PARTITION_BY (year, region), ROW_GROUP_SIZE 100000)`);
  // The same rows twice more, as single files: sorted by claim_id, and shuffled.
  await c.run(`COPY (SELECT i AS claim_id, ((i * 7919) % 100000) / 37.0 AS amount FROM range(${rows}) t(i) ORDER BY claim_id) TO ${q(join(dir, 'sorted.parquet'))} (FORMAT parquet, ROW_GROUP_SIZE 100000)`);
  await c.run(`COPY (SELECT i AS claim_id, ((i * 7919) % 100000) / 37.0 AS amount FROM range(${rows}) t(i) ORDER BY hash(i)) TO ${q(join(dir, 'shuffled.parquet'))} (FORMAT parquet, ROW_GROUP_SIZE 100000)`);
  await c.run(`COPY (SELECT 1) TO ${q(join(dir, 'done'))} (FORMAT csv)`);
  c.closeSync();
  db.closeSync();
  return dir;
}

/** The previous engine's start: every row copied into an in-memory table (for contrast). */
async function openByCopy(dir: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:', { threads: '2', temp_directory: '' });
  const c = await db.connect();
  await c.run(`CREATE TABLE claims AS SELECT * FROM read_parquet(${q(join(dir, 'claims', '**', '*.parquet'))}, hive_partitioning = true)`);
  c.closeSync();
  db.closeSync();
}

async function timeIt(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

export async function runDataInPlaceBench(quick: boolean): Promise<BenchResult> {
  const base = quick ? 500_000 : 3_000_000;
  const opens = quick ? 3 : 5;
  const runs = quick ? 5 : 15;
  const notes: string[] = [];
  const figures: Record<string, unknown> = {};
  const dirs: Record<string, string> = {};
  for (const [label, rows] of [['1x', base], ['10x', base * 10]] as const) {
    const t = performance.now();
    dirs[label] = await generate(rows);
    log(NAME, `${label}: ${rows.toLocaleString('en')} rows, ${(bytesUnder(join(dirs[label]!, 'claims')) / 1e6).toFixed(0)} MB of Parquet ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }

  // 1. Start-up vs data size.
  const startup: Record<string, unknown> = {};
  for (const label of ['1x', '10x'] as const) {
    const dir = dirs[label]!;
    const open: number[] = [];
    for (let i = 0; i < opens; i++) {
      open.push(await timeIt(async () => { const e = await DuckDbEngine.open(workspace(dir, [claimsDataset(dir)]), { poolSize: 4 }); await e.close(); }));
    }
    const copy: number[] = [];
    for (let i = 0; i < (quick ? 1 : 2); i++) copy.push(await timeIt(() => openByCopy(dir)));
    startup[label] = { parquetMB: round(bytesUnder(join(dir, 'claims')) / 1e6, 0), rows: label === '1x' ? base : base * 10, openInPlaceMs: summarize(open), openByCopyMs: summarize(copy) };
    log(NAME, `start-up ${label}: in place p50 ${summarize(open).p50} ms, by copy p50 ${summarize(copy).p50} ms`);
  }
  figures.startup = startup;
  const s1 = (startup['1x'] as { openInPlaceMs: { p50: number } }).openInPlaceMs.p50;
  const s10 = (startup['10x'] as { openInPlaceMs: { p50: number } }).openInPlaceMs.p50;

  // 2. Partition pruning and 3. row-group pruning, on the 10× data.
  const dir = dirs['10x']!;
  const engine = await DuckDbEngine.open(workspace(dir, [claimsDataset(dir),
    { ...claimsDataset(dir), name: 'sorted', source: { kind: 'parquet', path: join(dir, 'sorted.parquet') }, columns: [col('claim_id', 'BIGINT'), col('amount', 'DOUBLE')] },
    { ...claimsDataset(dir), name: 'shuffled', source: { kind: 'parquet', path: join(dir, 'shuffled.parquet') }, columns: [col('claim_id', 'BIGINT'), col('amount', 'DOUBLE')] },
  ]), { poolSize: 1 });
  try {
    const run = (sql: string) => engine.run(sql, { timeoutMs: 120_000 });
    const t = (n: string) => `"memory"."main"."gh_ds_${n}"`;
    const explain = async (sql: string): Promise<{ scanned: string }> => {
      const text = (await run(`EXPLAIN ANALYZE ${sql}`)).rows.map((r) => r.join('\n')).join('\n');
      return { scanned: /Scanning Files: (\d+\/\d+)/.exec(text)?.[1] ?? /Total Files Read: (\d+)/.exec(text)?.[1] ?? '?' };
    };
    const timed = async (sql: string): Promise<ReturnType<typeof summarize>> => {
      for (let i = 0; i < 2; i++) await run(sql);
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) ms.push(await timeIt(() => run(sql)));
      return summarize(ms);
    };
    // The shape a governed query with a row filter (region = principal.region) renders to.
    const pruned = `SELECT payer, count(*) AS n, sum(amount) AS s FROM (SELECT * FROM ${t('claims')} WHERE region = 'us-east') AS c WHERE year = 2023 GROUP BY payer`;
    const whole = `SELECT payer, count(*) AS n, sum(amount) AS s FROM (SELECT * FROM ${t('claims')}) AS c GROUP BY payer`;
    const pe = await explain(pruned), we = await explain(whole);
    const pt = await timed(pruned), wt = await timed(whole);
    figures.partitionPruning = { query: pruned, filesScanned: pe.scanned, wholeFilesScanned: we.scanned, prunedMs: pt, wholeMs: wt };
    log(NAME, `partition pruning: files ${pe.scanned} (vs ${we.scanned}), p50 ${pt.p50} ms vs ${wt.p50} ms`);

    const rows10 = base * 10;
    const lo = Math.floor(rows10 / 2), hi = lo + 1000;
    const range = (n: string) => `SELECT count(*), sum(amount) FROM ${t(n)} WHERE claim_id BETWEEN ${lo} AND ${hi}`;
    const st = await timed(range('sorted')), ht = await timed(range('shuffled'));
    figures.rowGroupPruning = { rows: rows10, rowGroupRows: 100_000, rowGroups: Math.ceil(rows10 / 100_000), filter: `claim_id BETWEEN ${lo} AND ${hi}`, sortedMs: st, shuffledMs: ht };
    log(NAME, `row-group pruning: sorted p50 ${st.p50} ms vs shuffled p50 ${ht.p50} ms`);
    notes.push('row-group pruning: the same rows and the same filter; in the sorted file the min/max statistics of claim_id exclude all but one row group, in the shuffled file every row group overlaps the range and must be read');
  } finally {
    await engine.close();
  }
  // 4. Data larger than the engine's memory: a governed-shape aggregation over the 10× data
  // with a memory limit far below what its rows take in memory, against raw DuckDB with the
  // same limit over the same files.
  const limit = quick ? '48MB' : '256MB';
  let largerRatio = Infinity;
  let largerMeasured = 'did not complete';
  const small = await DuckDbEngine.open(workspace(dir, [claimsDataset(dir)], limit), { poolSize: 1 });
  const raw = await DuckDBInstance.create(':memory:', { threads: '2', temp_directory: '', memory_limit: limit });
  const rc = await raw.connect();
  try {
    const inMemory = await (async () => {
      const db = await DuckDBInstance.create(':memory:', { threads: '2', temp_directory: '' });
      const c = await db.connect();
      await c.run(`CREATE TABLE claims AS SELECT * FROM read_parquet(${q(join(dir, 'claims', '**', '*.parquet'))}, hive_partitioning = true)`);
      const r = await c.runAndReadAll('SELECT sum(memory_usage_bytes)::BIGINT FROM duckdb_memory()');
      const bytes = Number(r.getRowsJS()[0]![0]);
      c.closeSync(); db.closeSync();
      return bytes;
    })();
    const agg = (from: string) => `SELECT region, year, count(*) AS n, sum(amount) AS s, avg(amount) AS a FROM (SELECT * FROM ${from} WHERE payer <> 'Medicaid') AS c GROUP BY region, year`;
    const viaEngine = () => small.run(agg('"memory"."main"."gh_ds_claims"'), { timeoutMs: 300_000 });
    const viaRaw = () => rc.runAndReadAll(agg(`read_parquet(${q(join(dir, 'claims', '**', '*.parquet'))}, hive_partitioning = true)`));
    await viaEngine(); await viaRaw();
    const g: number[] = [], r: number[] = [];
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) { g.push(await timeIt(viaEngine)); r.push(await timeIt(viaRaw)); } else { r.push(await timeIt(viaRaw)); g.push(await timeIt(viaEngine)); }
    }
    const sg = summarize(g), sr = summarize(r);
    figures.largerThanMemory = { memoryLimit: limit, rowsInMemoryBytes: inMemory, engineMs: sg, rawMs: sr, ratio: round(sg.p50 / sr.p50) };
    largerRatio = round(sg.p50 / sr.p50);
    largerMeasured = `${largerRatio}× (${sg.p50} ms ÷ ${sr.p50} ms; limit ${limit}, rows ${(inMemory / 1e6).toFixed(0)} MB in memory)`;
    log(NAME, `larger than memory: limit ${limit}, the rows take ${(inMemory / 1e6).toFixed(0)} MB in memory; engine p50 ${sg.p50} ms, raw p50 ${sr.p50} ms`);
  } finally {
    rc.closeSync(); raw.closeSync();
    await small.close();
  }

  const flat = s10 <= s1 * 1.2 || Math.max(s1, s10) < 200;
  return {
    name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), notes, figures,
    goals: {
      startupFlatInDataSize: { goal: 'start-up does not grow with data size (10× the rows, same files)', measured: `${s1} ms at 1×, ${s10} ms at 10× (p50 of ${opens} opens)`, met: flat },
      largerThanMemoryOverRaw: { goal: '≤ 1.1× raw DuckDB on the same files with the same memory limit, data larger than the limit', measured: largerMeasured, met: largerRatio <= 1.1 },
    },
  };
}

if (isMain(import.meta.url)) {
  const r = await runDataInPlaceBench(isQuick());
  log(NAME, `wrote ${writeResult(r)}`);
}
