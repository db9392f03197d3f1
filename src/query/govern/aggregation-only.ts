/**
 * Aggregation-only: a dataset under this obligation may only be read by an aggregate
 * query whose every output group covers at least `minGroupSize` distinct privacy units.
 *
 * Rules (each refusal names the rule so the analyst can rewrite the query):
 * - the dataset is referenced only in the FROM of the outermost query (no subquery, CTE or
 *   derived table can reshape or re-expose its rows);
 * - that query aggregates (GROUP BY and/or aggregate functions) and has no window functions;
 * - every output, HAVING and ORDER BY expression is a GROUP BY key or built from
 *   aggregates, whose arguments are bare columns (no CASE/FILTER isolating one person);
 * - aggregates that return an input value (min, max, median, mode, quantiles, string_agg,
 *   array_agg, list, any_value, first, last) are refused;
 * - each group's count of distinct privacy units leaves the engine as a hidden column;
 *   disclosure control (privacy/disclosure.ts) withholds groups below `minGroupSize`,
 *   adds secondary suppression so withheld groups cannot be recovered from totals, and
 *   optionally rounds counts. Withheld groups are dropped from the result.
 */
import { GatehouseError } from '../../errors.ts';
import { lookupFunction } from '../functions.ts';
import { childExprs, datasetItems, forEachExpr, forEachSelect, type Expr, type FromItem, type Select } from '../ir.ts';
import { obligationsFor, type GovernContext, type ObligationTransformer } from './context.ts';
import { PROBE_ALIAS, probePredicate, type DifferencingProbe } from '../../privacy/differencing.ts';

export const UNIT_COLUMN = '__gh_unit';

function violation(message: string, hint: string): never {
  throw new GatehouseError('OBLIGATION_VIOLATION', message, { hint });
}

/** Structural key of an expression, ignoring lineage. */
export function exprKey(e: Expr): string {
  return JSON.stringify(e, (k, v) => (k === 'lineage' ? undefined : v));
}

function minGroupSizes(query: Select, ctx: GovernContext): Map<string, number> {
  const out = new Map<string, number>();
  forEachSelect(query, (b) => {
    for (const d of datasetItems(b.from)) {
      for (const o of obligationsFor(ctx, d.dataset)) {
        if (o.aggregationOnly) out.set(d.dataset, Math.max(out.get(d.dataset) ?? 0, o.aggregationOnly.minGroupSize));
      }
    }
  });
  return out;
}

function checkAggregateSafe(e: Expr, groupKeys: ReadonlySet<string>, where: string, ds: string): void {
  if (groupKeys.has(exprKey(e))) return;
  switch (e.kind) {
    case 'literal': case 'param': return;
    case 'column': case 'raw':
      violation(`"${e.name}" in ${where} is neither grouped nor aggregated; dataset "${ds}" allows only aggregate results`, 'add the column to GROUP BY or wrap it in count/sum/avg');
    case 'inQuery': case 'exists': case 'scalarQuery':
      violation(`subqueries in ${where} are not allowed in an aggregation-only query over "${ds}"`, 'filter in WHERE instead');
    case 'func': {
      const info = lookupFunction(e.name)!;
      if (e.over) violation(`window function ${e.name}() is not allowed in an aggregation-only query over "${ds}"`, 'use plain aggregates with GROUP BY');
      if (info.kind === 'aggregate') {
        if (info.revealsValue) violation(`${e.name}() returns an individual value and is refused on aggregation-only dataset "${ds}"`, 'use count, sum, avg, stddev or variance');
        if (e.filter) violation(`FILTER on aggregates is refused on aggregation-only dataset "${ds}" (it can isolate individuals)`, 'filter in WHERE, or group by the condition');
        for (const a of e.args) {
          if (a.kind !== 'column' && a.kind !== 'literal') violation(`the argument of ${e.name}() must be a plain column on aggregation-only dataset "${ds}" (expressions inside aggregates can isolate individuals)`, 'aggregate a column directly, e.g. sum(cost); group by a condition instead of computing it inside the aggregate');
        }
        return;
      }
      for (const a of e.args) checkAggregateSafe(a, groupKeys, where, ds);
      return;
    }
    default: {
      for (const c of childExprs(e)) checkAggregateSafe(c, groupKeys, where, ds);
    }
  }
}

function isAggregateQuery(q: Select): boolean {
  if (q.groupBy.length > 0) return true;
  let found = false;
  for (const t of q.targets) forEachExpr(t.expr, (x) => { if (x.kind === 'func' && x.over === null && lookupFunction(x.name)?.kind === 'aggregate') found = true; });
  return found;
}

export const aggregationOnly: ObligationTransformer = {
  name: 'aggregationOnly',
  apply(query, ctx) {
    const sizes = minGroupSizes(query, ctx);
    if (sizes.size === 0) return { query, applied: [] };
    forEachSelect(query, (b) => {
      if (b === query) return;
      for (const d of datasetItems(b.from)) {
        if (sizes.has(d.dataset)) violation(`dataset "${d.dataset}" allows only aggregate queries, and it is read inside a subquery, CTE or derived table`, `reference "${d.dataset}" directly in the FROM of the outer query and aggregate there`);
      }
    });
    const items = datasetItems(query.from).filter((d) => sizes.has(d.dataset));
    const ds = items[0]!.dataset;
    if (!isAggregateQuery(query)) violation(`dataset "${ds}" allows only aggregate queries`, 'use GROUP BY with count, sum or avg, e.g. SELECT region, count(*) FROM ... GROUP BY region');
    if (query.distinct) violation(`SELECT DISTINCT is refused on aggregation-only dataset "${ds}"`, 'use GROUP BY');
    const keys = new Set(query.groupBy.map(exprKey));
    for (const t of query.targets) checkAggregateSafe(t.expr, keys, 'the select list', ds);
    if (query.having) checkAggregateSafe(query.having, keys, 'HAVING', ds);
    for (const o of query.orderBy) checkAggregateSafe(o.expr, keys, 'ORDER BY', ds);

    const applied: string[] = [];
    const unitCounts: Expr[] = [];
    let k = 0;
    const withUnit = (f: FromItem): FromItem => {
      if (f.kind === 'join') return { ...f, left: withUnit(f.left), right: withUnit(f.right) };
      if (f.kind !== 'dataset' || !sizes.has(f.dataset)) return f;
      const def = ctx.datasets.get(f.dataset)!;
      if (!def.privacyUnit) throw new GatehouseError('POLICY_DENIED', `dataset "${f.dataset}" is aggregation-only but declares no privacy unit; access is denied until the owner declares one`);
      const unitType = def.columns.find((c) => c.name === def.privacyUnit)!.type;
      k = Math.max(k, sizes.get(f.dataset)!);
      unitCounts.push({ kind: 'func', name: 'count', args: [{ kind: 'column', relation: f.alias, name: UNIT_COLUMN, lineage: { sources: new Set() } }], star: false, distinct: true, filter: null, over: null });
      applied.push(`aggregationOnly:${f.dataset}(min ${sizes.get(f.dataset)!} distinct ${def.privacyUnit})`);
      return { ...f, scan: { ...f.scan!, columns: [...f.scan!.columns, { name: UNIT_COLUMN, expr: { kind: 'raw', name: def.privacyUnit, type: unitType } }] } };
    };
    const from = withUnit(query.from!);
    // The distinct units behind each group leave the engine as hidden columns; disclosure
    // control (primary and secondary suppression, rounding) decides in the release step
    // which groups may be published. Small groups are therefore not filtered here.
    const units: Expr = unitCounts.length === 1 ? unitCounts[0]! : { kind: 'func', name: 'least', args: unitCounts, star: false, distinct: false, filter: null, over: null };
    // CASE fixes the evaluation order: the user's HAVING is only evaluated on groups that
    // reach the threshold (so it cannot fail on, or filter, a small group); small groups
    // pass through to disclosure control, which withholds them.
    const reaches: Expr = { kind: 'binary', op: '>=', left: units, right: { kind: 'literal', type: 'number', value: String(k) } };
    const having: Expr | null = query.having
      ? { kind: 'case', operand: null, whens: [{ when: reaches, then: query.having }], else: { kind: 'literal', type: 'boolean', value: true } }
      : null;
    const targets = [...query.targets, { expr: units, alias: UNITS_OUTPUT, fromStar: false }];
    const keys2 = new Set(query.groupBy.map(exprKey));
    const sdc: SdcPlan = {
      threshold: k,
      rounding: roundingFor(query, ctx, sizes),
      visibleColumns: query.targets.length,
      groupKeys: query.targets.map((t, i) => (keys2.has(exprKey(t.expr)) ? i : -1)).filter((i) => i >= 0),
      measures: query.targets.map((t, i) => {
        const e = t.expr;
        if (e.kind === 'func' && e.name === 'count' && !e.distinct && e.over === null) return { index: i, kind: 'count' as const };
        if (e.kind === 'func' && e.name === 'sum' && !e.distinct && e.over === null) return { index: i, kind: 'sum' as const };
        return null;
      }).filter((m): m is { index: number; kind: 'count' | 'sum' } => m !== null),
      limit: query.limit,
      offset: query.offset ?? 0,
      probe: from.kind === 'dataset' && sizes.has(from.dataset) ? probeFor(from, query, k) : null,
    };
    return { query: { ...query, from, having, targets, limit: MAX_GROUPS + 1, offset: null }, applied, disclosure: sdc };
  },
};

/** Groups an aggregation-only query may produce before disclosure control (a memory bound). */
export const MAX_GROUPS = 1_000_000;
export const UNITS_OUTPUT = '__gh_units';

/**
 * How the release step protects an aggregation-only result: which output columns are group
 * keys and additive measures, the unit threshold, rounding, and the paging it takes over.
 */
export interface SdcPlan {
  readonly threshold: number;
  readonly rounding: 'none' | 'nearest5' | 'midpoint6';
  /** Output columns the caller sees; the engine returns one more (distinct units). */
  readonly visibleColumns: number;
  readonly groupKeys: readonly number[];
  readonly measures: readonly { readonly index: number; readonly kind: 'count' | 'sum' }[];
  readonly limit: number | null;
  readonly offset: number;
  /** For differencing detection: single-dataset queries without subqueries in WHERE. */
  readonly probe: DifferencingProbe | null;
}

function probeFor(from: Extract<FromItem, { kind: 'dataset' }>, query: Select, k: number): DifferencingProbe | null {
  const predicate = probePredicate(query.where, from.alias);
  if (predicate === null) return null;
  return { dataset: from.dataset, scan: { ...from, alias: PROBE_ALIAS }, predicate, unitColumn: UNIT_COLUMN, threshold: k };
}

function roundingFor(query: Select, ctx: GovernContext, sizes: ReadonlyMap<string, number>): SdcPlan['rounding'] {
  const order = ['none', 'nearest5', 'midpoint6'] as const;
  let r: SdcPlan['rounding'] = 'none';
  for (const ds of sizes.keys()) for (const o of obligationsFor(ctx, ds)) {
    const want = o.aggregationOnly?.rounding ?? 'none';
    if (order.indexOf(want) > order.indexOf(r)) r = want;
  }
  void query;
  return r;
}
