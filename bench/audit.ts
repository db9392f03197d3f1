/**
 * Audit log benchmark: `npx node bench/audit.ts` (writes bench/results/audit.json).
 *
 * 1. Durable appends/s from concurrent writers (each awaits its append: acknowledged = fdatasync'ed).
 * 2. Checkpoint lag: time from an append's acknowledgement until a signed checkpoint covers it.
 * 3. At 10^6 entries: inclusion and consistency proof generation and verification time.
 * 4. Bytes per entry on disk (entries + offsets + stored tree nodes).
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { TransparencyLog } from '../src/audit/log.ts';
import { openCheckpoint } from '../src/audit/note.ts';
import { verifyConsistency, verifyInclusion } from '../src/audit/merkle.ts';
import { record } from '../src/audit/testing/fixtures.ts';

const TARGET = Number(process.env.AUDIT_BENCH_ENTRIES ?? 1_000_000);
const WRITERS = Number(process.env.AUDIT_BENCH_WRITERS ?? 1024);
const dir = mkdtempSync(join(tmpdir(), 'gh-audit-bench-'));
const log = TransparencyLog.open(dir, { passphrase: 'bench-only', checkpointIntervalMs: 500 });

const samples: { id: number; ackedAt: number }[] = [];
const cps: { at: number; size: number }[] = [];
const watcher = setInterval(() => cps.push({ at: performance.now(), size: log.stats().checkpointSize }), 2);

let next = 0;
const cpu0 = process.cpuUsage();
const elu0 = performance.eventLoopUtilization();
const start = performance.now();
async function writer(): Promise<void> {
  while (next < TARGET) {
    const i = next++;
    const { auditId } = await log.append(record(i));
    if (i % 997 === 0) samples.push({ id: Number(auditId), ackedAt: performance.now() });
  }
}
await Promise.all(Array.from({ length: WRITERS }, writer));
const elapsed = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpu0);
const elu = performance.eventLoopUtilization(elu0);
// Let the last checkpoint land before computing lag.
await new Promise((r) => setTimeout(r, 700));
clearInterval(watcher);
const lags = samples.map((s) => {
  const hit = cps.find((c) => c.at >= s.ackedAt && c.size > s.id);
  return hit ? hit.at - s.ackedAt : Infinity;
}).sort((a, b) => a - b);
const pct = (arr: number[], p: number) => arr[Math.min(arr.length - 1, Math.floor(arr.length * p))]!;

const note = await log.checkpoint();
const cp = openCheckpoint(note, log.verifiers());
const n = cp.size;
const rounds = 2000;
let tGen = 0; let tVer = 0; let cGen = 0; let cVer = 0;
const old = log.rootAt(Math.floor(n / 3));
for (let r = 0; r < rounds; r++) {
  const idx = Math.floor(Math.random() * n);
  let t0 = performance.now();
  const p = log.inclusionProof(idx, n);
  tGen += performance.now() - t0;
  const leaf = Buffer.from(p.leafHash, 'base64');
  const proof = p.proof.map((h) => Buffer.from(h, 'base64'));
  t0 = performance.now();
  verifyInclusion(idx, n, leaf, proof, cp.root);
  tVer += performance.now() - t0;
  const m = 1 + Math.floor(Math.random() * (n - 1));
  t0 = performance.now();
  const c = log.consistencyProof(m, n);
  cGen += performance.now() - t0;
  const root1 = r === 0 ? old : log.rootAt(m);
  const cproof = c.proof.map((h) => Buffer.from(h, 'base64'));
  t0 = performance.now();
  if (r !== 0) verifyConsistency(m, n, root1, cp.root, cproof);
  cVer += performance.now() - t0;
}
const bytes = log.diskUsage();
const results = {
  machine: { cpus: cpus().length, node: process.version },
  entries: n,
  writers: WRITERS,
  appendsPerSecond: Math.round(TARGET / elapsed),
  // Whole-process CPU (all threads, user + system) and main-thread busy time per append,
  // and the share of the append phase the event loop was busy: context for the rate
  // when other processes share the machine.
  cpuMicrosPerAppend: +((cpu.user + cpu.system) / TARGET).toFixed(2),
  eventLoopBusyMicrosPerAppend: +(elu.active * 1000 / TARGET).toFixed(2),
  eventLoopUtilization: +elu.utilization.toFixed(2),
  loadAverageAtEnd: +loadavg()[0]!.toFixed(2),
  batches: log.stats().batches,
  meanBatch: Math.round(TARGET / log.stats().batches),
  checkpointLagMs: { p50: +pct(lags, 0.5).toFixed(1), p99: +pct(lags, 0.99).toFixed(1), max: +lags.at(-1)!.toFixed(1) },
  inclusionProofAt1e6: { generateMs: +(tGen / rounds).toFixed(4), verifyMs: +(tVer / rounds).toFixed(4), hashes: log.inclusionProof(0, n).proof.length },
  consistencyProofAt1e6: { generateMs: +(cGen / rounds).toFixed(4), verifyMs: +(cVer / (rounds - 1)).toFixed(4) },
  bytesPerEntry: +(bytes / n).toFixed(1),
};
await log.close();
rmSync(dir, { recursive: true, force: true });
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/audit.json', import.meta.url), JSON.stringify(results, null, 2) + '\n');
console.log(JSON.stringify(results, null, 2));
