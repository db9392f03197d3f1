/**
 * Column masks. A column's declared mask applies unless an obligation of a determining
 * policy lists it in `unmask`; obligation `masks` add or replace masks. When two
 * obligations mask one column differently, the column is nulled (fail closed). Which mask
 * becomes which expression is each kind's own business (src/query/masks/registry.ts); this
 * transformer only decides which mask a column gets and puts it at the source.
 */
import type { MaskSpec } from '../../workspace/types.ts';
import { mapQuery } from '../ir.ts';
import { describeMask, lowerMask } from '../masks/registry.ts';
import { obligationsFor, type ObligationTransformer } from './context.ts';

export { describeMask };

function sameMask(a: MaskSpec, b: MaskSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export const columnMasks: ObligationTransformer = {
  name: 'mask',
  apply(query, ctx) {
    const applied = new Set<string>();
    const out = mapQuery(query, {
      dataset: (d) => {
        const ds = ctx.datasets.get(d.dataset)!;
        const obligations = obligationsFor(ctx, ds.name);
        const unmasked = new Set(obligations.flatMap((o) => o.unmask));
        const columns = d.scan!.columns.map((c) => {
          const def = ds.columns.find((x) => x.name === c.name)!;
          const extra = obligations.map((o) => o.masks[c.name]).filter((m): m is MaskSpec => m !== undefined);
          let mask: MaskSpec | null = unmasked.has(c.name) ? null : def.mask;
          if (extra.length > 0) mask = extra.every((m) => sameMask(m, extra[0]!)) ? extra[0]! : { kind: 'null' };
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
