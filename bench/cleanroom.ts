/**
 * Clean-room benchmarks (issue 17), `npx node bench/cleanroom.ts [--quick] [--psi N] [--sum N] [--rows N] [--rounds R]`:
 *
 * 1. PSI cardinality, N × N elements (default 100,000; --quick 2,000), 10 % overlap. The
 *    protocol's own bound is its X25519 scalar multiplications (2·N own + 2·padded(N) peer
 *    points); the same number is timed alone on the same machine, interleaved with the PSI
 *    runs (bound, PSI, bound, PSI, …), and the median ratio reported. Hash-to-curve is a
 *    one-off per table (psi/prepared-set.ts: H(x) does not depend on the session) and is
 *    reported apart. Bytes on the wire are the PSI messages, the node-channel bodies that
 *    carry them as the service sends them (CBOR, application/cbor: src/federation/transport.ts),
 *    and, for comparison, the same messages as base64 inside JSON (the channel before CBOR).
 * 2. Intersection-sum (Paillier 2048), S × S (default 1,000; --quick 100): time and bytes.
 * 3. A clean-room aggregation over an R-row join (default 1,000,000; --quick 50,000): the
 *    compute-node path (columns sealed with JWE, opened, sealed on tmpfs, loaded into the
 *    locked-down engine, governed query, deletion) against the same governed query on one
 *    node whose engine holds both tables.
 *
 * The machine is shared (2 cores, several engineers' jobs), so each figure is a median and
 * every ratio's two sides run interleaved in the same process.
 */
import { mkdirSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { encode as encodeCbor } from 'cbor2';
import { generatePaillierKeys } from '../src/psi/paillier.ts';
import { CACHE_DIR, isMain, isQuick, machineInfo, round, summarize, writeResult, type BenchResult } from './run.ts';
import { prepareSet } from '../src/psi/prepared-set.ts';
import { PsiClient, PsiServer } from '../src/psi/session.ts';
import { BlindingKey } from '../src/psi/blind.ts';
import { paddedSize, dummyPoints } from '../src/psi/padding.ts';
import { ProgressMeter, formatProgress } from '../src/psi/progress.ts';
import { loadParser } from '../src/query/parse.ts';
import { runOnComputeNode, toCsvTable, type TableColumns, type TablePayload } from '../src/cleanroom/compute.ts';
import { parseRule, type Collaboration, type Contribution } from '../src/cleanroom/model.ts';
import { collaborationCatalog, governAnalysis } from '../src/cleanroom/rules/govern-analysis.ts';
import { generateSealingKeys, openColumns, sealColumns } from '../src/cleanroom/sealed-columns.ts';
import { DuckDbEngine } from '../src/engine/duckdb.ts';
import { execute } from '../src/kernel/execute.ts';
import { disclosureControl } from '../src/kernel/protections/disclosure.ts';
import type { Workspace } from '../src/model/types.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const quick = isQuick();
const PSI_N = arg('psi', quick ? 500 : 100_000);
const SUM_N = arg('sum', quick ? 30 : 1_000);
const ROWS = arg('rows', quick ? 10_000 : 1_000_000);
const ROUNDS = arg('rounds', 3);
const say = (s: string): void => { process.stderr.write(`[cleanroom] ${s}\n`); };
const seconds = (t0: number): number => (performance.now() - t0) / 1000;
const median = (xs: number[]): number => summarize(xs).p50;

function elements(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`${prefix}${i}`);
  return out;
}

/** Bytes of one PSI run and its time; messages pass through their binary encoding as on a wire. */
function psiOnce(client: PsiClient, server: PsiServer): { seconds: number; bytes: number; base64Bytes: number; cborBytes: number; cardinality: number } {
  const t0 = performance.now();
  let bytes = 0;
  let b64 = 0;
  let cbor = 0;
  let reply: Uint8Array | null = null;
  // The bodies the clean-room service sends for each message (src/cleanroom/service.ts psi), as CBOR.
  const body = (m: Uint8Array): number => encodeCbor({ collaborationId: 'fraud-ring', table: 'b_accounts', mode: 'cardinality', valueColumn: null, message: m }).byteLength;
  for (const m of client.hello(16_384)) {
    bytes += m.length; b64 += Math.ceil(m.length / 3) * 4; cbor += body(m);
    reply = server.receive(m);
  }
  bytes += reply!.length; b64 += Math.ceil(reply!.length / 3) * 4; cbor += encodeCbor({ result: { reply: reply! } }).byteLength;
  const r = client.receiveReply(reply!);
  return { seconds: seconds(t0), bytes, base64Bytes: b64, cborBytes: cbor, cardinality: r.cardinality };
}

async function psiCardinality(): Promise<Record<string, unknown>> {
  const n = PSI_N;
  const overlap = Math.floor(n / 10);
  say(`PSI cardinality ${n} × ${n} (overlap ${overlap}): hashing both sets to the curve (once per table)…`);
  const meter = new ProgressMeter((r) => say(formatProgress(r)), { intervalMs: 5000 });
  let t0 = performance.now();
  const tick = meter.start('hash to curve', 2 * n);
  const x = prepareSet(elements('acct-', 0, n), { onProgress: (d) => tick(d) });
  const y = prepareSet(elements('acct-', n - overlap, 2 * n - overlap), { onProgress: (d) => tick(n + d) });
  const hashSeconds = seconds(t0);
  const padded = paddedSize(n);
  const mults = 2 * n + 2 * padded;
  // Points for the bound: valid curve points (dummies are fresh X25519 public keys).
  const boundPoints = dummyPoints(padded);
  const psi: number[] = [], bound: number[] = [];
  let last = { bytes: 0, base64Bytes: 0, cborBytes: 0, cardinality: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    t0 = performance.now();
    const k = BlindingKey.fresh();
    for (let done = 0; done < mults; done += padded) k.multiplyAll(boundPoints.subarray(0, 32 * Math.min(padded, mults - done)));
    bound.push(seconds(t0));
    const server = new PsiServer(y, { modes: ['cardinality'], maxElements: 1 << 23 });
    const client = new PsiClient(x, 'cardinality');
    const run = psiOnce(client, server);
    psi.push(run.seconds);
    last = run;
    say(`round ${r + 1}/${ROUNDS}: PSI ${run.seconds.toFixed(1)} s, ${mults} X25519 alone ${bound[bound.length - 1]!.toFixed(1)} s, cardinality ${run.cardinality}`);
  }
  if (last.cardinality !== overlap) throw new Error(`PSI found ${last.cardinality}, expected ${overlap}`);
  const ratio = median(psi) / median(bound);
  // 1M × 1M from the measured per-element rate (the work is linear in the padded sizes).
  const p1m = paddedSize(1_000_000);
  const scale = (2 * 1_000_000 + 2 * p1m) / mults;
  const bytes1m = 32 * p1m + 12 * p1m + 32 * p1m + 3 * 64;
  return {
    elements: n, overlap, paddedTo: padded, rounds: ROUNDS, x25519Multiplications: mults,
    psiSecondsMedian: round(median(psi)), boundSecondsMedian: round(median(bound)), ratioToBound: round(ratio, 3),
    bytesOnWire: last.bytes, bytesAsCborBodies: last.cborBytes, bytesAsBase64Json: last.base64Bytes, hashToCurveSecondsBothSets: round(hashSeconds),
    hashToCurvePerSecond: Math.round((2 * n) / hashSeconds), x25519PerSecond: Math.round(mults / median(bound)),
    extrapolated1Mx1M: {
      label: `extrapolated linearly from ${n} × ${n}, not measured`, psiSeconds: round(median(psi) * scale, 1), boundSeconds: round(median(bound) * scale, 1),
      hashToCurveSecondsBothSets: round(hashSeconds * (2_000_000 / (2 * n)), 1), bytesOnWire: bytes1m, bytesAsCborBodies: Math.round(bytes1m * (last.cborBytes / last.bytes)), bytesAsBase64Json: Math.ceil(bytes1m / 3) * 4,
    },
  };
}

async function intersectionSum(): Promise<Record<string, unknown>> {
  const n = SUM_N;
  say(`intersection-sum ${n} × ${n} (Paillier 2048)…`);
  let t0 = performance.now();
  const keys = await generatePaillierKeys(2048);
  const keygen = seconds(t0);
  const overlap = Math.floor(n / 10);
  const ys = elements('acct-', n - overlap, 2 * n - overlap);
  const values = ys.map((_, i) => BigInt(100 + (i % 1000)));
  const x = prepareSet(elements('acct-', 0, n));
  const y = prepareSet(ys, { values });
  t0 = performance.now();
  const server = new PsiServer(y, { modes: ['sum'], paillier: keys, maxElements: 1 << 23 });
  const client = new PsiClient(x, 'sum');
  let bytes = 0;
  let reply: Uint8Array | null = null;
  for (const m of client.hello()) { bytes += m.length; reply = server.receive(m); }
  bytes += reply!.length;
  const r = client.receiveReply(reply!);
  bytes += r.sumMessage!.length;
  const result = server.receive(r.sumMessage!)!;
  bytes += result.length;
  const out = client.receiveResult(result);
  const total = seconds(t0);
  const expected = values.slice(0, overlap).reduce((a, b) => a + b, 0n);
  if (out.sum !== expected || out.cardinality !== overlap) throw new Error('intersection-sum is wrong');
  const scale = 100_000 / n;
  return {
    elements: n, overlap, paillierBits: 2048, keygenSeconds: round(keygen), seconds: round(total), bytesOnWire: bytes,
    extrapolated100kx100k: { label: `extrapolated linearly from ${n} × ${n}, not measured`, seconds: round(total * scale, 0), bytesOnWire: Math.round(bytes * scale) },
  };
}

const COLS = [
  { name: 'account_key', type: 'VARCHAR' }, { name: 'customer_id', type: 'VARCHAR' }, { name: 'segment', type: 'VARCHAR' },
  { name: 'flagged', type: 'BOOLEAN' }, { name: 'exposure', type: 'DOUBLE' },
] as const;

function table(rows: number, salt: number): TableColumns {
  const out: (string | number | boolean)[][] = [];
  for (let i = 0; i < rows; i++) out.push([`k${i}`, `c${Math.floor(i / 3)}`, ['retail', 'business', 'corporate', 'private'][i % 4]!, (i + salt) % 5 === 0, (i * 31 + salt) % 10_000]);
  return { columns: COLS.map((c) => c.name), rows: out };
}

async function aggregation(): Promise<Record<string, unknown>> {
  await loadParser();
  const rows = ROWS;
  say(`clean-room aggregation over a ${rows}-row join…`);
  const contribution = (t: string, owner: string): Contribution => ({
    table: t, owner, dataset: 'accounts', columns: COLS,
    rule: parseRule({ kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment', 'flagged'], aggregateColumns: [{ column: 'exposure', functions: ['sum', 'count'] }], scalarFunctions: [], joinRequired: true, privacyUnit: 'customer_id', minDistinctUnits: 25 }, COLS),
  });
  const c: Collaboration = {
    id: 'bench', name: 'bench', purpose: 'fraud-detection', creator: 'a', computeNode: 'a', status: 'active', version: 1, templates: [],
    members: ['a', 'b'].map((n) => ({ nodeId: n, publicKey: `ed25519:${n}`, abilities: ['query', 'receive', 'approve'], status: 'active' as const })),
    contributions: [contribution('a_accounts', 'a'), contribution('b_accounts', 'b')],
  };
  const sql = 'SELECT a.segment, b.flagged, count(*) AS n, sum(b.exposure) AS exposure FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.segment, b.flagged';
  const ta = table(rows, 1), tb = table(rows, 2);
  // One node holding both tables: CSV files the same engine opens, the same governed query.
  const dir = join(CACHE_DIR, `cleanroom-${rows}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, t] of [['a_accounts', ta], ['b_accounts', tb]] as const) {
    const file = join(dir, `${name}.csv`);
    if (!existsSync(file)) writeFileSync(file, [t.columns.join(','), ...t.rows.map((r) => r.join(','))].join('\n') + '\n');
  }
  const sealing = await generateSealingKeys();
  const single: number[] = [], singleQuery: number[] = [], room: number[] = [], sealOpen: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // One node.
    let t0 = performance.now();
    const datasets = collaborationCatalog(c, (t) => ({ kind: 'csv', path: join(dir, `${t}.csv`) }));
    const ws: Workspace = { dir, name: 'one-node', defaults: { rowCap: 10_000, statementTimeoutMs: 600_000, memoryLimit: '2GB' }, datasets, obligations: new Map(), principals: new Map(), policyFiles: new Map(), cedarSchema: '', hashKey: randomBytes(32), policyVersion: 'bench' };
    const engine = await DuckDbEngine.open(ws, { poolSize: 1 });
    const g = governAnalysis(c, { sql, querier: 'a', sourceOf: (t) => ({ kind: 'csv', path: join(dir, `${t}.csv`) }) }).governed;
    const tq = performance.now();
    const rel = await execute({ query: g.query, engine, timeoutMs: 600_000, protections: [disclosureControl(g.disclosure!, g.rowLimit, g.rowCap)] }, { entry: {} as never, keep: () => {}, onRecord: () => {}, internal: () => { throw new Error('no'); } });
    singleQuery.push(seconds(tq));
    await engine.close();
    single.push(seconds(t0));
    // Clean room: seal at each member, open at the compute node, then the compute run.
    t0 = performance.now();
    const opened = new Map<string, TablePayload>();
    for (const [name, t] of [['a_accounts', ta], ['b_accounts', tb]] as const) {
      const jwe = await sealColumns(toCsvTable(COLS.map((x) => x.name), t), sealing.publicJwk, { collaborationId: 'bench', queryId: `q${r}`, table: name });
      opened.set(name, await openColumns(jwe, sealing, { collaborationId: 'bench', queryId: `q${r}`, table: name }));
    }
    sealOpen.push(seconds(t0));
    const out = await runOnComputeNode({ collaboration: c, sql, template: null, querier: 'a', tables: opened, timeoutMs: 600_000 });
    room.push(seconds(t0));
    if (JSON.stringify(out.release.rows.map((x) => x.map(String)).sort()) !== JSON.stringify(rel.rows.map((x) => x.map(String)).sort())) throw new Error('clean room and one node disagree');
    say(`round ${r + 1}/${ROUNDS}: one node ${single[single.length - 1]!.toFixed(1)} s (query ${singleQuery[singleQuery.length - 1]!.toFixed(2)} s), clean room ${room[room.length - 1]!.toFixed(1)} s (JWE seal+open ${sealOpen[sealOpen.length - 1]!.toFixed(1)} s)`);
  }
  if (!quick) rmSync(dir, { recursive: true, force: true });
  return {
    rowsPerTable: rows, rounds: ROUNDS,
    oneNodeSecondsMedian: round(median(single)), oneNodeQuerySecondsMedian: round(median(singleQuery)),
    cleanRoomSecondsMedian: round(median(room)), cleanRoomSealOpenSecondsMedian: round(median(sealOpen)),
    ratio: round(median(room) / median(single), 2),
  };
}

if (isMain(import.meta.url)) {
  const only = (() => { const i = process.argv.indexOf('--only'); return i >= 0 ? process.argv[i + 1]!.split(',') : ['psi', 'sum', 'aggregation']; })();
  const figures: Record<string, unknown> = {};
  if (only.includes('psi')) figures.psiCardinality = await psiCardinality();
  if (only.includes('sum')) figures.intersectionSum = await intersectionSum();
  if (only.includes('aggregation')) figures.aggregation = await aggregation();
  const psi = figures.psiCardinality as { ratioToBound: number; extrapolated1Mx1M: { bytesOnWire: number } } | undefined;
  const result: BenchResult = {
    name: 'cleanroom', date: new Date().toISOString(), quick, machine: machineInfo(), figures,
    goals: psi ? {
      psiRatio: { goal: '≤ 1.3× the X25519 multiplications alone', measured: `${psi.ratioToBound}×`, met: psi.ratioToBound <= 1.3 },
      psiBytes1M: { goal: '≤ 100 MB for 1M × 1M', measured: `${(psi.extrapolated1Mx1M.bytesOnWire / 1e6).toFixed(1)} MB (binary)`, met: psi.extrapolated1Mx1M.bytesOnWire <= 100e6 },
    } : {},
  };
  const file = writeResult(result);
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  say(`written ${file}`);
}
