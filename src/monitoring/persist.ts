/**
 * What of the monitor must survive a restart: holds (a suspension must not end because the
 * node restarted), alerts (their state and escalation trail) and incidents (their SLA
 * clocks). One JSON file in the state directory, replaced atomically (write, fsync, rename)
 * and written at most once per turn of the event loop, however many changes it saw.
 * Baselines and the leak registry are rebuilt from traffic (the audit log keeps every fact).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { Alert } from './alerts.ts';
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
