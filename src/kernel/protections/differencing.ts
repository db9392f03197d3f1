/**
 * Differencing (tracker) check: before an aggregation-only query runs, one internal query
 * counts the units on which its filter and each remembered recent filter disagree; fewer
 * than the threshold refuses it. The filter is remembered once the query ran.
 */
import { GatehouseError } from '../../errors.ts';
import type { DifferencingMonitor, DifferencingProbe } from '../../privacy/differencing.ts';
import type { Protection } from '../execute.ts';

export function differencing(monitor: DifferencingMonitor, subject: string, probe: DifferencingProbe): Protection {
  return {
    name: 'differencing',
    async before(ctx) {
      const previous = monitor.recent(subject, probe);
      if (previous.length === 0) return;
      const r = await ctx.internal('differencing check', monitor.checkQuery(probe, previous), probe.dataset);
      const counts = (r.rows[0] ?? []).map((v) => Number(v ?? 0));
      if (counts.some((n) => n > 0 && n < probe.threshold)) {
        const reason = `alert: differencing — this query's filter differs from one of your last ${previous.length} queries on "${probe.dataset}" by fewer than ${probe.threshold} distinct units`;
        throw new GatehouseError('DIFFERENCING_DETECTED', `refused: together with one of your recent queries on "${probe.dataset}", this query would isolate fewer than ${probe.threshold} individuals`, {
          hint: 'change the filter by a larger group, or ask for differentially private access', reasons: [reason],
        });
      }
    },
    after(_ctx, r) {
      monitor.remember(subject, probe);
      return r;
    },
  };
}
