/**
 * What of the monitor must survive a restart, in three files of the node's state directory:
 *
 *   monitoring.json            holds (a suspension must not end because the node restarted),
 *                              alerts (state, escalation trail) and incidents (SLA clocks);
 *                              written at most once per turn of the event loop after a change.
 *   monitoring-detection.json  baselines and the events inside the rules' windows
 *                              (Monitor.detectionState), so a restart neither forgets what is
 *                              usual nor lets a slow exfiltration start its count again;
 *                              written by the node's timer when detection changed.
 *   leak-registry.jsonl        the leak-tracing registry, one release per line (keyed row
 *                              hashes, never values), appended by the same timer and compacted
 *                              to the ledger's bound when it has grown to twice that.
 *
 * JSON files are replaced atomically (write, fsync, rename); the detection state off the event
 * loop (writeJson). What a crash can lose is the
 * last timer period of learning, never a hold, an alert or an incident. None of the files
 * holds a data value or a secret: identifiers, counts, shapes and keyed hashes (invariant 9).
 */
import { appendFileSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import type { Alert } from './alerts.ts';
import type { BaselineState } from './baseline.ts';
import type { MonitorEvent } from './event.ts';
import type { SavedRelease } from './leaks.ts';
import type { Incident } from './incidents.ts';
import type { Hold } from './monitor.ts';

export interface MonitorSnapshot {
  readonly version: 1;
  readonly holds: readonly Hold[];
  readonly alerts: readonly Alert[];
  readonly incidents: readonly Incident[];
}

export function readSnapshot(path: string): MonitorSnapshot | null {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const s = JSON.parse(text) as MonitorSnapshot;
  if (s.version !== 1 || !Array.isArray(s.holds) || !Array.isArray(s.alerts) || !Array.isArray(s.incidents)) throw new SyntaxError(`${path} is not a monitoring snapshot of version 1`);
  return s;
}

export interface DetectionState {
  readonly version: 1;
  readonly principals: Readonly<Record<string, BaselineState>>;
  readonly orgs: Readonly<Record<string, BaselineState>>;
  readonly events: readonly MonitorEvent[];
}

export function readDetectionState(path: string): DetectionState | null {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const s = JSON.parse(text) as DetectionState;
  if (s.version !== 1 || typeof s.principals !== 'object' || typeof s.orgs !== 'object' || !Array.isArray(s.events)) throw new SyntaxError(`${path} is not a detection state of version 1`);
  return s;
}

/** Appends releases to the registry file (one JSON line each). */
export function appendReleases(path: string, releases: readonly SavedRelease[]): void {
  if (releases.length === 0) return;
  appendFileSync(path, releases.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: 0o600 });
}

/** Every release in the registry file, oldest first; a torn last line (a crash mid-append) is skipped. */
export function readReleases(path: string): SavedRelease[] {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: SavedRelease[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    try { out.push(JSON.parse(line) as SavedRelease); } catch { /* a torn line */ }
  }
  return out;
}

/** Replaces the registry file with exactly these releases (compaction). */
export function writeReleases(path: string, releases: readonly SavedRelease[]): void {
  writeAtomically(path, releases.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

/**
 * Replaces `path` with the JSON of `value`, the I/O off the event loop. The detection state is
 * written every few seconds while requests flow and holds up to 20,000 events (megabytes):
 * written synchronously, its write, fsync and rename stalled every request behind them
 * (≈ 130 µs per request amortised at concurrency 16, issue 15). Only the serialisation stays on
 * the loop, so the file holds the state as it was at the call. One write per path at a time;
 * a call made while one is under way waits and replaces any older waiting value, so the newest
 * state always lands last. A failed write leaves the previous file whole (write, fsync, rename)
 * and is retried with the next change.
 */
export function writeJson(path: string, value: unknown): void {
  const text = JSON.stringify(value);
  const w = WRITES.get(path);
  if (w) { w.next = text; return; }
  const state: { next: string | null } = { next: null };
  WRITES.set(path, state);
  const run = async (t: string): Promise<void> => {
    try { await writeAtomicallyAsync(path, t); } catch { /* the previous file stays whole; retried with the next change */ }
    const next = state.next;
    state.next = null;
    if (next !== null) return run(next);
    WRITES.delete(path);
  };
  void run(text);
}

/** Writes under way per path (writeJson), with the newest value waiting behind each. */
const WRITES = new Map<string, { next: string | null }>();

/** Resolves once no writeJson is under way (tests, shutdown). */
export async function jsonWritesSettled(): Promise<void> {
  while (WRITES.size > 0) await new Promise((r) => setTimeout(r, 5));
}

async function writeAtomicallyAsync(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function writeSnapshot(path: string, s: MonitorSnapshot): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(s));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Coalesces changes: one write per turn of the event loop. */
export function debouncedWriter(write: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    setImmediate(() => { pending = false; try { write(); } catch { /* retried at the next change */ } });
  };
}
