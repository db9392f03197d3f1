/**
 * `npm test`: the type check and the test files, side by side.
 *
 *   npm test                         everything (the README's command; CI runs it)
 *   npm test -- test/wire*.test.ts   only the files named (globs are expanded by node --test)
 *
 * Why a script rather than one line in package.json:
 * - Every Node process of the run (the test files and every server, CLI and node they start)
 *   shares one on-disk compile cache (NODE_COMPILE_CACHE, Node's module compile cache): a
 *   process that has loaded Gatehouse once before starts with the compiled code instead of
 *   compiling it again, which cut a process's start from ~0.6 s to ~0.26 s of CPU here.
 * - The type check (TypeScript 7, the native compiler) runs while the tests run, so its wall
 *   time is hidden behind theirs; either failing fails the run.
 * - A test file that hangs fails after 5 minutes instead of stalling CI.
 * - GATEHOUSE_TEST_TIMES=times.json adds a table of each file's CPU and wall time at the end
 *   (scripts/test-times.ts) and writes it as JSON: how docs/testing.md measures the suite.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'node_modules', '.bin');
const cache = join(ROOT, 'node_modules', '.cache', 'node-compile');
mkdirSync(cache, { recursive: true });

const files = process.argv.slice(2);
const patterns = files.length > 0 ? files : ['src/**/*.test.ts', 'test/**/*.test.ts'];
// Two test files at a time: this machine has two cores, and most files start servers of their own.
const concurrency = process.env.GATEHOUSE_TEST_CONCURRENCY ?? '2';

const env: NodeJS.ProcessEnv = { ...process.env, NODE_COMPILE_CACHE: cache };
const timed = process.env.GATEHOUSE_TEST_TIMES;
const reporters: string[] = [];
if (timed) {
  // Every test file's process appends its CPU time to this log on exit (scripts/test-cpu.ts).
  const cpuLog = join(ROOT, 'node_modules', '.cache', `test-cpu-${process.pid}.log`);
  rmSync(cpuLog, { force: true });
  env.GATEHOUSE_TEST_CPU_LOG = cpuLog;
  env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${join(ROOT, 'scripts', 'test-cpu.ts')}`.trim();
  reporters.push('--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(ROOT, 'scripts', 'test-times.ts')}`, '--test-reporter-destination=stdout');
}

function run(label: string, command: string, args: readonly string[]): Promise<number> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: 'inherit' });
    child.on('error', (err) => { console.error(`${label}: ${err.message}`); done(1); });
    child.on('exit', (code, signal) => done(code ?? (signal ? 1 : 0)));
  });
}

const typecheckAll = async (): Promise<number> => (await run('type check', join(BIN, 'tsc'), ['--noEmit', '-p', '.'])) || run('type check of the console', join(BIN, 'tsc'), ['--noEmit', '-p', 'console']);
const [typecheck, tests] = await Promise.all([
  files.length > 0 ? Promise.resolve(0) : typecheckAll(),
  run('tests', process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...reporters, ...patterns]),
]);
if (typecheck !== 0) console.error('npm test: the type check failed (npm run typecheck shows the errors)');
if (tests !== 0) console.error('npm test: some tests failed (each failure is listed above under "failing tests")');
process.exitCode = typecheck !== 0 ? typecheck : tests;
