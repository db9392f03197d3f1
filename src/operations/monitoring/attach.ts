/**
 * One monitor per running node, bound to its Runtime: it watches every recorded audit entry
 * (Runtime.onRecorded), refuses principals under a hold after authentication (Runtime.gate),
 * and applies its automatic responses as audited operations of their own (channel
 * "monitor", so monitoring never scores its own entries). Escalation and webhook delivery
 * run on an unref'd timer, off the request path.
 *
 * The monitor attaches on first use; the node attaches it at start (the HTTP routes call
 * `monitorOf` when they are registered), so it sees every request from then on. Its holds,
 * alerts and incidents (state/monitoring.json), its baselines and rule windows
 * (state/monitoring-detection.json) and its leak registry (state/leak-registry.jsonl) are kept
 * in the state directory (persist.ts) and restored here before the first request.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../../errors.ts';
import { auditedOpen } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import { loadMonitoringConfig } from '../../monitoring/config.ts';
import { MONITOR_CHANNEL } from '../../monitoring/event.ts';
import { Monitor, type Hold, type Responder } from '../../monitoring/monitor.ts';
import type { Alert } from '../../monitoring/alerts.ts';
import { appendReleases, debouncedWriter, readDetectionState, readReleases, readSnapshot, writeJson, writeReleases, writeSnapshot } from '../../monitoring/persist.ts';

const MONITORS = new WeakMap<Runtime, Monitor>();

/**
 * The node's watermark key: 32 random bytes in the state directory (mode 0600), created on
 * first use. Whoever holds it can strip marks, so it never leaves the node; losing it makes
 * past marks untraceable, not unsafe.
 */
function watermarkKey(stateDir: string): Buffer {
  const path = join(stateDir, 'watermark.key');
  try {
    writeFileSync(path, randomBytes(32), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = readFileSync(path);
  if (key.length !== 32) throw new GatehouseError('UNAVAILABLE', 'the watermark key in the state directory is damaged', { hint: 'operators: restore state/watermark.key from backup, or remove it to start a new key (past marks become untraceable)' });
  return key;
}
const TICK_MS = 1000;

export const MONITOR_META = { credential: null, source: 'gatehouse-monitor', channel: MONITOR_CHANNEL } as const;

export function monitorOf(rt: Runtime): Monitor {
  let m = MONITORS.get(rt);
  if (m) return m;
  const monitor = new Monitor({
    config: loadMonitoringConfig(rt.options.workspaceDir),
    orgOf: (p) => {
      const org = rt.state.loaded.workspace.principals.get(p)?.attributes.org;
      return typeof org === 'string' ? org : null;
    },
    now: () => rt.now(),
    watermarkKey: watermarkKey(rt.stateDir),
    unitColumnOf: (d) => rt.state.loaded.workspace.datasets.get(d)?.privacyUnit ?? null,
  });
  // Holds, alerts and incidents survive a restart: a suspension does not end because the node did.
  const saved = join(rt.stateDir, 'monitoring.json');
  const snapshot = readSnapshot(saved);
  if (snapshot) monitor.restore(snapshot);
  monitor.onChange(debouncedWriter(() => { writeSnapshot(saved, monitor.snapshot()); }));
  const flushLearning = persistLearning(rt.stateDir, monitor);
  m = monitor;
  MONITORS.set(rt, monitor);
  rt.onRecorded((entry, auditId, meta) => {
    monitor.observe(entry, auditId, meta ? { sql: meta.sql ?? null, posture: meta.posture ?? null } : undefined);
    // Device posture: verified after the request (a signature check is not inline work).
    const posture = rt.state.loaded.workspace.identity?.posture;
    if (posture && meta && entry.principal !== null && entry.channel !== MONITOR_CHANNEL) {
      void monitor.posture.seen({ principal: entry.principal, token: meta.posture ?? null, sourceIp: sourceIp(meta.source), at: Date.parse(entry.time) }, posture).catch(() => undefined);
    }
  });
  rt.gate((principal, mfaAt, action) => { monitor.checkAccess(principal, mfaAt, action); });
  monitor.setResponder(responder(rt));
  const watched = configStamp(rt.options.workspaceDir);
  const timer = setInterval(() => {
    reloadIfChanged(rt, monitor, watched);
    try { flushLearning(); } catch { /* retried at the next tick */ }
    void monitor.tick().catch(() => undefined);
    void import('./incidents.ts').then((m) => m.checkSlaDeadlines(rt)).catch(() => undefined);
  }, TICK_MS);
  timer.unref();
  return monitor;
}

/** The address as the posture zones match it (as src/operations/query/plan.ts does for the policy). */
function sourceIp(source: string): string {
  const s = source.startsWith('::ffff:') ? source.slice(7) : source;
  return /^[0-9.]+$/.test(s) || s.includes(':') ? s : '127.0.0.1';
}

const DETECTION_FLUSH_MS = 5000;
/** The registry file is rewritten to the ledger's releases when it has this many lines or more. */
const COMPACT_AT_LINES = 4000;

/**
 * Restores baselines, rule windows and the leak registry, and returns the flush the node's
 * timer runs: releases are appended every tick, detection state written every few seconds
 * when it changed (a restart loses at most that much learning; docs/monitoring.md).
 */
function persistLearning(stateDir: string, monitor: Monitor): () => void {
  const detectionPath = join(stateDir, 'monitoring-detection.json');
  const registryPath = join(stateDir, 'leak-registry.jsonl');
  const detection = readDetectionState(detectionPath);
  if (detection) monitor.restoreDetection(detection);
  const releases = readReleases(registryPath);
  monitor.leaks.restore(releases);
  let lines = releases.length;
  let lastDetection = 0;
  return () => {
    const fresh = monitor.leaks.takeUnsaved();
    if (fresh.length > 0) {
      if (lines + fresh.length >= COMPACT_AT_LINES) { writeReleases(registryPath, monitor.leaks.saved()); lines = monitor.leaks.saved().length; } else { appendReleases(registryPath, fresh); lines += fresh.length; }
    }
    const now = Date.now();
    if (monitor.detectionDirty && now - lastDetection >= DETECTION_FLUSH_MS) {
      lastDetection = now;
      writeJson(detectionPath, monitor.detectionState());
    }
  };
}

/** Modification times of the files the monitoring section lives in. */
function configStamp(dir: string): { value: string } {
  return { value: ['gatehouse.yaml', 'monitoring.yaml'].map((f) => { try { return String(statSync(join(dir, f)).mtimeMs); } catch { return '-'; } }).join('/') };
}

/**
 * Picks up an edited monitoring section within a second. An invalid edit leaves the running
 * configuration in force (like a workspace reload): rules never switch off by a typo.
 */
function reloadIfChanged(rt: Runtime, monitor: Monitor, watched: { value: string }): void {
  const now = configStamp(rt.options.workspaceDir);
  if (now.value === watched.value) return;
  watched.value = now.value;
  try { monitor.reconfigure(loadMonitoringConfig(rt.options.workspaceDir)); } catch { /* keep the configuration in force */ }
}

/** The automatic responses, each leaving its own audit entry (invariant 8). */
function responder(rt: Runtime): Responder {
  return {
    async applied(hold: Hold, alert: Alert): Promise<void> {
      await auditedOpen(rt, MONITOR_META, `monitoring.response.${hold.kind}`, { principal: hold.principal }, async (env) => {
        env.entry.reasons = [`automatic response to alert ${alert.id} (rule ${alert.rule})`];
        if (hold.kind === 'suspend-sessions') {
          // The hold refuses every credential at once; ending the sessions means a lift needs a fresh sign-in.
          const ids = await rt.identity();
          const sessions = await ids.sessions.revokeAllFor(hold.principal, { reason: `suspended by alert ${alert.id}` });
          const passwords = await ids.connectionPasswords.revokeAll(hold.principal);
          env.keep(`${sessions} session(s) and ${passwords} connection password(s) revoked; the principal is refused until an administrator lifts the suspension`);
        } else {
          env.keep('the principal must step up with MFA before its next request is served');
        }
      });
    },
  };
}

/** Per dataset, the largest spent/cap of the budgets of the principals (and their organisations) seen reading it. */
export async function budgetUse(rt: Runtime): Promise<{ dataset: string; ratio: number }[]> {
  const monitor = monitorOf(rt);
  const ws = rt.state.loaded.workspace;
  const now = rt.now();
  const worst = new Map<string, number>();
  for (const x of monitor.activity.extraction(() => true)) {
    const org = ws.principals.get(x.principal)?.attributes.org;
    for (const subject of [x.principal, ...(typeof org === 'string' ? [`org:${org}`] : [])]) {
      const s = await rt.budgets.status(subject, x.dataset, now).catch(() => null);
      if (s && s.capRho > 0) worst.set(x.dataset, Math.max(worst.get(x.dataset) ?? 0, s.spentRho / s.capRho));
    }
  }
  return [...worst].map(([dataset, ratio]) => ({ dataset, ratio }));
}
