/**
 * The job sandbox, attacked the way a hostile partner's job would: each test is a job that
 * tries to escape (reach host objects, the file system, the environment, the clock), to
 * outlive its limits, or to pollute the host through the row bridge. One worker process
 * serves every test (as in production); each job gets a fresh QuickJS runtime.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUnshareNetwork, INPUT_WINDOW, SandboxWorker, workerCommand } from '../src/jobs/sandbox/worker-process.ts';
import type { JobOutcome } from '../src/jobs/sandbox/protocol.ts';
import { fn, MEMORY, s32, TYPES, wasm } from '../src/jobs/testing.ts';

let worker: SandboxWorker;
process.env.GATEHOUSE_SANDBOX_TEST_SECRET = 'do-not-leak-7f3a';

before(async () => { worker = await SandboxWorker.start(); });
after(async () => { await worker.stop(); });

function output(o: JobOutcome): unknown {
  assert.equal(o.ok, true, o.ok ? '' : o.error);
  return JSON.parse((o as { output: string }).output);
}

function refused(o: JobOutcome, limit: string | null): string {
  assert.equal(o.ok, false, 'the job should have been stopped');
  assert.ok(!('output' in o), 'a stopped job releases nothing');
  if (!o.ok) assert.equal(o.limit, limit, o.error);
  return o.ok ? '' : o.error;
}

describe('a job in the sandbox', () => {
  test('reads its rows through the bridge, logs, reports progress and returns an aggregate', async () => {
    const rows = Array.from({ length: 2_000 }, (_, i) => ({ region: i % 2 ? 'north' : 'south', amount: i }));
    const progress: number[] = [];
    const o = await worker.run({
      code: `export function run(inputs, params, job) {
        const sums = {};
        for (const r of inputs.sales) sums[r.region] = (sums[r.region] ?? 0) + r.amount * params.factor;
        job.log('regions', Object.keys(sums).length);
        job.progress(1);
        return sums;
      }`,
      inputs: { sales: rows }, params: { factor: 2 }, batchRows: 100,
      onProgress: (p) => { progress.push(p.rows); },
    });
    assert.deepEqual(output(o), { south: 2 * 999_000, north: 2 * 1_000_000 });
    assert.deepEqual(o.logs, ['regions 2']);
    assert.equal(o.rowsRead, 2_000);
    assert.ok(progress.length >= 1, 'progress was reported while the job ran');
  });

  test('rows stream in while the job runs: a job that stops after one row leaves the rest unsent', async () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => ({ i }));
    const sent: number[] = [];
    const o = await worker.run({
      code: 'export function run(inputs) { for (const r of inputs.big) return r.i; return -1; }',
      inputs: { big: rows }, batchRows: 10, onBatch: (_input, n) => { sent.push(n); },
    });
    assert.equal(output(o), 0);
    assert.equal(o.rowsRead, 10, 'the job took one batch');
    // The window, plus the one batch its credit released: never the 1,000 batches of the input.
    assert.ok(sent.length <= INPUT_WINDOW + 1, `the host sent ${sent.length} batches`);
  });

  test('a job reading two inputs in turn gets every row of each, in order, across batches', async () => {
    const a = Array.from({ length: 1_000 }, (_, i) => ({ a: i }));
    const b = Array.from({ length: 700 }, (_, i) => ({ b: i }));
    const sent = new Map<string, number>();
    const o = await worker.run({
      code: `export function run(inputs) {
        const ia = inputs.a[Symbol.iterator](), ib = inputs.b[Symbol.iterator]();
        let okA = 0, okB = 0;
        for (;;) {
          const x = ia.next(), y = ib.next();
          if (x.done && y.done) break;
          if (!x.done && x.value.a === okA) okA++;
          if (!y.done && y.value.b === okB) okB++;
        }
        return [okA, okB];
      }`,
      inputs: { a, b: { columns: ['b'], rows: b.map((r) => [r.b]) } }, batchRows: 64,
      onBatch: (input, n) => { sent.set(input, (sent.get(input) ?? 0) + n); },
    });
    assert.deepEqual(output(o), [1_000, 700]);
    assert.equal(o.rowsRead, 1_700);
    assert.deepEqual([sent.get('a'), sent.get('b')], [1_000, 700], 'each row sent once');
  });

  test('an async job settles through its own microtasks', async () => {
    const o = await worker.run({ code: 'export async function run(inputs) { const rows = inputs.t.toArray(); await null; return rows.length; }', inputs: { t: [{ a: 1 }, { a: 2 }] } });
    assert.equal(output(o), 2);
  });

  test('runs in a worker with no file access beyond its code, no child processes, no workers and an empty environment', async () => {
    const info = await worker.info();
    assert.equal(info.isolation.permissionModel, true);
    assert.equal(info.isolation.fsWrite, false);
    assert.equal(info.isolation.childProcess, false);
    assert.equal(info.isolation.worker, false);
    assert.equal(info.isolation.readsOutsideCode, false);
    assert.equal(info.isolation.envVars, 0, 'the host environment (and its secrets) never reaches the worker');
  });
});

describe('escapes', () => {
  test('constructor walks from the bridge, the job API and rows reach only the guest, never the host', async () => {
    const o = await worker.run({
      code: `export function run(inputs, params, job) {
        const walks = [
          inputs.t.constructor.constructor('return this')(),
          job.log.constructor('return this')(),
          inputs.t.rows.constructor.constructor('return this')(),
          (function(){ return this; }).constructor('return this')(),
        ];
        const found = [];
        for (const g of walks) for (const name of ['process', 'require', 'module', 'Buffer', 'global', '__gh_next', '__gh_log', 'fetch', 'setTimeout', 'std', 'os', 'WebAssembly']) {
          if (typeof g[name] !== 'undefined') found.push(name);
        }
        let viaError = 'none';
        try { null.x } catch (e) { viaError = typeof e.constructor.constructor('return typeof process')(); }
        return { found, viaError, globals: Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith('__gh')) };
      }`,
      inputs: { t: [{ a: 1 }] },
    });
    assert.deepEqual(output(o), { found: [], viaError: 'string', globals: [] });
  });

  test('import, dynamic import and require cannot load a host module', async () => {
    const staticImport = await worker.run({ code: `import fs from 'fs'; export function run() { return fs.readFileSync('/etc/passwd', 'utf8'); }`, inputs: {} });
    assert.equal(staticImport.ok, false);
    const o = await worker.run({
      code: `export async function run() {
        const out = {};
        for (const m of ['fs', 'node:fs', 'os', 'std', '/etc/passwd', 'child_process']) {
          try { await import(m); out[m] = 'loaded'; } catch (e) { out[m] = 'refused'; }
        }
        out.require = typeof require;
        return out;
      }`,
      inputs: {},
    });
    assert.deepEqual(output(o), { fs: 'refused', 'node:fs': 'refused', os: 'refused', std: 'refused', '/etc/passwd': 'refused', child_process: 'refused', require: 'undefined' });
  });

  test('the host environment and its secrets are unreachable', async () => {
    const o = await worker.run({
      code: `export function run() { return JSON.stringify(globalThis).includes('do-not-leak') || typeof process !== 'undefined' || typeof std !== 'undefined'; }`,
      inputs: {},
    });
    assert.equal(output(o), false);
  });

  test('no timers exist, and a promise that never settles releases nothing', async () => {
    const timers = await worker.run({ code: 'export function run() { return [typeof setTimeout, typeof setInterval, typeof queueMicrotask, typeof setImmediate]; }', inputs: {} });
    assert.deepEqual(output(timers), ['undefined', 'undefined', 'undefined', 'undefined']);
    const never = await worker.run({ code: 'export function run() { return new Promise(() => {}); }', inputs: {} });
    assert.match(refused(never, null), /never settled/);
  });

  test('work queued in promises after run returns is still under the CPU budget, and its result is not released', async () => {
    const o = await worker.run({
      code: 'export function run() { const out = { done: true }; Promise.resolve().then(() => { for (;;) {} }); return out; }',
      inputs: {}, limits: { cpuMs: 150 },
    });
    refused(o, 'cpu');
    const chain = await worker.run({
      code: 'export function run() { const spin = () => Promise.resolve().then(spin); spin(); return 1; }',
      inputs: {}, limits: { cpuMs: 150 },
    });
    refused(chain, 'cpu');
  });

  test('a CPU interrupt cannot be caught by the job', async () => {
    const o = await worker.run({
      code: 'export function run() { for (;;) { try { for (;;) {} } catch (e) { /* swallow */ } } }',
      inputs: {}, limits: { cpuMs: 150 },
    });
    refused(o, 'cpu');
  });

  test('memory bombs end the job at its memory limit', async () => {
    const grow = await worker.run({ code: "export function run() { const a = []; for (;;) a.push({ i: a.length, s: 'x' + a.length }); }", inputs: {}, limits: { memoryBytes: 16 * 1024 * 1024 } });
    assert.match(refused(grow, 'memory'), /memory limit/);
    const big = await worker.run({ code: "export function run() { return 'x'.repeat(2 ** 29).length; }", inputs: {}, limits: { memoryBytes: 16 * 1024 * 1024 } });
    refused(big, 'memory');
    const arr = await worker.run({ code: 'export function run() { return new Array(2 ** 26).fill(1.5).length; }', inputs: {}, limits: { memoryBytes: 16 * 1024 * 1024 } });
    refused(arr, 'memory');
  });

  test('deep recursion ends the job at its stack limit, not the host', async () => {
    const o = await worker.run({ code: 'export function run() { const f = (n) => f(n + 1) + 1; return f(0); }', inputs: {} });
    assert.match(refused(o, 'stack'), /stack/);
  });

  test('prototype pollution through the bridge stays an own property, inside and outside the sandbox', async () => {
    const rows = JSON.parse('[{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}, "v": 1}]') as never[];
    const o = await worker.run({
      code: `export function run(inputs) {
        const [row] = inputs.t.toArray();
        return {
          insidePolluted: ({}).polluted ?? null,
          protoIsOwn: Object.prototype.hasOwnProperty.call(row, '__proto__'),
          rowPrototypeIsObject: Object.getPrototypeOf(row) === Object.prototype,
          out: JSON.parse('{"__proto__": {"polluted": "host"}}'),
        };
      }`,
      inputs: { t: rows },
    });
    const result = output(o) as Record<string, unknown>;
    assert.equal(result.insidePolluted, null);
    assert.equal(result.protoIsOwn, true);
    assert.equal(result.rowPrototypeIsObject, true);
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'the host Object.prototype is untouched');
    assert.ok(Object.hasOwn(result.out as object, '__proto__'));
  });

  test('the clock and randomness are absent unless granted, and cannot be recovered by a prototype walk', async () => {
    const o = await worker.run({
      code: `export function run() {
        const tries = {
          now: () => Date.now(), newDate: () => new Date(), call: () => Date(), random: () => Math.random(),
          walk: () => new (Object.getPrototypeOf(new Date(0)).constructor)(),
          walkNow: () => Object.getPrototypeOf(new Date(0)).constructor.now(),
          subclass: () => new (class extends Date {})(),
          reflect: () => Reflect.construct(Date, []),
        };
        const out = {};
        for (const [k, f] of Object.entries(tries)) { try { f(); out[k] = 'leaked'; } catch { out[k] = 'refused'; } }
        out.fixed = new Date(0).toISOString();
        return out;
      }`,
      inputs: {},
    });
    assert.deepEqual(output(o), { now: 'refused', newDate: 'refused', call: 'refused', random: 'refused', walk: 'refused', walkNow: 'refused', subclass: 'refused', reflect: 'refused', fixed: '1970-01-01T00:00:00.000Z' });
    const granted = await worker.run({ code: 'export function run() { return [typeof Date.now(), typeof Math.random()]; }', inputs: {}, grants: { clock: true, randomness: true } });
    assert.deepEqual(output(granted), ['number', 'number']);
  });

  test('an output over its cap is refused and nothing is released', async () => {
    const o = await worker.run({ code: "export function run() { return 'y'.repeat(5000); }", inputs: {}, limits: { outputBytes: 1000 } });
    assert.match(refused(o, 'output'), /cap of 1000 bytes/);
    const multibyte = await worker.run({ code: "export function run() { return '€'.repeat(500); }", inputs: {}, limits: { outputBytes: 1000 } });
    refused(multibyte, 'output');
  });

  test('a log flood ends the job', async () => {
    const o = await worker.run({ code: "export function run(i, p, job) { for (;;) { try { job.log('z'.repeat(100)); } catch {} } }", inputs: {}, limits: { logBytes: 2000 } });
    refused(o, 'log');
  });

  test('one job leaves nothing behind for the next', async () => {
    await worker.run({ code: "export function run() { globalThis.stash = 'secret'; Object.prototype.leak = 1; return 1; }", inputs: {} });
    const o = await worker.run({ code: 'export function run() { return [typeof stash, typeof ({}).leak]; }', inputs: {} });
    assert.deepEqual(output(o), ['undefined', 'undefined']);
  });

  test('a worker that does not answer by the wall-clock backstop is killed and replaced for the next job', async () => {
    const before = worker.starts;
    const o = await worker.run({ code: 'export function run() { for (;;) {} }', inputs: {}, limits: { cpuMs: 60_000 }, backstopMs: 200 });
    refused(o, 'cpu');
    const next = await worker.run({ code: 'export function run() { return 42; }', inputs: {} });
    assert.equal(output(next), 42);
    assert.equal(worker.starts, before + 1);
  });

  test('a catastrophic regular expression is interrupted at the CPU budget', async () => {
    const o = await worker.run({ code: "export function run() { return /(a+)+$/.test('a'.repeat(40) + 'b'); }", inputs: {}, limits: { cpuMs: 100 } });
    refused(o, 'cpu');
  });

  test('the CPU budget ends a busy job within 10 % of the budget', async () => {
    const o = await worker.run({ code: 'export function run() { let x = 0; for (;;) x++; }', inputs: {}, limits: { cpuMs: 300 } });
    refused(o, 'cpu');
    assert.ok(o.cpuMs >= 300 && o.cpuMs <= 330, `stopped after ${o.cpuMs} ms of CPU`);
  });
});

/** Host code that escaped QuickJS would run as this probe does: under the worker's own process confinement. */
const PROBE = `
import fs from 'node:fs';
import cp from 'node:child_process';
const t = JSON.parse(fs.readFileSync(0, 'utf8'));
const out = {};
const tryIt = async (name, f) => { try { await f(); out[name] = 'allowed'; } catch (e) { out[name] = 'refused'; } };
await tryIt('readEtcPasswd', () => fs.readFileSync('/etc/passwd'));
await tryIt('readProject', () => fs.readFileSync(t.projectFile));
await tryIt('write', () => fs.writeFileSync(t.writeTo, 'x'));
await tryIt('spawn', () => { const r = cp.spawnSync('true'); if (r.error) throw r.error; });
await tryIt('worker', async () => { const { Worker } = await import('node:worker_threads'); new Worker('1', { eval: true }).terminate(); });
await tryIt('addon', () => process.dlopen({ exports: {} }, '/nonexistent.node'));
await tryIt('network', async () => { await fetch(t.url, { signal: AbortSignal.timeout(2000) }); });
out.env = Object.keys(process.env).length;
process.stdout.write(JSON.stringify(out));
`;

describe('the worker process, if QuickJS were escaped', () => {
  test('cannot read host files, write, start processes or threads, load addons, see the environment or reach the network', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-probe-'));
    const server = createServer((_, res) => { res.end('reached'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      writeFileSync(join(dir, 'probe.mjs'), PROBE);
      const { cmd, argv } = workerCommand({ file: join(dir, 'probe.mjs'), dir });
      const child = spawn(cmd, argv, { env: {}, stdio: ['pipe', 'pipe', 'pipe'] });
      const port = (server.address() as { port: number }).port;
      child.stdin.end(JSON.stringify({ projectFile: join(import.meta.dirname, '..', 'package.json'), writeTo: join(dir, 'written'), url: `http://127.0.0.1:${port}/` }));
      let text = '';
      child.stdout.on('data', (c: Buffer) => { text += c.toString(); });
      await new Promise((r) => child.once('exit', r));
      const out = JSON.parse(text) as Record<string, unknown>;
      assert.deepEqual({ ...out, network: undefined }, { readEtcPasswd: 'refused', readProject: 'refused', write: 'refused', spawn: 'refused', worker: 'refused', addon: 'refused', network: undefined, env: 0 });
      assert.equal(existsSync(join(dir, 'written')), false);
      if (canUnshareNetwork()) assert.equal(out.network, 'refused', 'in its own network namespace the worker reaches nothing');
      else assert.equal(out.network, 'allowed', 'without unshare the network is open at the process level (documented); QuickJS has no socket API');
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- WebAssembly jobs, as hostile modules built with a minimal encoder (src/jobs/testing.ts) ---

describe('WebAssembly jobs', () => {
  test('read rows through the bridge and answer through it, with nothing else imported', async () => {
    // run: n = input_next(0, 0, 60000); output(0, n)
    const code = wasm({
      types: TYPES, imports: [MEMORY, { module: 'gatehouse', name: 'input_next', desc: fn(1) }, { module: 'gatehouse', name: 'output', desc: fn(2) }],
      funcs: [{ type: 0, locals: 1, body: [0x41, 0x00, 0x41, 0x00, 0x41, ...s32(60000), 0x10, 0x00, 0x21, 0x00, 0x41, 0x00, 0x20, 0x00, 0x10, 0x01] }], runIndex: 2,
    });
    const rows = [{ a: 1, b: 'x' }, { a: 2, b: '__proto__' }];
    const o = await worker.run({ runtime: 'wasm', code, inputs: { t: rows } });
    assert.deepEqual(output(o), rows);
    assert.equal(o.rowsRead, 2);
  });

  test('a module that brings its own memory or imports anything but the bridge is refused before it runs', async () => {
    const own = await worker.run({ runtime: 'wasm', code: wasm({ types: TYPES, funcs: [{ type: 0, body: [] }], ownMemory: true, runIndex: 0 }), inputs: {} });
    assert.match(refused(own, null), /own memory/);
    const wasi = await worker.run({ runtime: 'wasm', code: wasm({ types: TYPES, imports: [{ module: 'wasi_snapshot_preview1', name: 'fd_write', desc: fn(1) }], funcs: [{ type: 0, body: [] }], runIndex: 1 }), inputs: {} });
    assert.match(refused(wasi, null), /only the Gatehouse row bridge/);
    const garbage = await worker.run({ runtime: 'wasm', code: Buffer.from('not wasm').toString('base64'), inputs: {} });
    refused(garbage, null);
  });

  test('memory.grow stops at the job\'s memory limit', async () => {
    // run: if (memory.grow(10000) == -1) output(0, 8) else output(8, 7)
    const code = wasm({
      types: TYPES, imports: [MEMORY, { module: 'gatehouse', name: 'output', desc: fn(2) }],
      funcs: [{ type: 0, body: [0x41, ...s32(10000), 0x40, 0x00, 0x41, ...s32(-1), 0x46, 0x04, 0x40, 0x41, 0x00, 0x41, 0x08, 0x10, 0x00, 0x05, 0x41, 0x08, 0x41, 0x07, 0x10, 0x00, 0x0b] }],
      data: { offset: 0, bytes: '"capped""grew!"' }, runIndex: 1,
    });
    const o = await worker.run({ runtime: 'wasm', code, inputs: {}, limits: { memoryBytes: 16 * 1024 * 1024 } });
    assert.equal(output(o), 'capped');
  });

  test('an endless loop is ended at its CPU budget by killing the worker, and the next job gets a new one', async () => {
    const before = worker.starts;
    const o = await worker.run({ runtime: 'wasm', code: wasm({ types: TYPES, funcs: [{ type: 0, body: [0x03, 0x40, 0x0c, 0x00, 0x0b] }], runIndex: 0 }), inputs: {}, limits: { cpuMs: 200 } });
    refused(o, 'cpu');
    assert.equal(output(await worker.run({ code: 'export function run() { return 1; }', inputs: {} })), 1);
    assert.equal(worker.starts, before + 1);
  });

  test('endless recursion ends at the stack limit', async () => {
    const o = await worker.run({ runtime: 'wasm', code: wasm({ types: TYPES, funcs: [{ type: 0, body: [0x10, 0x00] }], runIndex: 0 }), inputs: {} });
    refused(o, 'stack');
  });
});

