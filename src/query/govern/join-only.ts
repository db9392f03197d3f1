/**
 * Column use without projection: a join-only column may be compared in JOIN and WHERE
 * (e.g. a hashed key that links datasets) but nothing derived from it may leave as a
 * result or order the result. Star expansions silently skip it; naming it is refused.
 */
import { GatehouseError } from '../../errors.ts';
import type { BoundTarget } from '../bind.ts';
import { lineageOf } from '../bind.ts';
import { forEachSelect, type Expr, type Select } from '../ir.ts';
import type { GovernContext, ObligationTransformer } from './context.ts';

function joinOnlyColumns(ctx: GovernContext): Set<string> {
  const out = new Set<string>();
  for (const [ds, obligations] of ctx.obligations) for (const o of obligations) for (const c of o.joinOnly) out.add(`${ds}.${c}`);
  return out;
}

function tainted(e: Expr, cols: ReadonlySet<string>): string | null {
  for (const s of lineageOf(e).sources) if (cols.has(s)) return s;
  return null;
}

/**
 * Every column of a branch of UNION / EXCEPT / INTERSECT is output of the set (EXCEPT and
 * INTERSECT compare whole rows, an equality test on every column), so a join-only column is
 * refused in any branch, named or from a star (dropping it from one branch would shift the
 * others' columns).
 */
function checkSetOperationBranches(query: Select, cols: ReadonlySet<string>): void {
  forEachSelect(query, (b) => {
    if (b.from?.kind !== 'setOp') return;
    for (const branch of [b.from.left, b.from.right]) for (const t of branch.targets) {
      const hit = tainted(t.expr, cols);
      if (hit) throw new GatehouseError('OBLIGATION_VIOLATION', `"${hit}" may be used to join and filter but not returned, and every column of a ${b.from.op.toUpperCase()} branch is returned (output column "${t.alias}")`, { hint: 'name the columns of each branch without it; you can still use it in JOIN ... ON and WHERE' });
    }
  });
}

export const joinOnly: ObligationTransformer = {
  name: 'joinOnly',
  apply(query, ctx) {
    const cols = joinOnlyColumns(ctx);
    if (cols.size === 0) return { query, applied: [] };
    checkSetOperationBranches(query, cols);
    const targets = (query.targets as readonly BoundTarget[]).filter((t) => {
      const hit = tainted(t.expr, cols);
      if (!hit) return true;
      if (t.fromStar) return false;
      throw new GatehouseError('OBLIGATION_VIOLATION', `"${hit}" may be used to join and filter but not returned (output column "${t.alias}")`, { hint: 'remove it from the select list; you can still use it in JOIN ... ON and WHERE' });
    });
    if (targets.length === 0) throw new GatehouseError('OBLIGATION_VIOLATION', 'every selected column is join-only; nothing can be returned', { hint: 'select other columns' });
    for (const o of query.orderBy) {
      const hit = tainted(o.expr, cols);
      if (hit) throw new GatehouseError('OBLIGATION_VIOLATION', `"${hit}" may not order the result (it is join-only)`, { hint: 'order by another column' });
    }
    const applied = [...cols].filter((c) => ctx.obligations.has(c.split('.')[0]!)).map((c) => `joinOnly:${c}`).sort();
    return { query: { ...query, targets }, applied };
  },
};
