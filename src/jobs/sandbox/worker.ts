/**
 * The sandbox worker process. The host (worker-process.ts) starts it as
 *
 *   [unshare -n --] node --permission --allow-fs-read=<this folder, the QuickJS packages> worker.ts
 *
 * with an empty environment, so even if QuickJS were escaped the process could not write a
 * file, read anything but its own code, start a process or a worker thread, load an addon,
 * use WASI or the inspector (Node's permission model), and, where `unshare -n` is available,
 * reach no network (a fresh network namespace holds only a downed loopback).
 *
 * It compiles the QuickJS WebAssembly module once, then runs jobs one at a time, each in a
 * fresh instance of it (quickjs-runner.ts). Messages are NDJSON on stdin/stdout (protocol.ts);
 * stdin is read synchronously (feed.ts), so a running job can wait for its next input batch.
 * Imports only files of this folder and the QuickJS packages (the permission grant).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as QuickJSCore from 'quickjs-emscripten-core';
import { BatchFeed, SyncLines } from './feed.ts';
import type { RunMessage, WorkerMessage } from './protocol.ts';
import { runJob } from './quickjs-runner.ts';
import { runWasm } from './wasm-runner.ts';

const t0 = performance.now();
// The host passes the QuickJS packages' real entry files (see workerArgs in worker-process.ts).
const [coreEntry, variantEntry] = process.argv.slice(2);
if (!coreEntry || !variantEntry) throw new Error('usage: worker.ts <quickjs-emscripten-core entry> <wasmfile variant entry>');
const core = (await import(pathToFileURL(coreEntry).href)) as typeof QuickJSCore;
const variant = (await import(pathToFileURL(variantEntry).href)) as { default: unknown };
// Compiled once; each job instantiates it afresh (about a millisecond), so every job has its
// own WebAssembly memory: nothing of one job's heap survives into the next, and a QuickJS
// abort (an engine assertion after a limit) ends that instance only, never the worker.
const wasmFile = join(dirname(dirname(variantEntry)), 'dist', 'emscripten-module.wasm');
const wasmModule: unknown = await (globalThis as unknown as { WebAssembly: { compile(b: Uint8Array): Promise<unknown> } }).WebAssembly.compile(readFileSync(wasmFile));
const freshModule = () => core.newQuickJSWASMModuleFromVariant(core.newVariant(variant.default as never, { wasmModule }) as never);
await freshModule();

function send(m: WorkerMessage): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

const perm = (process as { permission?: { has(scope: string, ref?: string): boolean } }).permission;
send({
  type: 'ready',
  loadMs: performance.now() - t0,
  isolation: {
    permissionModel: perm !== undefined,
    fsWrite: perm ? perm.has('fs.write') : true,
    childProcess: perm ? perm.has('child') : true,
    worker: perm ? perm.has('worker') : true,
    readsOutsideCode: perm ? perm.has('fs.read', '/etc/passwd') || perm.has('fs.read', process.cwd()) : true,
    envVars: Object.keys(process.env).length,
  },
});

// fd 0 is read synchronously only (never through process.stdin): see feed.ts.
const lines = new SyncLines(0);
for (let line = lines.line(); line !== null; line = lines.line()) {
  if (line.length === 0) continue;
  let msg: RunMessage;
  try {
    msg = JSON.parse(line) as RunMessage;
  } catch {
    continue;
  }
  if (msg?.type !== 'run' || !Array.isArray(msg.inputs)) continue; // leftovers of a finished job's input
  let lastProgress = 0;
  const startedAt = performance.now();
  const feed = new BatchFeed(msg.id, msg.inputs, lines, (input) => send({ type: 'credit', id: msg.id, input }));
  const result = msg.runtime === 'wasm' ? runWasm(msg, feed) : runJob(await freshModule(), msg, {
    feed,
    progress(input, rows, fraction) {
      const now = performance.now();
      if (fraction === null && now - lastProgress < 50) return;
      lastProgress = now;
      send({ type: 'progress', id: msg.id, input, rows, fraction });
    },
  }, startedAt);
  send({ type: 'done', id: msg.id, result });
}
