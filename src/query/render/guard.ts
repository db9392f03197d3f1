/**
 * Which conjuncts of a WHERE or JOIN ... ON need the error guard (issue 15, "joins written in
 * WHERE"). Errors are a side channel (invariant 11), so the renderer evaluates a user
 * expression that can fail under TRY(...). Wrapping a whole WHERE in one TRY hides its join
 * conditions from the optimiser: `a.k = b.k AND b.j = c.j` under TRY is one opaque filter
 * over a cross product. So a WHERE or ON is split into its conjuncts (in a filter, NULL and
 * FALSE drop a row alike, so `TRY(x) AND y` selects what `TRY(x AND y)` selects), and a
 * conjunct that provably cannot fail is rendered bare; only the others are guarded.
 *
 * "Provably cannot fail" is decided on the governed IR, from declared types, never from
 * data: a comparison of two column references whose types are known here (a governed scan's
 * declared or masked type, carried through derived tables and CTEs as plain column
 * references) and compare without a run-time conversion that could fail. Same type, or two
 * of INTEGER/BIGINT/DOUBLE (widened to the larger, which never fails), or DECIMAL with
 * DECIMAL/DOUBLE. Not DATE with TIMESTAMP (a DATE past the TIMESTAMP range fails to
 * convert), not text with anything else (bind.ts refuses those anyway, typecheck.ts). An
 * unknown type (an expression's result, a parameter) is guarded as before.
 */
import type { ColumnType } from '../../model/types.ts';
import type { Expr, FromItem, Select } from '../ir.ts';
import { maskResultType } from '../masks/registry.ts';

/** The statically known type of each column a FROM clause exposes, by lower-case alias and name. */
export type Scope = ReadonlyMap<string, ReadonlyMap<string, ColumnType | null>>;

const COMPARISONS = new Set(['=', '<>', '<', '>', '<=', '>=', 'IS DISTINCT FROM', 'IS NOT DISTINCT FROM']);
const WIDENING = new Set<ColumnType>(['INTEGER', 'BIGINT', 'DOUBLE']);

/** The top-level conjuncts of a predicate (`a AND (b AND c)` → a, b, c). */
export function conjuncts(e: Expr): Expr[] {
  return e.kind === 'binary' && e.op === 'AND' ? [...conjuncts(e.left), ...conjuncts(e.right)] : [e];
}

/** Two declared types compare without a conversion that can fail on some value. */
export function compareSafely(a: ColumnType, b: ColumnType): boolean {
  if (a === b) return true;
  if (WIDENING.has(a) && WIDENING.has(b)) return true;
  const decimalish = (x: ColumnType): boolean => x === 'DECIMAL' || x === 'DOUBLE';
  return (a === 'DECIMAL' && decimalish(b)) || (b === 'DECIMAL' && decimalish(a));
}

/** The type of a governed scan's column expression, when it is a raw or masked column. */
function scanType(e: Expr): ColumnType | null {
  if (e.kind === 'raw') return e.type;
  if (e.kind === 'mask' && e.arg.kind === 'raw') return maskResultType(e.mask, e.type);
  return null;
}

/**
 * The columns a FROM clause exposes with their known types. `ctes` are the CTEs visible at
 * this point (by lower-case name); `outer` resolves correlated references of a subquery.
 */
export function scopeOf(from: FromItem | null, ctes: ReadonlyMap<string, Select>): Map<string, Map<string, ColumnType | null>> {
  const out = new Map<string, Map<string, ColumnType | null>>();
  const add = (f: FromItem): void => {
    switch (f.kind) {
      case 'dataset':
        out.set(f.alias.toLowerCase(), new Map((f.scan?.columns ?? []).map((c) => [c.name.toLowerCase(), scanType(c.expr)])));
        return;
      case 'derived': out.set(f.alias.toLowerCase(), outputTypes(f.query, ctes)); return;
      case 'cteRef': {
        const q = ctes.get(f.name.toLowerCase());
        out.set(f.alias.toLowerCase(), q ? outputTypes(q, ctes) : new Map());
        return;
      }
      case 'join': add(f.left); add(f.right);
    }
  };
  if (from) add(from);
  return out;
}

/** A subquery's output columns: a plain column reference keeps its type; anything else is unknown. */
function outputTypes(q: Select, outerCtes: ReadonlyMap<string, Select>): Map<string, ColumnType | null> {
  const ctes = new Map(outerCtes);
  for (const c of q.with) ctes.set(c.name.toLowerCase(), c.query);
  const inner = scopeOf(q.from, ctes);
  return new Map(q.targets.map((t) => [t.alias.toLowerCase(), t.expr.kind === 'column' ? inner.get(t.expr.relation.toLowerCase())?.get(t.expr.name.toLowerCase()) ?? null : scanType(t.expr)]));
}

/** The known type of a column reference, looked up from the innermost scope outwards. */
function typeOf(e: Expr, scopes: readonly Scope[]): ColumnType | null {
  if (e.kind === 'raw') return e.type;
  if (e.kind !== 'column') return null;
  for (let i = scopes.length - 1; i >= 0; i--) {
    const r = scopes[i]!.get(e.relation.toLowerCase());
    if (r) return r.get(e.name.toLowerCase()) ?? null;
  }
  return null;
}

/** True when the conjunct is a comparison of two columns whose declared types compare without a failing conversion. */
export function cannotFail(e: Expr, scopes: readonly Scope[]): boolean {
  if (e.kind !== 'binary' || !COMPARISONS.has(e.op)) return false;
  const a = typeOf(e.left, scopes), b = typeOf(e.right, scopes);
  return a !== null && b !== null && compareSafely(a, b);
}
