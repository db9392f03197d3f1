/**
 * The `gatehouse` executable turns on Node's module compile cache (bin/gatehouse.ts): a CLI
 * call that starts cold strips and compiles every module it loads, about twice the CPU of a
 * call that finds them cached. Each test starts the real executable and reads, from a preload
 * that runs in the CLI's own process, which cache directory Node used and which one the CLI
 * passes on to the processes it starts (NODE_COMPILE_CACHE).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'gatehouse.ts');
/** Prints, when the CLI's process exits, the cache directory in use and the one children inherit. */
const REPORT = `data:text/javascript,${encodeURIComponent(`import { getCompileCacheDir } from 'node:module';
process.on('exit', () => process.stderr.write('cache=' + JSON.stringify({ dir: getCompileCacheDir() ?? null, inherited: process.env.NODE_COMPILE_CACHE ?? null }) + '\\n'));`)}`;

function run(env: NodeJS.ProcessEnv, ...args: string[]): { status: number | null; stdout: string; cache: { dir: string | null; inherited: string | null } } {
  const r = spawnSync(process.execPath, ['--import', REPORT, BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 });
  const line = /^cache=(.*)$/m.exec(r.stderr)?.[1];
  assert.ok(line, `no cache report:\n${r.stderr}`);
  return { status: r.status, stdout: r.stdout, cache: JSON.parse(line) };
}

it('a CLI call with no NODE_COMPILE_CACHE keeps its compiled code in node_modules/.cache/node-compile and passes the directory on', () => {
  const r = run({}, '--version');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  assert.equal(r.cache.inherited, join(ROOT, 'node_modules', '.cache', 'node-compile'));
  // Node keeps each version's cache in a subdirectory of the directory named.
  assert.ok(r.cache.dir?.startsWith(`${r.cache.inherited}/`), `cache in ${r.cache.dir}`);
});

it('NODE_COMPILE_CACHE chooses the directory, and the CLI writes its compiled modules there', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-compile-cache-'));
  try {
    const r = run({ NODE_COMPILE_CACHE: dir }, 'query', '--help');
    assert.equal(r.status, 0);
    assert.ok(r.cache.dir?.startsWith(`${dir}/`), `cache in ${r.cache.dir}`);
    assert.equal(r.cache.inherited, dir);
    const entries = readdirSync(dir, { recursive: true });
    assert.ok(entries.length > 1, `nothing was cached in ${dir}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('NODE_DISABLE_COMPILE_CACHE=1 runs the CLI without the cache, with the same output', () => {
  const r = run({ NODE_DISABLE_COMPILE_CACHE: '1' }, '--version');
  assert.equal(r.status, 0);
  assert.equal(r.stdout, run({}, '--version').stdout);
  assert.equal(r.cache.dir, null);
  assert.equal(r.cache.inherited, null);
});
