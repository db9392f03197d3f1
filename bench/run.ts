/**
 * `npm run bench [-- --quick] [-- --only query,http]`: runs every benchmark module in
 * bench/ as its own child process (a fresh heap and DuckDB per benchmark, so one cannot
 * skew the next), collects bench/results/<name>.json and prints a summary.
 *
 * Modules: query.ts (governed vs raw aggregation over 10M rows; DP vs non-DP; aggregation-
 * only), http.ts (added latency and throughput over HTTP), policy.ts (Cedar decision
 * latency), audit.ts (transparency-log appends, checkpoint lag, proofs; its JSON has no
 * `goals`, so the runner derives them), privacy.ts (exact noise sampler throughput) and
 * identity.ts (per-request identity overhead: API keys, session tokens). Each module also runs on its
 * own: `node bench/query.ts [--quick]`.
 *
 * This file also holds the helpers the modules share (statistics, machine facts, result
 * files). Its main block runs only when it is the entry point.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(BENCH_DIR, '..');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
/** Generated data sets are kept here between runs (git-ignored). */
export const CACHE_DIR = join(ROOT, '.gatehouse', 'bench');

export interface BenchResult {
  readonly name: string;
  readonly date: string;
  readonly quick: boolean;
  readonly machine: MachineInfo;
  readonly figures: Record<string, unknown>;
  readonly goals: Record<string, Goal>;
  readonly notes?: readonly string[];
}

export interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface MachineInfo {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  readonly duckdb?: string;
}

export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!.trim();
  } catch { /* not Linux */ }
  let duckdb: string | undefined;
  try {
    duckdb = (JSON.parse(readFileSync(join(ROOT, 'node_modules', '@duckdb', 'node-api', 'package.json'), 'utf8')) as { version: string }).version;
  } catch { /* not installed */ }
  return {
    nproc: availableParallelism(), cpuModel, memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version, platform: `${process.platform}-${process.arch}`, ...(duckdb ? { duckdb } : {}),
  };
}

/** True when `--quick` was passed (or BENCH_QUICK=1): small sizes, for a smoke test. */
export function isQuick(argv: readonly string[] = process.argv): boolean {
  return argv.includes('--quick') || process.env.BENCH_QUICK === '1';
}

/** True when the module at `metaUrl` is the process entry point. */
export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(metaUrl);
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Summary statistics of samples, rounded to `digits` decimals (unit unchanged). */
export function summarize(samples: readonly number[], digits = 3): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { n: s.length, min: r(s[0] ?? NaN), p50: r(quantile(s, 0.5)), p90: r(quantile(s, 0.9)), p99: r(quantile(s, 0.99)), max: r(s[s.length - 1] ?? NaN), mean: r(mean) };
}

export function round(x: number, digits = 3): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

export function writeResult(result: BenchResult): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${result.name}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

/**
 * The demo workspace in `dir` with generated data reused but the owner's files
 * (gatehouse.yaml, policies/, the Cedar schema, Gatehouse's state/) rewritten from the
 * current demo code: `createDemoWorkspace` keeps those files once written, so a cached
 * bench workspace would otherwise keep an old configuration. `editYaml` may then change
 * the generated gatehouse.yaml text (e.g. a huge privacy budget for benchmarking).
 */
export async function freshDemoWorkspace(
  dir: string, options: { patients: number; encountersPerPatient: number }, editYaml?: (yaml: string) => string,
): Promise<{ dir: string; keys: Readonly<Record<'rhea' | 'ivan' | 'ada' | 'audrey', string>> }> {
  const { createDemoWorkspace } = await import('../src/demo/workspace.ts');
  for (const f of ['gatehouse.yaml', 'schema.cedarschema', 'policies', 'state']) rmSync(join(dir, f), { recursive: true, force: true });
  const demo = await createDemoWorkspace(dir, options);
  if (editYaml) {
    const file = join(dir, 'gatehouse.yaml');
    const before = readFileSync(file, 'utf8');
    const after = editYaml(before);
    if (after === before) throw new Error(`editing ${file} changed nothing (has the demo workspace changed?)`);
    writeFileSync(file, after);
  }
  return demo;
}

/**
 * A CPU profile (Chrome .cpuprofile) of one request path alone, 2,000 runs at a 50 µs
 * sampling interval, so it shows where that path's time goes without the set-up. Modules
 * call it when BENCH_PROFILE names the output file.
 */
export async function profilePath(name: string, file: string, path: () => Promise<unknown>): Promise<void> {
  const profiling = await startCpuProfile(50);
  // BENCH_PROFILE_CONCURRENCY=16: the same 2,000 runs from that many callers at once (throughput).
  const callers = Math.max(1, Number(process.env.BENCH_PROFILE_CONCURRENCY ?? 1) || 1);
  let left = 2_000;
  await Promise.all(Array.from({ length: callers }, async () => { while (left-- > 0) await path(); }));
  await profiling.stopInto(file);
  log(name, `wrote a CPU profile of 2,000 runs (${callers} at once) to ${file}`);
}

/** A CPU profile (Chrome .cpuprofile) of this thread, sampled every `intervalUs`, from now until `stopInto`. */
export async function startCpuProfile(intervalUs: number): Promise<{ stopInto: (file: string) => Promise<void> }> {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> => new Promise((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: intervalUs });
  await post('Profiler.start');
  return {
    stopInto: async (file) => {
      const { profile } = await post('Profiler.stop') as { profile: unknown };
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

export function log(name: string, message: string): void {
  process.stderr.write(`[${name}] ${message}\n`);
}

// ---- the runner ------------------------------------------------------------------------

interface ModuleSpec {
  readonly name: string; readonly file: string; readonly timeoutMs: number;
  /** The module prints its figures instead of writing bench/results/<name>.json: the runner keeps what it printed there. */
  readonly printsFigures?: boolean;
}

const MODULES: readonly ModuleSpec[] = [
  { name: 'policy', file: 'policy.ts', timeoutMs: 5 * 60_000 },
  { name: 'http', file: 'http.ts', timeoutMs: 5 * 60_000 },
  { name: 'query', file: 'query.ts', timeoutMs: 15 * 60_000 },
  { name: 'audit', file: 'audit.ts', timeoutMs: 8 * 60_000 },
  { name: 'privacy', file: 'privacy.ts', timeoutMs: 8 * 60_000 },
  { name: 'identity', file: 'identity.ts', timeoutMs: 5 * 60_000 },
  { name: 'encryption', file: 'encryption.ts', timeoutMs: 10 * 60_000 },
  { name: 'postgres', file: 'postgres.ts', timeoutMs: 5 * 60_000 },
  { name: 'wire', file: 'wire.ts', timeoutMs: 5 * 60_000 },
  { name: 'budget', file: 'budget.ts', timeoutMs: 5 * 60_000 },
  { name: 'data-in-place', file: 'data-in-place.ts', timeoutMs: 10 * 60_000 },
  { name: 'postgres-point', file: 'postgres-point.ts', timeoutMs: 5 * 60_000 },
  // Generates ~5 GB of Parquet under the OS temp folder on its first full run (≈ 9 min here).
  { name: 'scale', file: 'scale.ts', timeoutMs: 60 * 60_000 },
  // Issues 16–23 (docs/benchmarks.md, "Run H").
  { name: 'dp-figures', printsFigures: true, file: '../scripts/dp-figures.ts', timeoutMs: 20 * 60_000 },
  { name: 'cleanroom', file: 'cleanroom.ts', timeoutMs: 60 * 60_000 },
  { name: 'code-to-data', file: 'code-to-data.ts', timeoutMs: 10 * 60_000 },
  { name: 'federated', file: 'federated.ts', timeoutMs: 20 * 60_000 },
  { name: 'residency', printsFigures: true, file: 'residency.ts', timeoutMs: 10 * 60_000 },
  { name: 'monitoring', printsFigures: true, file: 'monitoring.ts', timeoutMs: 10 * 60_000 },
  { name: 'console', file: 'console.ts', timeoutMs: 10 * 60_000 },
  { name: 'governance', printsFigures: true, file: 'governance.ts', timeoutMs: 20 * 60_000 },
  { name: 'join-corpus', file: 'join-corpus.ts', timeoutMs: 20 * 60_000 },
];

function runChild(spec: ModuleSpec, quick: boolean): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const started = performance.now();
  return new Promise((resolvePromise) => {
    const args = [join(BENCH_DIR, spec.file), ...(quick ? ['--quick'] : [])];
    const child = spawn(process.execPath, args, {
      cwd: ROOT, stdio: ['ignore', spec.printsFigures ? 'pipe' : 'inherit', 'inherit'],
      // audit.ts has no --quick; its size comes from AUDIT_BENCH_ENTRIES.
      env: { ...process.env, ...(quick ? { BENCH_QUICK: '1', AUDIT_BENCH_ENTRIES: process.env.AUDIT_BENCH_ENTRIES ?? '100000' } : {}) },
    });
    const timer = setTimeout(() => {
      process.stderr.write(`[run] ${spec.name}: over ${spec.timeoutMs / 1000} s, stopping it\n`);
      child.kill('SIGTERM');
      setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL'); }, 5_000).unref();
    }, spec.timeoutMs);
    let printed = '';
    child.stdout?.on('data', (d: Buffer) => { process.stdout.write(d); printed += d.toString('utf8'); });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (spec.printsFigures && code === 0) writeFileSync(join(RESULTS_DIR, `${spec.name}.json`), `${JSON.stringify({ module: spec.name, quick, at: new Date().toISOString(), printed }, null, 2)}\n`);
      resolvePromise({ code, signal, ms: performance.now() - started });
    });
  });
}

/** bench/audit.ts writes its figures without goals; these are issue 3's. */
export function auditGoals(a: Record<string, any>): Record<string, Goal> {
  const incl = a.inclusionProofAt1e6 ?? {};
  const cons = a.consistencyProofAt1e6 ?? {};
  return {
    durableAppendsPerSecond: { goal: '≥ 50,000 durable appends/s from concurrent writers', measured: `${a.appendsPerSecond}/s (${a.writers} writers, ${a.entries} entries)`, met: a.appendsPerSecond >= 50_000 },
    checkpointLag: { goal: '≤ 1 s from acknowledgement to a signed checkpoint', measured: `p50 ${a.checkpointLagMs?.p50} ms, p99 ${a.checkpointLagMs?.p99} ms, max ${a.checkpointLagMs?.max} ms`, met: a.checkpointLagMs?.max <= 1000 },
    proofVerifyAt1e6: { goal: 'verify ≤ 1 ms at 10^6 entries', measured: `inclusion ${incl.verifyMs} ms, consistency ${cons.verifyMs} ms (generate ${incl.generateMs} / ${cons.generateMs} ms)`, met: incl.verifyMs <= 1 && cons.verifyMs <= 1 },
    bytesPerEntry: { goal: '(recorded, no goal)', measured: `${a.bytesPerEntry} bytes/entry on disk`, met: true },
  };
}

function formatGoals(r: { goals?: Record<string, Partial<Goal>> }): string[] {
  const out: string[] = [];
  if (!r.goals || Object.keys(r.goals).length === 0) out.push('  (no goals recorded in its JSON; see the file)');
  for (const [k, g] of Object.entries(r.goals ?? {})) {
    const mark = g.met === true ? 'met   ' : g.met === false ? 'MISSED' : '      ';
    out.push(`  ${mark} ${k}: ${g.measured ?? '?'} (goal ${g.goal ?? '?'})`);
  }
  return out;
}

async function main(): Promise<void> {
  const quick = isQuick();
  const onlyArg = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const only = onlyArg ? new Set(onlyArg.split(',')) : null;
  const started = new Date();
  process.stderr.write(`[run] Gatehouse benchmarks (${quick ? 'quick' : 'full'}) on ${JSON.stringify(machineInfo())}\n`);
  const lines: string[] = [];
  let failed = 0;
  for (const spec of MODULES) {
    if (only && !only.has(spec.name)) continue;
    if (!existsSync(join(BENCH_DIR, spec.file))) {
      lines.push(`${spec.name}: skipped (bench/${spec.file} not present)`);
      continue;
    }
    process.stderr.write(`[run] ${spec.name} …\n`);
    const resultFile = join(RESULTS_DIR, `${spec.name}.json`);
    const before = existsSync(resultFile) ? readFileSync(resultFile, 'utf8') : null;
    const { code, signal, ms } = await runChild(spec, quick);
    const after = existsSync(resultFile) ? readFileSync(resultFile, 'utf8') : null;
    if (code !== 0 || after === null || after === before) {
      failed++;
      lines.push(`${spec.name}: FAILED (exit ${code ?? signal}${after === null || after === before ? ', no new results file' : ''}) after ${(ms / 1000).toFixed(1)} s`);
      continue;
    }
    const r = JSON.parse(after) as { goals?: Record<string, Partial<Goal>> };
    if (spec.name === 'audit' && !r.goals) r.goals = auditGoals(r as Record<string, unknown>);
    lines.push(`${spec.name}: ${(ms / 1000).toFixed(1)} s → bench/results/${spec.name}.json`, ...formatGoals(r));
  }
  const total = (Date.now() - started.getTime()) / 1000;
  process.stdout.write(`\nGatehouse benchmarks — ${quick ? 'quick (smoke test; figures not comparable)' : 'full'} — ${started.toISOString()} — ${total.toFixed(0)} s\n${lines.join('\n')}\n`);
  if (failed > 0) process.exitCode = 1;
}

if (isMain(import.meta.url)) await main();
