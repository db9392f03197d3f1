/**
 * Row cap: at most `rowCap` rows per query (the smallest cap among the obligations of every
 * dataset read, else the workspace default), and no OFFSET at or past the cap, so paging
 * cannot walk past it. The rendered LIMIT asks for one row more than allowed, so the
 * executor can tell the caller the result was truncated without returning that row.
 */
import { GatehouseError } from '../../errors.ts';
import { forEachSelect, type Select } from '../ir.ts';
import type { GovernContext, ObligationTransformer } from './context.ts';

export function rowCapFor(query: Select, ctx: GovernContext): number {
  let cap = ctx.defaultRowCap;
  for (const obligations of ctx.obligations.values()) for (const o of obligations) if (o.rowCap !== null) cap = Math.min(cap, o.rowCap);
  return cap;
}

export const rowCap: ObligationTransformer = {
  name: 'rowCap',
  apply(query, ctx) {
    const cap = rowCapFor(query, ctx);
    forEachSelect(query, (b) => {
      if (b !== query && b.offset !== null) {
        throw new GatehouseError('ROW_CAP_EXCEEDED', 'OFFSET is only allowed on the outermost query (inside a subquery or CTE it would page past the row cap)', { hint: 'move OFFSET to the outer query, or filter with WHERE' });
      }
    });
    const offset = query.offset ?? 0;
    if (offset >= cap) {
      throw new GatehouseError('ROW_CAP_EXCEEDED', `OFFSET ${offset} reaches past the row cap of ${cap} rows for this query`, { hint: 'narrow the query with WHERE or aggregate instead of paging through rows' });
    }
    const allowed = cap - offset;
    const limit = query.limit === null || query.limit > allowed ? allowed + 1 : query.limit;
    return { query: { ...query, limit }, applied: [`rowCap:${cap}`] };
  },
};
