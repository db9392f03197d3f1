/**
 * Turns every dataset reference into a governed scan that, before any obligation, reads
 * exactly the catalog's columns. Later transformers replace column expressions (masks) and
 * add filters (row filters) here, at the source — so every reference anywhere in the query
 * (SELECT, WHERE, JOIN, GROUP BY, ORDER BY, HAVING, windows, subqueries, CTEs) sees only
 * the governed value (invariant 3).
 */
import { mapQuery } from '../ir.ts';
import { obligationsFor, type GovernContext, type ObligationTransformer } from './context.ts';

export const governedScan: ObligationTransformer = {
  name: 'scan',
  apply(query, ctx: GovernContext) {
    const out = mapQuery(query, {
      dataset: (d) => {
        const ds = ctx.datasets.get(d.dataset);
        if (!ds) throw new Error(`dataset ${d.dataset} vanished between binding and governing`);
        // Project only the columns the query uses (masks are not computed for columns
        // nobody reads); without that information, every catalog column.
        // Aggregation-only datasets keep every column: differencing detection compares this
        // query's filter with earlier ones, which may read other columns.
        const used = obligationsFor(ctx, ds.name).some((o) => o.aggregationOnly) ? undefined : ctx.columnsUsed;
        const cols = used ? ds.columns.filter((c) => used.has(`${ds.name}.${c.name}`)) : ds.columns;
        return { ...d, scan: { columns: cols.map((c) => ({ name: c.name, expr: { kind: 'raw', name: c.name, type: c.type } })), filters: [] } };
      },
    });
    return { query: out, applied: [] };
  },
};
