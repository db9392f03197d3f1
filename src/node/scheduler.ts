/**
 * The governance scheduler: every interval, one round of `runScheduledGovernance` (ended
 * agreements closed out, retention enforced by crypto-shredding with legal holds respected,
 * yesterday's compliance report written once), all audited by the pipeline.
 *
 * Rounds never overlap: a tick that finds a round running is skipped. A failed round is
 * reported and retried at the next tick. `stop()` cancels the timers and waits for a
 * round in progress, so shutdown never closes the engines or the log under it.
 */
import type { Gatehouse } from '../pipeline/gatehouse.ts';

export interface Scheduler {
  /** Runs a round now (or joins the one in progress). */
  runNow(): Promise<void>;
  stop(): Promise<void>;
}

export function startScheduler(gatehouse: Gatehouse, options: {
  readonly intervalMs: number;
  readonly firstRunMs: number;
  readonly reportsDir: string;
  readonly now?: () => Date;
  readonly notify: (line: string, err?: unknown) => void;
}): Scheduler {
  let round: Promise<void> | null = null;
  let stopped = false;
  const runNow = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    round ??= gatehouse.runScheduledGovernance({ reportsDir: options.reportsDir, ...(options.now ? { now: options.now() } : {}) }).then(
      (r) => { if (r.report) options.notify(`compliance report written: ${r.report}`); },
      (err: unknown) => { options.notify('governance scheduler round failed (retried next round):', err); },
    ).finally(() => { round = null; });
    return round;
  };
  const tick = (): void => { void runNow(); };
  const every = setInterval(tick, options.intervalMs);
  every.unref();
  const first = setTimeout(tick, options.firstRunMs);
  first.unref();
  return {
    runNow,
    async stop() {
      stopped = true;
      clearInterval(every);
      clearTimeout(first);
      await round;
    },
  };
}
