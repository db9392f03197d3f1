/**
 * Workspace reload on change: a recursive watch on the workspace directory (ignoring the
 * node's own audit/, data/ and state/ and dot-files), debounced, then `gatehouse.reload()`.
 * A valid change takes effect on the next request. An invalid one is reported with its
 * lines; the version in force stays, except that changes which only remove access apply at
 * once (src/workspace/validate.ts `restrictingMerge`). Reloads never overlap.
 *
 * After a failed reload the watcher tries again by itself (1 s, doubling to 30 s), because
 * the fix may come from outside the watched directory or without an event — a dataset file
 * restored on another mount, a permission fixed — and the whole new version must then apply
 * without another edit or SIGHUP. A retry that fails the same way reports nothing new.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Gatehouse } from '../pipeline/gatehouse.ts';

export interface WorkspaceReloader {
  /** Re-reads the workspace now (or joins the reload in progress). */
  reload(): Promise<void>;
  close(): Promise<void>;
}

const DEBOUNCE_MS = 200;
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export function reloader(gatehouse: Gatehouse, notify: (line: string, err?: unknown) => void, onOutcome?: (ok: boolean) => void): { reload(): Promise<void>; settle(): Promise<void> } {
  let running: Promise<void> | null = null;
  let lastFailure: string | null = null;
  return {
    reload() {
      running ??= (async () => {
        let ok = false;
        try {
          const r = await gatehouse.reload();
          ok = true;
          lastFailure = null;
          if (r.changed) notify(`workspace reloaded: policy version ${r.policyVersion}`);
        } catch (err) {
          const text = (err as Error)?.message ?? String(err);
          if (text !== lastFailure) {
            const partly = Array.isArray((err as { applied?: unknown }).applied);
            notify(partly
              ? 'workspace change partly applied (access removals only; fix the problems below and the rest applies by itself):'
              : 'workspace change ignored (the previous version stays in force; fix the problems below and it applies by itself):', err);
          }
          lastFailure = text;
        } finally {
          running = null;
        }
        onOutcome?.(ok);
      })();
      return running;
    },
    async settle() { await running; },
  };
}

export function watchWorkspace(dir: string, gatehouse: Gatehouse, notify: (line: string, err?: unknown) => void): WorkspaceReloader {
  let timer: NodeJS.Timeout | null = null;
  let retry: NodeJS.Timeout | null = null;
  let retryMs = RETRY_FIRST_MS;
  let closed = false;
  const r = reloader(gatehouse, notify, (ok) => {
    if (retry) { clearTimeout(retry); retry = null; }
    if (ok || closed) { retryMs = RETRY_FIRST_MS; return; }
    retry = setTimeout(() => { retry = null; void r.reload(); }, retryMs);
    retry.unref();
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  });
  const watcher: FSWatcher = watch(dir, { recursive: true }, (_event, file) => {
    if (!file || /^(audit|data|state)([\/]|$)/.test(file) || file.startsWith('.')) return;
    if (timer) clearTimeout(timer);
    // An edit starts the retry schedule again from its shortest delay.
    retryMs = RETRY_FIRST_MS;
    timer = setTimeout(() => { void r.reload(); }, DEBOUNCE_MS);
  });
  return {
    reload: r.reload,
    async close() {
      closed = true;
      watcher.close();
      if (timer) clearTimeout(timer);
      if (retry) clearTimeout(retry);
      await r.settle();
    },
  };
}
