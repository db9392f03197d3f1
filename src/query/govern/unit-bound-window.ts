/**
 * Per-unit contribution bounding by ranking rows: the plan for aggregates whose per-unit
 * partial results cannot be recombined (count(DISTINCT col), sum/avg(DISTINCT col),
 * stddev and variance, approx_count_distinct, sums of masked values or literals); every
 * other aggregate-only query uses the cheaper unit-bound-preaggregate.ts.
 *
 * The query's FROM and WHERE move into one derived table that ranks each unit's rows per
 * group with a window (PARTITION BY unit, group keys), ordered by the row's values in a
 * fixed direction — deterministic, so the same query gives the same answer; the outer block
 * keeps ranks ≤ C and aggregates as the user wrote it. One scan of each dataset, but a sort
 * of every row (3.4× the hand-written threshold check on 6M claims, docs/benchmarks.md).
 * Rows whose unit is null (the unmatched side of a LEFT JOIN) belong to no one and are not
 * ranked away.
 */
import { mapExpr, type Expr, type Select } from '../ir.ts';
import { exprKey } from './expr-key.ts';
import type { UnitBound } from './unit-bound.ts';

const BOUNDED = '__gh_bounded';

export function boundByRanking(q: Select, bounds: readonly UnitBound[]): Select {
  const projected = new Map<string, { name: string; source: Expr }>();
  const outerRef = (c: Extract<Expr, { kind: 'column' }>): Expr => {
    const key = `${c.relation}\u0000${c.name}`;
    let hit = projected.get(key);
    if (!hit) { hit = { name: `__gh_c${projected.size}`, source: { kind: 'column', relation: c.relation, name: c.name, lineage: c.lineage } }; projected.set(key, hit); }
    return { kind: 'column', relation: BOUNDED, name: hit.name, lineage: c.lineage };
  };
  const rewrite = (e: Expr): Expr => mapExpr(e, (x) => (x.kind === 'column' ? outerRef(x) : x));
  // Outer expressions hold no subqueries (aggregation-only refused them), so every column
  // they read is one of the FROM's columns and moves into the derived table's projection.
  const targets = q.targets.map((t) => ({ ...t, expr: rewrite(t.expr) }));
  const groupBy = q.groupBy.map(rewrite);
  const having = q.having ? rewrite(q.having) : null;
  const orderBy = q.orderBy.map((o) => ({ ...o, expr: rewrite(o.expr) }));
  const sources = [...projected.values()];
  const num = (n: number): Expr => ({ kind: 'literal', type: 'number', value: String(n) });
  const unitKeys = new Set(bounds.map((b) => exprKey(b.unit)));
  // Ordered by the values the outer block reads, in a fixed direction: deterministic (rows
  // that tie are identical in everything the result uses), and plain columns, which the
  // renderer need not guard (a guarded hash per row made the window 2.4× slower).
  // Group keys and units are constant within a partition, so they are left out of the order.
  const constant = new Set(q.groupBy.map(exprKey));
  const rowOrder = sources.filter((src) => !unitKeys.has(exprKey(src.source)) && !constant.has(exprKey(src.source)))
    .map((src) => ({ expr: src.source, desc: false, nulls: 'last' as const }));
  const ranks = bounds.map((b, i) => ({
    alias: `__gh_rank${i}`,
    expr: { kind: 'func', name: 'row_number', args: [], star: false, distinct: false, filter: null, over: { partitionBy: [b.unit, ...q.groupBy], orderBy: rowOrder } } as Expr,
  }));
  const inner: Select = {
    kind: 'select', with: [], distinct: false, groupBy: [], having: null, orderBy: [], limit: null, offset: null,
    targets: [...sources.map((s) => ({ expr: s.source, alias: s.name })), ...ranks.map((r) => ({ expr: r.expr, alias: r.alias })), ...bounds.map((b, i) => ({ expr: b.unit as Expr, alias: `__gh_unit${i}` }))],
    from: q.from, where: q.where,
  };
  const ref = (name: string): Expr => ({ kind: 'column', relation: BOUNDED, name, lineage: { sources: new Set() } });
  let where: Expr | null = null;
  bounds.forEach((b, i) => {
    const kept: Expr = { kind: 'binary', op: 'OR', left: { kind: 'isNull', arg: ref(`__gh_unit${i}`), negated: false }, right: { kind: 'binary', op: '<=', left: ref(`__gh_rank${i}`), right: num(b.rows) } };
    where = where === null ? kept : { kind: 'binary', op: 'AND', left: where, right: kept };
  });
  return { ...q, with: q.with, from: { kind: 'derived', query: inner, alias: BOUNDED }, where, targets, groupBy, having, orderBy };
}
