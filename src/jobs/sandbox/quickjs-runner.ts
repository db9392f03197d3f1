/**
 * Runs one job in a fresh QuickJS runtime (quickjs-emscripten, the QuickJS engine compiled
 * to WebAssembly): the job's heap is a WebAssembly memory, so nothing it does can address
 * the host's memory, and the only host code it can call are the three string-in/string-out
 * bridge functions wrapped by the prelude (prelude.ts).
 *
 * Limits, each ending the job with `limit` set and no output:
 *  - memory: `setMemoryLimit` on the runtime (QuickJS's allocator refuses past it);
 *  - stack: `setMaxStackSize` (deep recursion throws instead of overflowing the host);
 *  - CPU: the interrupt handler QuickJS calls every few thousand operations compares this
 *    thread's CPU time with the budget; an interrupt is uncatchable in QuickJS, so a job
 *    cannot swallow it. Once any limit is hit the handler keeps interrupting, so code run
 *    by `toJSON`, getters or queued promise jobs cannot continue either;
 *  - output and log size: counted here, in UTF-8 bytes.
 *
 * The worker gives every job a fresh WebAssembly instance of QuickJS (worker.ts), so one
 * job's heap, atoms and pending jobs can never be seen by the next, and an engine abort
 * (QuickJS asserts when a runtime is freed after some limits) ends that instance only.
 *
 * No file system, network, timers or module loader exist in this QuickJS build unless the
 * host installs them; this runner installs none, so `import`, `setTimeout`, `fetch`,
 * `require`, `std` and `os` are all absent.
 */
import type { QuickJSContext, QuickJSHandle, QuickJSWASMModule } from 'quickjs-emscripten-core';
import { PRELUDE } from './prelude.ts';
import type { InputFeed, JobOutcome, Json, LimitKind, RunMessage } from './protocol.ts';

export interface RunHooks {
  /** The job's input batches as they stream in. */
  readonly feed: InputFeed;
  progress(input: string | null, rows: number, fraction: number | null): void;
}

const cpuNow: () => number = typeof process.threadCpuUsage === 'function'
  ? () => { const u = process.threadCpuUsage(); return (u.user + u.system) / 1000; }
  : () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

/** `startedAt`: when the worker began preparing this job (before instantiating QuickJS), for the cold-start figure. */
export function runJob(module: QuickJSWASMModule, msg: RunMessage, hooks: RunHooks, startedAt = performance.now()): JobOutcome {
  const t0 = startedAt;
  const cpu0 = cpuNow();
  const logs: string[] = [];
  let logBytes = 0;
  let rowsRead = 0;
  let limit: LimitKind | null = null;
  const hit = (kind: LimitKind) => { limit ??= kind; };
  const cpuMs = () => cpuNow() - cpu0;

  const runtime = module.newRuntime();
  runtime.setMemoryLimit(msg.limits.memoryBytes);
  runtime.setMaxStackSize(msg.limits.stackBytes);
  runtime.setInterruptHandler(() => {
    if (limit !== null) return true;
    if (cpuMs() >= msg.limits.cpuMs) { hit('cpu'); return true; }
    return false;
  });
  let ctx: QuickJSContext | null = null;
  const owned: QuickJSHandle[] = [];
  const own = (h: QuickJSHandle): QuickJSHandle => { owned.push(h); return h; };
  try {
    ctx = runtime.newContext();
    const c = ctx;
    const names = [...msg.inputs];

    const nextFn = c.newFunction('__gh_next', (nameH) => {
      const name = c.getString(nameH);
      const batch = hooks.feed.take(name);
      if (batch === null) return c.newString('');
      rowsRead += batch.rows;
      hooks.progress(name, rowsRead, null);
      return c.newString(batch.json);
    });
    const logFn = c.newFunction('__gh_log', (lineH) => {
      const line = c.getString(lineH);
      const bytes = Buffer.byteLength(line) + 1;
      if (logBytes + bytes > msg.limits.logBytes) { hit('log'); return; }
      logBytes += bytes;
      logs.push(line);
    });
    const progressFn = c.newFunction('__gh_progress', (fH) => {
      const f = Number(c.getString(fH));
      if (Number.isFinite(f)) hooks.progress(null, rowsRead, Math.min(1, Math.max(0, f)));
    });
    c.setProp(c.global, '__gh_next', nextFn);
    c.setProp(c.global, '__gh_log', logFn);
    c.setProp(c.global, '__gh_progress', progressFn);
    nextFn.dispose(); logFn.dispose(); progressFn.dispose();

    const factory = own(c.unwrapResult(c.evalCode(PRELUDE, 'gatehouse-prelude.js')));
    const grantsH = own(c.unwrapResult(c.evalCode(`(${JSON.stringify({ clock: msg.grants.clock === true, randomness: msg.grants.randomness === true })})`)));
    const api = own(c.unwrapResult(c.callFunction(factory, c.undefined, grantsH)));
    const coldStartMs = performance.now() - t0;

    const evaluated = c.evalCode(msg.code, 'job.js', { type: 'module' });
    if (evaluated.error) return failed(c, own(evaluated.error));
    const ns = own(evaluated.value);
    const runFn = own(c.getProp(ns, 'run'));
    if (c.typeof(runFn) !== 'function') return fail(null, 'the job module must export a function `run(inputs, params, job)`');
    const inputsH = own(callApi(c, api, 'inputs', own(c.newString(JSON.stringify(names)))));
    const paramsH = own(callApi(c, api, 'params', own(c.newString(JSON.stringify(msg.params ?? null)))));
    const jobH = own(c.getProp(api, 'job'));
    const called = c.callFunction(runFn, c.undefined, inputsH, paramsH, jobH);
    if (called.error) return failed(c, own(called.error));
    let value = own(called.value);

    // Settle promises (async jobs): only the job's own microtasks exist, no timers or I/O.
    const pending = runtime.executePendingJobs();
    if (pending.error) return failed(c, own(pending.error));
    if (limit !== null) return fail(limit, limitMessage(limit, msg));
    const state = c.getPromiseState(value);
    if (state.type === 'pending') return fail(null, 'the job returned a promise that never settled (no timers or I/O exist in the sandbox)');
    if (state.type === 'rejected') return failed(c, own(state.error));
    if (state.value !== value) value = own(state.value);

    const fin = c.callFunction(own(c.getProp(api, 'finish')), c.undefined, value, own(c.newNumber(msg.limits.outputBytes)));
    if (fin.error) return failed(c, own(fin.error));
    const text = own(fin.value);
    if (limit !== null) return fail(limit, limitMessage(limit, msg));
    if (c.typeof(text) !== 'string') return fail('output', limitMessage('output', msg));
    const output = c.getString(text);
    const outputBytes = Buffer.byteLength(output);
    if (outputBytes > msg.limits.outputBytes) return fail('output', limitMessage('output', msg));
    return { ok: true, output, outputBytes, logs, cpuMs: cpuMs(), coldStartMs, rowsRead };
  } catch (err) {
    if (process.env.GATEHOUSE_SANDBOX_DEBUG) console.error(err);
    // Host-side failures (out of WebAssembly memory while marshalling, a limit inside a host call).
    // The host's own stack can run out inside QuickJS's recursion before QuickJS's own check.
    const kind = limit ?? (isOom(err) ? 'memory' : isHostStackOverflow(err) ? 'stack' : null);
    return fail(kind, kind ? limitMessage(kind, msg) : 'the sandbox could not complete the job; nothing was released');
  } finally {
    try {
      for (const h of owned) if (h.alive) h.dispose();
      ctx?.dispose();
      runtime.dispose();
    } catch { /* the instance is dropped with this job (worker.ts): nothing more to free */ }
  }

  function failed(c: QuickJSContext, errH: QuickJSHandle): JobOutcome {
    let name = '', message = '';
    try {
      const d = c.dump(errH) as unknown;
      if (d && typeof d === 'object') {
        name = String((d as { name?: unknown }).name ?? '');
        message = String((d as { message?: unknown }).message ?? '');
      } else {
        message = String(d);
      }
    } catch { message = 'the job failed'; }
    if (limit !== null) return fail(limit, limitMessage(limit, msg));
    // QuickJS reports an exhausted heap as InternalError "out of memory" (or, when even that
    // cannot be allocated, an InternalError with no message).
    if (/out of memory/i.test(message) || (name === 'InternalError' && message === '')) return fail('memory', limitMessage('memory', msg));
    if (/stack overflow|Maximum call stack/i.test(message)) return fail('stack', limitMessage('stack', msg));
    return fail(null, `the job threw: ${name ? `${name}: ` : ''}${message}`.slice(0, 500));
  }

  function fail(kind: LimitKind | null, error: string): JobOutcome {
    return { ok: false, limit: kind, error, logs, cpuMs: cpuMs(), rowsRead };
  }
}

function isHostStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

function isOom(err: unknown): boolean {
  return err instanceof Error && /memory/i.test(err.message);
}

function callApi(c: QuickJSContext, api: QuickJSHandle, name: string, arg: QuickJSHandle): QuickJSHandle {
  const fn = c.getProp(api, name);
  try {
    return c.unwrapResult(c.callFunction(fn, c.undefined, arg));
  } finally {
    fn.dispose();
  }
}

export function limitMessage(kind: LimitKind, msg: Pick<RunMessage, 'limits'>): string {
  switch (kind) {
    case 'cpu': return `the job used its CPU budget of ${msg.limits.cpuMs} ms and was stopped; nothing was released. Make the job cheaper or ask the data owner for a larger budget`;
    case 'memory': return `the job exceeded its memory limit of ${msg.limits.memoryBytes} bytes and was stopped; nothing was released. Process rows as a stream instead of collecting them`;
    case 'stack': return 'the job exceeded its stack limit (recursion too deep) and was stopped; nothing was released. Use iteration instead of deep recursion';
    case 'output': return `the job's output exceeded its cap of ${msg.limits.outputBytes} bytes; nothing was released. Return aggregates, not rows`;
    case 'log': return `the job's log exceeded its cap of ${msg.limits.logBytes} bytes and was stopped; nothing was released. Log less`;
  }
}

export type { Json };
