/**
 * The host side of the sandbox: starts the worker process (worker.ts) locked down, hands it
 * one job at a time and reads back its outcome.
 *
 * Process isolation, in layers under the QuickJS (WebAssembly) sandbox:
 *  - Node's permission model (`--permission`) with read access to the worker's own code and
 *    the QuickJS packages only: no other file, no write, no child process, no worker
 *    thread, no addon, no WASI, no inspector.
 *  - an empty environment: nothing of the host's environment (keys, tokens, paths) exists in
 *    the worker to leak.
 *  - `unshare -n` where the kernel lets us create a network namespace (root, or
 *    unprivileged user namespaces): no network at all. Node's permission model does not
 *    cover the network, so where `unshare` is refused the worker reports `network: true`
 *    and the QuickJS layer alone keeps it off the network (QuickJS has no socket API).
 *  - a wall-clock backstop: a worker that does not answer within twice the CPU budget plus
 *    a second is killed (a native call stuck between interrupt checks), and the job ends
 *    with the CPU limit.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BatchMessage, JobOutcome, Json, RunMessage, SandboxGrants, SandboxLimits, WorkerIsolation, WorkerMessage } from './protocol.ts';

export const DEFAULT_LIMITS: SandboxLimits = {
  memoryBytes: 64 * 1024 * 1024,
  cpuMs: 2_000,
  outputBytes: 1024 * 1024,
  stackBytes: 256 * 1024,
  logBytes: 64 * 1024,
};

export const NO_GRANTS: SandboxGrants = { clock: false, randomness: false };

/**
 * One input's rows: row objects, or a governed result as it comes from the query path
 * (column names and positional rows), turned into row objects one batch at a time.
 */
export type SandboxInput = readonly Json[] | { readonly columns: readonly string[]; readonly rows: readonly (readonly unknown[])[] };

/** Batches of one input ahead of the job (credit window, feed.ts). */
export const INPUT_WINDOW = 4;

export interface SandboxJob {
  /** `javascript` (default) runs in QuickJS; `wasm` (base64 code) under WebAssembly with only the bridge imported. */
  readonly runtime?: 'javascript' | 'wasm';
  readonly code: string;
  readonly inputs: Readonly<Record<string, SandboxInput>>;
  readonly params?: Json;
  readonly limits?: Partial<SandboxLimits>;
  readonly grants?: Partial<SandboxGrants>;
  readonly batchRows?: number;
  /** Wall-clock backstop (ms) after which the worker is killed; default twice the CPU budget plus a second. */
  readonly backstopMs?: number;
  /** Each batch as the host sends it (after the job's start, as the job's credits allow). */
  readonly onBatch?: (input: string, rows: number) => void;
  /** Progress while the job runs (rows read per input, or the fraction the job reports). */
  readonly onProgress?: (p: { input: string | null; rows: number; fraction: number | null }) => void;
}

export interface WorkerInfo {
  readonly pid: number;
  readonly startMs: number;
  readonly loadMs: number;
  readonly isolation: WorkerIsolation & { readonly network: boolean; readonly emptyEnv: true };
}

const HERE = dirname(fileURLToPath(import.meta.url));
const WORKER = join(HERE, 'worker.ts');

/** Whether this machine lets us put the worker in a fresh network namespace. Checked once. */
let unshareChecked: boolean | null = null;
export function canUnshareNetwork(): boolean {
  if (unshareChecked !== null) return unshareChecked;
  const direct = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore', env: {} });
  unshareChecked = direct.status === 0;
  return unshareChecked;
}

/**
 * What the worker may read: its own folder and the three QuickJS packages, by real path.
 * The worker imports the packages by their real file paths (passed as arguments), so the
 * module resolver never follows the node_modules symlink (which would need read access to
 * the whole tree it points into).
 */
function workerArgs(): { grants: string[]; entries: string[] } {
  const nodeModules = join(HERE, '..', '..', '..', 'node_modules');
  const pkg = (name: string) => realpathSync(join(nodeModules, name));
  const core = pkg('quickjs-emscripten-core');
  const variant = pkg('@jitl/quickjs-wasmfile-release-sync');
  return {
    grants: [realpathSync(HERE), core, pkg('@jitl/quickjs-ffi-types'), variant],
    entries: [join(core, 'dist', 'index.mjs'), join(variant, 'dist', 'index.mjs')],
  };
}

/**
 * The exact command line a worker starts with (spawned with an empty environment). `entry`
 * replaces worker.ts with another script in a folder that is added to the read grants: the
 * isolation tests start a probe under the very same confinement.
 */
export function workerCommand(entry?: { file: string; dir: string }): { cmd: string; argv: string[]; network: boolean } {
  const { grants, entries } = workerArgs();
  const args = ['--permission', ...[...grants, ...(entry ? [entry.dir] : [])].map((p) => `--allow-fs-read=${p}`), '--max-old-space-size=256', entry?.file ?? WORKER, ...entries];
  const network = !canUnshareNetwork();
  return network ? { cmd: process.execPath, argv: args, network } : { cmd: 'unshare', argv: ['-n', '--', process.execPath, ...args], network };
}

/**
 * One input as a stream of batch messages, each serialised when it is about to be sent (never
 * the whole input at once), then one end message.
 */
function batchStream(id: string, input: string, source: SandboxInput, size: number): () => BatchMessage | null {
  const n = Math.max(1, Math.trunc(size));
  const rows = Array.isArray(source) ? source as readonly Json[] : (source as { rows: readonly (readonly unknown[])[] }).rows;
  const columns = Array.isArray(source) ? null : (source as { columns: readonly string[] }).columns;
  let at = 0;
  let ended = false;
  return () => {
    if (ended) return null;
    if (at >= rows.length) { ended = true; return { type: 'batch', id, input, json: null, rows: 0 }; }
    const slice = rows.slice(at, at + n);
    at += slice.length;
    // fromEntries defines own properties, so even a column named "__proto__" stays a plain key.
    const objects = columns === null ? slice : slice.map((r) => Object.fromEntries(columns.map((c, i) => [c, ((r as readonly unknown[])[i] ?? null) as Json])));
    return { type: 'batch', id, input, json: JSON.stringify(objects), rows: slice.length };
  };
}

export class SandboxWorker {
  #child!: ChildProcessWithoutNullStreams;
  #waiting = new Map<string, { resolve(o: JobOutcome): void; job: SandboxJob; more(input: string): void }>();
  /** Lines held back while the worker's stdin pipe is full (backpressure: sent on 'drain'). */
  #backlog: string[] = [];
  #ready!: Promise<WorkerInfo>;
  /** How many worker processes were started (a killed worker is replaced for the next job). */
  #starts = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #exited = false;
  #stderr = '';
  #busy = 0;

  private constructor() {
    this.#spawn();
  }

  #spawn(): void {
    this.#starts++;
    this.#exited = false;
    this.#stderr = '';
    this.#backlog = [];
    const started = performance.now();
    const { cmd, argv, network } = workerCommand();
    const child = spawn(cmd, argv, { env: {}, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    // A worker that dies while batches are being written (killed, out of memory) makes the next
    // write fail with EPIPE; its exit handler below already fails the job, so the error is no news.
    child.stdin.on('error', () => {});
    // Keep the end of the worker's stderr for start-up diagnostics (never shown to job authors).
    child.stderr.on('data', (d: Buffer) => { this.#stderr = (this.#stderr + d.toString('utf8')).slice(-2_000); });
    this.#ready = new Promise<WorkerInfo>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
      lines.on('line', (line) => {
        if (child !== this.#child) return; // a replaced worker's last words
        let m: WorkerMessage;
        try { m = JSON.parse(line) as WorkerMessage; } catch { return; }
        if (m.type === 'ready') {
          if (this.#busy === 0) this.#hold(false);
          resolve({ pid: child.pid ?? -1, startMs: performance.now() - started, loadMs: m.loadMs, isolation: { ...m.isolation, network, emptyEnv: true } });
        } else if (m.type === 'credit') {
          this.#waiting.get(m.id)?.more(m.input);
        } else if (m.type === 'progress') {
          this.#waiting.get(m.id)?.job.onProgress?.({ input: m.input, rows: m.rows, fraction: m.fraction });
        } else if (m.type === 'done') {
          const w = this.#waiting.get(m.id);
          this.#waiting.delete(m.id);
          w?.resolve(m.result);
        }
      });
      child.once('exit', (code, signal) => {
        if (child !== this.#child) return;
        this.#exited = true;
        reject(new Error(`the sandbox worker exited before it was ready (${signal ?? code}): ${this.#stderr}`));
        for (const [, w] of this.#waiting) w.resolve({ ok: false, limit: null, error: 'the sandbox worker stopped; nothing was released', logs: [], cpuMs: 0, rowsRead: 0 });
        this.#waiting.clear();
      });
    });
    this.#ready.catch(() => undefined);
  }

  /** Starts a worker and waits until QuickJS is loaded in it. */
  static async start(): Promise<SandboxWorker> {
    const w = new SandboxWorker();
    await w.#ready;
    return w;
  }

  info(): Promise<WorkerInfo> { return this.#ready; }
  get alive(): boolean { return !this.#exited; }
  /** Worker processes started so far (1 unless a stuck job forced a replacement). */
  get starts(): number { return this.#starts; }

  /** Runs one job (jobs queue: one at a time per worker). */
  run(job: SandboxJob): Promise<JobOutcome> {
    const next = this.#queue.then(() => this.#runNow(job));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * An idle worker does not keep the host process alive (it ends when the host does: its
   * stdin closes); a worker with a job in flight does.
   */
  #hold(on: boolean): void {
    const c = this.#child as unknown as { ref(): void; unref(): void; stdout: { ref?(): void; unref?(): void }; stderr: { ref?(): void; unref?(): void }; stdin: { ref?(): void; unref?(): void } };
    for (const h of [c, c.stdout, c.stderr, c.stdin]) (on ? h.ref : h.unref)?.call(h);
  }

  async #runNow(job: SandboxJob): Promise<JobOutcome> {
    if (this.#exited) this.#spawn();
    this.#busy++;
    this.#hold(true);
    try {
      return await this.#send(job);
    } finally {
      this.#busy--;
      if (!this.#exited && this.#busy === 0) this.#hold(false);
    }
  }

  /** Writes one line to the worker, holding it back while the pipe is full (then in order, on 'drain'). */
  #write(line: string): void {
    if (this.#backlog.length > 0) { this.#backlog.push(line); return; }
    const child = this.#child;
    if (!child.stdin.write(line)) {
      this.#backlog.push(''); // marks "waiting for drain"
      child.stdin.once('drain', () => {
        if (child !== this.#child) return;
        const held = this.#backlog.slice(1);
        this.#backlog = [];
        for (const l of held) this.#write(l);
      });
    }
  }

  async #send(job: SandboxJob): Promise<JobOutcome> {
    await this.#ready;
    const limits: SandboxLimits = { ...DEFAULT_LIMITS, ...job.limits };
    const id = randomUUID();
    const names = Object.keys(job.inputs);
    const msg: RunMessage = {
      type: 'run', id, runtime: job.runtime ?? 'javascript', code: job.code, inputs: names, params: job.params ?? null,
      limits, grants: { ...NO_GRANTS, ...job.grants },
    };
    const streams = new Map(names.map((n) => [n, batchStream(id, n, job.inputs[n]!, job.batchRows ?? 512)]));
    let live = true;
    const sendNext = (input: string) => {
      const b = live ? streams.get(input)?.() : null;
      if (!b) return;
      this.#write(`${JSON.stringify(b)}\n`);
      if (b.json !== null) job.onBatch?.(input, b.rows);
    };
    return new Promise<JobOutcome>((resolve) => {
      const settle = (o: JobOutcome) => { live = false; clearTimeout(backstop); resolve(o); };
      const backstop = setTimeout(() => {
        // Stuck between interrupt checks: end the worker; the next job needs a new one.
        this.#waiting.delete(id);
        live = false;
        this.#exited = true; // the next job starts a new worker; this one's exit is ignored
        this.#child.kill('SIGKILL');
        resolve({ ok: false, limit: 'cpu', error: `the job used its CPU budget of ${limits.cpuMs} ms and was stopped; nothing was released`, logs: [], cpuMs: limits.cpuMs, rowsRead: 0 });
        // WebAssembly cannot be interrupted in its own thread: its CPU budget is this wall-clock kill.
      }, job.backstopMs ?? (msg.runtime === 'wasm' ? limits.cpuMs + 50 : limits.cpuMs * 2 + 1_000));
      backstop.unref();
      this.#waiting.set(id, { job, resolve: settle, more: sendNext });
      this.#write(`${JSON.stringify(msg)}\n`);
      // The first window of every input; each credit from the worker then releases one more.
      for (const n of names) for (let i = 0; i < INPUT_WINDOW; i++) sendNext(n);
    });
  }

  async stop(): Promise<void> {
    if (this.#exited || this.#child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.#child.once('exit', () => r()));
    this.#child.stdin.end();
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(t);
  }
}
