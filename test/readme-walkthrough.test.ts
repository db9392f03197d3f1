/**
 * The README and the walkthrough docs, run as a reader runs them.
 *
 * Every ```sh block of each document runs, in order, against a fresh demo that this test
 * serves on free ports (GATEHOUSE_URL and PGPORT point the documented commands at it; the
 * documented defaults are 7480 and 7432). A block fails the test when a command fails (or a
 * `# exit N` command ends otherwise), or when it prints something other than the ```text
 * block that follows it (conventions: test/support/doc-walkthrough.ts, docs/cli.md).
 * Between documents the demo is stopped, reset with `gatehouse demo reset` and started
 * again, as each walkthrough's preface tells the reader.
 *
 * Speed: `npx --no gatehouse …` and `npx node …` are run by a small `npx` on PATH that
 * execs the same bin/gatehouse.ts on the same Node directly (npm's start-up would cost
 * ~1 s per command); one test runs the real `npx --no gatehouse` once. The demo has 3,000
 * patients instead of 100,000 (`demo init --patients`), so numbers differ from the docs'
 * and the docs mark them with `…`. The clean-room demo's nodes make 1024-bit Paillier keys
 * instead of 2048-bit ones (GATEHOUSE_PAILLIER_BITS, as the clean-room tests do): the same
 * protocol, at about half the CPU of the walkthrough's longest block.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { matchesExpected, runBlock, shellBlocks } from './support/doc-walkthrough.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'gatehouse.ts');
/** In order; WALKTHROUGH_DOCS=a.md,b.md runs only those (while editing a doc). */
const DOCS = process.env.WALKTHROUGH_DOCS?.split(',') ?? ['README.md', 'docs/cli.md', 'docs/contractor-governance.md', 'docs/privacy.md', 'docs/erasure.md', 'docs/controls.md', 'docs/partner-workspaces.md'];
const HAVE_PSQL = spawnSync('psql', ['--version']).status === 0;
/**
 * WALKTHROUGH_TIMES=FILE writes one JSON line per block, demo start, stop and reset: its wall
 * and CPU seconds (the CPU of every process it waited for, from /proc/self/stat) and the CLI
 * processes it ran (the npx shim logs each one). How docs/testing.md's walkthrough table is made.
 */
const TIMES = process.env.WALKTHROUGH_TIMES ?? null;

let work: string;
let env: NodeJS.ProcessEnv;
let server: ChildProcess | null = null;
let httpPort = 0;
let pgPort = 0;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** CPU seconds of this process's waited-for children (utime + stime of the reaped), Linux only. */
function childCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Runs `fn`, and with WALKTHROUGH_TIMES appends its wall, children's CPU and CLI calls. */
async function timed<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  if (!TIMES) return fn();
  const calls = join(work, '.cli-calls');
  writeFileSync(calls, '');
  const t0 = performance.now();
  const c0 = childCpu();
  const result = await fn();
  const cli = readFileSync(calls, 'utf8').split('\n').filter(Boolean);
  appendFileSync(TIMES, `${JSON.stringify({ what, wallS: +((performance.now() - t0) / 1000).toFixed(2), cpuS: +(childCpu() - c0).toFixed(2), cli })}\n`);
  return result;
}

function gatehouse(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

async function startDemo(): Promise<void> {
  const child = spawn(process.execPath, [BIN, 'serve', '--demo', '--port', String(httpPort), '--pg-port', String(pgPort), '--quiet'], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
  server = child;
  let log = '';
  await new Promise<void>((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${log}`)), 60_000);
    const onData = (c: Buffer): void => {
      log += String(c);
      if (log.includes('PostgreSQL wire protocol on')) { clearTimeout(timer); resolveStart(); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}:\n${log}`)); });
  });
  child.removeAllListeners('exit');
}

async function stopDemo(): Promise<void> {
  const child = server;
  server = null;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await exited;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gh-walkthrough-'));
  const shim = join(work, '.bin');
  mkdirSync(shim);
  // npx --no gatehouse … / npx node … → the same program on the same Node, without npm's start-up.
  writeFileSync(join(shim, 'npx'), `#!/bin/sh
if [ "$1" = "--no" ] && [ "$2" = "gatehouse" ]; then shift 2;${TIMES ? ` echo "$1 $2" >> '${join(work, '.cli-calls')}';` : ''} exec '${process.execPath}' '${BIN}' "$@"; fi
if [ "$1" = "node" ]; then shift; exec '${process.execPath}' "$@"; fi
echo "walkthrough: unexpected npx $*" >&2; exit 127
`);
  chmodSync(join(shim, 'npx'), 0o755);
  httpPort = await freePort();
  pgPort = await freePort();
  env = {
    PATH: `${shim}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: work, LANG: 'C.UTF-8',
    GATEHOUSE_URL: `http://127.0.0.1:${httpPort}`, PGPORT: String(pgPort), GATEHOUSE_SCHEDULER_SECONDS: '0', GATEHOUSE_PAILLIER_BITS: '1024',
    // The suite's compile cache (scripts/test.ts), as every other test's processes have it; without
    // it bin/gatehouse.ts enables the same directory itself, after stripping its own types cold.
    ...(process.env.NODE_COMPILE_CACHE ? { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE } : {}),
  };
  const init = await timed('demo init', () => gatehouse('demo', 'init', '--patients', '3000'));
  assert.equal(init.status, 0, init.out);
  await timed('demo start', startDemo);
});

after(async () => {
  await timed('demo stop', stopDemo);
  rmSync(work, { recursive: true, force: true });
});

it('npx --no gatehouse runs the checkout\'s own command line', () => {
  const r = spawnSync('npx', ['--no', 'gatehouse', 'query', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /--format table\|csv\|tsv\|json/);
});

it('the README\'s minimal workspace (gatehouse.yaml, Cedar schema, policy) validates as written', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = (lang: string, first: string): string => {
    const m = new RegExp('```' + lang + '\\n(' + first.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') + '[\\s\\S]*?)```').exec(readme);
    assert.ok(m, `README has a ${lang} block starting "${first}"`);
    return m[1]!;
  };
  const ws = join(work, 'minimal');
  mkdirSync(join(ws, 'policies'), { recursive: true });
  mkdirSync(join(ws, 'secrets'));
  mkdirSync(join(ws, 'data'));
  // What the reader supplies: a hash key, the data file (its header as declared), a key digest.
  writeFileSync(join(ws, 'secrets', 'hash.key'), 'ab'.repeat(32));
  writeFileSync(join(ws, 'data', 'visits.csv'), 'patient_id,email,cost\n1,a@mail.example,10\n');
  writeFileSync(join(ws, 'gatehouse.yaml'), block('yaml', '# gatehouse.yaml').replace('<sha256 of the key>', 'c'.repeat(64)));
  writeFileSync(join(ws, 'schema.cedarschema'), block('cedar', '// schema.cedarschema'));
  writeFileSync(join(ws, 'policies', 'research.cedar'), block('cedar', '// policies/research.cedar'));
  const r = gatehouse('validate', ws);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /^OK: clinic — 1 datasets, 1 policies/);
});

for (const [n, doc] of DOCS.entries()) {
  describe(`the shell blocks of ${doc}`, () => {
    const state = (): string => join(work, `.state-${n}`);
    before(async () => {
      if (n === 0) return;
      // Each walkthrough starts from a fresh demo: stop, reset, start (as its preface says).
      await timed('demo stop', stopDemo);
      const t = Date.now();
      const reset = await timed('demo reset', () => gatehouse('demo', 'reset'));
      assert.equal(reset.status, 0, reset.out);
      assert.ok(Date.now() - t < 10_000, 'demo reset is quick');
      await timed('demo start', startDemo);
    });
    for (const block of shellBlocks(readFileSync(join(ROOT, doc), 'utf8'))) {
      const skip = block.skip ?? (!HAVE_PSQL && /\bpsql\b/.test(block.code) ? 'psql is not installed' : null);
      it(`${doc}:${block.line} runs${block.expected === null ? '' : ' and prints what the doc says'}`, { skip: skip ?? false }, async () => {
        const r = await timed(`${doc}:${block.line}`, () => runBlock(block.code, { cwd: work, env, state: state() }));
        assert.equal(r.status, 0, `block at ${doc}:${block.line} failed (status ${r.status}):\n${r.output}`);
        if (block.expected !== null) {
          assert.ok(matchesExpected(r.output, block.expected), `block at ${doc}:${block.line} printed:\n${r.output}\n--- the doc says:\n${block.expected}`);
        }
      });
    }
  });
}
