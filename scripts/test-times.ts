/**
 * A `node --test` reporter that measures where the suite's time goes, one line per test file.
 *
 *   GATEHOUSE_TEST_TIMES=times.json npm test          (scripts/test.ts adds this reporter)
 *   node --test --test-reporter=./scripts/test-times.ts --test-reporter-destination=times.txt ...
 *
 * Why: the suite is CPU-bound on a two-core machine, so a file's wall time alone misleads (a file
 * that waits on a timer costs wall time but no CPU, a file that starts three servers costs CPU the
 * other running file also pays for). Each file's wall time comes from the runner's own file-level
 * `test:complete` event; its CPU time (the file's process plus every child it reaped: servers,
 * CLIs, browsers) is written by scripts/test-cpu.ts when that process exits. Files are ranked by
 * CPU, then wall time, so the top of the list is where a cut saves the most on a loaded machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

interface FileTime { file: string; wallMs: number; cpuMs?: number; tests: number; failed: number }

// node --test names each file by its path relative to the working directory.
const ROOT = process.cwd();

function cpuByFile(): Map<string, number> {
  const log = process.env.GATEHOUSE_TEST_CPU_LOG;
  const out = new Map<string, number>();
  if (!log) return out;
  let text = '';
  try { text = readFileSync(log, 'utf8'); } catch { return out; }
  for (const line of text.split('\n')) {
    if (!line) continue;
    const { file, cpuMs } = JSON.parse(line) as { file: string; cpuMs: number };
    out.set(relative(ROOT, file), cpuMs);
  }
  return out;
}

interface Event { type: string; data?: { name?: string; nesting?: number; file?: string; details?: { duration_ms?: number; type?: string } } }

export default async function* testTimes(source: AsyncIterable<Event>): AsyncGenerator<string> {
  const start = Date.now();
  const files = new Map<string, FileTime>();
  const entry = (file: string): FileTime => {
    const key = relative(ROOT, file);
    let row = files.get(key);
    if (!row) { row = { file: key, wallMs: 0, tests: 0, failed: 0 }; files.set(key, row); }
    return row;
  };
  for await (const event of source) {
    const d = event.data;
    if (!d?.file) continue;
    const key = relative(ROOT, d.file);
    // The runner closes each file with a `test:complete` named after the file's path: its duration is the file's wall time.
    if (event.type === 'test:complete' && d.nesting === 0 && d.name === key) entry(d.file).wallMs = d.details?.duration_ms ?? 0;
    else if (d.name === key || d.details?.type === 'suite') continue; // counted as the runner counts: tests, not suites
    else if (event.type === 'test:pass') entry(d.file).tests += 1;
    else if (event.type === 'test:fail') { entry(d.file).tests += 1; entry(d.file).failed += 1; }
  }
  const cpu = cpuByFile();
  const rows = [...files.values()].map((r) => ({ ...r, cpuMs: cpu.get(r.file) }));
  rows.sort((a, b) => (b.cpuMs ?? 0) - (a.cpuMs ?? 0) || b.wallMs - a.wallMs);
  const totalWall = Date.now() - start;
  const json = process.env.GATEHOUSE_TEST_TIMES;
  if (json) writeFileSync(json, JSON.stringify({ totalWallMs: totalWall, files: rows }, null, 2));
  const s = (ms: number | undefined): string => (ms === undefined ? '     -' : (ms / 1000).toFixed(1).padStart(6));
  yield `\n  cpu s  wall s  tests  file (suite: ${(totalWall / 1000).toFixed(1)} s wall, ${rows.length} files)\n`;
  for (const r of rows) yield `${s(r.cpuMs)}  ${s(r.wallMs)}  ${String(r.tests).padStart(5)}  ${r.file}${r.failed ? `  (${r.failed} failed)` : ''}\n`;
}
