/**
 * Cost is bounded before execution (issue 12 §2, invariant 11): every join's output is
 * estimated from the catalog's row counts, and a query whose largest join would exceed
 * `maxJoinRows` is refused up front with QUERY_TOO_COSTLY — before any engine call, so the
 * refusal, and how long it takes, cannot depend on a value the caller may not see (a cross
 * join guarded by a predicate on one person is refused whatever that person's value).
 *
 * The estimate reads only row counts recorded when the engine opened (Engine.rowEstimates)
 * and the query's shape; never a WHERE clause's selectivity, which would depend on data:
 *   dataset            its recorded row count (a dataset without one: no estimate, no refusal)
 *   cross / non-equi   L × R   (the nested-loop output, whatever the predicate)
 *   equi-join          max(L, R) × fan-out, fan-out = 1 when one side is joined on its
 *                      privacy unit and declared one row per unit, else min(L, R, 100),
 *                      and never more than L × R
 *   derived / CTE      its FROM's estimate, capped by its LIMIT; a set operation L + R
 * Every block is checked, subqueries and CTEs included. The fan-out of 100 is a planning
 * bound, not a guarantee: an equi-join on a skewed key can exceed it, and the statement
 * timeout and memory limit still hold there (docs/sql.md).
 */
import { GatehouseError } from '../../errors.ts';
import { forEachSelect, type Expr, type FromItem, type Select } from '../ir.ts';
import type { GovernContext, ObligationTransformer } from './context.ts';

/** Default of `defaults.maxJoinRows`. */
export const DEFAULT_MAX_JOIN_ROWS = 1_000_000_000;
/** Rows one key value of the larger side is assumed to meet on the other side of an equi-join. */
export const EQUI_JOIN_FAN_OUT = 100;

type Estimate = number | null;

export function estimateRows(from: FromItem | null, ctx: GovernContext, ctes: Map<string, Estimate>, check: (rows: number) => void): Estimate {
  if (from === null) return 1;
  switch (from.kind) {
    case 'dataset': return ctx.rowEstimates?.get(from.dataset) ?? null;
    case 'cteRef': return ctes.get(from.name.toLowerCase()) ?? null;
    case 'derived': return blockRows(from.query, ctx, ctes, check);
    case 'setOp': {
      const l = blockRows(from.left, ctx, ctes, check), r = blockRows(from.right, ctx, ctes, check);
      return l === null || r === null ? null : l + r;
    }
    case 'join': {
      const l = estimateRows(from.left, ctx, ctes, check), r = estimateRows(from.right, ctx, ctes, check);
      if (l === null || r === null) return null;
      const product = l * r;
      const rows = from.type === 'cross' || !isEquiJoin(from) ? product
        : Math.min(product, Math.max(l, r) * (uniqueKeySide(from, ctx) ? 1 : Math.min(l, r, EQUI_JOIN_FAN_OUT)));
      check(rows);
      return rows;
    }
  }
}

/** `ctes` collects every CTE's estimate as it is defined (a name defined twice keeps the larger). */
function blockRows(q: Select, ctx: GovernContext, ctes: Map<string, Estimate>, check: (rows: number) => void): Estimate {
  for (const c of q.with) {
    const rows = blockRows(c.query, ctx, ctes, check), name = c.name.toLowerCase(), had = ctes.get(name);
    ctes.set(name, had === undefined ? rows : had === null || rows === null ? null : Math.max(had, rows));
  }
  const rows = estimateRows(q.from, ctx, ctes, check);
  return rows === null ? null : Math.min(rows, q.limit ?? Infinity);
}

function conjuncts(e: Expr | null): Expr[] {
  if (e === null) return [];
  if (e.kind === 'binary' && e.op === 'AND') return [...conjuncts(e.left), ...conjuncts(e.right)];
  return [e];
}

function aliasesOf(f: FromItem): Set<string> {
  if (f.kind === 'join') return new Set([...aliasesOf(f.left), ...aliasesOf(f.right)]);
  return new Set([('alias' in f ? f.alias : '').toLowerCase()]);
}

type Join = Extract<FromItem, { kind: 'join' }>;
type Column = Extract<Expr, { kind: 'column' }>;

/** The `l.x = r.y` conjuncts of ON that compare a column of each side. */
function equalities(j: Join): [Column, Column][] {
  const left = aliasesOf(j.left), right = aliasesOf(j.right);
  const out: [Column, Column][] = [];
  for (const c of conjuncts(j.on)) {
    if (c.kind !== 'binary' || c.op !== '=' || c.left.kind !== 'column' || c.right.kind !== 'column') continue;
    const a = c.left, b = c.right;
    if (left.has(a.relation.toLowerCase()) && right.has(b.relation.toLowerCase())) out.push([a, b]);
    else if (right.has(a.relation.toLowerCase()) && left.has(b.relation.toLowerCase())) out.push([b, a]);
  }
  return out;
}

function isEquiJoin(j: Join): boolean { return equalities(j).length > 0; }

/** One side is a dataset declared one row per unit, joined on its privacy unit: each row meets ≤ 1 row. */
function uniqueKeySide(j: Join, ctx: GovernContext): boolean {
  const unique = (side: FromItem, c: Column): boolean => {
    if (side.kind !== 'dataset' || side.alias.toLowerCase() !== c.relation.toLowerCase()) return false;
    const ds = ctx.datasets.get(side.dataset);
    return ds?.oneRowPerUnit === true && ds.privacyUnit === c.name;
  };
  return equalities(j).some(([l, r]) => unique(j.left, l) || unique(j.right, r));
}

export const costEstimate: ObligationTransformer = {
  name: 'costEstimate',
  apply(query, ctx) {
    if (!ctx.rowEstimates) return { query, applied: [] };
    const limit = ctx.maxJoinRows ?? DEFAULT_MAX_JOIN_ROWS;
    const check = (rows: number): void => {
      if (rows > limit) {
        throw new GatehouseError('QUERY_TOO_COSTLY', `a join in this query would produce more than the ${formatRows(limit)} rows a query may join (estimated from the datasets' sizes before it runs)`, { hint: 'join on declared keys (ON a.key = b.key) instead of a cross or non-equi join, or aggregate each dataset first' });
      }
    };
    // The whole tree first (CTEs are estimated where they are defined, every join checked),
    // then each block again, so expression subqueries (IN, EXISTS, scalar) are checked too,
    // reading CTEs by the estimates the first pass recorded.
    const ctes = new Map<string, Estimate>();
    blockRows(query, ctx, ctes, check);
    forEachSelect(query, (b) => { if (b !== query) blockRows({ ...b, with: [] }, ctx, ctes, check); });
    return { query, applied: [] };
  },
};

function formatRows(n: number): string {
  return n >= 1e6 ? `${Number((n / 1e6).toPrecision(3))} million` : String(Math.round(n));
}
