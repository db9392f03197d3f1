/**
 * Aggregation-only: a dataset under this obligation may only be read by an aggregate
 * query whose every output group covers at least `minGroupSize` distinct privacy units.
 *
 * Rules (each refusal names the rule so the analyst can rewrite the query):
 * - the dataset is referenced only in the FROM of the outermost query (no subquery, CTE or
 *   derived table can reshape or re-expose its rows);
 * - it joins other datasets only by INNER/LEFT equi-joins on declared join columns, and
 *   never itself (checkJoins: no row amplification, no cross-join timing oracle);
 * - unit identifiers (privacy unit, join-only columns) only link datasets: never in WHERE,
 *   HAVING, GROUP BY, a CASE or a subquery (checkUnitIdentifiers);
 * - that query aggregates (GROUP BY and/or aggregate functions) and has no window functions;
 * - every output, HAVING and ORDER BY expression is a GROUP BY key or built from
 *   aggregates, whose arguments are bare columns (no CASE/FILTER isolating one person);
 * - aggregates that return an input value (min, max, median, mode, quantiles, string_agg,
 *   array_agg, list, any_value, first, last) are refused;
 * - a unit adds at most C = `maxRowsPerUnit` rows' worth to any group: one aggregate per
 *   (unit, group), bounded, then the group aggregate (unit-bound-preaggregate.ts; a row
 *   ranking, unit-bound-window.ts, only for aggregates that cannot be rebuilt from per-unit
 *   partials); nothing to bound where the catalog declares one row per unit and nothing is
 *   joined;
 * - each group's count of distinct privacy units leaves the engine as a hidden column
 *   (the group's cells, or count(unit) on one row per unit: no second scan);
 *   disclosure control (privacy/disclosure.ts) withholds groups below `minGroupSize`,
 *   adds secondary suppression so withheld groups cannot be recovered from totals, and
 *   optionally rounds counts. Withheld groups are dropped from the result.
 */
import { GatehouseError } from '../../errors.ts';
import { lookupFunction } from '../functions.ts';
import { childExprs, datasetItems, forEachExpr, forEachSelect, selectExprs, subqueriesOf, type Expr, type FromItem, type Select } from '../ir.ts';
import { obligationsFor, type GovernContext, type ObligationTransformer } from './context.ts';
import { PROBE_ALIAS, probeExpr, probePredicate, type DifferencingProbe } from './differencing-probe.ts';
import { exprKey } from './expr-key.ts';
import type { UnitBound } from './unit-bound.ts';
import { boundByPreAggregation } from './unit-bound-preaggregate.ts';
import { boundByRanking } from './unit-bound-window.ts';

export const UNIT_COLUMN = '__gh_unit';

function violation(message: string, hint: string): never {
  throw new GatehouseError('OBLIGATION_VIOLATION', message, { hint });
}

export { exprKey };

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
    checkJoins(query.from!, sizes, ctx);
    checkUnitIdentifiers(query, protectedIdentifiers(sizes, ctx));
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
      // One row per unit (declared by the owner) and no join that could repeat a row: the
      // rows' non-null units are distinct already, and count(unit) needs no hash set.
      const distinct = !(def.oneRowPerUnit === true && query.from!.kind === 'dataset');
      unitCounts.push({ kind: 'func', name: 'count', args: [{ kind: 'column', relation: f.alias, name: UNIT_COLUMN, lineage: { sources: new Set() } }], star: false, distinct, filter: null, over: null });
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
    const probes = datasetItems(from).filter((d) => sizes.has(d.dataset)).map((d) => probeFor(d, from, query, sizes.get(d.dataset)!));
    // One row per unit (declared) and nothing joined: each unit adds at most one row already.
    const oneRow = query.from!.kind === 'dataset' && ctx.datasets.get(query.from!.dataset)?.oneRowPerUnit === true;
    const bounds = oneRow ? [] : datasetItems(from).filter((d) => sizes.has(d.dataset)).map((d) => ({ item: d, rows: maxRowsPerUnit(d.dataset, ctx) }));
    for (const b of bounds) applied.push(`aggregationOnly:${b.item.dataset}(≤${b.rows} rows per ${ctx.datasets.get(b.item.dataset)!.privacyUnit} and group)`);
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
      probe: probes[0] ?? null,
      probes,
    };
    const shaped: Select = { ...query, from, having, targets, limit: MAX_GROUPS + 1, offset: null };
    if (bounds.length === 0) return { query: shaped, applied, disclosure: sdc };
    // Bounded: one aggregate per (unit, group) then the group aggregate; aggregates that
    // cannot be recombined from per-unit partials keep the row-ranking plan.
    const unitBounds: UnitBound[] = bounds.map((b) => ({ unit: { kind: 'column', relation: b.item.alias, name: UNIT_COLUMN, lineage: { sources: new Set() } }, rows: b.rows }));
    const typeOf = (c: Extract<Expr, { kind: 'column' }>) => {
      const item = datasetItems(from).find((d) => d.alias.toLowerCase() === c.relation.toLowerCase());
      const expr = item?.scan?.columns.find((x) => x.name === c.name)?.expr;
      return expr?.kind === 'raw' ? expr.type : null;
    };
    const preAggregated = boundByPreAggregation({ ...query, from }, unitBounds, { threshold: k, unitsAlias: UNITS_OUTPUT, limit: MAX_GROUPS + 1, typeOf });
    return { query: preAggregated ?? boundByRanking(shaped, unitBounds), applied, disclosure: sdc };
  },
};

/** Rows one unit may add to one group: the smallest `maxRowsPerUnit` of the dataset's obligations. */
function maxRowsPerUnit(dataset: string, ctx: GovernContext): number {
  let c = Infinity;
  for (const o of obligationsFor(ctx, dataset)) if (o.aggregationOnly) c = Math.min(c, o.aggregationOnly.maxRowsPerUnit ?? DEFAULT_MAX_ROWS_PER_UNIT);
  return Number.isFinite(c) ? c : DEFAULT_MAX_ROWS_PER_UNIT;
}

/** Default of `aggregationOnly.maxRowsPerUnit` (docs/privacy.md says why 50). */
export const DEFAULT_MAX_ROWS_PER_UNIT = 50;

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
  /** For differencing detection: the first of `probes` (what the pipeline checks today). */
  readonly probe: DifferencingProbe | null;
  /** One probe per aggregation-only dataset the query reads (joins and subqueries included). */
  readonly probes: readonly DifferencingProbe[];
}

/**
 * The rows this query selects from one protected dataset, as a predicate over that
 * dataset's governed scan alone (so it can be compared with any earlier query on the
 * dataset, whatever that one joined). A single-dataset WHERE without correlated subqueries
 * is used as it is; anything else (joins, correlated subqueries) becomes "the unit is among
 * those the query's FROM and WHERE select": `unit IN (SELECT alias.unit FROM ... WHERE ...)`.
 */
function probeFor(item: Extract<FromItem, { kind: 'dataset' }>, from: FromItem, query: Select, k: number): DifferencingProbe {
  const scan = { ...item, alias: PROBE_ALIAS };
  const unit = (relation: string): Expr => ({ kind: 'column', relation, name: UNIT_COLUMN, lineage: { sources: new Set() } });
  const simple = from.kind === 'dataset' && !correlated(query.where, item.alias);
  const wrapped = (where: Expr | null): Expr => ({
    kind: 'inQuery', arg: unit(PROBE_ALIAS), negated: false,
    query: { kind: 'select', with: [], distinct: false, targets: [{ expr: unit(item.alias), alias: UNIT_COLUMN }], from, where, groupBy: [], having: null, orderBy: [], limit: null, offset: null },
  });
  const rowPredicate = (where: Expr | null): Expr => (simple ? probePredicate(where, item.alias) : null) ?? wrapped(where);
  // Group keys in the order of the visible key columns; a GROUP BY key that is not selected
  // makes cells impossible to name (the audit then withholds them).
  const keyTargets = query.targets.filter((t) => query.groupBy.some((g) => exprKey(g) === exprKey(t.expr))).map((t) => t.expr);
  const allKeysVisible = query.groupBy.every((g) => keyTargets.some((t) => exprKey(t) === exprKey(g)));
  const cell = (values: readonly unknown[]): Expr | null => {
    if (!allKeysVisible || values.length !== keyTargets.length) return null;
    let where: Expr | null = query.where;
    for (let i = 0; i < keyTargets.length; i++) {
      const lit = valueLiteral(values[i]);
      if (lit === null) return null;
      const eq: Expr = lit.kind === 'literal' && lit.type === 'null'
        ? { kind: 'isNull', arg: keyTargets[i]!, negated: false }
        : { kind: 'binary', op: '=', left: keyTargets[i]!, right: lit };
      where = where === null ? eq : { kind: 'binary', op: 'AND', left: where, right: eq };
    }
    return rowPredicate(where);
  };
  const keys = simple ? query.groupBy.map((g) => probeExpr(g, item.alias)) : null;
  return {
    dataset: item.dataset, scan, predicate: rowPredicate(query.where), unitColumn: UNIT_COLUMN, threshold: k, cell,
    keys: keys && keys.every((x): x is Expr => x !== null) ? keys : null,
  };
}

/** A released group-key value written back as a literal (null when it has no literal form). */
function valueLiteral(v: unknown): Expr | null {
  if (v === null || v === undefined) return { kind: 'literal', type: 'null', value: null };
  if (typeof v === 'boolean') return { kind: 'literal', type: 'boolean', value: v };
  if (typeof v === 'string') return { kind: 'literal', type: 'string', value: v };
  if (typeof v === 'number' && Number.isFinite(v)) {
    const lit: Expr = { kind: 'literal', type: 'number', value: String(Math.abs(v)) };
    return v < 0 ? { kind: 'unary', op: '-', arg: lit } : lit;
  }
  return null;
}

/** Does a subquery in `where` refer to the outer alias (so it cannot be moved onto the probe alias)? */
function correlated(where: Expr | null, alias: string): boolean {
  if (where === null) return false;
  let found = false;
  for (const sub of subqueriesOf(where)) {
    forEachSelect(sub, (b) => {
      const exprs = [...selectExprs(b)];
      const ons = (f: FromItem | null): void => { if (f?.kind === 'join') { ons(f.left); ons(f.right); if (f.on) exprs.push(f.on); } };
      ons(b.from);
      for (const e of exprs) forEachExpr(e, (x) => { if (x.kind === 'column' && x.relation.toLowerCase() === alias.toLowerCase()) found = true; });
    });
  }
  return found;
}

/**
 * Joins under aggregation-only (issue 12 §2): a join can multiply one person's rows (a
 * self-join with `ON a.k = X OR a.k = b.k` counts the chosen row N times) and a cross join
 * guarded by a predicate on one person runs long or not depending on their value. So a
 * protected dataset joins only datasets (no derived tables), once (no self-join), by INNER
 * or LEFT equi-join whose every conjunct is `x.col = y.col` on columns declared as join
 * columns (`joinOnly`, or the privacy unit) of their datasets.
 */
function checkJoins(from: FromItem, sizes: ReadonlyMap<string, number>, ctx: GovernContext): void {
  if (from.kind === 'dataset') return;
  const ds = datasetItems(from).find((d) => sizes.has(d.dataset))?.dataset ?? '';
  const seen = new Set<string>();
  const joinColumns = (dataset: string): Set<string> => {
    const out = new Set(obligationsFor(ctx, dataset).flatMap((o) => o.joinOnly));
    const unit = ctx.datasets.get(dataset)?.privacyUnit;
    if (unit) out.add(unit);
    return out;
  };
  const aliases = (f: FromItem): Map<string, string> => {
    if (f.kind === 'dataset') return new Map([[f.alias.toLowerCase(), f.dataset]]);
    if (f.kind === 'join') return new Map([...aliases(f.left), ...aliases(f.right)]);
    violation(`a query over aggregation-only dataset "${ds}" may join only datasets, not subqueries or CTEs`, 'join the datasets directly');
  };
  const walk = (f: FromItem): void => {
    if (f.kind === 'dataset') {
      if (sizes.has(f.dataset) && seen.has(f.dataset)) violation(`aggregation-only dataset "${f.dataset}" may not be joined with itself`, 'query it once and group by the columns you need');
      seen.add(f.dataset);
      return;
    }
    if (f.kind !== 'join') { aliases(f); return; }
    walk(f.left); walk(f.right);
    if (f.type !== 'inner' && f.type !== 'left') violation(`${f.type.toUpperCase()} JOIN is refused with aggregation-only dataset "${ds}"`, 'use an INNER or LEFT JOIN ... ON a.key = b.key on declared join columns');
    const left = aliases(f.left), right = aliases(f.right);
    const conjuncts: Expr[] = [];
    const split = (e: Expr): void => { if (e.kind === 'binary' && e.op === 'AND') { split(e.left); split(e.right); } else conjuncts.push(e); };
    if (f.on) split(f.on);
    if (conjuncts.length === 0) violation(`a join with aggregation-only dataset "${ds}" needs an ON condition`, 'join on declared join columns: ON a.key = b.key');
    for (const c of conjuncts) {
      const ok = c.kind === 'binary' && c.op === '=' && c.left.kind === 'column' && c.right.kind === 'column' && (() => {
        const l = c.left as Extract<Expr, { kind: 'column' }>, r = c.right as Extract<Expr, { kind: 'column' }>;
        const sideOf = (x: typeof l): string | undefined => left.get(x.relation.toLowerCase()) ?? right.get(x.relation.toLowerCase());
        const crosses = (left.has(l.relation.toLowerCase()) && right.has(r.relation.toLowerCase())) || (right.has(l.relation.toLowerCase()) && left.has(r.relation.toLowerCase()));
        const declared = (x: typeof l): boolean => { const d = sideOf(x); return d !== undefined && joinColumns(d).has(x.name); };
        return crosses && declared(l) && declared(r);
      })();
      if (!ok) violation(`a join with aggregation-only dataset "${ds}" must be an equi-join on declared join columns`, 'write ON a.key = b.key with columns the data owner declared as join columns (joinOnly); other conditions go in WHERE');
    }
  };
  walk(from);
}

/** "dataset.column" of every unit identifier: each protected dataset's privacy unit and every join-only column. */
function protectedIdentifiers(sizes: ReadonlyMap<string, number>, ctx: GovernContext): Set<string> {
  const out = new Set<string>();
  for (const [ds, obligations] of ctx.obligations) for (const o of obligations) for (const c of o.joinOnly) out.add(`${ds}.${c}`);
  for (const ds of sizes.keys()) { const u = ctx.datasets.get(ds)?.privacyUnit; if (u) out.add(`${ds}.${u}`); }
  return out;
}

/**
 * A unit identifier names one person: `WHERE patient_id <> 17` next to the unfiltered total
 * is that patient's exact value. Under aggregation-only it may link datasets in JOIN ... ON
 * and nothing else: not in WHERE, HAVING or GROUP BY, not inside a CASE, not in a subquery.
 */
function checkUnitIdentifiers(query: Select, ids: ReadonlySet<string>): void {
  if (ids.size === 0) return;
  const hit = (e: Expr): string | null => {
    let found: string | null = null;
    const visit = (x: Expr): void => {
      forEachExpr(x, (y) => {
        if (y.kind === 'column') for (const s of y.lineage.sources) if (ids.has(s)) found ??= s;
        if (y.kind === 'inQuery' || y.kind === 'exists' || y.kind === 'scalarQuery') {
          forEachSelect(y.query, (b) => {
            for (const z of selectExprs(b)) visit(z);
            const ons = (f: FromItem | null): void => { if (f?.kind === 'join') { ons(f.left); ons(f.right); if (f.on) visit(f.on); } };
            ons(b.from);
          });
        }
      });
    };
    visit(e);
    return found;
  };
  const refuse = (where: string, id: string): never => violation(`"${id}" identifies individuals and may not be used in ${where} of an aggregation-only query`, 'use it only to join datasets (JOIN ... ON a.key = b.key); filter and group by other columns');
  if (query.where) { const h = hit(query.where); if (h) refuse('WHERE', h); }
  if (query.having) { const h = hit(query.having); if (h) refuse('HAVING', h); }
  for (const g of query.groupBy) { const h = hit(g); if (h) refuse('GROUP BY', h); }
  for (const e of [...query.targets.map((t) => t.expr), ...query.orderBy.map((o) => o.expr)]) {
    forEachExpr(e, (x) => { if (x.kind === 'case') { const h = hit(x); if (h) refuse('a CASE expression', h); } });
  }
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
