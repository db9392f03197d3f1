/**
 * Benchmark (issue 20): what residency routing costs.
 *
 *   routed   a US analyst asks the us-east node about EU data; it travels to eu-west over
 *            mutual TLS (signed envelope, pinned keys) and the aggregate comes back
 *   local    the same analyst asks the eu-west node directly (the data's own node)
 *   rtt      one node-to-node round trip: a signed ping over the same mTLS layer
 *   split    count/sum over `patients` held in both regions, asked at us-east
 *   single   the same query on one node holding both regions' rows
 *
 * Goal: routed − local ≤ one round trip + 2 ms. Every node is its own process on loopback;
 * `--in-process` also runs both nodes in this one process (no HTTP in front, one event loop),
 * which takes process scheduling out of the difference and leaves the software's own cost;
 * the five kinds run interleaved, one request at a time, and medians are reported. Both
 * nodes run the same policy for local and forwarded requests (aggregates of ≥ 5), so
 * `routed` and `local` do the same governed work.
 *
 * `routed − local (paired)` is the median of the per-round differences, steadier than the
 * difference of the medians on a loaded machine.
 *
 *   node bench/residency.ts [--quick] [--in-process] [--rounds N] [--patients EU,US]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomUUID } from 'node:crypto';
import { FederationClient, loadNodeIdentity, parseFederationSection, PeerRegistry, ReplayCache, signRequest, signResponse, verifyRequest, verifyResponse } from '../src/federation/index.ts';
import { parseSql } from '../src/query/parse.ts';
import { createScenario, scenarioYaml, SCENARIO_KEYS } from '../src/residency/scenario.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import type { ResidencyNode } from '../src/residency/service.ts';

const quick = process.argv.includes('--quick');
const flag = (name: string): string | undefined => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const ROUNDS = Number(flag('--rounds') ?? (quick ? 25 : 300));
// --patients EU,US: small tables make the query itself cheap, so the routing overhead stands out of the noise.
const [EU_ROWS, US_ROWS] = (flag('--patients') ?? (quick ? '60,90' : '20000,30000')).split(',').map(Number) as [number, number];
const NODE_PROCESS = new URL('../src/node/residency-process.ts', import.meta.url).pathname;

const BENCH_POLICY = `@id("analysts-aggregates")
@obligations("cross-border")
permit (principal in Group::"analysts", action == Action::"query", resource)
when { context.purpose == "research" };
`;

interface Node { readonly child: ChildProcess; readonly http: number; readonly federation: number }

function start(wsDir: string): Promise<Node> {
  const child = spawn(process.execPath, [NODE_PROCESS, wsDir, '--demo'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => {
      const info = JSON.parse(line) as { http?: number; federation?: number; error?: { message: string } };
      if (info.error) reject(new Error(info.error.message)); else resolve({ child, http: info.http!, federation: info.federation! });
    });
  });
}

async function ask(port: number, sql: string): Promise<number> {
  const t = performance.now();
  const r = await fetch(`http://127.0.0.1:${port}/v1/residency/query`, { method: 'POST', headers: { authorization: `Bearer ${SCENARIO_KEYS.ursula}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql, purpose: 'research' }) });
  const body = await r.json() as { error?: { message: string } };
  if (r.status !== 200) throw new Error(body.error?.message ?? `HTTP ${r.status}`);
  return performance.now() - t;
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const p90 = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length * 0.9)]!; };

const dir = mkdtempSync(join(tmpdir(), 'gh-bench-residency-'));
const nodes: Node[] = [];
try {
  const { eu, us } = await createScenario(dir, { euPatients: EU_ROWS, usPatients: US_ROWS });
  for (const n of [eu, us]) writeFileSync(join(n.wsDir, 'policies', 'residency.cedar'), BENCH_POLICY);
  // One node holding both regions' rows, no federation.
  const one = join(dir, 'one');
  cpSync(us.wsDir, one, { recursive: true });
  writeFileSync(join(one, 'data', 'patients.csv'), readFileSync(join(us.wsDir, 'data', 'patients.csv'), 'utf8') + readFileSync(join(eu.wsDir, 'data', 'patients.csv'), 'utf8').split('\n').slice(1).join('\n'));
  writeFileSync(join(one, 'gatehouse.yaml'), scenarioYaml({ nodeId: 'us-east-1', region: 'us-east', jurisdiction: 'US', port: 0 }, []));
  const [euNode, usNode, oneNode] = await Promise.all([start(eu.wsDir), start(us.wsDir), start(one)]);
  nodes.push(euNode, usNode, oneNode);

  const identity = loadNodeIdentity(us.stateDir);
  const peers = new PeerRegistry(parseFederationSection({ peers: [{ node: 'eu-west-1', region: 'eu-west', jurisdiction: 'EU', url: `https://127.0.0.1:${euNode.federation}`, publicKey: eu.identity.publicKey }] }).config!.peers);
  const client = new FederationClient({ identity, peers });

  const ROUTED = 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition';
  const SPLIT = 'SELECT condition, count(*) AS n, sum(cost) AS total FROM patients GROUP BY condition';
  const kinds: Record<string, () => Promise<number>> = {
    local: () => ask(euNode.http, ROUTED),
    routed: () => ask(usNode.http, ROUTED),
    rtt: async () => { const t = performance.now(); await client.call('eu-west-1', 'ping', {}, randomUUID()); return performance.now() - t; },
    split: () => ask(usNode.http, SPLIT),
    single: () => ask(oneNode.http, SPLIT),
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
  for (let i = 0; i < 5; i++) for (const f of Object.values(kinds)) await f(); // warm-up
  const load = loadavg()[0]!;
  for (let i = 0; i < ROUNDS; i++) for (const [k, f] of Object.entries(kinds)) samples[k]!.push(await f());
  client.close();

  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const fmt = (x: number): string => `${x.toFixed(2)} ms`;
  console.log(`residency benchmark${quick ? ' (--quick)' : ''}: ${ROUNDS} interleaved rounds, ${EU_ROWS} EU + ${US_ROWS} US patients, ${cpus().length} cores, load ${load.toFixed(1)} at start`);
  for (const [k, v] of Object.entries(samples)) console.log(`  ${k.padEnd(7)} median ${fmt(median(v))}  p90 ${fmt(p90(v))}`);
  const paired = median(samples.routed!.map((r, i) => r - samples.local![i]!));
  console.log(`  routed − local (paired) = ${fmt(paired)}; beyond the round trip = ${fmt(paired - m.rtt!)}`);
  const overhead = m.routed! - m.local!;
  console.log(`  routed − local = ${fmt(overhead)}; one round trip = ${fmt(m.rtt!)}; overhead beyond the round trip = ${fmt(overhead - m.rtt!)} (goal ≤ 2 ms)`);
  console.log(`  split / single = ${(m.split! / m.single!).toFixed(2)}× (${fmt(m.split!)} vs ${fmt(m.single!)})`);

  if (process.argv.includes('--in-process')) {
    for (const n of nodes.splice(0)) { n.child.kill('SIGTERM'); await new Promise((r) => (n.child.exitCode !== null ? r(null) : n.child.once('exit', r))); }
    const inProc: { node: GatehouseNode; r: ResidencyNode }[] = [];
    for (const n of [eu, us]) {
      const node = await startNode({ workspaceDir: n.wsDir, auditDir: join(n.wsDir, 'audit-in-process'), demo: true, engineOptions: { poolSize: 1 } });
      // Older trees did not start the residency node with the node (kept so before/after runs compare).
      const started = (node as { residency?: ResidencyNode | null }).residency;
      inProc.push({ node, r: started ?? await (await import('../src/residency/service.ts')).ResidencyNode.start({ gatehouse: node.gatehouse, stateDir: n.stateDir }) });
    }
    const [E, U] = inProc as [{ node: GatehouseNode; r: ResidencyNode }, { node: GatehouseNode; r: ResidencyNode }];
    const req = { credential: SCENARIO_KEYS.ursula, sql: ROUTED, purpose: 'research', source: '127.0.0.1', channel: 'bench-request' };
    const time = async (f: () => Promise<unknown>): Promise<number> => { const t = performance.now(); await f(); return performance.now() - t; };
    // The parts a routed query adds, each timed alone (the profile behind the overhead).
    const noop = { action: 'residency.forward' as const, requestId: 'bench-request', datasets: [], why: 'bench-request', run: async () => ({ value: null, reasons: [], datasets: [], obligations: [], rowsReturned: null, resultDigest: null }) };
    const sample = await E.r.query(req);
    const parts: Record<string, () => Promise<unknown>> = {
      'plan: parse': async () => parseSql(ROUTED),
      'audited step (auth + entry)': () => U.node.gatehouse.crossRegion(req, noop),
      'forwarded query on the data node': () => E.node.gatehouse.query({ ...req, channel: 'federation:us-east' }),
      'sign + verify request and answer': async () => {
        const body = JSON.stringify({ credential: SCENARIO_KEYS.ursula, sql: ROUTED, purpose: 'research', source: '127.0.0.1' });
        const out = JSON.stringify({ result: { response: sample } });
        const s1 = signRequest(U.r.identity, 'eu-west-1', 'POST', '/federation/v1/query', 'bench-request', body, Date.now());
        verifyRequest({ self: E.r.identity, peers: E.r.peers, tlsKey: U.r.identity.publicKey, method: 'POST', path: '/federation/v1/query', headers: s1.headers, body: Buffer.from(body), replay: new ReplayCache(), now: Date.now(), skewMs: 30_000 });
        const s2 = signResponse(E.r.identity, 'us-east-1', 'bench-request', s1.nonce, 200, out);
        verifyResponse(U.r.peers.get('eu-west-1'), 'us-east-1', 'bench-request', s1.nonce, 200, s2, out);
      },
    };
    const ip: Record<string, number[]> = { local: [], routed: [], rtt: [], ...Object.fromEntries(Object.keys(parts).map((k) => [k, []])) };
    for (let i = 0; i < 5; i++) { await E.r.query(req); await U.r.query(req); }
    for (let i = 0; i < ROUNDS; i++) {
      ip.local!.push(await time(() => E.r.query(req)));
      ip.routed!.push(await time(() => U.r.query(req)));
      ip.rtt!.push(await time(() => U.r.status(true)));
      for (const [k, f] of Object.entries(parts)) ip[k]!.push(await time(f));
    }
    for (const n of inProc) { await n.r.close(); await n.node.close(); }
    const im = Object.fromEntries(Object.entries(ip).map(([k, v]) => [k, median(v)]));
    console.log(`in one process (no HTTP in front; load ${loadavg()[0]!.toFixed(1)}):`);
    for (const [k, v] of Object.entries(ip)) console.log(`  ${k.padEnd(34)} median ${fmt(median(v))}  p90 ${fmt(p90(v))}`);
    console.log(`  routed − local (paired) = ${fmt(median(ip.routed!.map((r, i) => r - ip.local![i]!)))}`);
    console.log(`  routed − local = ${fmt(im.routed! - im.local!)}; one round trip = ${fmt(im.rtt!)}; beyond the round trip = ${fmt(im.routed! - im.local! - im.rtt!)}`);
  }
} finally {
  for (const n of nodes) n.child.kill('SIGTERM');
  await Promise.all(nodes.map((n) => new Promise((r) => (n.child.exitCode !== null ? r(null) : n.child.once('exit', r)))));
  rmSync(dir, { recursive: true, force: true });
}
