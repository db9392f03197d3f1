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
 *   equi-join          max(L, R) × fan-out, fan-out = 1 when one side is joined on one of
 *                      its keys, else min(L, R, 100), and never more than L × R. A dataset's
 *                      keys: columns declared `unique: true` (shown unmasked) and a one-row-
 *                      per-unit privacy unit; a join keeps a side's keys when the other side
 *                      is joined on one of its own (see Rel)
 *   inner/cross tree   one join graph, in no written order (innerJoins): joined along its
 *                      equalities, those on a key first, then cross products
 *   derived / CTE      its FROM's estimate, capped by its LIMIT; a set operation L + R
 * An equi-join is a conjunct `l.x = r.y` comparing a column of each side, in ON or — for an
 * inner or cross join — in the block's WHERE (issue 15: a join written in WHERE is a join;
 * WHERE passes to the preserved side of an outer join, never to its nullable side). It
 * counts only when the renderer leaves it bare, so DuckDB sees a hash join: both columns'
 * declared types compare without a failing conversion (render/guard.ts `cannotFail`, the
 * same function over the same scope). A guarded `TRY(l.x = r.y)` is an opaque filter over
 * the nested-loop product, and is estimated as that product.
 * Every block is checked, subqueries and CTEs included. The fan-out of 100 is a planning
 * bound, not a guarantee: an equi-join on a skewed key can exceed it, as can one on a column
 * wrongly declared unique (a declaration by the dataset's owner, like its row count); the
 * statement timeout and memory limit still hold there (docs/sql.md).
 */
import { GatehouseError } from '../../errors.ts';
import { forEachSelect, selectExprs, subqueriesOf, type Expr, type FromItem, type Select } from '../ir.ts';
import { cannotFail, conjuncts, scopeOf, type Scope } from '../render/guard.ts';
import type { GovernContext, ObligationTransformer } from './context.ts';

/** Default of `defaults.maxJoinRows`. */
export const DEFAULT_MAX_JOIN_ROWS = 1_000_000_000;
/** Rows one key value of the larger side is assumed to meet on the other side of an equi-join. */
export const EQUI_JOIN_FAN_OUT = 100;

type Estimate = number | null;

/** What one walk of a query shares: the catalog, the CTE estimates so far, the CTEs each block sees, the check. */
interface Walk {
  readonly ctx: GovernContext;
  /** Every CTE's estimate as it is defined (a name defined twice keeps the larger). */
  readonly ctes: Map<string, Estimate>;
  /** The CTE definitions visible in each block, as the renderer resolves them (for column types). */
  readonly visible: ReadonlyMap<Select, ReadonlyMap<string, Select>>;
  readonly check: (rows: number) => void;
}

/**
 * A FROM item's estimated rows, and its keys: the columns (`alias.column`, lower case) whose
 * non-null values are unique in its output. A dataset's keys are its declared ones (see
 * `datasetKeys`); a join keeps one side's keys when each of that side's rows meets at most
 * one row of the other (the other side is joined on one of its own keys), so a chain of
 * joins on keys — `FROM t1, t2, t3 WHERE t1.k = t2.id AND t2.k = t3.id` — stays unique.
 */
interface Rel { readonly rows: Estimate; readonly keys: ReadonlySet<string> }
const NO_KEYS: ReadonlySet<string> = new Set();
const keyOf = (c: Column): string => `${c.relation.toLowerCase()}.${c.name.toLowerCase()}`;

/**
 * `scope` types the columns of the block this FROM belongs to (as the renderer types them);
 * `where` are the block's WHERE conjuncts that still apply here.
 */
function estimateRows(from: FromItem | null, w: Walk, scope: Scope, where: readonly Expr[]): Rel {
  if (from === null) return { rows: 1, keys: NO_KEYS };
  switch (from.kind) {
    case 'dataset': return { rows: w.ctx.rowEstimates?.get(from.dataset) ?? null, keys: datasetKeys(from, w.ctx) };
    case 'cteRef': return { rows: w.ctes.get(from.name.toLowerCase()) ?? null, keys: NO_KEYS };
    case 'derived': return { rows: blockRows(from.query, w), keys: NO_KEYS };
    case 'setOp': {
      const l = blockRows(from.left, w), r = blockRows(from.right, w);
      return { rows: l === null || r === null ? null : l + r, keys: NO_KEYS };
    }
    case 'join': {
      if (from.type === 'inner' || from.type === 'cross') return innerJoins(from, w, scope, where);
      // An outer join: WHERE passes to its preserved side (a filter on those columns selects
      // the same rows before or after it), never to its nullable side, where it filters the
      // padded output; only ON joins the two sides.
      const left = estimateRows(from.left, w, scope, from.type === 'left' ? where : []);
      const right = estimateRows(from.right, w, scope, from.type === 'right' ? where : []);
      return joinPair(left, right, hashKeys(aliasesOf(from.left), aliasesOf(from.right), conjunctsOf(from.on), scope), w);
    }
  }
}

/**
 * A tree of inner and cross joins is one join graph: the engine reorders it, so the order
 * the tables are written in (`FROM t20, t54, t48 …`) says nothing. Its relations (datasets,
 * derived tables, outer joins) are the nodes; the bare equalities of its ONs and of WHERE
 * between two of them are the edges. The relations are joined along edges, an edge on a key
 * first (fan-out 1), each join estimated and checked; what no edge connects is a cross product.
 */
function innerJoins(j: Join, w: Walk, scope: Scope, where: readonly Expr[]): Rel {
  const items: FromItem[] = [], conds: Expr[] = [...where];
  const flatten = (f: FromItem): void => {
    if (f.kind === 'join' && (f.type === 'inner' || f.type === 'cross')) { flatten(f.left); flatten(f.right); conds.push(...conjunctsOf(f.on)); }
    else items.push(f);
  };
  flatten(j);
  const aliases = items.map(aliasesOf);
  const rels = items.map((f) => estimateRows(f, w, scope, conds));
  const owner = items.map((_, i) => i);
  const root = (i: number): number => (owner[i] === i ? i : (owner[i] = root(owner[i]!)));
  const edges = hashEdges(aliases, conds, scope);
  for (;;) {
    let pick: { x: number; y: number } | null = null;
    for (const e of edges) {
      const x = root(e.ia), y = root(e.ib);
      if (x === y) continue;
      if (rels[x]!.keys.has(keyOf(e.a)) || rels[y]!.keys.has(keyOf(e.b))) { pick = { x, y }; break; }
      pick ??= { x, y };
    }
    if (!pick) break;
    const { x, y } = pick;
    const hash = edges.flatMap((e): [Column, Column][] => root(e.ia) === x && root(e.ib) === y ? [[e.a, e.b]] : root(e.ia) === y && root(e.ib) === x ? [[e.b, e.a]] : []);
    rels[x] = joinPair(rels[x]!, rels[y]!, hash, w);
    owner[y] = x;
  }
  let out: Rel | null = null;
  for (let i = 0; i < items.length; i++) if (root(i) === i) out = out === null ? rels[i]! : joinPair(out, rels[i]!, [], w);
  return out!;
}

/**
 * Two relations joined on `hash` ([left column, right column] pairs; none: a cross join).
 * Each left row meets at most one right row when the right side is joined on a key of its
 * own (and the other way round); that side's rows, and so its keys, are not repeated.
 */
function joinPair(left: Rel, right: Rel, hash: readonly [Column, Column][], w: Walk): Rel {
  const rightOnKey = hash.some(([, b]) => right.keys.has(keyOf(b)));
  const leftOnKey = hash.some(([a]) => left.keys.has(keyOf(a)));
  const keys = new Set([...(rightOnKey ? left.keys : []), ...(leftOnKey ? right.keys : [])]);
  const l = left.rows, r = right.rows;
  if (l === null || r === null) return { rows: null, keys };
  const product = l * r;
  const rows = hash.length === 0 ? product
    : Math.min(product, Math.max(l, r) * (rightOnKey || leftOnKey ? 1 : Math.min(l, r, EQUI_JOIN_FAN_OUT)));
  w.check(rows);
  return { rows, keys };
}

function blockRows(q: Select, w: Walk, withCtes = true): Estimate {
  if (withCtes) {
    for (const c of q.with) {
      const rows = blockRows(c.query, w), name = c.name.toLowerCase(), had = w.ctes.get(name);
      w.ctes.set(name, had === undefined ? rows : had === null || rows === null ? null : Math.max(had, rows));
    }
  }
  const scope = scopeOf(q.from, w.visible.get(q) ?? new Map());
  const rows = estimateRows(q.from, w, scope, conjunctsOf(q.where)).rows;
  return rows === null ? null : Math.min(rows, q.limit ?? Infinity);
}

/**
 * The CTE definitions visible in every block, resolved as the renderer resolves them
 * (render/sql.ts: a block's WITH is visible in its own CTEs, its FROM and its subqueries).
 */
function visibleCtes(q: Select, outer: ReadonlyMap<string, Select>, out: Map<Select, ReadonlyMap<string, Select>>): Map<Select, ReadonlyMap<string, Select>> {
  const ctes = new Map(outer);
  for (const c of q.with) ctes.set(c.name.toLowerCase(), c.query);
  out.set(q, ctes);
  for (const c of q.with) visibleCtes(c.query, ctes, out);
  const from = (f: FromItem | null): void => {
    if (!f) return;
    if (f.kind === 'derived') visibleCtes(f.query, ctes, out);
    if (f.kind === 'setOp') { visibleCtes(f.left, ctes, out); visibleCtes(f.right, ctes, out); }
    if (f.kind === 'join') { from(f.left); from(f.right); if (f.on) for (const s of subqueriesOf(f.on)) visibleCtes(s, ctes, out); }
  };
  from(q.from);
  for (const e of selectExprs(q)) for (const s of subqueriesOf(e)) visibleCtes(s, ctes, out);
  return out;
}

/** The top-level conjuncts of an optional ON or WHERE (guard.ts splits them the same way to render them). */
function conjunctsOf(e: Expr | null): Expr[] {
  return e === null ? [] : conjuncts(e);
}

function aliasesOf(f: FromItem): Set<string> {
  if (f.kind === 'join') return new Set([...aliasesOf(f.left), ...aliasesOf(f.right)]);
  return new Set([('alias' in f ? f.alias : '').toLowerCase()]);
}

type Join = Extract<FromItem, { kind: 'join' }>;
type Column = Extract<Expr, { kind: 'column' }>;

/**
 * The `l.x = r.y` conditions that the renderer leaves bare (their declared types compare
 * safely) and that compare a column of one relation with a column of another: DuckDB's hash
 * join keys. A guarded equality is not among them.
 */
function hashEdges(aliases: readonly ReadonlySet<string>[], conds: readonly Expr[], scope: Scope): { a: Column; ia: number; b: Column; ib: number }[] {
  const out: { a: Column; ia: number; b: Column; ib: number }[] = [];
  for (const c of conds) {
    if (c.kind !== 'binary' || c.op !== '=' || c.left.kind !== 'column' || c.right.kind !== 'column') continue;
    if (!cannotFail(c, [scope])) continue;
    const a = c.left, b = c.right;
    const ia = aliases.findIndex((s) => s.has(a.relation.toLowerCase())), ib = aliases.findIndex((s) => s.has(b.relation.toLowerCase()));
    if (ia >= 0 && ib >= 0 && ia !== ib) out.push({ a, ia, b, ib });
  }
  return out;
}

/** The same edges between two sides, as [left column, right column]. */
function hashKeys(left: ReadonlySet<string>, right: ReadonlySet<string>, conds: readonly Expr[], scope: Scope): [Column, Column][] {
  return hashEdges([left, right], conds, scope).map((e) => (e.ia === 0 ? [e.a, e.b] : [e.b, e.a]));
}

/**
 * A dataset's keys, by `alias.column`: its privacy unit when it is declared one row per unit,
 * and each column declared `unique: true` that the scan shows as stored (a mask may map
 * distinct values to one). A row filter keeps a subset of the rows, which stays unique.
 */
function datasetKeys(d: Extract<FromItem, { kind: 'dataset' }>, ctx: GovernContext): ReadonlySet<string> {
  const ds = ctx.datasets.get(d.dataset);
  if (!ds) return NO_KEYS;
  const alias = d.alias.toLowerCase(), keys = new Set<string>();
  if (ds.oneRowPerUnit === true && ds.privacyUnit) keys.add(`${alias}.${ds.privacyUnit.toLowerCase()}`);
  for (const c of d.scan?.columns ?? []) {
    if (c.expr.kind === 'raw' && ds.columns.some((def) => def.name === c.name && def.unique === true)) keys.add(`${alias}.${c.name.toLowerCase()}`);
  }
  return keys;
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
    const w: Walk = { ctx, ctes: new Map(), visible: visibleCtes(query, new Map(), new Map()), check };
    blockRows(query, w);
    forEachSelect(query, (b) => { if (b !== query) blockRows(b, w, false); });
    return { query, applied: [] };
  },
};

function formatRows(n: number): string {
  return n >= 1e6 ? `${Number((n / 1e6).toPrecision(3))} million` : String(Math.round(n));
}
