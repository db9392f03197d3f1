/**
 * Column masks. A column's declared mask applies unless an obligation of a determining
 * policy lists it in `unmask`; obligation `masks` add or replace masks. When two
 * obligations mask one column differently, the column is nulled (fail closed).
 */
import type { MaskSpec } from '../../workspace/types.ts';
import { mapQuery } from '../ir.ts';
import { obligationsFor, type ObligationTransformer } from './context.ts';

function sameMask(a: MaskSpec, b: MaskSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function describeMask(m: MaskSpec): string {
  switch (m.kind) {
    case 'truncate': return `truncate(${m.unit})`;
    case 'round': return `round(${m.step})`;
    case 'bucket': return `bucket(${m.width})`;
    default: return m.kind;
  }
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
          return { name: c.name, expr: { kind: 'mask' as const, mask, arg: c.expr, type: def.type } };
        });
        return { ...d, scan: { ...d.scan!, columns } };
      },
    });
    return { query: out, applied: [...applied].sort() };
  },
};
