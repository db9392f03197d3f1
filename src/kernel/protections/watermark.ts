/**
 * Leak tracing (issue 21): the last transformer on a row-level result marks it for the
 * partner it is released to — a keyed watermark in the last digit of the values the
 * workspace lets vary, and canary rows on plain scans — and registers the release so a
 * leaked extract can be traced back to its partner, query and audit entry
 * (src/monitoring/leaks.ts holds the scheme and cites its sources). Datasets the
 * workspace does not list under monitoring.leakTracing pass through untouched; every
 * released row-level result reports its distinct privacy units to the live tallies.
 */
import type { CellValue, ResultColumn } from '../../engine/engine.ts';
import type { Select } from '../../query/ir.ts';
import type { Protection } from '../execute.ts';

/** What marks a release (LeakLedger in src/monitoring/leaks.ts). */
export interface ReleaseMarker {
  mark(input: { principal: string; datasets: readonly string[]; plainScan: boolean; entry: object; at: Date; columns: readonly ResultColumn[]; rows: readonly (readonly CellValue[])[] }): { readonly rows: (readonly CellValue[])[] | null; commit(): void };
}

/** A scan a canary row cannot contradict: one dataset, no filter, grouping, ordering, limit or DISTINCT. */
function plainScan(q: Select): boolean {
  return q.from?.kind === 'dataset' && q.where === null && q.groupBy.length === 0 && q.having === null && q.orderBy.length === 0 && q.limit === null && q.offset === null && !q.distinct && q.with.length === 0;
}

export function watermark(marker: ReleaseMarker, principal: string, datasets: readonly string[], query: Select, now: () => Date): Protection {
  return {
    name: 'watermark',
    after(ctx, r) {
      const marked = marker.mark({ principal, datasets, plainScan: plainScan(query) && !r.truncated, entry: ctx.entry, at: now(), columns: r.columns, rows: r.rows });
      // Registered only if released: a later protection (DLP) may still refuse the result.
      ctx.onRecord({ recorded: async () => { if (ctx.entry.decision === 'allow') marked.commit(); }, unrecorded: async () => {} });
      return marked.rows === null ? r : { ...r, rows: marked.rows, labels: [...r.labels, 'leak-tracing'] };
    },
  };
}
