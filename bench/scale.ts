/**
 * Benchmark, issue 15 "Data in place" at size: what a node pays for the data it serves.
 *
 * 1. Start-up vs declared data: `startNode` on the demo workspace plus one hive-partitioned
 *    Parquet dataset (`claims_history`), declared at 1 % of the generated size and at all of
 *    it (the same number of files, so only the bytes change). Goal: ≤ 2 s and flat.
 * 2. A governed aggregation over Parquet twice the engine's memory limit: `Gatehouse.query`
 *    as the demo's internal analyst (decision, row-level obligations, audit append with
 *    fsync) with `defaults.memoryLimit` = half the Parquet bytes, against raw DuckDB on the
 *    same files with the same memory limit, threads and no spill, interleaved. Goal: it
 *    completes, and governed ÷ raw ≤ 1.1×. The bench workspace's statement timeout is raised
 *    to 30 minutes (the demo's 20 s would stop a scan of 5 GB on a loaded machine).
 * 3. Demo restart: `node bin/gatehouse.ts serve --demo` in a scratch folder, stopped after its
 *    first start (which generates the demo data), then started again: spawn → `/v1/ready` 200.
 *    Goal ≤ 3 s.
 *
 *   npx node bench/scale.ts [--quick] [--gb=N]      (default 5 GB; --quick ≈ 60 MB)
 *
 * Data is generated under the OS temp folder (gatehouse-bench-scale/), never in the
 * repository, and kept between runs; delete that folder to reclaim the space.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoWorkspace } from '../src/demo/workspace.ts';
import { startNode } from '../src/node/start.ts';
import { isMain, isQuick, log, machineInfo, ROOT, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'scale';
const KEY_ADA = 'bench-key-ada-0123456789abcdef0';
const q = (s: string): string => `'${s.replaceAll("'", "''")}'`;
/** Parquet bytes per generated row, measured on this generator (refined after the first file). */
const BYTES_PER_ROW_GUESS = 16;

function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? bytesUnder(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

/**
 * Claims partitioned by year (5) × region (4) into `files` files per partition, `rows` rows
 * in all, under `dir`/claims. Columns with entropy (hashes), so Parquet cannot shrink them
 * to nothing and the bytes on disk follow the row count.
 */
async function generate(dir: string, rows: number, filesPerPartition: number): Promise<void> {
  if (existsSync(join(dir, 'done'))) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const db = await DuckDBInstance.create(':memory:', { threads: '2', temp_directory: '', memory_limit: '2GB' });
  const c = await db.connect();
  await c.run('SET preserve_insertion_order = false');
  const per = Math.ceil(rows / filesPerPartition);
  for (let f = 0; f < filesPerPartition; f++) {
    const from = f * per, to = Math.min(rows, from + per);
    await c.run(`COPY (SELECT i AS claim_id, (hash(i) % 50000000)::BIGINT AS patient_id, (2020 + i % 5)::INTEGER AS year,
        ['us-east', 'us-west', 'us-central', 'eu-west'][1 + (i // 5) % 4] AS region,
        ['Keystone Mutual', 'Harbor Health Plan', 'Medicare', 'Medicaid'][1 + (hash(i * 3) % 4)::BIGINT] AS payer,
        (hash(i * 7) % 10000000) / 100.0 AS amount, DATE '2020-01-01' + (hash(i * 11) % 1800)::INTEGER AS submitted_on
      FROM range(${from}, ${to}) t(i)) TO ${q(join(dir, 'claims'))} (FORMAT parquet, PARTITION_BY (year, region), FILENAME_PATTERN 'part-{uuid}', ROW_GROUP_SIZE 122880, APPEND)`);
  }
  c.closeSync();
  db.closeSync();
  writeFileSync(join(dir, 'done'), `${rows}\n`);
}

const DATASET_YAML = (glob: string): string => `
  claims_history:
    description: Claims history, hive-partitioned Parquet queried where it lies
    source: { parquet: ${JSON.stringify(glob)}, hivePartitioning: true }
    classification: confidential
    owner: st-avery
    region: us
    privacyUnit: patient_id
    purposes: [operations]
    columns:
      claim_id:     { type: BIGINT,  classification: internal }
      patient_id:   { type: BIGINT,  classification: confidential, tags: [id.patient] }
      year:         { type: INTEGER, classification: internal }
      region:       { type: VARCHAR, classification: internal }
      payer:        { type: VARCHAR, classification: internal }
      amount:       { type: DOUBLE,  classification: confidential }
      submitted_on: { type: DATE,    classification: internal }
`;

/** The demo workspace (small) with `claims_history` declared over `glob` and the given memory limit. */
async function workspaceWith(dir: string, glob: string, memoryLimit: string): Promise<void> {
  await createDemoWorkspace(dir, { patients: 200, keys: { ada: KEY_ADA } });
  const file = join(dir, 'gatehouse.yaml');
  const yaml = readFileSync(file, 'utf8');
  const edited = yaml.replace('\ndatasets:\n', `\ndatasets:${DATASET_YAML(glob)}\n`).replace(/memoryLimit: \S+/, `memoryLimit: ${memoryLimit}`).replace(/statementTimeoutMs: \d+/, 'statementTimeoutMs: 1800000');
  if (edited === yaml || !edited.includes('claims_history')) throw new Error('the demo gatehouse.yaml changed shape; update bench/scale.ts');
  writeFileSync(file, edited);
  rmSync(join(dir, 'state'), { recursive: true, force: true });
  rmSync(join(dir, 'audit'), { recursive: true, force: true });
}

async function timeStart(wsDir: string, root: string): Promise<number> {
  const auditDir = mkdtempSync(join(root, 'audit-'));
  const stateDir = mkdtempSync(join(root, 'state-'));
  const t = performance.now();
  const node = await startNode({ workspaceDir: wsDir, auditDir, state: { kind: 'files', dir: stateDir }, demo: true, http: null });
  const ms = performance.now() - t;
  await node.close();
  rmSync(auditDir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
  return ms;
}

const AGG_SQL = 'SELECT year, region, payer, count(*) AS claims, sum(amount) AS billed, avg(amount) AS mean, max(submitted_on) AS last FROM claims_history GROUP BY year, region, payer ORDER BY year, region, payer';

/**
 * spawn → first 200 from /v1/ready, for `gatehouse serve --demo` in `cwd`; the server is
 * stopped after. `root`: the checkout whose bin/gatehouse.ts runs (bench/restart.ts compares two).
 */
export async function demoReady(cwd: string, root = ROOT): Promise<number> {
  const t = performance.now();
  const child = spawn(process.execPath, [join(root, 'bin', 'gatehouse.ts'), 'serve', '--demo', '--port', '0', '--pg-port', '0', '--quiet'], { cwd, env: { ...process.env, GATEHOUSE_SCHEDULER_SECONDS: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    for (;;) {
      const m = /serving .* at (http:\/\/\S+)/.exec(out);
      if (m) {
        const res = await fetch(`${m[1]}/v1/ready`).catch(() => null);
        if (res?.status === 200) return performance.now() - t;
      }
      if (child.exitCode !== null) throw new Error(`gatehouse serve --demo exited: ${out.slice(-500)}`);
      if (performance.now() - t > 600_000) throw new Error('gatehouse serve --demo was not ready within 10 minutes');
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

export async function runScaleBench(quick: boolean, gb: number): Promise<BenchResult> {
  const targetBytes = quick ? 60e6 : gb * 1e9;
  const rows = Math.round(targetBytes / BYTES_PER_ROW_GUESS);
  const base = join(tmpdir(), 'gatehouse-bench-scale');
  const dataDir = join(base, `claims-${rows}`);
  const smallDir = join(base, `claims-${Math.round(rows / 100)}`);
  const filesPerPartition = quick ? 2 : 8;
  const runs = quick ? 3 : 5;
  const notes: string[] = [];
  const figures: Record<string, unknown> = {};
  let t = performance.now();
  await generate(smallDir, Math.round(rows / 100), filesPerPartition);
  await generate(dataDir, rows, filesPerPartition);
  const bigBytes = bytesUnder(join(dataDir, 'claims'));
  const smallBytes = bytesUnder(join(smallDir, 'claims'));
  log(NAME, `Parquet ready in ${((performance.now() - t) / 1000).toFixed(1)} s: ${rows.toLocaleString('en')} rows, ${(bigBytes / 1e9).toFixed(2)} GB (and ${(smallBytes / 1e6).toFixed(0)} MB at 1 %) in ${20 * filesPerPartition} files each, under ${base}`);
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-bench-scale-run-'));
  try {
    // 1. Start-up, the same workspace declaring 1 % and all of the data, interleaved.
    const memoryLimit = `${Math.max(16, Math.floor(bigBytes / 2 / 2 ** 20))}MiB`;
    const wsSmall = join(root, 'ws-small'), wsBig = join(root, 'ws-big');
    await workspaceWith(wsSmall, join(smallDir, 'claims', '**', '*.parquet'), memoryLimit);
    await workspaceWith(wsBig, join(dataDir, 'claims', '**', '*.parquet'), memoryLimit);
    await timeStart(wsSmall, root);
    const small: number[] = [], big: number[] = [];
    for (let i = 0; i < runs; i++) {
      small.push(await timeStart(wsSmall, root));
      big.push(await timeStart(wsBig, root));
    }
    const s1 = summarize(small), s100 = summarize(big);
    figures.startup = { smallParquetBytes: smallBytes, parquetBytes: bigBytes, files: 20 * filesPerPartition, smallMs: s1, bigMs: s100, ratio: round(s100.p50 / s1.p50) };
    log(NAME, `start-up p50: ${s1.p50} ms with ${(smallBytes / 1e6).toFixed(0)} MB declared, ${s100.p50} ms with ${(bigBytes / 1e9).toFixed(2)} GB`);

    // 2. Governed aggregation over twice the memory limit vs raw DuckDB, same limit.
    const node = await startNode({ workspaceDir: wsBig, auditDir: join(root, 'audit-agg'), state: { kind: 'files', dir: join(root, 'state-agg') }, demo: true, http: null });
    const raw = await DuckDBInstance.create(':memory:', { threads: '2', temp_directory: '', memory_limit: memoryLimit });
    const rc = await raw.connect();
    const rawSql = AGG_SQL.replace('FROM claims_history', `FROM read_parquet(${q(join(dataDir, 'claims', '**', '*.parquet'))}, hive_partitioning = true)`);
    const governed = async (): Promise<number> => (await node.gatehouse.query({ credential: KEY_ADA, sql: AGG_SQL, purpose: 'operations', source: '127.0.0.1', channel: 'bench' })).rows.length;
    const rawRun = async (): Promise<number> => (await rc.runAndReadAll(rawSql)).getRowsJS().length;
    const g0 = await governed(), r0 = await rawRun();
    if (g0 !== r0 || g0 === 0) throw new Error(`governed returned ${g0} groups, raw ${r0}`);
    const gs: number[] = [], rs: number[] = [];
    for (let i = 0; i < (quick ? 3 : 4); i++) {
      for (const [f, into] of (i % 2 === 0 ? [[governed, gs], [rawRun, rs]] : [[rawRun, rs], [governed, gs]]) as [() => Promise<number>, number[]][]) {
        const t0 = performance.now();
        await f();
        into.push(performance.now() - t0);
      }
    }
    rc.closeSync();
    raw.closeSync();
    await node.close();
    const sg = summarize(gs), sr = summarize(rs);
    figures.largerThanMemory = { memoryLimit, parquetBytes: bigBytes, groups: g0, governedMs: sg, rawMs: sr, ratio: round(sg.p50 / sr.p50) };
    log(NAME, `aggregation over ${(bigBytes / 1e9).toFixed(2)} GB with memory_limit ${memoryLimit}: governed p50 ${sg.p50} ms, raw ${sr.p50} ms (${round(sg.p50 / sr.p50)}×)`);

    // 3. Demo restart.
    const demoCwd = join(base, 'demo-restart');
    mkdirSync(demoCwd, { recursive: true });
    t = performance.now();
    const first = await demoReady(demoCwd);
    const restarts: number[] = [];
    for (let i = 0; i < (quick ? 2 : 3); i++) restarts.push(await demoReady(demoCwd));
    const sd = summarize(restarts);
    figures.demoRestart = { firstStartMs: round(first, 0), restartMs: sd };
    log(NAME, `demo: first start ${(first / 1000).toFixed(1)} s, restart p50 ${sd.p50} ms`);
    notes.push('start-up is startNode (workspace load, engines as views over the files, state, audit log), without listeners');
    notes.push('raw DuckDB: read_parquet over the same glob with hive_partitioning, same memory_limit, threads 2, temp_directory empty (no spill), runAndReadAll + getRowsJS');
    const flat = s100.p50 / s1.p50 <= 1.25 || s100.p50 - s1.p50 < 100;
    return {
      name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), notes, figures,
      goals: {
        startupFlat: { goal: 'start-up with the large Parquet declared ≤ 2 s, flat in data size', measured: `${s100.p50} ms with ${(bigBytes / 1e9).toFixed(2)} GB, ${s1.p50} ms with ${(smallBytes / 1e6).toFixed(0)} MB (p50 of ${runs})`, met: s100.p50 <= 2000 && flat },
        largerThanMemory: { goal: 'a governed aggregation over Parquet twice the memory limit completes, ÷ raw DuckDB with the same limit ≤ 1.1×', measured: `${round(sg.p50 / sr.p50)}× (${sg.p50} ÷ ${sr.p50} ms, limit ${memoryLimit}, ${(bigBytes / 1e9).toFixed(2)} GB)`, met: sg.p50 / sr.p50 <= 1.1 },
        demoRestart: { goal: 'demo restart (npm start the second time) ≤ 3 s to ready', measured: `${sd.p50} ms p50 of ${restarts.length}`, met: sd.p50 <= 3000 },
      },
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const gbArg = process.argv.find((a) => a.startsWith('--gb='));
  const r = await runScaleBench(isQuick(), gbArg ? Number(gbArg.slice(5)) : 5);
  for (const [k, g] of Object.entries(r.goals)) log(NAME, `${g.met ? 'MET ' : 'MISS'} ${k}: ${g.measured}`);
  log(NAME, `wrote ${writeResult(r)}`);
}
