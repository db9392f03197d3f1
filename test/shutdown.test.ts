/**
 * Graceful shutdown of `gatehouse serve`, as an orchestrator sees it: a real child process
 * on free ports with a small workspace, sent real signals. Every wait is on an event (a
 * line on the child's stdout, a byte from the server, the child's exit), never a sleep.
 *
 * A slow request is made with `Expect: 100-continue`: the server answers "100 Continue"
 * once it holds the request (so the request is provably in flight), and the test sends the
 * body only after the child has announced that it is draining.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../src/cli/main.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { KEYS } from './helpers/workspace.ts';

const BIN = new URL('../bin/gatehouse.ts', import.meta.url).pathname;
let dir: string;
let ws: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-shutdown-'));
  ws = join(dir, 'ws');
  await createTestDemoWorkspace(ws, { patients: 300, keys: KEYS });
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Served {
  readonly child: ChildProcess;
  readonly port: number;
  /** Resolves with the first stdout line matching `re` (lines already printed count). */
  line(re: RegExp): Promise<string>;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  signalledAt: number;
  stdout(): string;
}

/** This process's environment without settings that would change what `serve` starts; no scheduler rounds. */
function serveEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GATEHOUSE_SCHEDULER_SECONDS: '0' };
  for (const k of ['GATEHOUSE_PORT', 'GATEHOUSE_PG_PORT', 'GATEHOUSE_STATE_URL', 'GATEHOUSE_STATE_PASSWORD']) delete env[k];
  return env;
}

async function serve(auditDir: string, shutdownSeconds: number, extra: readonly string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--workspace', ws, '--audit-dir', auditDir, '--port', '0', '--shutdown-timeout', String(shutdownSeconds), ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: serveEnv(),
  });
  let text = '';
  const waiters: { re: RegExp; done: (l: string) => void }[] = [];
  const check = (): void => {
    for (const w of [...waiters]) {
      const m = text.split('\n').find((l) => w.re.test(l));
      if (m !== undefined) { waiters.splice(waiters.indexOf(w), 1); w.done(m); }
    }
  };
  child.stdout!.on('data', (d) => { text += String(d); check(); });
  child.stderr!.on('data', (d) => { text += String(d); });
  const served: Served = {
    child, port: 0, signalledAt: 0,
    line: (re) => new Promise((done, fail) => {
      waiters.push({ re, done });
      check();
      child.once('exit', () => fail(new Error(`serve exited before printing ${re}:\n${text}`)));
    }),
    exit: once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, ms: performance.now() - served.signalledAt })),
    stdout: () => text,
  };
  const url = /serving .* at (http:\/\/\S+)/.exec(await served.line(/serving .* at http:\/\//))![1]!;
  return Object.assign(served, { port: Number(new URL(url).port) });
}

function kill(s: Served, signal: NodeJS.Signals): void {
  if (s.signalledAt === 0) s.signalledAt = performance.now();
  s.child.kill(signal);
}

/** Opens a raw HTTP/1.1 connection to the child. */
async function raw(port: number): Promise<{ socket: Socket; received: () => string; next(re: RegExp): Promise<string>; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let buf = '';
  socket.on('data', (d) => { buf += String(d); });
  socket.on('error', () => undefined);
  const closed = once(socket, 'close').then(() => undefined);
  return {
    socket, received: () => buf, closed,
    next: (re) => new Promise((done, fail) => {
      const look = (): void => { if (re.test(buf)) { socket.off('data', look); done(buf); } };
      socket.on('data', look);
      socket.once('close', () => (re.test(buf) ? done(buf) : fail(new Error(`connection closed before ${re}: ${buf}`))));
      look();
    }),
  };
}

const QUERY = JSON.stringify({ sql: 'SELECT region, count(*) AS n FROM claims GROUP BY region ORDER BY region', purpose: 'operations' });

function slowQueryHead(): string {
  return `POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEYS.ada}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(QUERY)}\r\nExpect: 100-continue\r\n\r\n`;
}

/** `gatehouse audit keys | export | verify` on the log directory, through the CLI. */
async function verifyLog(auditDir: string): Promise<{ code: number; output: string; entries: unknown[] }> {
  let output = '';
  const out = new Writable({ write(c, _e, cb) { output += String(c); cb(); } }) as unknown as NodeJS.WritableStream;
  const vkeys = join(auditDir, '..', `${auditDir.split('/').pop()}.vkeys`);
  const exported = join(auditDir, '..', `${auditDir.split('/').pop()}.jsonl`);
  assert.equal(await main(['audit', 'keys', '--dir', auditDir, '--demo'], out), 0, output);
  writeFileSync(vkeys, output);
  assert.equal(await main(['audit', 'export', '--dir', auditDir, '--demo', '--output', exported], out), 0, output);
  output = '';
  const code = await main(['audit', 'verify', '--export', exported, '--public-key', vkeys], out);
  const { readFileSync } = await import('node:fs');
  const entries = readFileSync(exported, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
  return { code, output, entries };
}

describe('gatehouse serve shuts down cleanly', () => {
  it('on SIGTERM lets a request in flight finish, exits 0, and leaves a log that verifies', async () => {
    const auditDir = join(dir, 'audit-drain');
    const s = await serve(auditDir, 20);
    const c = await raw(s.port);
    c.socket.write(slowQueryHead());
    await c.next(/100 Continue/);
    kill(s, 'SIGTERM');
    await s.line(/SIGTERM: draining/);
    c.socket.write(QUERY);
    const response = await c.next(/\r\n\r\n[\s\S]*"governance"[\s\S]*\}$/);
    assert.match(response, /HTTP\/1\.1 200 OK/, 'the request in flight completes');
    assert.match(response, /"region"/);
    await c.closed;
    const { code, signal, ms } = await s.exit;
    assert.equal(signal, null);
    assert.equal(code, 0, s.stdout());
    assert.ok(ms < 20_000, `exited within the deadline (${Math.round(ms)} ms)`);
    assert.match(s.stdout(), /stopped/);
    const v = await verifyLog(auditDir);
    assert.equal(v.code, 0, v.output);
    assert.match(v.output, /OK/);
    const logged = v.entries.filter((e) => (e as { type: string }).type === 'entry').map((e) => (e as { leaf: { entry: Record<string, unknown> } }).leaf.entry);
    assert.equal(logged.length, 1, 'the drained request left exactly one audit entry');
    assert.deepEqual([logged[0]!.action, logged[0]!.channel, logged[0]!.decision, logged[0]!.datasets], ['query', 'http', 'allow', ['claims']]);
  });

  it('on SIGTERM with an idle keep-alive connection and an idle wire connection open, closes both and exits promptly', async () => {
    const auditDir = join(dir, 'audit-idle');
    const s = await serve(auditDir, 60, ['--pg-port', '0']);
    const wirePort = Number(/PostgreSQL wire protocol on 127\.0\.0\.1:(\d+)/.exec(await s.line(/PostgreSQL wire protocol on/))![1]);
    const idleWire = await raw(wirePort);
    const c = await raw(s.port);
    c.socket.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
    await c.next(/"status":"ok"/);
    assert.match(c.received(), /Connection: keep-alive/i, 'the connection is kept alive');
    kill(s, 'SIGTERM');
    await Promise.all([c.closed, idleWire.closed]);
    const { code, ms } = await s.exit;
    assert.equal(code, 0, s.stdout());
    assert.ok(ms < 10_000, `idle connections do not hold the process for the 60 s deadline (${Math.round(ms)} ms)`);
    assert.equal((await verifyLog(auditDir)).code, 0);
  });

  it('at the deadline cuts a request that never finishes, exits 0, and the log still verifies', async () => {
    const auditDir = join(dir, 'audit-deadline');
    const s = await serve(auditDir, 1);
    const c = await raw(s.port);
    c.socket.write(slowQueryHead());
    await c.next(/100 Continue/);
    kill(s, 'SIGTERM');
    await c.closed;
    assert.doesNotMatch(c.received(), /HTTP\/1\.1 200/, 'the unfinished request got no answer, only a closed connection');
    const { code, ms } = await s.exit;
    assert.equal(code, 0, s.stdout());
    assert.ok(ms >= 900, `the request had its deadline (${Math.round(ms)} ms)`);
    assert.equal((await verifyLog(auditDir)).code, 0);
  });

  it('exits at once on a second signal during the drain', async () => {
    const auditDir = join(dir, 'audit-twice');
    const s = await serve(auditDir, 60);
    const c = await raw(s.port);
    c.socket.write(slowQueryHead());
    await c.next(/100 Continue/);
    kill(s, 'SIGINT');
    await s.line(/SIGINT: draining/);
    kill(s, 'SIGINT');
    const { code, ms } = await s.exit;
    assert.equal(code, 130, s.stdout());
    assert.ok(ms < 10_000, `did not wait for the 60 s deadline (${Math.round(ms)} ms)`);
    c.socket.destroy();
  });
});
