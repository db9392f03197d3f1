/**
 * Differencing (tracker) check, before an aggregation-only query runs: each protected
 * dataset's filter is admitted to the principal's persistent history first (so a query that
 * later fails still counts), then one internal query counts, per remembered filter, the
 * units on which the two disagree; fewer than the threshold refuses it, and the refusal is
 * counted against the principal. Filters are refreshed once the query ran.
 */
import { GatehouseError } from '../../errors.ts';
import { DifferencingMonitor, type DifferencingProbe } from '../../privacy/differencing.ts';
import type { Protection } from '../execute.ts';

export function differencing(monitor: DifferencingMonitor, subject: string, probes: readonly DifferencingProbe[], now: () => number): Protection {
  return {
    name: 'differencing',
    async before(ctx) {
      for (const probe of probes) {
        const previous = monitor.admit(subject, probe, now());
        if (previous.length === 0) continue;
        const r = await ctx.internal('differencing check', monitor.checkQuery(probe, previous), probe.dataset);
        if (DifferencingMonitor.firstHit(probe, r.rows[0] ?? []) >= 0) {
          monitor.refused(subject, probe, now());
          const reason = `alert: differencing — this query's filter differs from one of your earlier queries on "${probe.dataset}" by fewer than ${probe.threshold} distinct units`;
          throw new GatehouseError('DIFFERENCING_DETECTED', `refused: together with one of your earlier queries on "${probe.dataset}", this query would isolate fewer than ${probe.threshold} individuals`, {
            hint: 'change the filter by a larger group, or ask for differentially private access', reasons: [reason],
          });
        }
      }
    },
    after(_ctx, r) {
      for (const probe of probes) monitor.remember(subject, probe, now());
      return r;
    },
  };
}
