/**
 * Per-unit contribution bounding by pre-aggregation (issue 15: "one pre-aggregation per
 * (unit, group), then the group aggregate, with no extra passes"). The same shape as the
 * per-unit stage of differential-privacy.ts, and as Google's DP library and Tumult Analytics
 * bound a privacy unit's contribution per partition (Wilson et al., "Differentially Private
 * SQL with Bounded User Contribution", PoPETs 2020, §3: per-user, per-partition partial
 * aggregates, each clamped, then summed):
 *
 *   cells  GROUP BY unit, group keys: n = count(*), and per aggregated column x
 *          cx = count(x), sx = sum(x) — each cell already bounded to C rows' worth:
 *            rows      min(n, C)
 *            values    min(cx, C)
 *            sum       sx, or sx · C / cx when cx > C (the unit counts as C values at its
 *                      own mean, so sum and count describe the same C values and avg stays
 *                      the unit's mean; |sum| ≤ C · max |x| as with C kept rows)
 *          a cell whose unit is null (the unmatched side of a LEFT JOIN) belongs to no one
 *          and is not bounded;
 *   groups GROUP BY group keys over the cells: count(*) = Σ rows, count(x) = Σ values,
 *          sum(x) = Σ sum, avg(x) = Σ sum / Σ values, bool_and/bool_or of the cells'; the
 *          group's distinct units = count(unit) over the cells (each non-null unit is one
 *          cell: no count(DISTINCT) hash set over the base rows).
 *
 * Each result keeps the type the user's aggregate returns (counts cast back to BIGINT, avg
 * to DOUBLE, a scaled integer sum to BIGINT inside the engine's own sum type). Deterministic:
 * no sampling and no ordering. When several protected datasets are joined, each cell is keyed
 * by every unit, and a unit's cells in a group are scaled together by C ÷ (its rows in the
 * group, a window over the cells — never over the base rows), so no unit exceeds C rows'
 * worth in any group. Aggregates that cannot be recombined from these partials (DISTINCT,
 * stddev/variance, approx_count_distinct, sums of masked values or literals) return null:
 * the caller then keeps the row-ranking plan (unit-bound-window.ts).
 */
import type { ColumnType } from '../../model/types.ts';
import { lookupFunction } from '../functions.ts';
import type { Expr, Select, Target } from '../ir.ts';
import { exprKey } from './expr-key.ts';
import type { UnitBound } from './unit-bound.ts';

const CELLS = '__gh_cells';

type Column = Extract<Expr, { kind: 'column' }>;

export interface PreAggregateOptions {
  /** Distinct units a group needs before the user's HAVING is evaluated on it. */
  readonly threshold: number;
  /** Alias of the hidden column that carries each group's distinct units. */
  readonly unitsAlias: string;
  /** LIMIT of the group table (a memory bound; disclosure control pages afterwards). */
  readonly limit: number;
  /** The engine type of a column the query reads, or null if it is computed (masked). */
  readonly typeOf: (c: Column) => ColumnType | null;
}

const num = (n: number): Expr => ({ kind: 'literal', type: 'number', value: String(n) });
const fn = (name: string, args: readonly Expr[], star = false, distinct = false): Expr => ({ kind: 'func', name, args, star, distinct, filter: null, over: null });
const cellRef = (name: string): Expr => ({ kind: 'column', relation: CELLS, name, lineage: { sources: new Set() } });
const bin = (op: Extract<Expr, { kind: 'binary' }>['op'], left: Expr, right: Expr): Expr => ({ kind: 'binary', op, left, right });
const when = (cond: Expr, then: Expr, otherwise: Expr): Expr => ({ kind: 'case', operand: null, whens: [{ when: cond, then }], else: otherwise });
const notNull = (e: Expr): Expr => ({ kind: 'isNull', arg: e, negated: true });
const double = (e: Expr): Expr => ({ kind: 'cast', arg: e, type: { name: 'DOUBLE' } });

/** The bounded plan, or null when an aggregate cannot be recombined from per-unit partials. */
export function boundByPreAggregation(q: Select, bounds: readonly UnitBound[], opts: PreAggregateOptions): Select | null {
  if (bounds.length === 0) return null;
  const keys = q.groupBy;
  const keyIndex = new Map(keys.map((k, i) => [exprKey(k), i]));
  const cells: Target[] = [
    ...keys.map((k, i) => ({ expr: k, alias: `__gh_g${i}` })),
    ...bounds.map((b, i) => ({ expr: b.unit as Expr, alias: `__gh_u${i}` })),
  ];
  const measures = new Map<string, string>();
  const measure = (key: string, expr: () => Expr): Expr => {
    let alias = measures.get(key);
    if (alias === undefined) {
      alias = `__gh_m${measures.size}`;
      measures.set(key, alias);
      cells.push({ expr: expr(), alias });
    }
    return cellRef(alias);
  };

  // How much of a cell counts, with `m` the cell's rows (or non-null values) behind it.
  // One bound: the cell is the unit's whole share of the group, so it is heavy when m > C.
  // Several: the unit's share is spread over cells (one per combination of the other
  // units), so m is compared with its sum over the unit's cells in the group (a window over
  // the cells), and the tightest unit's factor applies.
  const single = bounds.length === 1;
  const share = (m: Expr, b: UnitBound): Expr => (single ? m : { kind: 'func', name: 'sum', args: [m], star: false, distinct: false, filter: null, over: { partitionBy: [b.unit, ...keys], orderBy: [] } });
  const factor = (m: Expr): Expr => {
    const perUnit = bounds.map((b) => when(bin('AND', notNull(b.unit), bin('>', share(m, b), num(b.rows))), bin('/', num(b.rows), double(share(m, b))), num(1)));
    return perUnit.length === 1 ? perUnit[0]! : fn('least', perUnit);
  };
  const heavy = (m: Expr): Expr => (single ? bin('AND', notNull(bounds[0]!.unit), bin('>', m, num(bounds[0]!.rows))) : bin('<', factor(m), num(1)));
  /** count(*) or count(arg) of the cell, bounded to C. */
  const boundedCount = (arg: Expr | null): Expr => {
    const m = arg === null ? fn('count', [], true) : fn('count', [arg]);
    return measure(`count:${arg === null ? '*' : exprKey(arg)}`, () => when(heavy(m), single ? num(bounds[0]!.rows) : bin('*', m, factor(m)), m));
  };
  /** sum(arg) of the cell, scaled to C values' worth; null when the type is not known. */
  const boundedSum = (arg: Column): Expr | null => {
    const type = opts.typeOf(arg);
    if (type !== 'BIGINT' && type !== 'INTEGER' && type !== 'DOUBLE' && type !== 'DECIMAL') return null;
    const m = fn('count', [arg]);
    const s = fn('sum', [arg]);
    return measure(`sum:${exprKey(arg)}`, () => {
      const scaled = single ? bin('/', bin('*', s, num(bounds[0]!.rows)), double(m)) : bin('*', s, factor(m));
      // An integer sum stays in the engine's integer sum type (the ELSE branch decides it).
      const typed = type === 'BIGINT' || type === 'INTEGER' ? { kind: 'cast', arg: scaled, type: { name: 'BIGINT' } } as Expr : scaled;
      return when(heavy(m), typed, s);
    });
  };

  /** The group-level form of one of the user's aggregates, or null if it has none. */
  const aggregate = (e: Extract<Expr, { kind: 'func' }>): Expr | null => {
    if (e.distinct || e.filter || e.over) return null;
    const arg = e.star ? null : e.args[0] ?? null;
    if (arg !== null && arg.kind !== 'column' && !(e.name === 'count' && arg.kind === 'literal')) return null;
    switch (e.name) {
      case 'count':
        return fn('coalesce', [{ kind: 'cast', arg: fn('sum', [boundedCount(arg)]), type: { name: 'BIGINT' } }, num(0)]);
      case 'sum': {
        const s = boundedSum(arg as Column);
        return s && fn('sum', [s]);
      }
      case 'avg': {
        const s = boundedSum(arg as Column);
        if (!s) return null;
        const n = fn('sum', [boundedCount(arg)]);
        return when(bin('=', n, num(0)), { kind: 'literal', type: 'null', value: null }, bin('/', double(fn('sum', [s])), double(n)));
      }
      case 'bool_and': case 'bool_or':
        // One bit per cell whatever its rows: bounding rows cannot change a unit's influence.
        return fn(e.name, [measure(`${e.name}:${exprKey(arg!)}`, () => fn(e.name, [arg!]))]);
      default:
        return null;
    }
  };

  // The outer block reads only cells: group keys by reference, aggregates by their group
  // form, literals as they are. Anything else (a bare column) would not be in scope there.
  const outer = (e: Expr): Expr | null => {
    const k = keyIndex.get(exprKey(e));
    if (k !== undefined) return cellRef(`__gh_g${k}`);
    const all = (xs: readonly Expr[]): Expr[] | null => {
      const out = xs.map(outer);
      return out.every((x): x is Expr => x !== null) ? out : null;
    };
    switch (e.kind) {
      case 'literal': case 'param': return e;
      case 'unary': { const a = outer(e.arg); return a && { ...e, arg: a }; }
      case 'isNull': case 'isBool': { const a = outer(e.arg); return a && { ...e, arg: a }; }
      case 'cast': { const a = outer(e.arg); return a && { ...e, arg: a }; }
      case 'binary': { const xs = all([e.left, e.right]); return xs && { ...e, left: xs[0]!, right: xs[1]! }; }
      case 'like': { const xs = all([e.arg, e.pattern]); return xs && { ...e, arg: xs[0]!, pattern: xs[1]! }; }
      case 'between': { const xs = all([e.arg, e.low, e.high]); return xs && { ...e, arg: xs[0]!, low: xs[1]!, high: xs[2]! }; }
      case 'inList': { const xs = all([e.arg, ...e.list]); return xs && { ...e, arg: xs[0]!, list: xs.slice(1) }; }
      case 'case': {
        const operand = e.operand ? outer(e.operand) : null;
        const whens = e.whens.map((w) => ({ when: outer(w.when), then: outer(w.then) }));
        const otherwise = e.else ? outer(e.else) : null;
        if ((e.operand && !operand) || (e.else && !otherwise) || whens.some((w) => !w.when || !w.then)) return null;
        return { ...e, operand, whens: whens as { when: Expr; then: Expr }[], else: otherwise };
      }
      case 'func': {
        if (lookupFunction(e.name)?.kind === 'aggregate') return aggregate(e);
        if (e.over || e.filter) return null;
        const xs = all(e.args);
        return xs && { ...e, args: xs };
      }
      default: return null;
    }
  };

  const targets: Target[] = [];
  for (const t of q.targets) {
    const x = outer(t.expr);
    if (!x) return null;
    targets.push({ ...t, expr: x });
  }
  const userHaving = q.having ? outer(q.having) : null;
  if (q.having && !userHaving) return null;
  const orderBy: Select['orderBy'][number][] = [];
  for (const o of q.orderBy) {
    const x = outer(o.expr);
    if (!x) return null;
    orderBy.push({ ...o, expr: x });
  }
  // Each non-null unit of a group is exactly one cell when one unit is bounded; with
  // several, a unit spans cells and its distinct count is taken over the (few) cells.
  const unitCounts = bounds.map((_, i) => fn('count', [cellRef(`__gh_u${i}`)], false, !single));
  const units = unitCounts.length === 1 ? unitCounts[0]! : fn('least', unitCounts);
  // CASE fixes the evaluation order, as in the plain plan: the user's HAVING is evaluated
  // only on groups that reach the threshold; smaller groups go on to disclosure control.
  const having: Expr | null = userHaving ? when(bin('>=', units, num(opts.threshold)), userHaving, { kind: 'literal', type: 'boolean', value: true }) : null;
  const inner: Select = {
    kind: 'select', with: [], distinct: false, targets: cells, from: q.from, where: q.where,
    groupBy: [...keys, ...bounds.map((b) => b.unit as Expr)], having: null, orderBy: [], limit: null, offset: null,
  };
  return {
    ...q, distinct: false, from: { kind: 'derived', query: inner, alias: CELLS }, where: null,
    targets: [...targets, { expr: units, alias: opts.unitsAlias }],
    groupBy: keys.map((_, i) => cellRef(`__gh_g${i}`)), having, orderBy, limit: opts.limit, offset: null,
  };
}
