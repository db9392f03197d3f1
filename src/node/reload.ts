/**
 * Workspace reload on change: a recursive watch on the workspace directory (ignoring the
 * node's own audit/, data/ and state/ and dot-files), debounced, then `gatehouse.reload()`.
 * A valid change takes effect on the next request; an invalid one is reported and the
 * version in force stays (the pipeline applies nothing half-way). Reloads never overlap.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Gatehouse } from '../pipeline/gatehouse.ts';

export interface WorkspaceReloader {
  /** Re-reads the workspace now (or joins the reload in progress). */
  reload(): Promise<void>;
  close(): Promise<void>;
}

const DEBOUNCE_MS = 200;

export function reloader(gatehouse: Gatehouse, notify: (line: string, err?: unknown) => void): { reload(): Promise<void>; settle(): Promise<void> } {
  let running: Promise<void> | null = null;
  return {
    reload() {
      running ??= (async () => {
        try {
          const r = await gatehouse.reload();
          if (r.changed) notify(`workspace reloaded: policy version ${r.policyVersion}`);
        } catch (err) {
          notify('workspace change ignored (the previous version stays in force):', err);
        } finally {
          running = null;
        }
      })();
      return running;
    },
    async settle() { await running; },
  };
}

export function watchWorkspace(dir: string, gatehouse: Gatehouse, notify: (line: string, err?: unknown) => void): WorkspaceReloader {
  const r = reloader(gatehouse, notify);
  let timer: NodeJS.Timeout | null = null;
  const watcher: FSWatcher = watch(dir, { recursive: true }, (_event, file) => {
    if (!file || /^(audit|data|state)([\/]|$)/.test(file) || file.startsWith('.')) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { void r.reload(); }, DEBOUNCE_MS);
  });
  return {
    reload: r.reload,
    async close() {
      watcher.close();
      if (timer) clearTimeout(timer);
      await r.settle();
    },
  };
}
