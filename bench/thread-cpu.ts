/**
 * Process CPU split by thread (Linux: /proc/self/task/<tid>/stat, utime + stime in clock
 * ticks of 10 ms). A path's CPU per query is split into the event loop ("main"), the libuv
 * pool ("libuv pool": fs writes, the audit log's fdatasync, DuckDB's async calls — and
 * DuckDB's own scheduler threads, which inherit the name of the pool thread that created
 * them), V8's helpers and the load generator's worker thread. Empty off Linux.
 */
import { readdirSync, readFileSync } from 'node:fs';

export type ThreadTicks = Map<string, { name: string; ticks: number }>;

export function threadCpu(): ThreadTicks {
  const out: ThreadTicks = new Map();
  let tids: string[];
  try { tids = readdirSync('/proc/self/task'); } catch { return out; }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' ');
      out.set(tid, { name: tid === String(process.pid) ? 'main' : name, ticks: Number(f[11]) + Number(f[12]) });
    } catch { /* the thread ended */ }
  }
  return out;
}

const TICK_US = 10_000; // USER_HZ is 100 on Linux

/** Adds one run's µs per query by thread kind to `into[path]`. */
export function addThreadCpu(into: Map<string, Map<string, number[]>>, path: string, before: ThreadTicks, after: ThreadTicks, completed: number): void {
  const byKind = new Map<string, number>();
  for (const [tid, a] of after) {
    const kind = a.name === 'main' ? 'main' : a.name.startsWith('libuv-worker') ? 'libuv pool' : a.name.startsWith('V8') ? 'V8 helpers' : a.name === 'WorkerThread' ? 'worker threads' : 'other';
    byKind.set(kind, (byKind.get(kind) ?? 0) + ((a.ticks - (before.get(tid)?.ticks ?? 0)) * TICK_US) / Math.max(1, completed));
  }
  let m = into.get(path);
  if (!m) { m = new Map(); into.set(path, m); }
  for (const [k, v] of byKind) { const xs = m.get(k) ?? []; xs.push(Math.round(v)); m.set(k, xs); }
}

/** Medians per path and thread kind. */
export function threadCpuMedians(split: Map<string, Map<string, number[]>>): Record<string, Record<string, number>> {
  const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]!; };
  return Object.fromEntries([...split].map(([path, m]) => [path, Object.fromEntries([...m].filter(([, xs]) => xs.some((x) => x > 0)).map(([t, xs]) => [t, median(xs)]))]));
}
