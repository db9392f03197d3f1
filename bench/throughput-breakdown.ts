/**
 * Where the throughput at concurrency 16 goes (issue 15): the same small query from 16
 * callers at once, in process (no HTTP), along the governed path and along each of its
 * parts alone, interleaved round by round so every path sees the same machine load.
 *
 *   raw-memory    the SQL on a plain DuckDB table holding the rows (the peer's engine work)
 *   raw-parquet   the SQL Gatehouse renders, on plain DuckDB over the same Parquet file
 *                 (data in place: what the governed engine reads)
 *   engine        the SQL the governed path renders, through Gatehouse's own engine class
 *                 (src/engine/duckdb.ts: locked down, prepared statements, pool of 4) on an
 *                 instance of its own: the engine's share of the governed path
 *   audit         one durable audit append per query (group commit), nothing else
 *   governed      `gatehouse.query` in process: the whole path
 *
 * Each path runs with 4 DuckDB connections, the governed engine's pool size. Per path it
 * reports the event loop's busy time per query (what bounds one JavaScript thread) and the
 * process's CPU time per query over all threads (what bounds throughput on 2 cores, where
 * DuckDB's threads and the event loop share them).
 *
 *   npx node bench/throughput-breakdown.ts [--quick]
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_DIR, freshDemoWorkspace, isMain, isQuick, log, machineInfo, profilePath, round, summarize, writeResult, type BenchResult } from './run.ts';
import { SMALL_SQL } from './http.ts';
import { addThreadCpu, threadCpu, threadCpuMedians, type ThreadTicks } from './thread-cpu.ts';

const NAME = 'throughput-breakdown';
const PURPOSE = 'operations';
const CONCURRENCY = 16;

/** Main-thread (event loop) busy time per query of the last run, µs: what bounds throughput on one JS thread. */
let lastLoopUsPerQuery = 0;
/** Process CPU time (every thread: JavaScript, DuckDB's, the thread pool's) per query of the last run, µs: what bounds throughput on 2 cores. */
let lastCpuUsPerQuery = 0;
/** Thread CPU before and after the last run, and its query count (thread-cpu.ts). */
let lastThreads: [ThreadTicks, ThreadTicks, number] = [new Map(), new Map(), 0];

/** Queries per second of `op` from CONCURRENCY callers for `ms`. */
async function qps(op: () => Promise<unknown>, ms: number): Promise<number> {
  let done = 0;
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage(), threads0 = threadCpu();
  const start = performance.now();
  const until = start + ms;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < until) { await op(); done++; }
  }));
  const busy = performance.eventLoopUtilization(elu);
  lastLoopUsPerQuery = (busy.active * 1000) / Math.max(1, done);
  const used = process.cpuUsage(cpu);
  lastCpuUsPerQuery = (used.user + used.system) / Math.max(1, done);
  lastThreads = [threads0, threadCpu(), done];
  return done / ((performance.now() - start) / 1000);
}

/** A pool of connections shared by the callers, as the engine's and the minimal handler's. */
function pooled(conns: DuckDBConnection[], sql: string): () => Promise<void> {
  const idle = [...conns];
  const waiting: ((c: DuckDBConnection) => void)[] = [];
  return async () => {
    const c = idle.pop() ?? await new Promise<DuckDBConnection>((r) => waiting.push(r));
    try { (await c.runAndReadAll(sql)).getRowsJS(); } finally { const w = waiting.shift(); if (w) w(c); else idle.push(c); }
  };
}

export async function runThroughputBreakdown(quick: boolean): Promise<BenchResult> {
  const { startNode } = await import('../src/node/start.ts');
  const { loadWorkspace } = await import('../src/workspace/validate.ts');
  const { quoteIdent, quoteString } = await import('../src/query/render/sql.ts');
  const patients = quick ? 5_000 : 20_000;
  const rounds = quick ? 2 : 4;
  const ms = quick ? 1_000 : 3_000;
  const wsDir = join(CACHE_DIR, `demo-${patients}x5`);
  const demo = await freshDemoWorkspace(wsDir, { patients, encountersPerPatient: 5 }, (y) => y.replace(/(\n  memoryLimit: \S+\n)/, '$1  concurrency: { queuePerPrincipal: 16 }\n'));
  const auditDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-tp-audit-'));
  const node = await startNode({ workspaceDir: wsDir, auditDir, demo: true });
  const loaded = await loadWorkspace(wsDir);
  const ws = loaded.workspace;
  const pat = ws.datasets.get('patients')!;
  if (pat.source.kind !== 'parquet') throw new Error('expected a Parquet source for patients');
  const raw = await DuckDBInstance.create(':memory:', { threads: '2' });
  const setup = await raw.connect();
  const cols = pat.columns.map((c) => `CAST(${quoteIdent(c.name)} AS ${c.type === 'DECIMAL' ? 'DOUBLE' : c.type}) AS ${quoteIdent(c.name)}`).join(', ');
  await setup.run(`CREATE TABLE patients AS SELECT ${cols} FROM read_parquet(${quoteString(pat.source.path)})`);
  await setup.run(`CREATE VIEW patients_parquet AS SELECT * FROM read_parquet(${quoteString(pat.source.path)})`);
  await setup.run('SET parquet_metadata_cache = true');
  const conns = await Promise.all([0, 1, 2, 3].map(() => raw.connect()));
  const parquetSql = `SELECT count(*) AS "n" FROM (SELECT "region" AS "region" FROM "patients_parquet") AS "patients" WHERE ("patients"."region" = 'us-east') LIMIT 10001`;
  // The governed SQL as the node renders it, run by the node's engine class on its own instance.
  const { DuckDbEngine } = await import('../src/engine/duckdb.ts');
  const { bindQuery } = await import('../src/query/bind.ts');
  const { govern } = await import('../src/query/govern/index.ts');
  const { parseSql } = await import('../src/query/parse.ts');
  const { renderSelect } = await import('../src/query/render/sql.ts');
  const engine = await DuckDbEngine.open(ws, { poolSize: 4 });
  const bound = bindQuery(parseSql(SMALL_SQL), { dataset: (n) => ws.datasets.get(n) });
  const principal = ws.principals.get('ada')!;
  const decisions = bound.datasets.map((n) => loaded.policy.decide(principal, ws.datasets.get(n)!, { purpose: PURPOSE, sourceIp: '127.0.0.1', channel: 'bench', time: new Date() }));
  const governedQuery = govern(bound, { principal, datasets: ws.datasets, defaultRowCap: ws.defaults.rowCap, rowFilters: loaded.rowFilters, obligations: new Map(decisions.map((d) => [d.dataset, d.obligations])), columnsUsed: new Set(bound.columns) });
  const engineSql = renderSelect(governedQuery.query, engine.dialect);
  const entry = { time: new Date().toISOString(), principal: 'ada', source: '127.0.0.1', channel: 'bench', action: 'query', purpose: PURPOSE, datasets: ['patients'], columns: ['region'], decision: 'allow' as const, reasons: ['policy p'], policyVersion: 'sha256:x', obligations: ['rowCap:10000'], sqlFingerprint: 'f', rowsReturned: 1, resultDigest: 'd', errorCode: null };
  const paths: Record<string, () => Promise<unknown>> = {
    'raw-memory': pooled(conns, SMALL_SQL),
    'raw-parquet': pooled(conns, parquetSql),
    engine: () => engine.run(engineSql, { timeoutMs: 30_000 }),
    audit: () => node.audit.append(entry),
    governed: () => node.gatehouse.query({ credential: demo.keys.ada, sql: SMALL_SQL, purpose: PURPOSE, source: '127.0.0.1', channel: 'bench' }),
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  const loopUs: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  const cpuUs: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  /** Audit entries per group commit (one write + one fdatasync each) during each path's runs. */
  const entriesPerSync: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  const threadSplit = new Map<string, Map<string, number[]>>();
  // Wall time each stage of the governed path took, summed (stages overlap across callers).
  const stages = new Map<string, { n: number; s: number }>();
  node.gatehouse.monitoring().onTiming((stage, seconds) => { const x = stages.get(stage) ?? { n: 0, s: 0 }; x.n++; x.s += seconds; stages.set(stage, x); });
  try {
    for (const op of Object.values(paths)) await qps(op, 300); // warm-up
    // BENCH_PROFILE=<file.cpuprofile>: the governed path alone, 16 callers at once.
    if (process.env.BENCH_PROFILE) { process.env.BENCH_PROFILE_CONCURRENCY ??= String(CONCURRENCY); await profilePath(NAME, process.env.BENCH_PROFILE, paths.governed!); }
    for (let r = 0; r < rounds; r++) {
      const order = Object.keys(paths);
      if (r % 2 === 1) order.reverse();
      for (const k of order) {
        const a0 = node.audit.stats();
        samples[k]!.push(await qps(paths[k]!, ms));
        const a1 = node.audit.stats();
        entriesPerSync[k]!.push((a1.size - a0.size) / Math.max(1, a1.batches - a0.batches)); loopUs[k]!.push(lastLoopUsPerQuery); cpuUs[k]!.push(lastCpuUsPerQuery);
        addThreadCpu(threadSplit, k, ...lastThreads);
      }
      log(NAME, `round ${r + 1}/${rounds}: ${order.map((k) => `${k} ${samples[k]!.at(-1)!.toFixed(0)}`).join(', ')} q/s`);
    }
  } finally {
    for (const c of [setup, ...conns]) c.closeSync();
    await engine.close();
    raw.closeSync();
    await node.close();
    rmSync(auditDir, { recursive: true, force: true });
  }
  const stageMs = Object.fromEntries([...stages].map(([k, v]) => [k, round((v.s / v.n) * 1000, 3)]));
  log(NAME, `governed path, mean wall ms per stage at concurrency ${CONCURRENCY}: ${JSON.stringify(stageMs)}`);
  const loopMed = Object.fromEntries(Object.entries(loopUs).map(([k, v]) => [k, summarize(v, 1).p50]));
  log(NAME, `event-loop busy µs per query (median): ${JSON.stringify(loopMed)}`);
  const cpuMed = Object.fromEntries(Object.entries(cpuUs).map(([k, v]) => [k, summarize(v, 1).p50]));
  log(NAME, `process CPU µs per query, all threads (median): ${JSON.stringify(cpuMed)}`);
  const byThread = threadCpuMedians(threadSplit);
  log(NAME, `process CPU µs per query by thread kind (median): ${JSON.stringify(byThread)}`);
  const perSync = { audit: summarize(entriesPerSync.audit!, 1).p50, governed: summarize(entriesPerSync.governed!, 1).p50 };
  log(NAME, `audit entries per group commit (median): ${JSON.stringify(perSync)}`);
  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v, 1).p50]));
  const figures = {
    patients, concurrency: CONCURRENCY, rounds, governedStageMeanWallMs: stageMs, eventLoopBusyUsPerQuery: loopMed, processCpuUsPerQuery: cpuMed, processCpuUsPerQueryByThread: byThread, auditEntriesPerGroupCommit: perSync, msPerRun: ms, queriesPerSecond: samples, medians: med,
    governedOverRawMemory: round(med.governed! / med['raw-memory']!), rawParquetOverRawMemory: round(med['raw-parquet']! / med['raw-memory']!),
  };
  log(NAME, `medians (q/s): ${JSON.stringify(med)}; governed ÷ raw-memory ${figures.governedOverRawMemory}×`);
  return { name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), figures, goals: {} };
}

if (isMain(import.meta.url)) {
  const r = await runThroughputBreakdown(isQuick());
  writeResult(r);
}
