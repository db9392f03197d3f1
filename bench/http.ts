/**
 * Benchmark (2): added latency of a small governed query over HTTP (p50/p99; goal p50 ≤ 1 ms
 * added) and throughput at concurrency 16 (goal ≥ 3,000 queries/s) on this machine.
 *
 * The real server (a node from `startNode`: the file-backed transparency log with fsync) listens on
 * 127.0.0.1 on an ephemeral port, serving the demo workspace (20,000 patients). The load
 * generator runs in a worker thread (its own event loop, so it does not queue behind the
 * server's) and talks over keep-alive `node:http` connections. The raw comparator is the same
 * SQL on a plain in-memory DuckDB instance in the same process, holding the same rows.
 *
 * Latency is measured in interleaved rounds of: raw DuckDB, Gatehouse in-process
 * (`gh.query`, no HTTP), the SQL Gatehouse renders run on raw DuckDB, HTTP `GET /v1/health`
 * (the server's floor) and HTTP `POST /v1/query`, so the added latency can be attributed.
 * Throughput at concurrency 16 is also measured against the peer issue 15 names: the same SQL
 * on raw DuckDB behind a minimal Fastify handler, in alternating runs.
 *
 * With `--baseline=DIR` (another checkout, e.g. `git archive main | tar -x -C DIR` with
 * `node_modules` linked), a second node runs DIR's code on its own copy of the workspace in the
 * same process, and the throughput alternation includes it: before/after in one run.
 *
 *   node bench/http.ts [--quick] [--baseline=DIR]
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import Fastify from 'fastify';
import { request as httpRequest, Agent } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { addThreadCpu, threadCpu, threadCpuMedians } from './thread-cpu.ts';
import { CACHE_DIR, freshDemoWorkspace, isMain, isQuick, log, machineInfo, profilePath, round, startCpuProfile, summarize, writeResult, type BenchResult } from './run.ts';

/** A CPU profile of the server thread from now until `stopInto`. */
async function startProfile(): Promise<{ stopInto: (file: string, requests: number) => Promise<void> }> {
  const profiling = await startCpuProfile(100);
  return {
    stopInto: async (file, requests) => {
      await profiling.stopInto(file);
      log(NAME, `wrote a CPU profile of the server thread serving ${requests} requests at concurrency 16 to ${file}`);
    },
  };
}

const NAME = 'http';
export const SMALL_SQL = "SELECT count(*) AS n FROM patients WHERE region = 'us-east'";
const PURPOSE = 'operations';

// ---- load generator (worker thread) -----------------------------------------------------

interface ClientConfig { readonly port: number; readonly key: string }
type Command =
  | { readonly type: 'seq'; readonly path: '/v1/query' | '/v1/health'; readonly n: number; readonly maxMs: number }
  | { readonly type: 'load'; readonly concurrency: number; readonly durationMs: number; readonly maxRequests: number; readonly port?: number; readonly key?: string }
  | { readonly type: 'stop' };
interface SeqReply { readonly samples: number[]; readonly errors: number; readonly lastBody: string }
interface LoadReply { readonly completed: number; readonly errors: number; readonly elapsedMs: number; readonly samples: number[]; readonly statuses: Record<string, number> }

function clientMain(cfg: ClientConfig): void {
  const body = JSON.stringify({ sql: SMALL_SQL, purpose: PURPOSE });
  const send = (agent: Agent, path: string, port = cfg.port, key = cfg.key): Promise<{ status: number; body: string; ms: number }> => new Promise((resolve, reject) => {
    const t = performance.now();
    const post = path === '/v1/query';
    const req = httpRequest({
      host: '127.0.0.1', port, path, method: post ? 'POST' : 'GET', agent,
      headers: post ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}` } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(post ? body : undefined);
  });

  parentPort!.on('message', async (cmd: Command) => {
    if (cmd.type === 'stop') { parentPort!.close(); return; }
    if (cmd.type === 'seq') {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const samples: number[] = [];
      let errors = 0;
      let lastBody = '';
      const until = performance.now() + cmd.maxMs;
      for (let i = 0; i < cmd.n && performance.now() < until; i++) {
        try {
          const r = await send(agent, cmd.path);
          if (r.status !== 200) errors++; else samples.push(r.ms);
          lastBody = r.body;
        } catch { errors++; }
      }
      agent.destroy();
      parentPort!.postMessage({ samples, errors, lastBody } satisfies SeqReply);
      return;
    }
    const agent = new Agent({ keepAlive: true, maxSockets: cmd.concurrency });
    const samples: number[] = [];
    const statuses: Record<string, number> = {};
    let completed = 0;
    let errors = 0;
    let issued = 0;
    const start = performance.now();
    const until = start + cmd.durationMs;
    const loop = async (): Promise<void> => {
      while (performance.now() < until && issued < cmd.maxRequests) {
        issued++;
        try {
          const r = await send(agent, '/v1/query', cmd.port, cmd.key);
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          if (r.status === 200) { completed++; samples.push(r.ms); } else errors++;
        } catch { errors++; }
      }
    };
    await Promise.all(Array.from({ length: cmd.concurrency }, loop));
    const elapsedMs = performance.now() - start;
    agent.destroy();
    parentPort!.postMessage({ completed, errors, elapsedMs, samples, statuses } satisfies LoadReply);
  });
}

// ---- the benchmark (main thread) ---------------------------------------------------------

class Client {
  readonly #w: Worker;
  #pending: { resolve: (m: unknown) => void; reject: (e: Error) => void } | null = null;
  constructor(cfg: ClientConfig) {
    this.#w = new Worker(new URL(import.meta.url), { workerData: { role: 'http-bench-client', cfg } });
    this.#w.unref();
    this.#w.on('message', (m: unknown) => { const p = this.#pending; this.#pending = null; p?.resolve(m); });
    this.#w.on('error', (e: Error) => { const p = this.#pending; this.#pending = null; p?.reject(e); });
  }
  /** One command at a time; answers within `timeoutMs` or rejects. */
  call<T>(cmd: Command, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending = null; reject(new Error(`load generator did not answer within ${timeoutMs} ms`)); }, timeoutMs);
      this.#pending = {
        resolve: (m) => { clearTimeout(timer); resolve(m as T); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.#w.postMessage(cmd);
    });
  }
  async close(): Promise<void> { await this.#w.terminate(); }
}

async function timeRaw(conn: DuckDBConnection, sql: string): Promise<number> {
  const t = performance.now();
  const reader = await conn.runAndReadAll(sql);
  reader.getRowsJS();
  return performance.now() - t;
}

export async function runHttpBench(quick: boolean, baselineDir: string | null = null): Promise<BenchResult> {
  const { startNode } = await import('../src/node/start.ts');
  const { loadWorkspace } = await import('../src/workspace/validate.ts');
  const { bindQuery } = await import('../src/query/bind.ts');
  const { govern } = await import('../src/query/govern/index.ts');
  const { parseSql } = await import('../src/query/parse.ts');
  const { duckdbDialect } = await import('../src/query/render/duckdb.ts');
  const { quoteIdent, quoteString, renderSelect } = await import('../src/query/render/sql.ts');

  const patients = quick ? 5_000 : 20_000;
  const rounds = quick ? 2 : 5;
  const perRound = quick ? 150 : 600;
  const warmup = quick ? 100 : 500;
  const loadMs = quick ? 2_000 : 10_000;
  const concurrency = 16;

  const wsDir = join(CACHE_DIR, `demo-${patients}x5`);
  // One principal at concurrency 16: its admission queue must hold all 16 (the default, 4
  // running + 8 waiting, refuses the rest with 429 by design: one partner cannot flood).
  const demo = await freshDemoWorkspace(wsDir, { patients, encountersPerPatient: 5 }, (y) => y.replace(/(\n  memoryLimit: \S+\n)/, '$1  concurrency: { queuePerPrincipal: 16 }\n'));
  const key = demo.keys.ada;
  const auditDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-http-audit-'));
  const node = await startNode({ workspaceDir: wsDir, auditDir, demo: true, http: { port: 0, version: 'bench' } });
  const auditLog = node.audit;
  const port = node.http.port;
  // The same node from another checkout, on its own copy of the workspace (its own state and audit log).
  let baseline: { node: { close(): Promise<void>; http: { port: number } | null }; auditDir: string; key: string } | null = null;
  if (baselineDir) {
    const baseWs = `${wsDir}-baseline`;
    const baseDemo = await freshDemoWorkspace(baseWs, { patients, encountersPerPatient: 5 }, (y) => y.replace(/(\n  memoryLimit: \S+\n)/, '$1  concurrency: { queuePerPrincipal: 16 }\n'));
    const { startNode: startBaseline } = await import(join(baselineDir, 'src/node/start.ts')) as typeof import('../src/node/start.ts');
    const bAudit = mkdtempSync(join(tmpdir(), 'gatehouse-bench-http-baseline-audit-'));
    baseline = { node: await startBaseline({ workspaceDir: baseWs, auditDir: bAudit, demo: true, http: { port: 0, version: 'bench-baseline' } }) as never, auditDir: bAudit, key: baseDemo.keys.ada };
    log(NAME, `baseline (${baselineDir}) on 127.0.0.1:${baseline.node.http!.port}`);
  }
  log(NAME, `server on 127.0.0.1:${port}, demo workspace ${patients.toLocaleString('en')} patients`);

  const loaded = await loadWorkspace(wsDir);
  const ws = loaded.workspace;
  const pat = ws.datasets.get('patients')!;
  if (pat.source.kind !== 'parquet') throw new Error('expected a Parquet source for patients');
  const raw = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await raw.connect();
  await conn.run(`SET memory_limit = ${quoteString(ws.defaults.memoryLimit)}`);
  const cols = pat.columns.map((c) => `CAST(${quoteIdent(c.name)} AS ${c.type === 'DECIMAL' ? 'DOUBLE' : c.type}) AS ${quoteIdent(c.name)}`).join(', ');
  await conn.run(`CREATE TABLE patients AS SELECT ${cols} FROM read_parquet(${quoteString(pat.source.path)})`);

  const principal = ws.principals.get('ada')!;
  const bound = bindQuery(parseSql(SMALL_SQL), { dataset: (n) => ws.datasets.get(n) });
  const ctx = { purpose: PURPOSE, sourceIp: '127.0.0.1', channel: 'bench', time: new Date() };
  const decisions = bound.datasets.map((n) => loaded.policy.decide(principal, ws.datasets.get(n)!, ctx));
  const governedQuery = govern(bound, { principal, datasets: ws.datasets, defaultRowCap: ws.defaults.rowCap, rowFilters: loaded.rowFilters, obligations: new Map(decisions.map((d) => [d.dataset, d.obligations])), columnsUsed: new Set(bound.columns) });
  const rendered = renderSelect(governedQuery.query, duckdbDialect({ hashKey: ws.hashKey, sourceOf: (n) => quoteIdent(n) }));

  const client = new Client({ port, key });
  const figures: Record<string, unknown> = { patients, query: SMALL_SQL, principal: 'ada', purpose: PURPOSE, renderedSql: rendered, rounds, perRound };
  try {
    // Correctness first: the governed answer over HTTP equals the raw one.
    const rawCount = Number((await conn.runAndReadAll(SMALL_SQL)).getRowsJS()[0]![0]);
    const first = await client.call<SeqReply>({ type: 'seq', path: '/v1/query', n: 1, maxMs: 30_000 }, 60_000);
    if (first.errors > 0) throw new Error(`the governed query failed over HTTP: ${first.lastBody.slice(0, 300)}`);
    const httpCount = (JSON.parse(first.lastBody) as { rows: number[][] }).rows[0]![0];
    figures.resultsMatchRaw = httpCount === rawCount;
    figures.count = rawCount;

    const inproc = () => node.gatehouse.query({ credential: key, sql: SMALL_SQL, purpose: PURPOSE, source: '127.0.0.1', channel: 'bench' });
    // Warm-up of every path.
    for (let i = 0; i < warmup; i++) { await timeRaw(conn, SMALL_SQL); await timeRaw(conn, rendered); await inproc(); }
    await client.call<SeqReply>({ type: 'seq', path: '/v1/query', n: warmup, maxMs: 30_000 }, 60_000);
    await client.call<SeqReply>({ type: 'seq', path: '/v1/health', n: warmup, maxMs: 30_000 }, 60_000);
    // BENCH_PROFILE=<file.cpuprofile>: a CPU profile of the in-process path alone.
    if (process.env.BENCH_PROFILE) await profilePath(NAME, process.env.BENCH_PROFILE, inproc);

    const s = { raw: [] as number[], rendered: [] as number[], inProcess: [] as number[], health: [] as number[], http: [] as number[] };
    let httpErrors = 0;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < perRound; i++) s.raw.push(await timeRaw(conn, SMALL_SQL));
      for (let i = 0; i < perRound; i++) s.rendered.push(await timeRaw(conn, rendered));
      for (let i = 0; i < perRound; i++) { const t = performance.now(); await inproc(); s.inProcess.push(performance.now() - t); }
      const h = await client.call<SeqReply>({ type: 'seq', path: '/v1/health', n: perRound, maxMs: 30_000 }, 60_000);
      s.health.push(...h.samples);
      const q = await client.call<SeqReply>({ type: 'seq', path: '/v1/query', n: perRound, maxMs: 30_000 }, 60_000);
      s.http.push(...q.samples);
      httpErrors += q.errors + h.errors;
      log(NAME, `round ${r + 1}/${rounds}: p50 raw ${summarize(s.raw).p50} ms, in-process ${summarize(s.inProcess).p50} ms, HTTP ${summarize(s.http).p50} ms`);
    }
    const raw50 = summarize(s.raw, 4);
    const http50 = summarize(s.http, 4);
    const inp = summarize(s.inProcess, 4);
    const ren = summarize(s.rendered, 4);
    const health = summarize(s.health, 4);
    figures.latencyMs = { rawDuckdb: raw50, renderedSqlOnRawDuckdb: ren, gatehouseInProcess: inp, httpHealth: health, httpGovernedQuery: http50 };
    figures.addedLatencyMs = { p50: round(http50.p50 - raw50.p50, 4), p99: round(http50.p99 - raw50.p99, 4) };
    figures.addedLatencyBreakdownMsP50 = {
      renderedSqlVsRawSql: round(ren.p50 - raw50.p50, 4),
      pipelineInProcess: round(inp.p50 - ren.p50, 4),
      httpOverInProcess: round(http50.p50 - inp.p50, 4),
      httpFloorHealth: health.p50,
    };
    figures.latencyErrors = httpErrors;

    // BENCH_PROFILE_LOAD=<file.cpuprofile>: a CPU profile of the server's thread while it serves concurrency 16 over HTTP.
    const profiling = process.env.BENCH_PROFILE_LOAD ? await startProfile() : null;
    const load = await client.call<LoadReply>({ type: 'load', concurrency, durationMs: loadMs, maxRequests: 2_000_000 }, loadMs + 60_000);
    if (profiling) await profiling.stopInto(process.env.BENCH_PROFILE_LOAD!, load.completed);
    const qps = load.completed / (load.elapsedMs / 1000);
    figures.throughput = {
      concurrency, durationS: round(load.elapsedMs / 1000, 2), completed: load.completed, errors: load.errors, statuses: load.statuses,
      queriesPerSecond: round(qps, 1), latencyUnderLoadMs: summarize(load.samples, 3),
    };
    log(NAME, `throughput at concurrency ${concurrency}: ${qps.toFixed(0)} queries/s (${load.errors} errors)`);

    // The peer the issue names: raw DuckDB served by a minimal Fastify handler (no schema, no
    // auth, no policy, no audit), the same SQL and pool size, same client; measured in
    // alternation with Gatehouse so both see the same load on the machine.
    // Two of them: over the in-memory table (the peer as first measured) and over the same
    // Parquet file the governed engine reads in place (issue 15 "data in place": a fair peer
    // reads the same bytes, with DuckDB's Parquet metadata cache on, like the engine).
    await conn.run(`CREATE VIEW patients_parquet AS SELECT * FROM read_parquet(${quoteString(pat.source.path)})`);
    await conn.run('SET parquet_metadata_cache = true');
    const parquetSql = SMALL_SQL.replace('FROM patients', 'FROM patients_parquet');
    const minimalServer = async (sql: string): Promise<{ port: number; close: () => Promise<void> }> => {
      const minimal = Fastify();
      const pool = await Promise.all([0, 1, 2, 3].map(() => raw.connect()));
      const idle = [...pool];
      const queued: ((c: DuckDBConnection) => void)[] = [];
      minimal.post('/v1/query', async () => {
        const c = idle.pop() ?? await new Promise<DuckDBConnection>((r) => queued.push(r));
        try {
          return { rows: (await c.runAndReadAll(sql)).getRowsJS().map((row) => row.map((v) => (typeof v === 'bigint' ? Number(v) : v))) };
        } finally { const w = queued.shift(); if (w) w(c); else idle.push(c); }
      });
      await minimal.listen({ host: '127.0.0.1', port: 0 });
      return { port: (minimal.server.address() as { port: number }).port, close: async () => { await minimal.close(); for (const c of pool) c.closeSync(); } };
    };
    const memPeer = await minimalServer(SMALL_SQL), pqPeer = await minimalServer(parquetSql);
    const ghQps: number[] = [], minimalQps: number[] = [], parquetQps: number[] = [], baselineQps: number[] = [];
    if (baseline) {
      // The baseline's key: the same demo principal in its own workspace copy.
      const warm = await client.call<LoadReply>({ type: 'load', concurrency, durationMs: 1_000, maxRequests: 2_000_000, port: baseline.node.http!.port, key: baseline.key }, 60_000);
      if (warm.errors > 0) throw new Error(`the baseline node answered ${JSON.stringify(warm.statuses)}`);
    }
    // Process CPU per answered query (every thread: server, engines, the load generator, the peers), µs:
    // on a shared 2-core machine a steadier measure of each path's cost than its throughput.
    const cpuPerQuery = new Map<number[], number[]>([[ghQps, []], [baselineQps, []], [minimalQps, []], [parquetQps, []]]);
    const threadSplit = new Map<string, Map<string, number[]>>();
    for (let r = 0; r < (quick ? 2 : 3); r++) {
      const order: [number[], number, string?][] = [[ghQps, port], ...(baseline ? [[baselineQps, baseline.node.http!.port, baseline.key] as [number[], number, string]] : []), [minimalQps, memPeer.port], [parquetQps, pqPeer.port]];
      for (const [into, p, k] of (r % 2 === 0 ? order : order.reverse())) {
        const cpu0 = process.cpuUsage(), threads0 = threadCpu();
        const l = await client.call<LoadReply>({ type: 'load', concurrency, durationMs: Math.min(loadMs, 5_000), maxRequests: 2_000_000, port: p, ...(k ? { key: k } : {}) }, loadMs + 60_000);
        const cpu = process.cpuUsage(cpu0);
        cpuPerQuery.get(into)!.push((cpu.user + cpu.system) / Math.max(1, l.completed));
        addThreadCpu(threadSplit, into === ghQps ? 'gatehouse' : into === baselineQps ? 'baseline' : into === minimalQps ? 'minimalFastifyRawDuckdb' : 'minimalFastifySameParquet', threads0, threadCpu(), l.completed);
        // Only answered queries count; refusals (429 from fair admission) are reported.
        if (l.errors > 0) log(NAME, `${l.errors} non-200 answers under load on port ${p}: ${JSON.stringify(l.statuses)}`);
        into.push(l.completed / (l.elapsedMs / 1000));
      }
    }
    await memPeer.close();
    await pqPeer.close();
    const ghMed = summarize(ghQps, 1).p50, minMed = summarize(minimalQps, 1).p50, pqMed = summarize(parquetQps, 1).p50;
    const cpuMed = (x: number[]): number => summarize(cpuPerQuery.get(x)!, 1).p50;
    figures.cpuUsPerQueryByThreadMedian = threadCpuMedians(threadSplit);
    log(NAME, `process CPU µs per answered query by thread kind (median): ${JSON.stringify(figures.cpuUsPerQueryByThreadMedian)}`);
    figures.cpuUsPerQueryMedian = { gatehouse: cpuMed(ghQps), minimalFastifyRawDuckdb: cpuMed(minimalQps), minimalFastifySameParquet: cpuMed(parquetQps), ...(baseline ? { baseline: cpuMed(baselineQps) } : {}) };
    log(NAME, `process CPU µs per answered query (median): ${JSON.stringify(figures.cpuUsPerQueryMedian)}`);
    figures.throughputVsMinimalFastify = {
      concurrency, gatehouseQps: ghQps.map((x) => round(x, 1)), minimalFastifyRawDuckdbQps: minimalQps.map((x) => round(x, 1)), ratioOfMedians: round(ghMed / minMed),
      minimalFastifyRawDuckdbSameParquetQps: parquetQps.map((x) => round(x, 1)), ratioOfMediansSameParquet: round(ghMed / pqMed),
    };
    log(NAME, `alternating at concurrency ${concurrency}: Gatehouse ${ghMed} q/s, minimal Fastify on raw DuckDB ${minMed} q/s (${round(ghMed / minMed)}×), on the same Parquet ${pqMed} q/s (${round(ghMed / pqMed)}×)`);
    if (baseline) {
      const bMed = summarize(baselineQps, 1).p50;
      figures.baseline = { dir: baselineDir, qps: baselineQps.map((x) => round(x, 1)), ratioOfMediansVsMinimal: round(bMed / minMed), ratioOfMediansSameParquet: round(bMed / pqMed), thisOverBaseline: round(ghMed / bMed) };
      log(NAME, `baseline ${bMed} q/s (${round(bMed / minMed)}× the minimal handler, ${round(bMed / pqMed)}× on the same Parquet); this code ÷ baseline ${round(ghMed / bMed)}×`);
    }

    // The engine's own ceiling on this machine: the same SQL straight on DuckDB, 16 callers
    // sharing 4 connections (the Gatehouse engine's pool size), for the same duration.
    const conns = [conn, ...(await Promise.all([1, 2, 3].map(() => raw.connect())))];
    let rawDone = 0;
    const rawStart = performance.now();
    const rawUntil = rawStart + loadMs;
    const queue: DuckDBConnection[] = [...conns];
    const waiting: ((c: DuckDBConnection) => void)[] = [];
    const acquire = (): Promise<DuckDBConnection> => { const c = queue.pop(); return c ? Promise.resolve(c) : new Promise((r) => waiting.push(r)); };
    const release = (c: DuckDBConnection): void => { const w = waiting.shift(); if (w) w(c); else queue.push(c); };
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < rawUntil) { const c = await acquire(); try { await timeRaw(c, SMALL_SQL); rawDone++; } finally { release(c); } }
    }));
    const rawQps = rawDone / ((performance.now() - rawStart) / 1000);
    for (const c of conns.slice(1)) c.closeSync();
    (figures.throughput as Record<string, unknown>).rawDuckdbQueriesPerSecondSameConcurrency = round(rawQps, 1);
    log(NAME, `raw DuckDB at concurrency ${concurrency} over 4 connections: ${rawQps.toFixed(0)} queries/s`);
    figures.auditEntries = auditLog.size;
  } finally {
    await client.close();
    conn.closeSync();
    raw.closeSync();
    await node.close();
    rmSync(auditDir, { recursive: true, force: true });
    if (baseline) { await baseline.node.close(); rmSync(baseline.auditDir, { recursive: true, force: true }); }
  }
  const added = figures.addedLatencyMs as { p50: number; p99: number };
  const tp = figures.throughput as { queriesPerSecond: number; errors: number };
  const vsMin = figures.throughputVsMinimalFastify as { gatehouseQps: number[]; minimalFastifyRawDuckdbQps: number[]; ratioOfMedians: number; ratioOfMediansSameParquet: number };
  return {
    name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), figures,
    goals: {
      addedLatencyP50: { goal: '≤ 1 ms added (HTTP governed − raw DuckDB, p50)', measured: `${added.p50} ms (p99 ${added.p99} ms)`, met: added.p50 <= 1 },
      throughputC16: { goal: '≥ 3,000 queries/s at concurrency 16', measured: `${tp.queriesPerSecond} queries/s (${tp.errors} errors)`, met: tp.queriesPerSecond >= 3000 && tp.errors === 0 },
      throughputVsMinimalFastify: { goal: 'throughput at concurrency 16 ≥ 0.9× raw DuckDB served by a minimal Fastify handler (issue 15)', measured: `${vsMin.ratioOfMedians}× (medians of ${vsMin.gatehouseQps.length} alternating runs: ${summarize(vsMin.gatehouseQps, 1).p50} vs ${summarize(vsMin.minimalFastifyRawDuckdbQps, 1).p50} q/s); ${vsMin.ratioOfMediansSameParquet}× against the peer reading the same Parquet`, met: vsMin.ratioOfMedians >= 0.9 },
    },
  };
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'http-bench-client') {
  clientMain((workerData as { cfg: ClientConfig }).cfg);
} else if (isMainThread && isMain(import.meta.url)) {
  const r = await runHttpBench(isQuick(), process.argv.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length) ?? null);
  log(NAME, `wrote ${writeResult(r)}`);
}
