/**
 * Cost of federated learning's aggregation (issue 19): `npx node bench/federated.ts [--quick]
 * [--secagg-only] [--baseline <dir of an earlier src/>]` (writes bench/results/federated.json).
 *
 * 0. The wall time of one SecAgg+ round with all P participants and the coordinator in this
 *    one process, as fast as it runs: `simulateSecAgg`'s channel (src/fl/secagg/simulate.ts),
 *    no instrumentation, everything on this machine's cores. With `--baseline DIR` the same
 *    round of an earlier tree (DIR/fl/secagg/simulate.ts, e.g. a `git archive` of an older
 *    commit) runs interleaved with this one, so both sides see the same load. Also interleaved:
 *    the same round with the participants on cpus() worker threads (worker-channel.ts) and the
 *    coordinator on the main thread.
 * 1. One SecAgg+ round (src/fl/secagg/): P participants × D parameters, neighbourhood k,
 *    threshold t, all five stages, once with no dropout and once with 5 % of participants
 *    dropping after sharing keys (their pairwise masks recovered). Participants are simulated
 *    in this one process (real participant and coordinator code, messages passed by value)
 *    and run one at a time, so each participant's time and the coordinator's (timed method by
 *    method) are their own work. Reported: the serial sum (everything on one core, as
 *    simulated) and the parallel round (one participant's median time + the coordinator's),
 *    which is what real nodes see; the wall time also carries the benchmark's bookkeeping.
 * 2. Communication per participant, sent + received, in a binary encoding and as the JSON
 *    bodies the federation layer carries, divided by the plain update (D float32 values).
 * 3. CKKS (src/fl/ckks/) for the same round: one participant's encryption of D parameters,
 *    and the key authority's verified sum + decryption for C contributions, measured, then
 *    extrapolated linearly to P participants (encrypting 100 × 1M parameters in one process
 *    takes minutes; the per-participant cost is what a real participant pays).
 * A plain float sum of the same P updates is timed interleaved with the SecAgg rounds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { SecAggCoordinator } from '../src/fl/secagg/coordinator.ts';
import { rawBytes, wire } from '../src/fl/secagg/codec.ts';
import type { SessionParams, Stage } from '../src/fl/secagg/messages.ts';
import { SecAggParticipant } from '../src/fl/secagg/participant.ts';
import { runSecAgg, type SecAggChannel } from '../src/fl/secagg/round.ts';
import { identities, localChannel } from '../src/fl/secagg/simulate.ts';
import { SecAggWorkers } from '../src/fl/secagg/worker-channel.ts';
import { CkksKeyAuthority, encryptUpdate } from '../src/fl/ckks/ckks.ts';

const quick = process.argv.includes('--quick');
const secaggOnly = process.argv.includes('--secagg-only');
const baselineDir = process.argv.includes('--baseline') ? process.argv[process.argv.indexOf('--baseline') + 1] : undefined;
const P = quick ? 20 : 100;
const D = quick ? 50_000 : 1_000_000;
const K = 14;
const T = 8;
const REPS = quick ? 1 : 3;
const CKKS_CONTRIBUTIONS = quick ? 3 : 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const roster = Array.from({ length: P }, (_, i) => `p${String(i).padStart(3, '0')}`);
const { keys, pins } = identities([...roster, 'key-authority']);
const input = new Uint32Array(randomBytes(D * 4).buffer);

interface Measured { wallMs: number; participantMs: Map<string, number>; coordinatorMs: number; sent: Map<string, number>; received: Map<string, number>; sentJson: Map<string, number>; receivedJson: Map<string, number>; exact: boolean; dropped: number }

async function secaggRound(drop: ReadonlyMap<string, Stage>): Promise<Measured> {
  const session = `bench-${randomBytes(6).toString('hex')}`;
  const params: SessionParams = { session, roster, degree: K, threshold: T, length: D, graphSeed: session };
  const parts = new Map(roster.map((id) => [id, new SecAggParticipant(id, params, keys.get(id)!, pins)]));
  const coord = new SecAggCoordinator(params, pins);
  // The coordinator's own work, timed method by method.
  let coordinatorMs = 0;
  for (const name of ['acceptAdvert', 'advertsFor', 'acceptShares', 'sharesFor', 'acceptMasked', 'survivors', 'acceptConsistency', 'unmaskRequest', 'acceptUnmask', 'finish'] as const) {
    const f = (coord[name] as (...a: unknown[]) => unknown).bind(coord);
    (coord as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => {
      const t0 = performance.now();
      const r = f(...a);
      if (r instanceof Promise) return r.finally(() => { coordinatorMs += performance.now() - t0; });
      coordinatorMs += performance.now() - t0;
      return r;
    };
  }
  const m: Measured = { wallMs: 0, participantMs: new Map(), coordinatorMs: 0, sent: new Map(), received: new Map(), sentJson: new Map(), receivedJson: new Map(), exact: false, dropped: 0 };
  const add = (map: Map<string, number>, id: string, n: number) => map.set(id, (map.get(id) ?? 0) + n);
  // Participants run one at a time (a chain), so each one's time is its own work only.
  let chain: Promise<unknown> = Promise.resolve();
  const timed = <R>(id: string, stage: Stage, inbound: unknown, inboundJson: unknown, fn: () => R | Promise<R>, out: (r: R) => unknown): Promise<R> => {
    const run = chain.then(() => once(id, stage, inbound, inboundJson, fn, out));
    chain = run.catch(() => undefined);
    return run;
  };
  const once = async <R>(id: string, stage: Stage, inbound: unknown, inboundJson: unknown, fn: () => R | Promise<R>, out: (r: R) => unknown): Promise<R> => {
    const d = drop.get(id);
    const order: Stage[] = ['advertise', 'share', 'masked', 'consistency', 'unmask'];
    if (d && order.indexOf(stage) >= order.indexOf(d)) throw new Error('dropped');
    const sized = roster.indexOf(id) < 3; // JSON sizes of three participants (the rest are alike; stringifying 4 MB each costs time)
    add(m.received, id, rawBytes(inbound));
    if (sized) add(m.receivedJson, id, Buffer.byteLength(JSON.stringify(inboundJson)));
    const t0 = performance.now();
    const r = await fn();
    add(m.participantMs, id, performance.now() - t0);
    add(m.sent, id, rawBytes(r));
    if (sized) add(m.sentJson, id, Buffer.byteLength(JSON.stringify(out(r))));
    return r;
  };
  const channel: SecAggChannel = {
    advertise: (id) => timed(id, 'advertise', null, null, () => parts.get(id)!.advertise(), wire.advertise),
    share: (id, adverts) => timed(id, 'share', adverts, adverts.map(wire.advertise), () => parts.get(id)!.share(adverts), wire.share),
    masked: (id, shares) => timed(id, 'masked', shares, wire.incoming(shares), () => parts.get(id)!.masked(shares, input), wire.masked),
    consistency: (id, survivors) => timed(id, 'consistency', survivors, survivors, () => parts.get(id)!.consistency(survivors), wire.consistency),
    unmask: (id, req) => timed(id, 'unmask', req, wire.unmaskRequest(req), () => parts.get(id)!.unmask(req), wire.unmask),
  };
  const t0 = performance.now();
  const r = await runSecAgg(coord, channel);
  m.wallMs = performance.now() - t0;
  m.coordinatorMs = coordinatorMs;
  m.dropped = P - r.included.length;
  // Exact: every included participant sent the same input, so the sum is |U3| · input.
  let exact = true;
  for (let i = 0; i < D; i += 997) if (r.sum[i] !== ((input[i]! * r.included.length) >>> 0) && r.sum[i] !== Number((BigInt(input[i]!) * BigInt(r.included.length)) % 4294967296n)) exact = false;
  m.exact = exact;
  return m;
}

type Simulate = typeof import('../src/fl/secagg/simulate.ts');
/** One round as fast as it runs in one process; `impl` is this tree's simulate.ts or the baseline's. */
async function wallRound(impl: Simulate, drop: ReadonlyMap<string, Stage>): Promise<{ ms: number; exact: boolean; dropped: number }> {
  const session = `bench-${randomBytes(6).toString('hex')}`;
  const params: SessionParams = { session, roster, degree: K, threshold: T, length: D, graphSeed: session };
  const Participant = (await import(new URL('secagg/participant.ts', implBase.get(impl)!).href)).SecAggParticipant as typeof SecAggParticipant;
  const Coordinator = (await import(new URL('secagg/coordinator.ts', implBase.get(impl)!).href)).SecAggCoordinator as typeof SecAggCoordinator;
  const round = (await import(new URL('secagg/round.ts', implBase.get(impl)!).href)).runSecAgg as typeof runSecAgg;
  const inputs = new Map(roster.map((id) => [id, input]));
  const t0 = performance.now();
  const parts = new Map(roster.map((id) => [id, new Participant(id, params, keys.get(id)!, pins)]));
  const r = await round(new Coordinator(params, pins), impl.localChannel(parts, inputs, drop));
  const ms = performance.now() - t0;
  let exact = true;
  for (let i = 0; i < D; i += 997) if (r.sum[i] !== Number((BigInt(input[i]!) * BigInt(r.included.length)) % 4294967296n)) exact = false;
  return { ms, exact, dropped: P - r.included.length };
}
const WORKERS = Math.max(1, cpus().length);
const pool = SecAggWorkers.start(WORKERS);
async function workerRound(drop: ReadonlyMap<string, Stage>): Promise<{ ms: number; exact: boolean; dropped: number }> {
  const session = `bench-${randomBytes(6).toString('hex')}`;
  const params: SessionParams = { session, roster, degree: K, threshold: T, length: D, graphSeed: session };
  const inputs = new Map(roster.map((id) => [id, input]));
  const t0 = performance.now();
  const r = await runSecAgg(new SecAggCoordinator(params, pins), await pool.session(params, keys, pins, inputs, drop));
  const ms = performance.now() - t0;
  let exact = true;
  for (let i = 0; i < D; i += 997) if (r.sum[i] !== Number((BigInt(input[i]!) * BigInt(r.included.length)) % 4294967296n)) exact = false;
  return { ms, exact, dropped: P - r.included.length };
}
const implBase = new Map<Simulate, URL>();
const current: Simulate = { identities, localChannel } as Simulate;
implBase.set(current, new URL('../src/fl/', import.meta.url));
let baseline: Simulate | null = null;
if (baselineDir) {
  const base = new URL(`file://${baselineDir.replace(/\/?$/, '/')}fl/`);
  baseline = (await import(new URL('secagg/simulate.ts', base).href)) as Simulate;
  implBase.set(baseline, base);
}

function plainSum(): number {
  const updates = Array.from({ length: 4 }, () => Float32Array.from({ length: D }, () => Math.random()));
  const sum = new Float64Array(D);
  const t0 = performance.now();
  for (let p = 0; p < P; p++) { const u = updates[p % 4]!; for (let i = 0; i < D; i++) sum[i] += u[i]!; }
  return performance.now() - t0;
}

const drop5 = new Map<string, Stage>(roster.filter((_, i) => i % 20 === 7).map((id) => [id, 'masked' as Stage]));
const results: Record<string, { wall: number[]; serial: number[]; perParticipant: number[]; coordinator: number[]; exact: boolean[]; dropped: number }> = {};
const plain: number[] = [];
const wall: Record<string, { current: number[]; baseline: number[]; workers: number[]; exact: boolean[]; dropped: number }> = {};
let comm: Measured | null = null;
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, drop] of [['no dropout', new Map<string, Stage>()], ['5% drop after sharing keys', drop5]] as const) {
    // The two sides of the before/after ratio alternate, the order swapped every repetition.
    const w = (wall[name] ??= { current: [], baseline: [], workers: [], exact: [], dropped: 0 });
    const sides: [Simulate | 'workers', number[]][] = [[current, w.current], ['workers', w.workers], ...(baseline ? [[baseline, w.baseline] as [Simulate, number[]]] : [])];
    if (rep % 2 === 1) sides.reverse();
    for (const [impl, into] of sides) {
      const r = impl === 'workers' ? await workerRound(drop) : await wallRound(impl, drop);
      into.push(r.ms);
      w.exact.push(r.exact);
      w.dropped = r.dropped;
    }
    const m = await secaggRound(drop);
    const r = (results[name] ??= { wall: [], serial: [], perParticipant: [], coordinator: [], exact: [], dropped: m.dropped });
    r.wall.push(m.wallMs);
    r.serial.push([...m.participantMs.values()].reduce((a, x) => a + x, 0) + m.coordinatorMs);
    r.perParticipant.push(median([...m.participantMs.values()]));
    r.coordinator.push(m.coordinatorMs);
    r.exact.push(m.exact);
    if (name === 'no dropout') comm = m;
    plain.push(plainSum());
  }
}
const plainBytes = 4 * D;
const perId = (map: Map<string, number>) => median([...map.values()]);
const communication = comm && {
  plainUpdateBytes: plainBytes,
  binary: { sent: perId(comm.sent), received: perId(comm.received), ratio: (perId(comm.sent) + perId(comm.received)) / plainBytes, sentRatio: perId(comm.sent) / plainBytes },
  json: { sent: perId(comm.sentJson), received: perId(comm.receivedJson), ratio: (perId(comm.sentJson) + perId(comm.receivedJson)) / plainBytes, sentRatio: perId(comm.sentJson) / plainBytes },
};

// CKKS.
async function ckksCost() {
const ka = await CkksKeyAuthority.create('key-authority', 'coordinator', pins);
const update = Float64Array.from({ length: D }, (_, i) => Math.sin(i));
const session = `bench-ckks-${randomBytes(4).toString('hex')}`;
const encMs: number[] = [];
const contributions = [];
for (let i = 0; i < CKKS_CONTRIBUTIONS; i++) {
  const t0 = performance.now();
  contributions.push(await encryptUpdate(ka.publicKey, session, roster[i]!, keys.get(roster[i]!)!, update));
  encMs.push(performance.now() - t0);
}
const t1 = performance.now();
await ka.decryptSum(session, contributions, 2);
const kaMs = performance.now() - t1;
const ctBytes = contributions[0]!.ciphertexts.reduce((s, c) => s + c.length, 0);
// The key authority's time is one chunked sum per extra contribution plus one decryption: linear in P.
const ckks = {
  encryptPerParticipantMs: median(encMs), contributionsMeasured: CKKS_CONTRIBUTIONS, keyAuthorityMs: kaMs,
  keyAuthorityPerContributionMs: kaMs / CKKS_CONTRIBUTIONS,
  extrapolatedRoundMsAllInOneProcess: median(encMs) * P + (kaMs / CKKS_CONTRIBUTIONS) * P,
  extrapolatedRoundMsParallelParticipants: median(encMs) + (kaMs / CKKS_CONTRIBUTIONS) * P,
  bytesPerParticipant: ctBytes, ratio: ctBytes / plainBytes,
};
return ckks;
}
await pool.close();
const ckks = secaggOnly ? null : await ckksCost();

const summary = {
  machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Number(x.toFixed(1))) }, participants: P, parameters: D, degree: K, threshold: T, reps: REPS,
  roundWallInOneProcess: Object.fromEntries(Object.entries(wall).map(([k, w]) => [k, {
    msMedian: median(w.current), ms: w.current.map(Math.round), exact: w.exact.every(Boolean), dropped: w.dropped,
    workerThreads: WORKERS, workersMsMedian: median(w.workers), workersMs: w.workers.map(Math.round),
    ...(baseline ? { baselineMsMedian: median(w.baseline), baselineMs: w.baseline.map(Math.round), speedup: median(w.baseline) / median(w.current) } : {}),
  }])),
  /** The instrumented run (participants one at a time, each timed; sizes of messages): per-party cost and communication. */
  secagg: Object.fromEntries(Object.entries(results).map(([k, r]) => [k, {
    roundWallMsMedian: median(r.wall), serialWorkMsMedian: median(r.serial), perParticipantMsMedian: median(r.perParticipant), coordinatorMsMedian: median(r.coordinator),
    parallelRoundMsEstimate: median(r.perParticipant) + median(r.coordinator), exact: r.exact.every(Boolean), dropped: r.dropped,
  }])),
  plainSumMsMedian: median(plain), communication, ckks,
};
console.log(JSON.stringify(summary, null, 2));
const outFile = join(dirname(fileURLToPath(import.meta.url)), 'results', secaggOnly ? 'federated-secagg.json' : 'federated.json');
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify(summary, null, 2)}\n`);
