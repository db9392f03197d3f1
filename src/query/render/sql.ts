/**
 * Renders governed IR to SQL text for one engine. Identifiers are always quoted,
 * literals always escaped, every composite expression parenthesised; the only SQL an
 * engine runs is what this file produces (invariant 2). Dialect differences (casts,
 * the keyed hash, sources) live in small Dialect objects; each mask kind renders itself
 * (src/query/masks/).
 */
import type { ColumnType } from '../../model/types.ts';
import { renderMask } from '../masks/registry.ts';
import { lookupFunction } from '../functions.ts';
import { cannotFail, conjuncts, scopeOf, type Scope } from './guard.ts';
import { forEachExpr, type BinaryOp, type CastType, type Expr, type FromItem, type GovernedScan, type Literal, type OrderItem, type Select } from '../ir.ts';

export interface Dialect {
  readonly name: string;
  /** The quoted relation a dataset is read from. */
  source(dataset: string): string;
  /** A cast that yields NULL instead of failing (TRY_CAST, or an equivalent guarded form). */
  cast(arg: string, type: CastType): string;
  /**
   * The workspace's keyed hash (HMAC-SHA-256 under the hash key) of `arg`'s text form, as
   * lower-case hex: the same digest on every engine. Masks build on it (src/query/masks/).
   */
  keyedHash(arg: string, type: ColumnType): string;
  typeName(type: ColumnType): string;
  functionName(name: string): string;
  /**
   * Wraps a user expression that may fail on some data so it yields NULL instead (DuckDB
   * `TRY(…)`, Trino `try(…)`). Engines without such a construct return `sql` unchanged and
   * make each failure-prone operation safe on its own in the hooks below (PostgreSQL).
   */
  guard(sql: string): string;
  /** Optional: renders a binary operator (e.g. division with a zero guard); undefined → `(l op r)`. */
  binary?(op: BinaryOp, left: string, right: string): string | undefined;
  /** Optional: renders LIKE / ILIKE; undefined → the standard form. */
  like?(arg: string, pattern: string, negated: boolean, caseInsensitive: boolean): string | undefined;
  /**
   * Optional: renders an allowlisted function call (name is its `engineName`); `args` are
   * rendered, `ir` the same arguments as IR (to inspect literals). undefined → `name(args)`.
   * May throw a GatehouseError for a call the engine cannot evaluate safely.
   */
  func?(name: string, args: readonly string[], ir: readonly Expr[], distinct: boolean): string | undefined;
  /** Optional: renders a literal; undefined → the standard form. */
  literal?(lit: Literal): string | undefined;
  /** Optional: renders LIMIT/OFFSET (already validated integers); undefined → `LIMIT n OFFSET m`. */
  limitOffset?(limit: string | null, offset: string | null): string | undefined;
  /** Optional: renders `arg [NOT] IN (items)` (items rendered, `ir` the same as IR); undefined → the standard form. */
  inList?(arg: string, items: readonly string[], ir: readonly Expr[], negated: boolean): string | undefined;
}

export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains NUL');
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteString(value: string): string {
  if (value.includes('\u0000')) throw new Error('string literal contains NUL');
  return `'${value.replace(/'/g, "''")}'`;
}

const NUMBER = /^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

export function renderSelect(q: Select, d: Dialect): string {
  return new Renderer(d).select(q);
}

/**
 * Can evaluating this expression raise an engine error that depends on data? Errors are a
 * side channel (one bit per query about one row, even a row a filter or a threshold would
 * hide), so user expressions that can fail are evaluated under TRY(...), which yields NULL
 * instead. Aggregates, windows and subqueries cannot sit inside TRY; their arguments are
 * guarded one level down instead.
 */
function guardable(e: Expr): boolean {
  let ok = true;
  forEachExpr(e, (x) => {
    if (x.kind === 'inQuery' || x.kind === 'exists' || x.kind === 'scalarQuery' || x.kind === 'mask') ok = false;
    if (x.kind === 'func' && (x.over !== null || lookupFunction(x.name)?.kind !== 'scalar')) ok = false;
  });
  return ok;
}

function trivial(e: Expr): boolean {
  if (e.kind === 'column' || e.kind === 'raw' || e.kind === 'literal') return true;
  if (e.kind === 'unary' && e.arg.kind === 'literal') return true;
  if (e.kind === 'isNull') return trivial(e.arg);
  // A comparison of a plain column with a literal (`region = 'x'`) is left unguarded so
  // engines keep pushing it down (and DuckDB 1.5 mis-binds TRY around such a HAVING
  // predicate); the literal is converted once at plan time, never per row. A comparison of
  // two columns is left unguarded only as a whole conjunct of WHERE or ON whose column
  // types are known to compare without a failing conversion (guard.ts), so that joins
  // written in WHERE stay hash joins.
  if (e.kind === 'binary' && ['=', '<>', '<', '>', '<=', '>=', 'IS DISTINCT FROM', 'IS NOT DISTINCT FROM'].includes(e.op)) {
    const column = (x: Expr): boolean => x.kind === 'column' || x.kind === 'raw';
    const literal = (x: Expr): boolean => x.kind === 'literal';
    if (literal(e.left) || literal(e.right)) return (column(e.left) || literal(e.left)) && (column(e.right) || literal(e.right));
    return false;
  }
  // The same for IN (...) and BETWEEN with literal comparands (typecheck.ts applies the
  // comparison rules to each): `department IN ('a', 'b')` stays a filter the engine can push
  // into the scan (Parquet statistics, partitions) instead of an opaque TRY(...).
  const plainColumn = (x: Expr): boolean => x.kind === 'column' || x.kind === 'raw';
  if (e.kind === 'inList') return plainColumn(e.arg) && e.list.every((x) => x.kind === 'literal');
  if (e.kind === 'between') return plainColumn(e.arg) && e.low.kind === 'literal' && e.high.kind === 'literal';
  if (e.kind === 'unary' && e.op === 'NOT') return trivial(e.arg);
  if (e.kind === 'binary' && (e.op === 'AND' || e.op === 'OR')) return trivial(e.left) && trivial(e.right);
  return false;
}

class Renderer {
  readonly d: Dialect;
  /** True while rendering user expressions (outside governed scans). */
  #guard = true;
  /** Inside a dialect guard (TRY): no subquery may be rendered there (the inList hook stays off). */
  #inGuard = 0;
  /** The known column types of each enclosing SELECT's FROM, innermost last (guard.ts). */
  readonly #scopes: Scope[] = [];
  /** The CTEs visible at this point, by lower-case name. */
  #ctes: ReadonlyMap<string, Select> = new Map();
  constructor(d: Dialect) { this.d = d; }

  expr(e: Expr): string {
    if (this.#guard && !trivial(e) && guardable(e)) {
      this.#guard = false;
      this.#inGuard++;
      try { return this.d.guard(this.node(e)); } finally { this.#guard = true; this.#inGuard--; }
    }
    return this.node(e);
  }

  select(q: Select): string {
    const saved = this.#guard, savedCtes = this.#ctes;
    this.#guard = true;
    if (q.with.length) {
      const ctes = new Map(this.#ctes);
      for (const c of q.with) ctes.set(c.name.toLowerCase(), c.query);
      this.#ctes = ctes;
    }
    this.#scopes.push(scopeOf(q.from, this.#ctes));
    try { return this.selectBody(q); } finally { this.#guard = saved; this.#ctes = savedCtes; this.#scopes.pop(); }
  }

  /**
   * A WHERE or ON condition, conjunct by conjunct: each conjunct that cannot fail is
   * rendered bare (the optimiser sees join keys and pushes filters down); the others are
   * guarded on their own. In a filter NULL and FALSE both drop the row, so this selects
   * exactly what guarding the whole condition selected.
   */
  filter(e: Expr): string {
    return conjuncts(e).map((c) => (cannotFail(c, this.#scopes) ? this.node(c) : this.expr(c))).join(' AND ');
  }

  selectBody(q: Select): string {
    const parts: string[] = [];
    if (q.with.length) parts.push(`WITH ${q.with.map((c) => `${quoteIdent(c.name)} AS (${this.select(c.query)})`).join(', ')}`);
    parts.push(`SELECT ${q.distinct ? 'DISTINCT ' : ''}${q.targets.map((t) => `${this.expr(t.expr)} AS ${quoteIdent(t.alias)}`).join(', ')}`);
    if (q.from) parts.push(`FROM ${this.from(q.from)}`);
    if (q.where) parts.push(`WHERE ${this.filter(q.where)}`);
    if (q.groupBy.length) parts.push(`GROUP BY ${q.groupBy.map((e) => this.expr(e)).join(', ')}`);
    if (q.having) {
      // DuckDB 1.5 fails to bind TRY(...) around HAVING predicates over grouped columns, so
      // HAVING is rendered unguarded. Aggregation-only puts its threshold first in a CASE,
      // so the user's predicate is never evaluated on a group below the threshold.
      this.#guard = false;
      try { parts.push(`HAVING ${this.expr(q.having)}`); } finally { this.#guard = true; }
    }
    if (q.orderBy.length) parts.push(`ORDER BY ${q.orderBy.map((o) => this.order(o)).join(', ')}`);
    const limit = q.limit === null ? null : int(q.limit);
    const offset = q.offset === null ? null : int(q.offset);
    const custom = limit === null && offset === null ? undefined : this.d.limitOffset?.(limit, offset);
    if (custom !== undefined) parts.push(custom);
    else {
      if (limit !== null) parts.push(`LIMIT ${limit}`);
      if (offset !== null) parts.push(`OFFSET ${offset}`);
    }
    return parts.join(' ');
  }

  order(o: OrderItem): string {
    return `${this.expr(o.expr)}${o.desc ? ' DESC' : ' ASC'}${o.nulls ? ` NULLS ${o.nulls.toUpperCase()}` : ''}`;
  }

  scan(dataset: string, scan: GovernedScan): string {
    const saved = this.#guard;
    this.#guard = false;
    try { return this.scanBody(dataset, scan); } finally { this.#guard = saved; }
  }

  scanBody(dataset: string, scan: GovernedScan): string {
    const cols = scan.columns.length === 0 ? '1 AS "__gh_one"' : scan.columns.map((c) => `${this.expr(c.expr)} AS ${quoteIdent(c.name)}`).join(', ');
    const where = scan.filters.length ? ` WHERE ${scan.filters.map((f) => this.expr(f)).join(' AND ')}` : '';
    return `(SELECT ${cols} FROM ${this.d.source(dataset)}${where})`;
  }

  from(f: FromItem): string {
    switch (f.kind) {
      case 'dataset':
        if (!f.scan) throw new Error(`refusing to render an ungoverned scan of ${f.dataset}`);
        return `${this.scan(f.dataset, f.scan)} AS ${quoteIdent(f.alias)}`;
      case 'derived': return `(${this.select(f.query)}) AS ${quoteIdent(f.alias)}`;
      case 'cteRef': return `${quoteIdent(f.name)} AS ${quoteIdent(f.alias)}`;
      case 'setOp': return `(${this.setOperation(f)}) AS ${quoteIdent(f.alias)}`;
      case 'join': {
        const kw = { inner: 'INNER JOIN', left: 'LEFT JOIN', right: 'RIGHT JOIN', full: 'FULL JOIN', cross: 'CROSS JOIN' }[f.type];
        const left = this.from(f.left), right = this.from(f.right);
        const on = f.on ? ` ON ${this.filter(f.on)}` : '';
        return `(${left} ${kw} ${right}${on})`;
      }
    }
  }

  /** Each branch is a full block in parentheses, so it gets its own guards and the tree's nesting survives. */
  setOperation(f: Extract<FromItem, { kind: 'setOp' }>): string {
    const word = { union: 'UNION', except: 'EXCEPT', intersect: 'INTERSECT' }[f.op];
    return `(${this.select(f.left)}) ${word}${f.all ? ' ALL' : ''} (${this.select(f.right)})`;
  }

  node(e: Expr): string {
    switch (e.kind) {
      case 'ref': throw new Error(`refusing to render an unbound name ${e.name}`);
      case 'param': throw new Error('refusing to render an unbound parameter');
      case 'column': return `${quoteIdent(e.relation)}.${quoteIdent(e.name)}`;
      case 'raw': return quoteIdent(e.name);
      case 'literal': {
        const custom = this.d.literal?.(e);
        if (custom !== undefined) return custom;
        switch (e.type) {
          case 'null': return 'NULL';
          case 'boolean': return e.value ? 'TRUE' : 'FALSE';
          case 'string': return quoteString(e.value);
          case 'number': if (!NUMBER.test(e.value)) throw new Error('malformed number literal'); return e.value;
          case 'date': return `DATE ${quoteString(e.value)}`;
          case 'timestamp': return `TIMESTAMP ${quoteString(e.value)}`;
          case 'interval': return `INTERVAL ${quoteString(e.value)}`;
        }
      }
      // falls through (exhaustive above)
      case 'unary': return e.op === 'NOT' ? `(NOT ${this.expr(e.arg)})` : `(${e.op} ${this.expr(e.arg)})`;
      case 'binary': {
        const l = this.expr(e.left), r = this.expr(e.right);
        return this.d.binary?.(e.op, l, r) ?? `(${l} ${e.op} ${r})`;
      }
      case 'isNull': return `(${this.expr(e.arg)} IS ${e.negated ? 'NOT ' : ''}NULL)`;
      case 'isBool': return `(${this.expr(e.arg)} IS ${e.negated ? 'NOT ' : ''}${e.value ? 'TRUE' : 'FALSE'})`;
      case 'like': {
        const a = this.expr(e.arg), p = this.expr(e.pattern);
        return this.d.like?.(a, p, e.negated, e.caseInsensitive) ?? `(${a} ${e.negated ? 'NOT ' : ''}${e.caseInsensitive ? 'ILIKE' : 'LIKE'} ${p})`;
      }
      case 'between': return `(${this.expr(e.arg)} ${e.negated ? 'NOT ' : ''}BETWEEN ${this.expr(e.low)} AND ${this.expr(e.high)})`;
      case 'inList': {
        const a = this.expr(e.arg), items = e.list.map((x) => this.expr(x));
        return (this.#inGuard === 0 ? this.d.inList?.(a, items, e.list, e.negated) : undefined) ?? `(${a} ${e.negated ? 'NOT ' : ''}IN (${items.join(', ')}))`;
      }
      case 'inQuery': return `(${this.expr(e.arg)} ${e.negated ? 'NOT ' : ''}IN (${this.select(e.query)}))`;
      case 'exists': return `(EXISTS (${this.select(e.query)}))`;
      case 'scalarQuery': return `(${this.select(e.query)})`;
      case 'case': {
        const whens = e.whens.map((w) => `WHEN ${this.expr(w.when)} THEN ${this.expr(w.then)}`).join(' ');
        return `(CASE${e.operand ? ` ${this.expr(e.operand)}` : ''} ${whens}${e.else ? ` ELSE ${this.expr(e.else)}` : ''} END)`;
      }
      case 'cast': return this.d.cast(this.expr(e.arg), e.type);
      case 'mask': return renderMask(e.mask, this.expr(e.arg), e.type, this.d);
      case 'func': {
        const info = lookupFunction(e.name);
        if (!info) throw new Error(`refusing to render function ${e.name} outside the allowlist`);
        const rendered = e.star ? [] : e.args.map((a) => this.expr(a));
        const custom = e.star ? undefined : this.d.func?.(info.engineName, rendered, e.args, e.distinct);
        let out = custom ?? `${this.d.functionName(info.engineName)}(${e.star ? '*' : `${e.distinct ? 'DISTINCT ' : ''}${rendered.join(', ')}`})`;
        if (e.filter) out += ` FILTER (WHERE ${this.expr(e.filter)})`;
        if (e.over) {
          const parts: string[] = [];
          if (e.over.partitionBy.length) parts.push(`PARTITION BY ${e.over.partitionBy.map((x) => this.expr(x)).join(', ')}`);
          if (e.over.orderBy.length) parts.push(`ORDER BY ${e.over.orderBy.map((o) => this.order(o)).join(', ')}`);
          out += ` OVER (${parts.join(' ')})`;
        }
        return out;
      }
    }
  }
}

function int(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('LIMIT/OFFSET must be a non-negative integer');
  return String(n);
}
