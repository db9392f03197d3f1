/**
 * Gatehouse's query IR: an immutable tree, one node type per SQL construct we accept.
 * User SQL is parsed into it (parse.ts), names are bound against the catalog (bind.ts),
 * each policy obligation is one transformer over it (transform/), and SQL for an engine is
 * rendered from it (render/). Nothing else ever reaches an engine.
 */
import type { ColumnType, MaskSpec } from '../model/types.ts';

export type BinaryOp =
  | '=' | '<>' | '<' | '>' | '<=' | '>='
  | '+' | '-' | '*' | '/' | '%' | '||'
  | 'AND' | 'OR' | 'IS DISTINCT FROM' | 'IS NOT DISTINCT FROM';

export type UnaryOp = 'NOT' | '-' | '+';

/** Types a CAST may target. */
export type CastType =
  | { readonly name: 'VARCHAR' | 'BIGINT' | 'INTEGER' | 'SMALLINT' | 'DOUBLE' | 'REAL' | 'BOOLEAN' | 'DATE' | 'TIMESTAMP' }
  | { readonly name: 'DECIMAL'; readonly precision: number; readonly scale: number };

export type Literal =
  | { readonly kind: 'literal'; readonly type: 'null'; readonly value: null }
  | { readonly kind: 'literal'; readonly type: 'boolean'; readonly value: boolean }
  | { readonly kind: 'literal'; readonly type: 'string'; readonly value: string }
  /** Numbers keep their decimal text so nothing is lost to floating point. */
  | { readonly kind: 'literal'; readonly type: 'number'; readonly value: string }
  | { readonly kind: 'literal'; readonly type: 'date' | 'timestamp' | 'interval'; readonly value: string };

/** What a bound column reads: the base dataset columns it derives from ("dataset.column"). */
export interface Lineage {
  readonly sources: ReadonlySet<string>;
}

export interface WindowSpec {
  readonly partitionBy: readonly Expr[];
  readonly orderBy: readonly OrderItem[];
}

export type Expr =
  /** An unbound name as written by the user; bind.ts replaces every one. */
  | { readonly kind: 'ref'; readonly qualifier: string | null; readonly name: string }
  /** A bound column: `relation` is the FROM item's alias in the enclosing query block. */
  | { readonly kind: 'column'; readonly relation: string; readonly name: string; readonly lineage: Lineage }
  /** Inside a governed scan only: the raw stored column. Never produced from user SQL. */
  | { readonly kind: 'raw'; readonly name: string; readonly type: ColumnType }
  | Literal
  | { readonly kind: 'param'; readonly index: number }
  | { readonly kind: 'unary'; readonly op: UnaryOp; readonly arg: Expr }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'isNull'; readonly arg: Expr; readonly negated: boolean }
  | { readonly kind: 'isBool'; readonly arg: Expr; readonly value: boolean; readonly negated: boolean }
  | { readonly kind: 'like'; readonly arg: Expr; readonly pattern: Expr; readonly negated: boolean; readonly caseInsensitive: boolean }
  | { readonly kind: 'between'; readonly arg: Expr; readonly low: Expr; readonly high: Expr; readonly negated: boolean }
  | { readonly kind: 'inList'; readonly arg: Expr; readonly list: readonly Expr[]; readonly negated: boolean }
  | { readonly kind: 'inQuery'; readonly arg: Expr; readonly query: Select; readonly negated: boolean }
  | { readonly kind: 'exists'; readonly query: Select }
  | { readonly kind: 'scalarQuery'; readonly query: Select }
  | { readonly kind: 'case'; readonly operand: Expr | null; readonly whens: readonly { readonly when: Expr; readonly then: Expr }[]; readonly else: Expr | null }
  | { readonly kind: 'cast'; readonly arg: Expr; readonly type: CastType }
  | {
      readonly kind: 'func';
      readonly name: string;
      readonly args: readonly Expr[];
      readonly star: boolean;
      readonly distinct: boolean;
      readonly filter: Expr | null;
      readonly over: WindowSpec | null;
    }
  /** A column mask applied inside a governed scan (transform/mask.ts). */
  | { readonly kind: 'mask'; readonly mask: MaskSpec; readonly arg: Expr; readonly type: ColumnType };

export interface OrderItem {
  readonly expr: Expr;
  readonly desc: boolean;
  readonly nulls: 'first' | 'last' | null;
}

export interface Target {
  readonly expr: Expr;
  readonly alias: string;
}

/** The governed form of a dataset scan: what the engine reads before the user's query sees anything. */
export interface GovernedScan {
  /** Output columns: each catalog column's visible expression (raw or masked). */
  readonly columns: readonly { readonly name: string; readonly expr: Expr }[];
  /** Row filters, all of which must hold. */
  readonly filters: readonly Expr[];
}

export type FromItem =
  | { readonly kind: 'dataset'; readonly dataset: string; readonly alias: string; readonly scan: GovernedScan | null }
  | { readonly kind: 'derived'; readonly query: Select; readonly alias: string }
  | { readonly kind: 'cteRef'; readonly name: string; readonly alias: string }
  /**
   * `left UNION [ALL] right` (or EXCEPT / INTERSECT) as a relation. A set operation in user
   * SQL becomes a block that selects every column of this item (see SET_OPERATION_ALIAS), so
   * ORDER BY / LIMIT / OFFSET, the row cap and every obligation act on the whole exactly as
   * on a plain query, and each branch is an ordinary block every mapper walks.
   */
  | { readonly kind: 'setOp'; readonly op: SetOperator; readonly all: boolean; readonly left: Select; readonly right: Select; readonly alias: string }
  | {
      readonly kind: 'join';
      readonly type: 'inner' | 'left' | 'right' | 'full' | 'cross';
      readonly left: FromItem;
      readonly right: FromItem;
      readonly on: Expr | null;
    };

export type SetOperator = 'union' | 'except' | 'intersect';

/** The alias of the relation a set operation's wrapping block reads (gh_ names are reserved to Gatehouse). */
export const SET_OPERATION_ALIAS = 'gh_set';

export interface Cte {
  readonly name: string;
  readonly query: Select;
}

export interface Select {
  readonly kind: 'select';
  readonly with: readonly Cte[];
  readonly distinct: boolean;
  readonly targets: readonly Target[];
  readonly from: FromItem | null;
  readonly where: Expr | null;
  readonly groupBy: readonly Expr[];
  readonly having: Expr | null;
  readonly orderBy: readonly OrderItem[];
  readonly limit: number | null;
  readonly offset: number | null;
}

/** Visits every expression in an expression tree (not descending into subqueries). */
export function forEachExpr(e: Expr, fn: (e: Expr) => void): void {
  fn(e);
  for (const c of childExprs(e)) forEachExpr(c, fn);
}

export function childExprs(e: Expr): readonly Expr[] {
  switch (e.kind) {
    case 'unary': case 'isNull': case 'isBool': case 'cast': case 'mask': return [e.arg];
    case 'binary': return [e.left, e.right];
    case 'like': return [e.arg, e.pattern];
    case 'between': return [e.arg, e.low, e.high];
    case 'inList': return [e.arg, ...e.list];
    case 'inQuery': return [e.arg];
    case 'case': return [...(e.operand ? [e.operand] : []), ...e.whens.flatMap((w) => [w.when, w.then]), ...(e.else ? [e.else] : [])];
    case 'func': return [...e.args, ...(e.filter ? [e.filter] : []), ...(e.over ? [...e.over.partitionBy, ...e.over.orderBy.map((o) => o.expr)] : [])];
    default: return [];
  }
}

/** Subqueries directly inside an expression tree. */
export function subqueriesOf(e: Expr): Select[] {
  const out: Select[] = [];
  forEachExpr(e, (x) => { if (x.kind === 'inQuery' || x.kind === 'exists' || x.kind === 'scalarQuery') out.push(x.query); });
  return out;
}

/** Rebuilds an expression bottom-up with `fn` applied to each node after its children. */
export function mapExpr(e: Expr, fn: (e: Expr) => Expr): Expr {
  const m = (x: Expr): Expr => mapExpr(x, fn);
  let out: Expr;
  switch (e.kind) {
    case 'unary': out = { ...e, arg: m(e.arg) }; break;
    case 'isNull': out = { ...e, arg: m(e.arg) }; break;
    case 'isBool': out = { ...e, arg: m(e.arg) }; break;
    case 'cast': out = { ...e, arg: m(e.arg) }; break;
    case 'mask': out = { ...e, arg: m(e.arg) }; break;
    case 'binary': out = { ...e, left: m(e.left), right: m(e.right) }; break;
    case 'like': out = { ...e, arg: m(e.arg), pattern: m(e.pattern) }; break;
    case 'between': out = { ...e, arg: m(e.arg), low: m(e.low), high: m(e.high) }; break;
    case 'inList': out = { ...e, arg: m(e.arg), list: e.list.map(m) }; break;
    case 'inQuery': out = { ...e, arg: m(e.arg) }; break;
    case 'case': out = { ...e, operand: e.operand ? m(e.operand) : null, whens: e.whens.map((w) => ({ when: m(w.when), then: m(w.then) })), else: e.else ? m(e.else) : null }; break;
    case 'func': out = {
      ...e, args: e.args.map(m), filter: e.filter ? m(e.filter) : null,
      over: e.over ? { partitionBy: e.over.partitionBy.map(m), orderBy: e.over.orderBy.map((o) => ({ ...o, expr: m(o.expr) })) } : null,
    }; break;
    default: out = e;
  }
  return fn(out);
}

/** Every query block in a tree: the block itself, its CTEs, derived tables and expression subqueries. */
export function forEachSelect(q: Select, fn: (q: Select, depth: number) => void, depth = 0): void {
  fn(q, depth);
  for (const c of q.with) forEachSelect(c.query, fn, depth + 1);
  const fromItems = (f: FromItem | null): void => {
    if (!f) return;
    if (f.kind === 'derived') forEachSelect(f.query, fn, depth + 1);
    if (f.kind === 'setOp') { forEachSelect(f.left, fn, depth + 1); forEachSelect(f.right, fn, depth + 1); }
    if (f.kind === 'join') { fromItems(f.left); fromItems(f.right); if (f.on) for (const s of subqueriesOf(f.on)) forEachSelect(s, fn, depth + 1); }
  };
  fromItems(q.from);
  for (const e of selectExprs(q)) for (const s of subqueriesOf(e)) forEachSelect(s, fn, depth + 1);
}

/** The expressions that belong to one query block (not its FROM items' own blocks). */
export function selectExprs(q: Select): Expr[] {
  const out: Expr[] = [];
  for (const t of q.targets) out.push(t.expr);
  if (q.where) out.push(q.where);
  out.push(...q.groupBy);
  if (q.having) out.push(q.having);
  for (const o of q.orderBy) out.push(o.expr);
  return out;
}

/** Dataset scans in a FROM tree (not inside derived tables). */
export function datasetItems(f: FromItem | null): Extract<FromItem, { kind: 'dataset' }>[] {
  if (!f) return [];
  if (f.kind === 'dataset') return [f];
  if (f.kind === 'join') return [...datasetItems(f.left), ...datasetItems(f.right)];
  return [];
}

/**
 * Rebuilds a query tree bottom-up: every dataset scan passes through `dataset`, then every
 * query block (after its children) through `select`. Subqueries in expressions, CTEs and
 * derived tables are all visited, so a transformer cannot miss a reference.
 */
export function mapQuery(
  q: Select,
  fns: { dataset?: (d: Extract<FromItem, { kind: 'dataset' }>) => FromItem; select?: (q: Select, isRoot: boolean) => Select },
  isRoot = true,
): Select {
  const inner = (s: Select): Select => mapQuery(s, fns, false);
  const exprs = (e: Expr): Expr => mapExpr(e, (x) => {
    if (x.kind === 'inQuery' || x.kind === 'exists' || x.kind === 'scalarQuery') return { ...x, query: inner(x.query) };
    return x;
  });
  const from = (f: FromItem): FromItem => {
    switch (f.kind) {
      case 'dataset': return fns.dataset ? fns.dataset(f) : f;
      case 'derived': return { ...f, query: inner(f.query) };
      case 'cteRef': return f;
      case 'setOp': return { ...f, left: inner(f.left), right: inner(f.right) };
      case 'join': return { ...f, left: from(f.left), right: from(f.right), on: f.on ? exprs(f.on) : null };
    }
  };
  const out: Select = {
    ...q,
    with: q.with.map((c) => ({ ...c, query: inner(c.query) })),
    targets: q.targets.map((t) => ({ ...t, expr: exprs(t.expr) })),
    from: q.from ? from(q.from) : null,
    where: q.where ? exprs(q.where) : null,
    groupBy: q.groupBy.map(exprs),
    having: q.having ? exprs(q.having) : null,
    orderBy: q.orderBy.map((o) => ({ ...o, expr: exprs(o.expr) })),
  };
  return fns.select ? fns.select(out, isRoot) : out;
}
