/**
 * Split aggregates: one query over a dataset held in several regions, answered by each
 * region's governed partial aggregate and combined on the node that received it. Only
 * partials that stay exact when added may be combined: `count(*)`, `count(col)` and
 * `sum(col)` (each region's release, noisy or not, is added as it is: the sum of
 * differentially private releases is still one, charged in each region). Anything else
 * — avg, min/max, DISTINCT, HAVING, LIMIT, ORDER BY, subqueries, joins, a GROUP BY key
 * the query does not select — cannot be decomposed safely and is refused, naming the part.
 */
import { GatehouseError } from '../errors.ts';
import type { CellValue, ResultColumn } from '../engine/engine.ts';
import type { Expr, Select } from '../query/ir.ts';

export interface SplitShape {
  /** Output columns that are group keys. */
  readonly keys: readonly number[];
  /** Output columns that are counts or sums, added across regions. */
  readonly sums: readonly number[];
}

function refuse(what: string): never {
  throw new GatehouseError('RESIDENCY_NOT_SPLITTABLE', `the query reads a dataset held in several regions, and ${what} cannot be combined from per-region partial aggregates`, {
    reasons: ['residency: split aggregates combine only count and sum'],
    hint: 'ask for count(...) and sum(...) grouped by columns you select (divide sum by count for an average); query one region for anything else',
  });
}

const same = (a: Expr, b: Expr): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Checks the parsed query decomposes into per-region partials and says how to add them. */
export function splitShape(q: Select): SplitShape {
  if (q.with.length > 0) refuse('a WITH clause');
  if (q.distinct) refuse('SELECT DISTINCT');
  if (!q.from || q.from.kind !== 'dataset') refuse('a join, subquery or set operation');
  if (q.having) refuse('HAVING (a group\'s total is known only after combining)');
  if (q.limit !== null || q.offset !== null) refuse('LIMIT or OFFSET');
  if (q.orderBy.length > 0) refuse('ORDER BY (the combined rows come back ordered by their group keys)');
  const keys: number[] = [];
  const sums: number[] = [];
  q.targets.forEach((t, i) => {
    const e = t.expr;
    if (e.kind === 'func' && (e.name === 'count' || e.name === 'sum')) {
      if (e.distinct) refuse(`${e.name}(DISTINCT ...)`);
      if (e.over) refuse('a window function');
      if (e.filter) refuse(`${e.name}(...) FILTER`);
      sums.push(i);
    } else if (e.kind === 'func' && e.over === null && ['avg', 'min', 'max', 'stddev', 'variance', 'median', 'quantile_cont', 'string_agg', 'array_agg'].includes(e.name)) {
      refuse(`${e.name}(...)`);
    } else if (q.groupBy.some((g) => same(g, e) || (g.kind === 'ref' && e.kind === 'ref' && g.name === e.name && (g.qualifier === null || e.qualifier === null)))) {
      keys.push(i);
    } else {
      refuse(`the select item "${t.alias}" (neither a group key nor count/sum)`);
    }
  });
  for (const g of q.groupBy) {
    if (!q.targets.some((t) => same(t.expr, g) || (g.kind === 'ref' && t.expr.kind === 'ref' && t.expr.name === g.name))) refuse('a GROUP BY key that is not selected');
  }
  if (sums.length === 0) refuse('a query without count or sum');
  return { keys, sums };
}

function add(a: CellValue, b: CellValue): CellValue {
  if (a === null) return b;
  if (b === null) return a;
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if ((typeof a === 'number' || typeof a === 'string') && (typeof b === 'number' || typeof b === 'string')) {
    const ints = /^-?\d+$/;
    if (ints.test(String(a)) && ints.test(String(b))) return (BigInt(a) + BigInt(b)).toString();
    return Number(a) + Number(b);
  }
  throw new GatehouseError('INTERNAL', 'a partial aggregate came back with a value that is not a number');
}

export interface Partial {
  readonly region: string;
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly CellValue[])[];
}

/** Adds the partials group by group; rows ordered by their keys. */
export function combine(shape: SplitShape, partials: readonly Partial[]): { columns: readonly ResultColumn[]; rows: CellValue[][] } {
  const first = partials[0]!;
  for (const p of partials) {
    if (p.columns.length !== first.columns.length || p.columns.some((c, i) => c.name !== first.columns[i]!.name)) {
      throw new GatehouseError('RESIDENCY_NOT_SPLITTABLE', `region ${p.region} released different columns for the same query (its policy shapes the result differently)`, { hint: 'query each region separately' });
    }
  }
  const groups = new Map<string, CellValue[]>();
  for (const p of partials) {
    for (const row of p.rows) {
      const key = JSON.stringify(shape.keys.map((i) => row[i] ?? null));
      const acc = groups.get(key);
      if (!acc) { groups.set(key, [...row]); continue; }
      for (const i of shape.sums) acc[i] = add(acc[i] ?? null, row[i] ?? null);
    }
  }
  const rows = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
  return { columns: first.columns, rows };
}
