/**
 * Column masks at the source. Which mask a column gets is the effective-access rule
 * (src/query/govern/effective-access.ts: declared mask, `unmask`, obligation masks, null on
 * conflict), the same function the dataset listing and the access review read; which
 * expression a mask becomes is each kind's own business (src/query/masks/registry.ts).
 * This transformer only puts the mask where every reference reads the column.
 */
import { mapQuery } from '../ir.ts';
import { describeMask, lowerMask } from '../masks/registry.ts';
import { obligationsFor, type ObligationTransformer } from './context.ts';
import { effectiveAccess } from './effective-access.ts';

export { describeMask };

export const columnMasks: ObligationTransformer = {
  name: 'mask',
  apply(query, ctx) {
    const applied = new Set<string>();
    const out = mapQuery(query, {
      dataset: (d) => {
        const ds = ctx.datasets.get(d.dataset)!;
        const access = effectiveAccess(ds, obligationsFor(ctx, ds.name), ctx.defaultRowCap);
        const columns = d.scan!.columns.map((c) => {
          const def = ds.columns.find((x) => x.name === c.name)!;
          const mask = access.columns.get(c.name)!.mask;
          if (!mask) return c;
          applied.add(`mask:${ds.name}.${c.name}=${describeMask(mask)}`);
          return { name: c.name, expr: lowerMask(mask, c.expr, { type: def.type, principal: ctx.principal.id, dataset: ds.name, column: c.name }) };
        });
        return { ...d, scan: { ...d.scan!, columns } };
      },
    });
    return { query: out, applied: [...applied].sort() };
  },
};
