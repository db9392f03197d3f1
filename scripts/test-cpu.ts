/**
 * Preloaded into every Node process of a timed test run (NODE_OPTIONS=--import): when the process
 * is a test file, it appends that file's CPU time on exit to GATEHOUSE_TEST_CPU_LOG, for the
 * per-file table of scripts/test-times.ts.
 *
 * The CPU time is read from /proc/self/stat (proc(5)): utime + stime of the process itself plus
 * cutime + cstime, the CPU of every child it waited for (servers, CLIs, browsers it started and
 * stopped). Linux only; elsewhere the table shows wall time alone.
 */
import { appendFileSync, readFileSync } from 'node:fs';

const log = process.env.GATEHOUSE_TEST_CPU_LOG;
const file = process.argv[1] ?? '';
const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node supports

if (log && /\.test\.tsx?$/.test(file)) {
  process.on('exit', () => {
    try {
      // Field 2 (comm) may contain spaces; the fields after its closing parenthesis are fixed.
      const stat = readFileSync('/proc/self/stat', 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After comm, index 0 is field 3 (state); utime..cstime are fields 14..17.
      const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
      appendFileSync(log, JSON.stringify({ file, cpuMs: (ticks * 1000) / TICKS_PER_SECOND }) + '\n');
    } catch { /* not Linux: the table shows wall time only */ }
  });
}
