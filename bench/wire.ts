/**
 * Benchmark: small-query throughput and latency over the PostgreSQL wire protocol versus
 * HTTP — the same governed query, the same Gatehouse (demo workspace, file-backed
 * transparency log with fsync), in the same run. Both servers listen on 127.0.0.1; the load
 * generator runs in a worker thread (its own event loop) with `pg` clients (simple query
 * protocol and prepared statements) and keep-alive `node:http` connections.
 *
 *   node bench/wire.ts [--quick]
 */
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import pg from 'pg';
import { CACHE_DIR, freshDemoWorkspace, isMain, isQuick, log, machineInfo, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'wire';
const SQL = "SELECT count(*) AS n FROM patients WHERE region = 'us-east'";
const PARAM_SQL = 'SELECT count(*) AS n FROM patients WHERE region = $1';
const PURPOSE = 'operations';

type Kind = 'http' | 'wire-simple' | 'wire-prepared';
interface Cfg { readonly httpPort: number; readonly wirePort: number; readonly key: string; readonly user: string; readonly password: string }
interface Cmd { readonly kind: Kind; readonly concurrency: number; readonly durationMs: number }
interface Reply { readonly completed: number; readonly errors: number; readonly elapsedMs: number; readonly samples: number[]; readonly firstError: string | null }

function clientMain(cfg: Cfg): void {
  const body = JSON.stringify({ sql: SQL, purpose: PURPOSE });
  parentPort!.on('message', async (cmd: Cmd | { kind: 'stop' }) => {
    if (cmd.kind === 'stop') { parentPort!.close(); return; }
    const agent = new Agent({ keepAlive: true, maxSockets: cmd.concurrency });
    const clients: pg.Client[] = [];
    let firstError: string | null = null;
    const one: (i: number) => Promise<void> = cmd.kind === 'http'
      ? () => new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: cfg.httpPort, path: '/v1/query', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${cfg.key}` } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(body);
      })
      : async (i) => {
        const r = cmd.kind === 'wire-simple' ? await clients[i]!.query(SQL) : await clients[i]!.query({ name: 'q', text: PARAM_SQL, values: ['us-east'] });
        if (r.rows.length !== 1) throw new Error('unexpected result');
      };
    if (cmd.kind !== 'http') {
      for (let i = 0; i < cmd.concurrency; i++) {
        const c = new pg.Client({ host: '127.0.0.1', port: cfg.wirePort, user: cfg.user, password: cfg.password, database: 'gatehouse', options: `-c gatehouse.purpose=${PURPOSE}` });
        await c.connect();
        clients.push(c);
      }
    }
    const samples: number[] = [];
    let completed = 0;
    let errors = 0;
    const start = performance.now();
    const until = start + cmd.durationMs;
    await Promise.all(Array.from({ length: cmd.concurrency }, async (_, i) => {
      while (performance.now() < until) {
        const t = performance.now();
        try { await one(i); completed++; samples.push(performance.now() - t); } catch (e) { errors++; firstError ??= String((e as Error).message); }
      }
    }));
    const elapsedMs = performance.now() - start;
    for (const c of clients) await c.end();
    agent.destroy();
    parentPort!.postMessage({ completed, errors, elapsedMs, samples, firstError } satisfies Reply);
  });
}

function call(w: Worker, cmd: Cmd): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('load generator did not answer')), cmd.durationMs + 60_000);
    w.once('message', (m: Reply) => { clearTimeout(timer); resolve(m); });
    w.once('error', (e) => { clearTimeout(timer); reject(e); });
    w.postMessage(cmd);
  });
}

export async function runWireBench(quick: boolean): Promise<BenchResult> {
  const { startNode } = await import('../src/node/start.ts');

  const patients = quick ? 5_000 : 20_000;
  const seqMs = quick ? 1_500 : 4_000;
  const loadMs = quick ? 2_000 : 6_000;
  const rounds = quick ? 1 : 2;
  const wsDir = join(CACHE_DIR, `demo-${patients}x5`);
  const demo = await freshDemoWorkspace(wsDir, { patients, encountersPerPatient: 5 });
  const auditDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-wire-audit-'));
  const node = await startNode({ workspaceDir: wsDir, auditDir, state: { kind: 'files', dir: join(auditDir, 'state') }, demo: true, http: { port: 0, version: 'bench' }, wire: { port: 0 } });
  const gh = node.gatehouse;
  const wire = node.wire;
  const cp = await gh.issueConnectionPassword({ credential: demo.keys.ada, source: '127.0.0.1', channel: 'bench' });
  const cfg: Cfg = { httpPort: node.http.port, wirePort: wire.port, key: demo.keys.ada, user: cp.username, password: cp.password };
  const w = new Worker(new URL(import.meta.url), { workerData: { role: 'wire-bench-client', cfg } });
  w.unref();
  const figures: Record<string, unknown> = { patients, query: SQL, preparedQuery: PARAM_SQL, principal: 'ada', purpose: PURPOSE };
  const kinds: Kind[] = ['http', 'wire-simple', 'wire-prepared'];
  const seq: Record<Kind, number[]> = { http: [], 'wire-simple': [], 'wire-prepared': [] };
  const load: Record<Kind, { qps: number[]; errors: number; firstError: string | null }> = {
    http: { qps: [], errors: 0, firstError: null }, 'wire-simple': { qps: [], errors: 0, firstError: null }, 'wire-prepared': { qps: [], errors: 0, firstError: null },
  };
  try {
    for (const k of kinds) await call(w, { kind: k, concurrency: 1, durationMs: 500 }); // warm-up
    for (let r = 0; r < rounds; r++) {
      for (const k of kinds) {
        const s = await call(w, { kind: k, concurrency: 1, durationMs: seqMs });
        seq[k].push(...s.samples);
        const l = await call(w, { kind: k, concurrency: 16, durationMs: loadMs });
        load[k].qps.push(l.completed / (l.elapsedMs / 1000));
        load[k].errors += l.errors + s.errors;
        load[k].firstError ??= l.firstError ?? s.firstError;
        log(NAME, `round ${r + 1}/${rounds} ${k}: p50 ${summarize(s.samples).p50} ms sequential, ${(l.completed / (l.elapsedMs / 1000)).toFixed(0)} queries/s at concurrency 16 (${l.errors} errors)`);
      }
    }
    figures.sequentialLatencyMs = Object.fromEntries(kinds.map((k) => [k, summarize(seq[k], 4)]));
    figures.throughputC16 = Object.fromEntries(kinds.map((k) => [k, { queriesPerSecond: round(Math.max(...load[k].qps), 1), rounds: load[k].qps.map((q) => round(q, 1)), errors: load[k].errors, firstError: load[k].firstError }]));
    figures.wireOverHttpThroughput = round(Math.max(...load['wire-simple'].qps) / Math.max(...load.http.qps), 3);
    figures.auditEntries = node.audit.size;
  } finally {
    w.postMessage({ kind: 'stop' });
    await w.terminate();
    await node.close();
    rmSync(auditDir, { recursive: true, force: true });
  }
  const ratio = figures.wireOverHttpThroughput as number;
  const errors = kinds.reduce((n, k) => n + load[k].errors, 0);
  return {
    name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), figures,
    goals: {
      wireVsHttp: { goal: 'wire-protocol small-query throughput at least that of HTTP (same query, same Gatehouse, same run)', measured: `${ratio}× HTTP (${errors} errors)`, met: ratio >= 1 && errors === 0 },
    },
  };
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'wire-bench-client') {
  clientMain((workerData as { cfg: Cfg }).cfg);
} else if (isMainThread && isMain(import.meta.url)) {
  const r = await runWireBench(isQuick());
  log(NAME, `wrote ${writeResult(r)}`);
}
