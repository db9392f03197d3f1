/**
 * The messages between the host and a sandbox worker process: newline-delimited JSON on the
 * worker's stdin (host → worker) and stdout (worker → host). Only plain JSON crosses the
 * process boundary, and only JSON strings cross into QuickJS, so no host object can ever be
 * reached from job code (see quickjs-runner.ts).
 *
 * This file is imported by the worker, which runs under Node's permission model with read
 * access to its own folder only: it must import nothing outside src/jobs/sandbox/.
 */

/** Plain JSON values: the only thing rows, parameters and outputs may be. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json };

export interface SandboxLimits {
  /** QuickJS heap limit (bytes). */
  readonly memoryBytes: number;
  /** CPU budget of the job (ms of worker CPU time), enforced by the interrupt handler. */
  readonly cpuMs: number;
  /** Largest serialised output (bytes of UTF-8 JSON). */
  readonly outputBytes: number;
  /** QuickJS stack limit (bytes): deep recursion ends as a limit, not a crash. */
  readonly stackBytes: number;
  /** Largest total of log lines (bytes). */
  readonly logBytes: number;
}

export interface SandboxGrants {
  /** `Date.now()`, `new Date()`: the real clock. Off: calling them throws. */
  readonly clock: boolean;
  /** `Math.random()`. Off: calling it throws. */
  readonly randomness: boolean;
}

export interface RunMessage {
  readonly type: 'run';
  readonly id: string;
  /** `javascript` (default): an ES module exporting `run(inputs, params, job)`; `wasm`: base64 of a WebAssembly module (wasm-runner.ts). */
  readonly runtime?: 'javascript' | 'wasm';
  readonly code: string;
  /**
   * The job's input names. Their rows, already governed (decided, masked, capped) by the
   * host, follow as BatchMessages while the job runs (feed.ts: credit-based flow control).
   */
  readonly inputs: readonly string[];
  readonly params: Json;
  readonly limits: SandboxLimits;
  readonly grants: SandboxGrants;
}

/**
 * One batch of an input of the running job (host → worker), or its end (`json` null). Each
 * batch is handed to the job by one bridge call as it is (serialised once, on the host;
 * never turned into objects in the worker).
 */
export interface BatchMessage {
  readonly type: 'batch';
  readonly id: string;
  readonly input: string;
  readonly json: string | null;
  readonly rows: number;
}

/** Where a runner pulls the running job's input batches from (feed.ts); null at an input's end. */
export interface InputFeed {
  peek(name: string): InputBatch | null;
  take(name: string): InputBatch | null;
}

export interface InputBatch {
  /** JSON text of an array of rows. */
  readonly json: string;
  readonly rows: number;
}

/** Which limit ended a job. */
export type LimitKind = 'cpu' | 'memory' | 'stack' | 'output' | 'log';

export type WorkerMessage =
  | { readonly type: 'ready'; readonly loadMs: number; readonly isolation: WorkerIsolation }
  | { readonly type: 'progress'; readonly id: string; readonly input: string | null; readonly rows: number; readonly fraction: number | null }
  /** The job took a batch of `input`: the host may send one more (feed.ts). */
  | { readonly type: 'credit'; readonly id: string; readonly input: string }
  | { readonly type: 'done'; readonly id: string; readonly result: JobOutcome };

export interface WorkerIsolation {
  /** Node's permission model is on (no fs beyond the worker's code, no child processes, workers, addons, WASI). */
  readonly permissionModel: boolean;
  readonly fsWrite: boolean;
  readonly childProcess: boolean;
  readonly worker: boolean;
  /** Whether it could read a host file outside its code (/etc/passwd, its working directory). */
  readonly readsOutsideCode: boolean;
  /** How many environment variables it received (0: nothing of the host's environment). */
  readonly envVars: number;
}

export type JobOutcome =
  | { readonly ok: true; readonly output: string; readonly outputBytes: number; readonly logs: readonly string[]; readonly cpuMs: number; /** A fresh QuickJS instance, runtime, context and prelude, before the job's module: the sandbox's cold start. */ readonly coldStartMs: number; readonly rowsRead: number }
  | { readonly ok: false; readonly limit: LimitKind | null; readonly error: string; readonly logs: readonly string[]; readonly cpuMs: number; readonly rowsRead: number };
