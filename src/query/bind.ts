/**
 * Name binding: resolves every table and column name of a parsed query against the
 * catalog. Only datasets and columns declared in the workspace exist here — a column the
 * source has but the catalog does not list is invisible (invariant 1). Stars are expanded
 * to the declared columns, so no `*` ever reaches an engine except in count(*).
 */
import { GatehouseError } from '../errors.ts';
import type { DatasetDef } from '../model/types.ts';
import { checkExpressionCost } from './cost.ts';
import { lookupFunction } from './functions.ts';
import { typecheckQuery } from './typecheck.ts';
import { mapExpr, selectExprs, subqueriesOf, type Expr, type FromItem, type Lineage, type OrderItem, type Select, type Target } from './ir.ts';

export interface Catalog {
  dataset(name: string): DatasetDef | undefined;
}

interface OutputColumn {
  readonly name: string;
  readonly lineage: Lineage;
}

interface Relation {
  readonly alias: string;
  readonly columns: readonly OutputColumn[];
}

interface Scope {
  readonly relations: Relation[];
  readonly parent: Scope | null;
  readonly ctes: ReadonlyMap<string, readonly OutputColumn[]>;
}

/** A select item that came from expanding `*` (transformers may drop it instead of refusing). */
export interface BoundTarget extends Target {
  readonly fromStar: boolean;
}

export interface BoundQuery {
  readonly query: Select;
  /** Datasets the query reads, in first-seen order. */
  readonly datasets: readonly string[];
  /** "dataset.column" for every catalog column referenced anywhere. */
  readonly columns: readonly string[];
}

const EMPTY: Lineage = { sources: new Set() };

export function lineageOf(e: Expr): Lineage {
  const sources = new Set<string>();
  const walk = (x: Expr): void => {
    switch (x.kind) {
      case 'column': for (const s of x.lineage.sources) sources.add(s); return;
      case 'func': if (x.name === 'count') return; for (const a of x.args) walk(a); if (x.filter) walk(x.filter); if (x.over) { x.over.partitionBy.forEach(walk); x.over.orderBy.forEach((o) => walk(o.expr)); } return;
      case 'scalarQuery': for (const t of x.query.targets) walk(t.expr); return;
      case 'inQuery': walk(x.arg); for (const t of x.query.targets) walk(t.expr); return;
      case 'exists': return;
      case 'unary': case 'isNull': case 'isBool': case 'cast': case 'mask': walk(x.arg); return;
      case 'binary': walk(x.left); walk(x.right); return;
      case 'like': walk(x.arg); walk(x.pattern); return;
      case 'between': walk(x.arg); walk(x.low); walk(x.high); return;
      case 'inList': walk(x.arg); x.list.forEach(walk); return;
      case 'case': if (x.operand) walk(x.operand); x.whens.forEach((w) => { walk(w.when); walk(w.then); }); if (x.else) walk(x.else); return;
      default: return;
    }
  };
  walk(e);
  return sources.size === 0 ? EMPTY : { sources };
}

export const HIDDEN_PREFIX = '__gh_';

/** DuckDB and PostgreSQL engines resolve identifiers case-insensitively here; so does the binder. */
function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Names Gatehouse uses inside rendered SQL; user SQL may not define them. */
function reservedName(name: string): boolean {
  const n = name.toLowerCase();
  return n.startsWith('gh_') || n.startsWith('__gh');
}

/**
 * The catalog datasets a parsed query reads (CTE names shadow datasets), without binding
 * any column: the pipeline decides on these first, so a query against a dataset the
 * caller may not use learns nothing about its columns.
 */
export function referencedDatasets(q: Select, catalog: Catalog): string[] {
  const out: string[] = [];
  const visit = (b: Select, ctes: ReadonlySet<string>): void => {
    const inScope = new Set(ctes);
    for (const c of b.with) { visit(c.query, inScope); inScope.add(c.name.toLowerCase()); }
    const from = (f: FromItem | null): void => {
      if (!f) return;
      if (f.kind === 'dataset') {
        if (inScope.has(f.dataset.toLowerCase())) return;
        const ds = catalog.dataset(f.dataset.toLowerCase());
        if (!ds) throw new GatehouseError('SQL_UNKNOWN_DATASET', `there is no dataset "${f.dataset}" you can query`, { hint: 'GET /v1/datasets (or gatehouse datasets) lists the datasets available to you' });
        if (!out.includes(ds.name)) out.push(ds.name);
      } else if (f.kind === 'derived') visit(f.query, inScope);
      else if (f.kind === 'setOp') { visit(f.left, inScope); visit(f.right, inScope); }
      else if (f.kind === 'join') { from(f.left); from(f.right); if (f.on) for (const s of subqueriesOf(f.on)) visit(s, inScope); }
    };
    from(b.from);
    for (const e of selectExprs(b)) for (const s of subqueriesOf(e)) visit(s, inScope);
  };
  visit(q, new Set());
  return out;
}

export function bindQuery(parsed: Select, catalog: Catalog): BoundQuery {
  const datasets: string[] = [];
  const columns = new Set<string>();
  const binder = new Binder(catalog, datasets, columns);
  const query = binder.block(parsed, null, new Map());
  // Cost and types are settled here, from the query text and the catalog alone, so nothing
  // that fails later can depend on data (invariant 11).
  checkExpressionCost(query);
  typecheckQuery(query, catalog);
  return { query, datasets, columns: [...columns] };
}

class Binder {
  readonly catalog: Catalog;
  readonly datasets: string[];
  readonly columns: Set<string>;
  constructor(catalog: Catalog, datasets: string[], columns: Set<string>) {
    this.catalog = catalog;
    this.datasets = datasets;
    this.columns = columns;
  }

  block(q: Select, parent: Scope | null, outerCtes: ReadonlyMap<string, readonly OutputColumn[]>): Select {
    const ctes = new Map(outerCtes);
    const boundCtes = q.with.map((c) => {
      if (q.with.filter((x) => same(x.name, c.name)).length > 1) throw new GatehouseError('SQL_INVALID', `the common table expression "${c.name}" is defined twice`);
      if (reservedName(c.name)) throw new GatehouseError('SQL_INVALID', `the name "${c.name}" is reserved`, { hint: 'choose a CTE name that does not start with gh_ or __gh' });
      const bound = this.block(c.query, parent, ctes);
      ctes.set(c.name.toLowerCase(), outputsOf(bound));
      return { name: c.name, query: bound };
    });
    const scope: Scope = { relations: [], parent, ctes };
    const from = q.from ? this.from(q.from, scope) : null;

    const targets: BoundTarget[] = [];
    for (const t of q.targets) {
      const te = t.expr;
      if (te.kind === 'ref' && te.name === '*') {
        const rels = te.qualifier === null ? scope.relations : scope.relations.filter((r) => same(r.alias, te.qualifier!));
        if (te.qualifier !== null && rels.length === 0) throw new GatehouseError('SQL_UNKNOWN_COLUMN', `"${te.qualifier}.*" names no table in FROM`);
        if (rels.length === 0) throw new GatehouseError('SQL_INVALID', 'SELECT * needs a FROM clause');
        for (const r of rels) for (const c of r.columns) {
          for (const s of c.lineage.sources) this.columns.add(s);
          targets.push({ expr: this.columnNode(r, c), alias: c.name, fromStar: true });
        }
        continue;
      }
      targets.push({ expr: this.expr(t.expr, scope, ctes), alias: t.alias, fromStar: false });
    }
    // A set operation's block returns every column of the set, named as the left branch names them.
    if (from?.kind === 'setOp') for (const c of scope.relations[0]!.columns) targets.push({ expr: this.columnNode(scope.relations[0]!, c), alias: c.name, fromStar: false });
    const byAlias = (name: string): Expr | null => {
      const matches = targets.filter((t) => same(t.alias, name));
      return matches.length === 1 ? matches[0]!.expr : null;
    };
    const byOrdinal = (e: Expr, clause: string): Expr | null => {
      if (e.kind === 'literal' && e.type === 'number' && /^\d+$/.test(e.value)) {
        const i = Number(e.value);
        if (i < 1 || i > targets.length) throw new GatehouseError('SQL_INVALID', `${clause} position ${i} is not in the select list (1-${targets.length})`);
        return targets[i - 1]!.expr;
      }
      return null;
    };
    const groupBy = q.groupBy.map((g) => byOrdinal(g, 'GROUP BY') ?? this.expr(g, scope, ctes, byAlias, false));
    const orderBy: OrderItem[] = q.orderBy.map((o) => ({ ...o, expr: byOrdinal(o.expr, 'ORDER BY') ?? this.expr(o.expr, scope, ctes, byAlias, true) }));
    return {
      kind: 'select', with: boundCtes, distinct: q.distinct, targets, from,
      where: q.where ? this.expr(q.where, scope, ctes) : null,
      groupBy,
      having: q.having ? this.expr(q.having, scope, ctes, byAlias, false) : null,
      orderBy, limit: q.limit, offset: q.offset,
    };
  }

  columnNode(r: Relation, c: OutputColumn): Expr {
    return { kind: 'column', relation: r.alias, name: c.name, lineage: c.lineage };
  }

  from(f: FromItem, scope: Scope): FromItem {
    switch (f.kind) {
      case 'dataset': {
        const cte = scope.ctes.get(f.dataset.toLowerCase());
        if (cte) {
          this.addRelation(scope, { alias: f.alias, columns: cte });
          return { kind: 'cteRef', name: f.dataset, alias: f.alias };
        }
        const ds = this.catalog.dataset(f.dataset.toLowerCase());
        if (!ds) throw new GatehouseError('SQL_UNKNOWN_DATASET', `there is no dataset "${f.dataset}" you can query`, { hint: 'GET /v1/datasets (or gatehouse datasets) lists the datasets available to you' });
        if (!this.datasets.includes(ds.name)) this.datasets.push(ds.name);
        this.addRelation(scope, {
          alias: f.alias,
          columns: ds.columns.map((c) => ({ name: c.name, lineage: { sources: new Set([`${ds.name}.${c.name}`]) } })),
        });
        return { ...f, dataset: ds.name };
      }
      case 'cteRef': throw new Error('unreachable: parser never produces cteRef');
      case 'derived': {
        const q = this.block(f.query, scope.parent, scope.ctes);
        this.addRelation(scope, { alias: f.alias, columns: outputsOf(q) });
        return { ...f, query: q };
      }
      case 'setOp': {
        // Branches are bound like derived tables (no lateral references to siblings); a
        // column of the set derives from the matching column of every branch.
        const left = this.block(f.left, scope.parent, scope.ctes);
        const right = this.block(f.right, scope.parent, scope.ctes);
        const word = f.op.toUpperCase();
        if (left.targets.length !== right.targets.length) {
          throw new GatehouseError('SQL_INVALID', `each branch of ${word} must select the same number of columns (here ${left.targets.length} and ${right.targets.length})`, { hint: 'select matching columns in every branch, in the same order' });
        }
        const columns = outputsOf(left).map((c, i) => ({ name: c.name, lineage: { sources: new Set([...c.lineage.sources, ...lineageOf(right.targets[i]!.expr).sources]) } }));
        // The parser's own reserved alias: the only relation of its block, never a user name.
        scope.relations.push({ alias: f.alias, columns });
        return { ...f, left, right };
      }
      case 'join': {
        const left = this.from(f.left, scope);
        const right = this.from(f.right, scope);
        return { ...f, left, right, on: f.on ? this.expr(f.on, scope, scope.ctes) : null };
      }
    }
  }

  addRelation(scope: Scope, r: Relation): void {
    if (reservedName(r.alias)) throw new GatehouseError('SQL_INVALID', `the name "${r.alias}" is reserved`, { hint: 'choose an alias that does not start with gh_ or __gh' });
    if (indexOf(scope).byAlias.has(r.alias.toLowerCase())) {
      throw new GatehouseError('SQL_INVALID', `the name "${r.alias}" is used twice in FROM`, { hint: 'give each table an alias: FROM a AS x JOIN a AS y' });
    }
    scope.relations.push(r);
  }

  resolve(qualifier: string | null, name: string, scope: Scope): Expr | null {
    for (let s: Scope | null = scope; s; s = s.parent) {
      const ix = indexOf(s);
      if (qualifier !== null) {
        const r = ix.byAlias.get(qualifier.toLowerCase());
        if (!r) continue;
        const c = r.columns.find((x) => same(x.name, name));
        if (!c) throw new GatehouseError('SQL_UNKNOWN_COLUMN', `"${qualifier}" has no column "${name}"`, { hint: `its columns are: ${r.columns.map((x) => x.name).join(', ')}` });
        return this.columnNode(r, c);
      }
      const found = ix.byName.get(name.toLowerCase()) ?? [];
      if (found.length > 1) throw new GatehouseError('SQL_AMBIGUOUS_COLUMN', `the column "${name}" is ambiguous`, { hint: `qualify it: ${found.map((x) => `${x.r.alias}.${name}`).join(' or ')}` });
      if (found.length === 1) return this.columnNode(found[0]!.r, found[0]!.c);
    }
    return null;
  }

  expr(e: Expr, scope: Scope, ctes: ReadonlyMap<string, readonly OutputColumn[]>, byAlias?: (n: string) => Expr | null, aliasFirst = false): Expr {
    const sub = (q: Select): Select => this.block(q, scope, ctes);
    return mapExprTopDown(e, (x) => {
      switch (x.kind) {
        case 'ref': {
          if (x.name.toLowerCase().startsWith(HIDDEN_PREFIX)) throw new GatehouseError('SQL_UNKNOWN_COLUMN', `there is no column "${x.name}"`);
          if (aliasFirst && x.qualifier === null && byAlias) { const a = byAlias(x.name); if (a) return a; }
          const bound = this.resolve(x.qualifier, x.name, scope);
          if (bound) {
            if (bound.kind === 'column') for (const s of bound.lineage.sources) this.columns.add(s);
            return bound;
          }
          if (x.qualifier === null && byAlias) { const a = byAlias(x.name); if (a) return a; }
          const visible = scope.relations.flatMap((r) => r.columns.map((c) => c.name));
          throw new GatehouseError('SQL_UNKNOWN_COLUMN', `there is no column "${x.qualifier ? `${x.qualifier}.` : ''}${x.name}"`, {
            hint: visible.length ? `columns in scope: ${[...new Set(visible)].join(', ')}` : 'add a FROM clause',
          });
        }
        case 'inQuery': return { ...x, arg: this.expr(x.arg, scope, ctes, byAlias, aliasFirst), query: sub(x.query) };
        case 'exists': return { ...x, query: sub(x.query) };
        case 'scalarQuery': return { ...x, query: sub(x.query) };
        case 'func': {
          if (lookupFunction(x.name)?.kind === 'aggregate' && x.args.some(containsAggregate)) {
            throw new GatehouseError('SQL_INVALID', `aggregate functions cannot be nested (inside ${x.name}())`);
          }
          return null;
        }
        default: return null;
      }
    });
  }
}

/**
 * A scope's relations by lower-case alias (the first wins, as a linear search would) and its
 * columns by lower-case name, in FROM order. A join written in WHERE over many tables names
 * each of its columns unqualified (`FROM t1, ..., t64 WHERE a51 = b31 ...`); searching every
 * column of every relation per name made binding such a query quadratic (2.7 ms at 64 tables).
 * Relations are only ever appended, so the index takes in the new ones when it is next read.
 */
interface ScopeIndex { size: number; readonly byAlias: Map<string, Relation>; readonly byName: Map<string, { r: Relation; c: OutputColumn }[]> }
const scopeIndexes = new WeakMap<Scope, ScopeIndex>();
function indexOf(s: Scope): ScopeIndex {
  let ix = scopeIndexes.get(s);
  if (!ix) { ix = { size: 0, byAlias: new Map(), byName: new Map() }; scopeIndexes.set(s, ix); }
  for (; ix.size < s.relations.length; ix.size++) {
    const r = s.relations[ix.size]!;
    const alias = r.alias.toLowerCase();
    if (!ix.byAlias.has(alias)) ix.byAlias.set(alias, r);
    for (const c of r.columns) {
      const key = c.name.toLowerCase();
      const list = ix.byName.get(key);
      if (list) list.push({ r, c }); else ix.byName.set(key, [{ r, c }]);
    }
  }
  return ix;
}

function containsAggregate(e: Expr): boolean {
  let found = false;
  mapExpr(e, (x) => { if (x.kind === 'func' && lookupFunction(x.name)?.kind === 'aggregate' && x.over === null) found = true; return x; });
  return found;
}

/**
 * Top-down rewrite: `fn` may return a replacement (whose children are not revisited) or
 * null to descend into the node's children.
 */
function mapExprTopDown(e: Expr, fn: (e: Expr) => Expr | null): Expr {
  const replaced = fn(e);
  if (replaced) return replaced;
  const m = (x: Expr): Expr => mapExprTopDown(x, fn);
  switch (e.kind) {
    case 'unary': return { ...e, arg: m(e.arg) };
    case 'isNull': return { ...e, arg: m(e.arg) };
    case 'isBool': return { ...e, arg: m(e.arg) };
    case 'cast': return { ...e, arg: m(e.arg) };
    case 'mask': return { ...e, arg: m(e.arg) };
    case 'binary': return { ...e, left: m(e.left), right: m(e.right) };
    case 'like': return { ...e, arg: m(e.arg), pattern: m(e.pattern) };
    case 'between': return { ...e, arg: m(e.arg), low: m(e.low), high: m(e.high) };
    case 'inList': return { ...e, arg: m(e.arg), list: e.list.map(m) };
    case 'inQuery': return { ...e, arg: m(e.arg) };
    case 'case': return { ...e, operand: e.operand ? m(e.operand) : null, whens: e.whens.map((w) => ({ when: m(w.when), then: m(w.then) })), else: e.else ? m(e.else) : null };
    case 'func': return {
      ...e, args: e.args.map(m), filter: e.filter ? m(e.filter) : null,
      over: e.over ? { partitionBy: e.over.partitionBy.map(m), orderBy: e.over.orderBy.map((o) => ({ ...o, expr: m(o.expr) })) } : null,
    };
    default: return e;
  }
}

function outputsOf(q: Select): OutputColumn[] {
  const seen = new Set<string>();
  return q.targets.map((t) => {
    const key = t.alias.toLowerCase();
    if (seen.has(key)) throw new GatehouseError('SQL_INVALID', `the output column "${t.alias}" appears twice in a subquery or CTE (names are case-insensitive)`, { hint: 'give each output column a distinct alias' });
    seen.add(key);
    return { name: t.alias, lineage: lineageOf(t.expr) };
  });
}
