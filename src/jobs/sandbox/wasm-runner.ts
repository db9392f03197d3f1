/**
 * Runs a WebAssembly job in the worker (the same confined process as QuickJS jobs) under the
 * host's `WebAssembly`, with nothing to import but the row bridge:
 *
 *   (import "env" "memory" (memory …))                           the only memory, capped by the host
 *   (import "gatehouse" "input_next" (func (param i32 i32 i32) (result i32)))
 *        input index, pointer, capacity → bytes of the next batch (a JSON array of rows)
 *        written at pointer; 0 at the end; −needed if capacity is too small (batch kept)
 *   (import "gatehouse" "params" (func (param i32 i32) (result i32)))   the parameters as JSON, same convention
 *   (import "gatehouse" "output" (func (param i32 i32)))          the result, JSON text (last call wins)
 *   (import "gatehouse" "log" (func (param i32 i32)))
 *   (export "run" (func))
 *
 * The module is checked before it is instantiated (WebAssembly core spec §5.5, the binary
 * sections): it must import its memory from the host and define none of its own, and import
 * nothing else — no WASI, no clock, no randomness, no host objects. Limits:
 *  - memory: the imported memory's maximum is the job's memory limit (`memory.grow` fails past it);
 *  - stack: deep recursion exhausts the worker's stack, reported as the stack limit;
 *  - output and log: counted here;
 *  - CPU: WebAssembly cannot be interrupted from inside its own thread, so the host's wall-clock
 *    backstop (worker-process.ts) ends a WebAssembly job at its budget by killing the worker.
 */
import type { InputFeed, JobOutcome, LimitKind, RunMessage } from './protocol.ts';

const PAGE = 65_536;
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  env: ['memory'],
  gatehouse: ['input_next', 'params', 'output', 'log'],
};

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
}
interface ModuleStatics {
  imports(m: object): { module: string; name: string; kind: string }[];
  exports(m: object): { name: string; kind: string }[];
}

function leb(bytes: Uint8Array, at: number): [number, number] {
  let result = 0, shift = 0, i = at;
  for (;;) {
    const b = bytes[i++];
    if (b === undefined) throw new Error('truncated');
    result |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result >>> 0, i];
    shift += 7;
    if (shift > 28) throw new Error('LEB128 too long');
  }
}

/** Section ids present in a module (core spec §5.5.2); throws on a malformed layout. */
export function wasmSections(bytes: Uint8Array): number[] {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d || bytes[4] !== 1) throw new Error('not a WebAssembly 1.0 module');
  const ids: number[] = [];
  let i = 8;
  while (i < bytes.length) {
    const id = bytes[i]!;
    const [size, next] = leb(bytes, i + 1);
    ids.push(id);
    i = next + size;
    if (i > bytes.length) throw new Error('section past the end');
  }
  return ids;
}

export function runWasm(msg: RunMessage, feed: InputFeed): JobOutcome {
  const logs: string[] = [];
  let logBytes = 0;
  let rowsRead = 0;
  let output: string | null = null;
  let limit: LimitKind | null = null;
  const t0 = performance.now();
  const fail = (kind: LimitKind | null, error: string): JobOutcome => ({ ok: false, limit: kind, error, logs, cpuMs: performance.now() - t0, rowsRead });
  const W = (globalThis as unknown as { WebAssembly: WasmApi & { Module: ModuleStatics } }).WebAssembly;
  let bytes: Uint8Array;
  let module: object;
  try {
    bytes = new Uint8Array(Buffer.from(msg.code, 'base64'));
    if (wasmSections(bytes).includes(5)) return fail(null, 'the WebAssembly module defines its own memory; it must import "env" "memory" from the host');
    module = new W.Module(bytes);
  } catch {
    return fail(null, 'the job is not a valid WebAssembly module');
  }
  for (const imp of W.Module.imports(module)) {
    if (!ALLOWED[imp.module]?.includes(imp.name)) return fail(null, `the WebAssembly module imports "${imp.module}" "${imp.name}"; only the Gatehouse row bridge may be imported`);
    if (imp.module === 'env' && imp.kind !== 'memory') return fail(null, 'env.memory must be a memory import');
  }
  if (!W.Module.exports(module).some((e) => e.name === 'run' && e.kind === 'function')) return fail(null, 'the WebAssembly module must export a function "run"');

  const pages = Math.max(1, Math.floor(msg.limits.memoryBytes / PAGE));
  let memory: { buffer: ArrayBuffer };
  try {
    memory = new W.Memory({ initial: 1, maximum: pages });
  } catch {
    return fail('memory', 'the memory limit is too small for WebAssembly (one 64 KiB page)');
  }
  const names = [...msg.inputs];
  const view = () => new Uint8Array(memory.buffer);
  const stop = (kind: LimitKind): never => { limit ??= kind; throw new Error(`limit:${kind}`); };
  const write = (text: string, ptr: number, cap: number): number => {
    const b = Buffer.from(text);
    if (b.length > cap) return -b.length;
    const v = view();
    if (ptr < 0 || ptr + b.length > v.length) throw new RangeError('out of bounds');
    v.set(b, ptr);
    return b.length;
  };
  const read = (ptr: number, len: number): string => {
    const v = view();
    if (ptr < 0 || len < 0 || ptr + len > v.length) throw new RangeError('out of bounds');
    return Buffer.from(v.subarray(ptr, ptr + len)).toString('utf8');
  };
  const imports = {
    env: { memory },
    gatehouse: {
      input_next(index: number, ptr: number, cap: number): number {
        const name = names[index];
        const batch = name === undefined ? null : feed.peek(name);
        if (batch === null) return 0;
        const n = write(batch.json, ptr, cap);
        if (n > 0) { feed.take(name!); rowsRead += batch.rows; }
        return n;
      },
      params(ptr: number, cap: number): number { return write(JSON.stringify(msg.params ?? null), ptr, cap); },
      output(ptr: number, len: number): void {
        if (len > msg.limits.outputBytes) stop('output');
        output = read(ptr, len);
      },
      log(ptr: number, len: number): void {
        if (logBytes + len + 1 > msg.limits.logBytes) stop('log');
        logBytes += len + 1;
        logs.push(read(ptr, len));
      },
    },
  };
  try {
    const instance = new W.Instance(module, imports);
    (instance.exports.run as () => unknown)();
  } catch (err) {
    if (limit !== null) return fail(limit, `the WebAssembly job hit its ${limit} limit; nothing was released`);
    if (err instanceof RangeError && /call stack/i.test(err.message)) return fail('stack', 'the WebAssembly job exceeded its stack limit (recursion too deep); nothing was released');
    return fail(null, `the WebAssembly job trapped: ${(err as Error).message}`.slice(0, 300));
  }
  if (output === null) return fail(null, 'the WebAssembly job returned no output (call gatehouse.output)');
  const text: string = output;
  try { JSON.parse(text); } catch { return fail(null, 'the WebAssembly job\'s output is not JSON'); }
  return { ok: true, output: text, outputBytes: Buffer.byteLength(text), logs, cpuMs: performance.now() - t0, coldStartMs: 0, rowsRead };
}
