/**
 * Differential privacy, query side: rewrites an aggregate query over a dataset under a
 * `differentialPrivacy` obligation into one that bounds every privacy unit's contribution,
 * and returns a release plan (sensitivities, group keys, public domains) that the privacy
 * layer uses to add noise, select partitions and charge the budget. The query layer knows
 * nothing about samplers or budgets: it hands over data.
 *
 * Contribution bounding (user-level, per privacy unit u):
 *   base    rows of the governed scan, WHERE applied, group keys computed, values clamped
 *           to the column's declared bounds;
 *   per unit and group: at most C rows count (least(count, C)), the unit's sum clamped
 *           to [min(0, C·lo), max(0, C·hi)];
 *   per unit: at most L groups, chosen by a per-query seeded hash (not data-adaptive);
 *   result  per group: distinct units, bounded rows, bounded non-null counts and sums.
 * The stages run as one pipeline (each CTE is read once: one scan, one per-(unit, group)
 * hash aggregate, one ranking window per unit, one group aggregate; bench/query.ts measures
 * it against the same bounding written by hand). The ranking is left out when the query
 * cannot have more than L groups (no GROUP BY key, or public-domain keys whose domains
 * multiply to ≤ L): a unit then cannot exceed L groups, and the window costs as much as
 * the per-unit aggregate (docs/benchmarks.md, issue 15 session 6). Where the catalog declares one row per
 * unit (`oneRowPerUnit`), each unit already adds ≤ 1 row to ≤ 1 group, so the per-unit
 * stages are skipped: the numbers are those the bounding would produce, and the
 * sensitivities below (computed from L and C, which bound 1) still hold, conservatively.
 * Sensitivities then follow from L, C and the bounds (docs/privacy.md):
 *   units: L1 = L,      L2 = √L
 *   rows:  L1 = L·C,    L2 = √L·C
 *   sums:  L1 = L·C·M,  L2 = √L·C·M   with M = max(|lo|, |hi|)
 */
import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../../errors.ts';
import type { DifferentialPrivacyDef } from '../../model/types.ts';
import { lookupFunction } from '../functions.ts';
import { datasetItems, forEachExpr, forEachSelect, type Expr, type FromItem, type Select } from '../ir.ts';
import { exprKey, UNIT_COLUMN } from './aggregation-only.ts';
import { obligationsFor, type GovernContext, type ObligationTransformer } from './context.ts';

export type DpMeasureKind = 'units' | 'rows' | 'nonNull' | 'sum' | 'histogram';

/** Buckets of the bounded range for DP quantiles (a noisy histogram per group). */
export const HISTOGRAM_BUCKETS = 64;

export interface DpMeasure {
  readonly kind: DpMeasureKind;
  /** The value column (for nonNull and sum). */
  readonly column: string | null;
  /** Sensitivities of the per-group vector over all groups a unit can touch. */
  readonly l1: number;
  readonly l2: number;
  /** Largest change one unit can make to one group's value. */
  readonly linf: number;
  /** Index of this measure's (first) column in the engine result. */
  readonly resultIndex: number;
  /** Histogram measures: number of bucket columns and the bounds they split. */
  readonly buckets?: number;
  readonly bounds?: readonly [number, number];
}

export type DpOutput =
  | { readonly kind: 'key'; readonly alias: string; readonly key: number }
  | { readonly kind: 'count'; readonly alias: string; readonly measure: number }
  | { readonly kind: 'sum'; readonly alias: string; readonly measure: number }
  | { readonly kind: 'avg'; readonly alias: string; readonly sum: number; readonly count: number; readonly bounds: readonly [number, number] | null }
  | { readonly kind: 'quantile'; readonly alias: string; readonly measure: number; readonly q: number };

export interface DpReleasePlan {
  readonly dataset: string;
  readonly def: DifferentialPrivacyDef;
  readonly keyCount: number;
  readonly measures: readonly DpMeasure[];
  /** Index of the `units` measure, or -1 when neither asked for nor needed for partition selection. */
  readonly unitsMeasure: number;
  readonly outputs: readonly DpOutput[];
  /** Per group key: its public domain, or null if the key's values are not public. */
  readonly publicDomains: readonly (readonly string[] | null)[];
  readonly orderBy: readonly { readonly output: number; readonly desc: boolean }[];
  readonly limit: number | null;
  readonly offset: number;
}

function refuse(message: string, hint: string): never {
  throw new GatehouseError('OBLIGATION_VIOLATION', message, { hint });
}

const col = (relation: string, name: string): Expr => ({ kind: 'column', relation, name, lineage: { sources: new Set() } });
const num = (n: number): Expr => ({ kind: 'literal', type: 'number', value: String(n) });
const fn = (name: string, args: Expr[], opts: { star?: boolean } = {}): Expr => ({ kind: 'func', name, args, star: opts.star ?? false, distinct: false, filter: null, over: null });
const sel = (q: Partial<Select> & Pick<Select, 'targets'>): Select => ({ kind: 'select', with: [], distinct: false, from: null, where: null, groupBy: [], having: null, orderBy: [], limit: null, offset: null, ...q });

function dpDatasets(query: Select, ctx: GovernContext): Map<string, DifferentialPrivacyDef> {
  const out = new Map<string, DifferentialPrivacyDef>();
  forEachSelect(query, (b) => {
    for (const d of datasetItems(b.from)) {
      const defs = obligationsFor(ctx, d.dataset).map((o) => o.differentialPrivacy).filter((x): x is DifferentialPrivacyDef => !!x);
      if (defs.length > 1) refuse(`dataset "${d.dataset}" carries two differential-privacy obligations; access is denied until the policy is fixed`, 'ask the data owner');
      if (defs[0]) out.set(d.dataset, defs[0]);
    }
  });
  return out;
}

interface Aggregate { readonly kind: 'count' | 'countUnits' | 'countColumn' | 'sum' | 'avg' | 'quantile'; readonly column: string | null; readonly q?: number }

function classifyAggregate(e: Expr, unitRelation: string, unit: string, ds: string): Aggregate {
  if (e.kind !== 'func' || lookupFunction(e.name)?.kind !== 'aggregate' || e.over) {
    refuse(`every output of a differentially private query over "${ds}" must be a GROUP BY key or an aggregate`, 'use count(*), count(DISTINCT <unit>), count(col), sum(col) or avg(col)');
  }
  if (e.filter) refuse(`FILTER is not available in differentially private queries over "${ds}"`, 'filter in WHERE');
  const arg = e.args[0];
  const bare = arg && arg.kind === 'column' && arg.relation === unitRelation ? arg.name : null;
  if (e.name === 'count' && e.star) return { kind: 'count', column: null };
  if (e.name === 'count' && e.distinct) {
    if (bare === unit) return { kind: 'countUnits', column: null };
    refuse(`count(DISTINCT ...) under differential privacy counts only the privacy unit "${unit}"`, `use count(DISTINCT ${unit})`);
  }
  if (e.distinct) refuse(`${e.name}(DISTINCT ...) is not available under differential privacy`, 'drop DISTINCT');
  if (!bare) refuse(`the argument of ${e.name}() must be a column of "${ds}" under differential privacy`, 'aggregate a column directly, e.g. sum(cost)');
  if (e.name === 'count') return { kind: 'countColumn', column: bare };
  if (e.name === 'sum') return { kind: 'sum', column: bare };
  if (e.name === 'avg') return { kind: 'avg', column: bare };
  if (e.name === 'median') return { kind: 'quantile', column: bare, q: 0.5 };
  if (e.name === 'quantile_cont' || e.name === 'quantile_disc') {
    const qa = e.args[1];
    const q = qa && qa.kind === 'literal' && qa.type === 'number' ? Number(qa.value) : NaN;
    if (!(q > 0 && q < 1)) refuse(`${e.name}() needs a literal fraction strictly between 0 and 1 under differential privacy`, `e.g. ${e.name}(cost, 0.9)`);
    return { kind: 'quantile', column: bare, q };
  }
  refuse(`${e.name}() is not available under differential privacy`, 'use count, count(DISTINCT <unit>), sum, avg, median or quantile_cont(col, q)');
}

export const differentialPrivacy: ObligationTransformer = {
  name: 'differentialPrivacy',
  apply(query, ctx) {
    const dps = dpDatasets(query, ctx);
    if (dps.size === 0) return { query, applied: [] };
    forEachSelect(query, (b) => {
      if (b === query) return;
      for (const d of datasetItems(b.from)) if (dps.has(d.dataset)) refuse(`dataset "${d.dataset}" is released only with differential privacy, and it is read inside a subquery, CTE or derived table`, `reference "${d.dataset}" directly in the FROM of the outer query`);
    });
    const from = query.from;
    if (!from || from.kind !== 'dataset' || !dps.has(from.dataset)) {
      refuse(`a differentially private query reads exactly one dataset, without joins (${[...dps.keys()].join(', ')})`, 'query the dataset on its own');
    }
    const ds = ctx.datasets.get(from.dataset)!;
    const def = dps.get(from.dataset)!;
    const unit = ds.privacyUnit;
    if (!unit) throw new GatehouseError('POLICY_DENIED', `dataset "${ds.name}" requires differential privacy but declares no privacy unit; access is denied until the owner declares one`);
    if (query.distinct) refuse('SELECT DISTINCT is not available under differential privacy', 'use GROUP BY');
    if (query.having) refuse('HAVING is not available under differential privacy (it would act on exact values)', 'filter the released rows yourself, or use WHERE');
    for (const t of query.targets) forEachExpr(t.expr, (x) => { if (x.kind === 'func' && x.over) refuse('window functions are not available under differential privacy', 'use GROUP BY'); });
    if (query.groupBy.length > 8) refuse('at most 8 GROUP BY keys under differential privacy', 'group by fewer columns');

    const keys = query.groupBy;
    const oneRow = ds.oneRowPerUnit === true;
    const keyIndex = new Map(keys.map((k, i) => [exprKey(k), i]));
    const L = def.maxGroupsPerUnit;
    const C = def.maxRowsPerUnitPerGroup;
    const measures: DpMeasure[] = [];
    const measureFor = new Map<string, number>();
    const addMeasure = (kind: DpMeasureKind, column: string | null): number => {
      const k = `${kind}:${column ?? ''}`;
      const have = measureFor.get(k);
      if (have !== undefined) return have;
      let linf = 1;
      if (kind === 'rows' || kind === 'nonNull' || kind === 'histogram') linf = C;
      let bounds: readonly [number, number] | undefined;
      if (kind === 'sum' || kind === 'histogram') {
        const c = ds.columns.find((x) => x.name === column)!;
        if (!c.bounds) refuse(`sum, avg and quantiles over "${ds.name}.${column}" need declared bounds under differential privacy`, 'ask the data owner to declare bounds: [low, high] on the column');
        if (kind === 'sum') linf = C * Math.max(Math.abs(c.bounds[0]), Math.abs(c.bounds[1]));
        bounds = c.bounds;
      }
      // A unit's ≤ C rows in a group move at most C histogram counts in total (L1 and L2 ≤ C).
      const extra = kind === 'histogram' ? { buckets: HISTOGRAM_BUCKETS, bounds } : {};
      measures.push({ kind, column, linf, l1: L * linf, l2: Math.sqrt(L) * linf, resultIndex: 0, ...extra });
      measureFor.set(k, measures.length - 1);
      return measures.length - 1;
    };
    const needsSelection = keys.length > 0 && keys.some((k) => !(k.kind === 'column' && k.relation === from.alias && def.publicGroups[k.name]));
    // Distinct units are released only when asked for or needed to select partitions.
    const wantsUnits = query.targets.some((t) => t.expr.kind === 'func' && t.expr.name === 'count' && t.expr.distinct);
    const unitsMeasure = needsSelection || wantsUnits ? addMeasure('units', null) : -1;
    const outputs = query.targets.map((t) => {
      const ki = keyIndex.get(exprKey(t.expr));
      if (ki !== undefined) return { kind: 'key' as const, alias: t.alias, key: ki };
      const a = classifyAggregate(t.expr, from.alias, unit, ds.name);
      switch (a.kind) {
        case 'count': return { kind: 'count' as const, alias: t.alias, measure: addMeasure('rows', null) };
        case 'countUnits': return { kind: 'count' as const, alias: t.alias, measure: unitsMeasure >= 0 ? unitsMeasure : addMeasure('units', null) };
        case 'countColumn': return { kind: 'count' as const, alias: t.alias, measure: addMeasure('nonNull', a.column) };
        case 'sum': return { kind: 'sum' as const, alias: t.alias, measure: addMeasure('sum', a.column) };
        case 'avg': return { kind: 'avg' as const, alias: t.alias, sum: addMeasure('sum', a.column), count: addMeasure('nonNull', a.column), bounds: ds.columns.find((c) => c.name === a.column)!.bounds };
        case 'quantile': return { kind: 'quantile' as const, alias: t.alias, measure: addMeasure('histogram', a.column), q: a.q! };
      }
    });
    // Result layout: keys, then each measure's columns (a histogram takes one per bucket).
    let offset = keys.length;
    for (let i = 0; i < measures.length; i++) {
      const m = measures[i]!;
      measures[i] = { ...m, resultIndex: offset };
      offset += m.buckets ?? 1;
    }
    const orderBy = query.orderBy.map((o) => {
      const k = exprKey(o.expr);
      const i = query.targets.findIndex((t) => exprKey(t.expr) === k);
      if (i < 0) refuse('ORDER BY must name an output column under differential privacy (ordering happens after noise)', 'order by a selected column or its position');
      return { output: i, desc: o.desc };
    });
    const publicDomains = keys.map((k) => {
      if (k.kind !== 'column' || k.relation !== from.alias) return null;
      return def.publicGroups[k.name] ?? null;
    });

    // base: governed scan → keys, unit, clamped values
    const valueColumns = [...new Set(measures.filter((m) => m.column !== null).map((m) => m.column!))];
    const clamp = (name: string): Expr => {
      const c = ds.columns.find((x) => x.name === name)!;
      const v: Expr = { kind: 'cast', arg: col(from.alias, name), type: { name: 'DOUBLE' } };
      if (!c.bounds) return v;
      return { kind: 'case', operand: null, whens: [{ when: { kind: 'isNull', arg: col(from.alias, name), negated: false }, then: { kind: 'literal', type: 'null', value: null } }], else: fn('least', [fn('greatest', [v, num(c.bounds[0])]), num(c.bounds[1])]) };
    };
    const scan: FromItem = {
      ...from,
      scan: { ...from.scan!, columns: [...from.scan!.columns, { name: UNIT_COLUMN, expr: { kind: 'raw', name: unit, type: ds.columns.find((c) => c.name === unit)!.type } }] },
    };
    let where = query.where;
    publicDomains.forEach((dom, i) => {
      if (!dom) return;
      const inDomain: Expr = { kind: 'inList', arg: keys[i]!, list: dom.map((v) => ({ kind: 'literal', type: 'string', value: v }) as Expr), negated: false };
      where = where ? { kind: 'binary', op: 'AND', left: where, right: inDomain } : inDomain;
    });
    const g = (i: number): string => `__gh_g${i}`;
    const v = (c: string): string => `__gh_v_${valueColumns.indexOf(c)}`;
    const seed = randomBytes(6).readUIntBE(0, 6);
    const histograms = measures.filter((m) => m.kind === 'histogram');
    const bucketOf = (m: DpMeasure): Expr => {
      const [lo, hi] = m.bounds!;
      const width = (hi - lo) / HISTOGRAM_BUCKETS;
      const raw: Expr = fn('floor', [{ kind: 'binary', op: '/', left: { kind: 'binary', op: '-', left: clamp(m.column!), right: num(lo) }, right: num(width) }]);
      return fn('least', [num(HISTOGRAM_BUCKETS - 1), fn('greatest', [num(0), { kind: 'cast', arg: raw, type: { name: 'INTEGER' } }])]);
    };
    // Quantiles bound rows per unit and group exactly (≤ C rows, a seeded pseudo-random pick).
    const rowRank: Expr = {
      kind: 'func', name: 'row_number', args: [], star: false, distinct: false, filter: null,
      over: { partitionBy: [col(from.alias, UNIT_COLUMN), ...keys], orderBy: [{ expr: fn('hash', [...valueColumns.map((c) => col(from.alias, c)), num(seed)]), desc: false, nulls: null }] },
    };
    const base = sel({
      targets: [
        ...keys.map((k, i) => ({ expr: k, alias: g(i) })),
        { expr: col(from.alias, UNIT_COLUMN), alias: '__gh_u' },
        ...valueColumns.map((c) => ({ expr: clamp(c), alias: v(c) })),
        ...histograms.map((m) => ({ expr: bucketOf(m), alias: `${v(m.column!)}_b` })),
        ...(histograms.length && !oneRow ? [{ expr: rowRank, alias: '__gh_qr' }] : []),
      ],
      from: scan, where,
    });
    const B = '__gh_base', P = '__gh_pug', R = '__gh_ranked';
    if (oneRow) {
      // One row per unit (declared by the owner): every unit already adds at most one row to
      // one group, so the per-unit stage would compute least(1, C), a value already inside
      // [lo, hi] and one group ≤ L — the same numbers, without the per-unit hash aggregate
      // and the ranking window. Rows without a unit belong to no one and are left out.
      const b = (name: string): Expr => col(B, name);
      const oneRowExprs = (m: DpMeasure): Expr[] => {
        switch (m.kind) {
          case 'units': case 'rows': return [fn('count', [], { star: true })];
          case 'nonNull': return [fn('count', [b(v(m.column!))])];
          case 'sum': return [fn('coalesce', [fn('sum', [b(v(m.column!))]), num(0)])];
          case 'histogram': return Array.from({ length: HISTOGRAM_BUCKETS }, (_, i) => ({
            kind: 'func' as const, name: 'count', args: [], star: true, distinct: false, over: null,
            filter: { kind: 'binary' as const, op: '=' as const, left: b(`${v(m.column!)}_b`), right: num(i) },
          }));
        }
      };
      const single = sel({
        with: [{ name: B, query: base }],
        targets: [
          ...keys.map((_, i) => ({ expr: b(g(i)), alias: g(i) })),
          ...measures.flatMap((m, i) => oneRowExprs(m).map((expr, j) => ({ expr, alias: `__gh_m${i}_${j}` }))),
        ],
        from: { kind: 'cteRef', name: B, alias: B },
        where: { kind: 'isNull', arg: b('__gh_u'), negated: true },
        groupBy: keys.map((_, i) => b(g(i))),
      });
      return {
        query: single,
        applied: [`differentialPrivacy:${ds.name}(${def.mechanism}, ε=${def.epsilon}/query, one row per ${unit})`],
        release: { dataset: ds.name, def, keyCount: keys.length, measures, unitsMeasure, outputs, publicDomains, orderBy, limit: query.limit, offset: query.offset ?? 0 },
      };
    }
    const keyCols = (rel: string): Expr[] => keys.map((_, i) => col(rel, g(i)));
    const perUnit = sel({
      targets: [
        ...keys.map((_, i) => ({ expr: col(B, g(i)), alias: g(i) })),
        { expr: col(B, '__gh_u'), alias: '__gh_u' },
        { expr: fn('least', [fn('count', [], { star: true }), num(C)]), alias: '__gh_rows' },
        ...valueColumns.map((c) => ({ expr: fn('least', [fn('count', [col(B, v(c))]), num(C)]), alias: `${v(c)}_n` })),
        ...valueColumns.map((c) => {
          // A unit with n > C values counts as C values at its own mean: sum · C / n. The sum
          // and the count then describe the same C rows (an unbiased mean per unit), and
          // |sum| ≤ C · max(|lo|, |hi|) still holds; the clamp below is a second guard.
          const b = ds.columns.find((x) => x.name === c)!.bounds ?? [0, 0];
          const n = fn('count', [col(B, v(c))]);
          const scaled: Expr = { kind: 'case', operand: null, whens: [{ when: { kind: 'binary', op: '>', left: n, right: num(C) }, then: { kind: 'binary', op: '/', left: { kind: 'binary', op: '*', left: fn('sum', [col(B, v(c))]), right: num(C) }, right: n } }], else: fn('coalesce', [fn('sum', [col(B, v(c))]), num(0)]) };
          return { expr: fn('greatest', [fn('least', [scaled, num(Math.max(0, C * b[1]))]), num(Math.min(0, C * b[0]))]), alias: `${v(c)}_s` };
        }),
        ...histograms.flatMap((m) => Array.from({ length: HISTOGRAM_BUCKETS }, (_, i) => ({
          alias: `${v(m.column!)}_h${i}`,
          expr: {
            kind: 'func' as const, name: 'count', args: [], star: true, distinct: false, over: null,
            filter: { kind: 'binary' as const, op: 'AND' as const, left: { kind: 'binary' as const, op: '<=' as const, left: col(B, '__gh_qr'), right: num(C) }, right: { kind: 'binary' as const, op: '=' as const, left: col(B, `${v(m.column!)}_b`), right: num(i) } },
          },
        }))),
      ],
      from: { kind: 'cteRef', name: B, alias: B },
      groupBy: [...keyCols(B), col(B, '__gh_u')],
    });
    const rank: Expr = {
      kind: 'func', name: 'row_number', args: [], star: false, distinct: false, filter: null,
      over: { partitionBy: [col(P, '__gh_u')], orderBy: [{ expr: fn('hash', [col(P, '__gh_u'), ...keyCols(P), num(seed)]), desc: false, nulls: null }] },
    };
    const ranked = sel({
      targets: [
        ...keys.map((_, i) => ({ expr: col(P, g(i)), alias: g(i) })),
        { expr: col(P, '__gh_rows'), alias: '__gh_rows' },
        ...valueColumns.flatMap((c) => [{ expr: col(P, `${v(c)}_n`), alias: `${v(c)}_n` }, { expr: col(P, `${v(c)}_s`), alias: `${v(c)}_s` }]),
        ...histograms.flatMap((m) => Array.from({ length: HISTOGRAM_BUCKETS }, (_, i) => ({ expr: col(P, `${v(m.column!)}_h${i}`), alias: `${v(m.column!)}_h${i}` }))),
        { expr: rank, alias: '__gh_rank' },
      ],
      from: { kind: 'cteRef', name: P, alias: P },
    });
    // The ≤ L groups per unit bound needs the ranking only when the query can have more than
    // L groups: with no GROUP BY key there is one group, and when every key is restricted to
    // its public domain (the IN list above), a unit reaches at most the product of the
    // domains' sizes. Static facts of the query and the policy, never of the data, so the
    // plan's shape reveals nothing; the sensitivities are unchanged (L still bounds).
    const possibleGroups = keys.length === 0 ? 1 : publicDomains.reduce((n, d) => (d ? n * d.length : Infinity), 1);
    const rankGroups = possibleGroups > L;
    const F = rankGroups ? R : P;
    const measureExprs = (m: DpMeasure): Expr[] => {
      switch (m.kind) {
        case 'units': return [fn('count', [], { star: true })];
        case 'rows': return [fn('sum', [col(F, '__gh_rows')])];
        case 'nonNull': return [fn('sum', [col(F, `${v(m.column!)}_n`)])];
        case 'sum': return [fn('sum', [col(F, `${v(m.column!)}_s`)])];
        case 'histogram': return Array.from({ length: HISTOGRAM_BUCKETS }, (_, i) => fn('sum', [col(F, `${v(m.column!)}_h${i}`)]));
      }
    };
    const root = sel({
      with: [{ name: B, query: base }, { name: P, query: perUnit }, ...(rankGroups ? [{ name: R, query: ranked }] : [])],
      targets: [
        ...keys.map((_, i) => ({ expr: col(F, g(i)), alias: g(i) })),
        ...measures.flatMap((m, i) => measureExprs(m).map((expr, j) => ({ expr, alias: `__gh_m${i}_${j}` }))),
      ],
      from: { kind: 'cteRef', name: F, alias: F },
      where: rankGroups ? { kind: 'binary', op: '<=', left: col(R, '__gh_rank'), right: num(L) } : null,
      groupBy: keyCols(F),
    });
    const plan: DpReleasePlan = {
      dataset: ds.name, def, keyCount: keys.length, measures, unitsMeasure, outputs, publicDomains, orderBy,
      limit: query.limit, offset: query.offset ?? 0,
    };
    return {
      query: root,
      applied: [`differentialPrivacy:${ds.name}(${def.mechanism}, ε=${def.epsilon}/query, ≤${L} groups and ≤${C} rows per ${unit})`],
      release: plan,
    };
  },
};
