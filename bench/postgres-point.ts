/**
 * Benchmark, issue 15 "Ahead of the peer": a 20-row point query on a PostgreSQL dataset,
 * governed by Gatehouse and pushed down, against what a PostgreSQL user would pick instead:
 * row-level security plus a masking view, the same query, same server, same rows.
 *
 * Server: a throwaway cluster (test/support/postgres.ts) with the demo's claims (about 0.6 ×
 * 5 × patients rows; 1M+ without --quick) loaded by test/support/pg-demo.ts, indexed on
 * claim_id. The rest of the demo stays on DuckDB.
 *
 * Paths, interleaved (alternating order), after warm-up, p50 over 300 runs each (60 with --quick):
 *   - gatehouse in process: `Gatehouse.query` as ivan (claims-processing): authentication,
 *     the Cedar decision, the insurer row filter (region = principal.region), DLP, render,
 *     PostgresEngine.run (one round trip: BEGIN READ ONLY, set_config, query, ROLLBACK
 *     pipelined before one Sync), the audit append;
 *   - gatehouse over HTTP: `POST /v1/query` on the node's listener (keep-alive client in
 *     the same process);
 *   - RLS: a pg.Client as a role whose RLS policy keeps region = 'us-east', querying a
 *     security_invoker masking view over claims (simple protocol, one round trip);
 *   - engine alone, pipelined vs three round trips (the previous PostgresEngine.run:
 *     BEGIN/SET LOCAL, the query, ROLLBACK), with the SQL Gatehouse rendered.
 *
 *   npx node bench/postgres-point.ts [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { TimedSink } from './timed-sink.ts';
import { createDemoWorkspace } from '../src/demo/workspace.ts';
import { startNode } from '../src/node/start.ts';
import { PostgresEngine } from '../src/engine/postgres.ts';
import { bindQuery } from '../src/query/bind.ts';
import { govern } from '../src/query/govern/index.ts';
import { parseSql } from '../src/query/parse.ts';
import { renderSelect } from '../src/query/render/sql.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { createPgDemo } from '../test/support/pg-demo.ts';
import { startPostgres } from '../test/support/postgres.ts';
import { isMain, isQuick, log, machineInfo, profilePath, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'postgres-point';

const KEY_IVAN = 'bench-key-ivan-0123456789abcdef';
const COLUMNS = 'claim_id, patient_id, payer, region, amount_billed, amount_paid, status, submitted_on';

export async function runPostgresPointBench(quick: boolean): Promise<BenchResult> {
  const patients = quick ? 20_000 : 350_000;
  const runs = quick ? 60 : 300;
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-bench-pgpoint-'));
  const cluster = await startPostgres({ settings: { dynamic_shared_memory_type: 'mmap' } });
  const notes: string[] = [];
  try {
    const wsDir = join(root, 'ws');
    let t = performance.now();
    await createDemoWorkspace(wsDir, { patients, keys: { ivan: KEY_IVAN } });
    const demo = await createPgDemo(cluster, wsDir, { datasets: ['claims'] });
    log(NAME, `claims on PostgreSQL: ${demo.rows.claims!.toLocaleString('en')} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const admin = new pg.Client({ connectionString: demo.adminUrl });
    await admin.connect();
    await admin.query('CREATE UNIQUE INDEX claims_id ON public.claims (claim_id)');
    await admin.query('ANALYZE public.claims');
    // The peer: the same rows in their own table (so RLS costs Gatehouse's path nothing), RLS
    // on it, and a masking view (security_invoker, so the caller's RLS policy applies).
    await admin.query(`CREATE TABLE public.claims_rls AS SELECT * FROM public.claims;
      CREATE UNIQUE INDEX claims_rls_id ON public.claims_rls (claim_id);
      ANALYZE public.claims_rls;
      ALTER TABLE public.claims_rls ENABLE ROW LEVEL SECURITY;
      CREATE ROLE bench_rls LOGIN PASSWORD 'rls-pw';
      GRANT CONNECT ON DATABASE "${demo.database}" TO bench_rls;
      GRANT USAGE ON SCHEMA public TO bench_rls;
      GRANT SELECT ON public.claims_rls TO bench_rls;
      CREATE POLICY insurer_region ON public.claims_rls FOR SELECT TO bench_rls USING (region = 'us-east');
      CREATE VIEW public.claims_masked WITH (security_invoker = true, security_barrier = true) AS SELECT ${COLUMNS} FROM public.claims_rls;
      GRANT SELECT ON public.claims_masked TO bench_rls`);
    // 20 us-east claims in one claim_id range: the same rows in every path (the range also
    // holds other regions' claims, which the row filter or the RLS policy removes).
    const picked = (await admin.query(`SELECT claim_id FROM public.claims WHERE region = 'us-east' AND claim_id > ${Math.floor(demo.rows.claims! / 2)} ORDER BY claim_id LIMIT 20`)).rows as { claim_id: string }[];
    const lo = Number(picked[0]!.claim_id), hi = Number(picked[19]!.claim_id);
    await admin.end();
    const pointSql = `SELECT ${COLUMNS} FROM claims WHERE claim_id BETWEEN ${lo} AND ${hi} ORDER BY claim_id`;

    t = performance.now();
    let sink!: TimedSink;
    const node = await startNode({ workspaceDir: wsDir, auditDir: join(root, 'audit'), state: { kind: 'files', dir: join(root, 'state') }, demo: true, http: { port: 0, version: 'bench' }, auditSink: (auditLog) => (sink = new TimedSink(auditLog)) });
    log(NAME, `node started in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const gh = node.gatehouse;
    const port = node.http.port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const body = JSON.stringify({ sql: pointSql, purpose: 'claims-processing' });
    const viaHttp = (): Promise<number> => new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/query', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${KEY_IVAN}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) { reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`)); return; }
          resolve((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { rows: unknown[] }).rows.length);
        });
      });
      req.on('error', reject);
      req.end(body);
    });
    const inProcess = async (): Promise<number> => (await gh.query({ credential: KEY_IVAN, sql: pointSql, purpose: 'claims-processing', source: '127.0.0.1', channel: 'bench' })).rows.length;
    const rls = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'bench_rls', password: 'rls-pw', database: demo.database });
    rls.on('error', () => undefined);
    await rls.connect();
    const rlsSql = pointSql.replace('FROM claims', 'FROM public.claims_masked');
    const viaRls = async (): Promise<number> => (await rls.query(rlsSql)).rows.length;

    // The engine alone, with the SQL Gatehouse renders for ivan.
    const loaded = await loadWorkspace(wsDir);
    const ws = loaded.workspace;
    const ivan = ws.principals.get('ivan')!;
    const decision = loaded.policy.decide(ivan, ws.datasets.get('claims')!, { purpose: 'claims-processing', sourceIp: '127.0.0.1', channel: 'bench', time: new Date() });
    const bound = bindQuery(parseSql(pointSql), { dataset: (d) => ws.datasets.get(d) });
    const governed = govern(bound, { principal: ivan, datasets: ws.datasets, defaultRowCap: ws.defaults.rowCap, rowFilters: loaded.rowFilters, obligations: new Map([['claims', decision.obligations]]), columnsUsed: new Set(bound.columns) });
    const engine = await PostgresEngine.open(ws, [ws.datasets.get('claims')!], { poolSize: 1 });
    const rendered = renderSelect(governed.query, engine.dialect);
    const viaEngine = async (): Promise<number> => (await engine.run(rendered, { timeoutMs: 30_000 })).rows.length;
    const three = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: demo.role, password: demo.password, database: demo.database, options: '-c search_path=pg_catalog' });
    three.on('error', () => undefined);
    await three.connect();
    const viaThreeTrips = async (): Promise<number> => {
      await three.query('BEGIN READ ONLY; SET LOCAL statement_timeout = 30000; SET LOCAL search_path = pg_catalog');
      try {
        return (await three.query({ text: rendered, queryMode: 'extended', rowMode: 'array' } as pg.QueryConfig)).rows.length;
      } finally {
        await three.query('ROLLBACK');
      }
    };

    const paths: Record<string, () => Promise<number>> = { inProcess, http: viaHttp, rls: viaRls, engine: viaEngine, engineThreeTrips: viaThreeTrips };
    for (const [name, f] of Object.entries(paths)) {
      const got = await f();
      if (got !== 20) {
        if (name === 'inProcess') log(NAME, JSON.stringify(await gh.query({ credential: KEY_IVAN, sql: pointSql, purpose: 'claims-processing', source: '127.0.0.1', channel: 'bench' })).slice(0, 1500));
        throw new Error(`${name} returned ${got} rows, expected 20`);
      }
    }
    for (let i = 0; i < 20; i++) for (const f of Object.values(paths)) await f();
    // BENCH_PROFILE=<file.cpuprofile>: a CPU profile of the in-process path alone (2,000 runs).
    if (process.env.BENCH_PROFILE) await profilePath(NAME, process.env.BENCH_PROFILE, inProcess);
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
    sink.samples.length = 0;
    const order = Object.keys(paths);
    for (let i = 0; i < runs; i++) {
      for (const name of i % 2 === 0 ? order : [...order].reverse()) {
        const t0 = performance.now();
        await paths[name]!();
        samples[name]!.push(performance.now() - t0);
      }
    }
    agent.destroy();
    await rls.end();
    await three.end();
    await engine.close();
    await node.close();
    const s = Object.fromEntries(Object.entries({ ...samples, auditAppend: sink.samples }).map(([k, v]) => [k, summarize(v)]));
    const ratio = round(s.inProcess!.p50 / s.rls!.p50);
    const httpRatio = round(s.http!.p50 / s.rls!.p50);
    log(NAME, `p50 ms: in process ${s.inProcess!.p50}, HTTP ${s.http!.p50}, RLS ${s.rls!.p50}, engine ${s.engine!.p50} (three trips ${s.engineThreeTrips!.p50}), audit append ${s.auditAppend!.p50}; in process ÷ RLS ${ratio}×`);
    notes.push('HTTP is measured with a keep-alive client in the same process as the server (one socket), so it includes the client\'s own cost');
    notes.push(`the rendered SQL for ivan: ${rendered.length} characters; the point query: ${pointSql}`);
    return {
      name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), notes,
      figures: { claimsRows: demo.rows.claims, runs, pointSql, ms: s, inProcessOverRls: ratio, httpOverRls: httpRatio, engineOverThreeTrips: round(s.engine!.p50 / s.engineThreeTrips!.p50) },
      goals: {
        pointQueryInProcessOverRls: { goal: '≤ 1.5× PostgreSQL RLS + masking view, 20-row point query, in process', measured: `${ratio}× (${s.inProcess!.p50} ms ÷ ${s.rls!.p50} ms p50); over HTTP ${httpRatio}× (${s.http!.p50} ms)`, met: ratio <= 1.5 },
      },
    };
  } finally {
    await cluster.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const r = await runPostgresPointBench(isQuick());
  log(NAME, `wrote ${writeResult(r)}`);
}
