/**
 * A catalog query, checked and rebuilt by Gatehouse: the client's SELECT is parsed by the
 * PostgreSQL parser (libpg-query) and every node of the tree must be one this file knows
 * — a SELECT over the catalog relations of ./tables.ts (or its own CTEs and subqueries),
 * with operators, CASE, casts to catalog types and the functions of ./functions.ts. The
 * SQL that runs is rendered here from that tree: identifiers quoted, literals escaped,
 * relations replaced by Gatehouse's catalog tables, functions replaced by the SQL Gatehouse
 * chose for them. Nothing the client wrote reaches the engine as text (invariant 2), so
 * no file, setting or engine function is reachable from the wire's catalog path.
 *
 * Anything else is refused before an engine sees it: an unknown function is
 * SQL_FUNCTION_NOT_ALLOWED, an unknown relation, node or construct SQL_UNSUPPORTED.
 */
import { parseSync } from 'libpg-query';
import { GatehouseError } from '../errors.ts';
import { quoteIdent, quoteString } from '../query/render/sql.ts';
import { CATALOG_TABLE_BY_NAME } from './tables.ts';
import { CATALOG_FUNCTIONS, CATALOG_TABLE_FUNCTIONS, catalogTableRef, type CatalogSession } from './functions.ts';

type Node = Record<string, any>;

export interface RenderedCatalogQuery {
  readonly sql: string;
}

const HINT = 'the wire front answers a subset of pg_catalog and information_schema for BI tools and psql (docs/wire-protocol.md); query datasets with a governed SELECT';
const MAX_NODES = 20_000;
const MAX_DEPTH = 120;

function unsupported(what: string): never {
  throw new GatehouseError('SQL_UNSUPPORTED', `${what} is not supported in a catalog query`, { hint: HINT });
}

/** Parses and renders one catalog SELECT. `params` are $1..$n (null: describe only, each $n is NULL). */
export function renderCatalogQuery(sqlText: string, session: CatalogSession, params: readonly (string | null)[] | null): RenderedCatalogQuery {
  let stmts: { stmt: Node }[];
  try {
    stmts = (parseSync(sqlText) as { stmts?: { stmt: Node }[] }).stmts ?? [];
  } catch (err) {
    throw new GatehouseError('SQL_SYNTAX', `syntax error: ${String((err as Error).message ?? 'invalid SQL').split('\n')[0]!.slice(0, 200)}`);
  }
  if (stmts.length !== 1 || !stmts[0]!.stmt.SelectStmt) unsupported('a statement other than one SELECT');
  const r = new Renderer(session, params);
  return { sql: r.select(stmts[0]!.stmt.SelectStmt, new Set(), 0) };
}

const SESSION_VALUES: Record<string, (s: CatalogSession) => string> = {
  SVFOP_CURRENT_USER: (s) => quoteString(s.user), SVFOP_SESSION_USER: (s) => quoteString(s.user), SVFOP_USER: (s) => quoteString(s.user),
  SVFOP_CURRENT_ROLE: (s) => quoteString(s.user), SVFOP_CURRENT_CATALOG: (s) => quoteString(s.database), SVFOP_CURRENT_SCHEMA: () => "'public'",
};

const COMPARISON = new Set(['=', '<>', '!=', '<', '>', '<=', '>=']);
const ARITHMETIC = new Set(['+', '-', '*', '/', '%', '||', '&', '|']);

/** Casts a catalog query may use → DuckDB type. reg* casts are resolved against the catalog rows. */
const CASTS: Record<string, string> = {
  text: 'VARCHAR', varchar: 'VARCHAR', name: 'VARCHAR', char: 'VARCHAR', bpchar: 'VARCHAR',
  int2: 'SMALLINT', smallint: 'SMALLINT', int4: 'INTEGER', int: 'INTEGER', integer: 'INTEGER', int8: 'BIGINT', bigint: 'BIGINT', oid: 'BIGINT',
  bool: 'BOOLEAN', boolean: 'BOOLEAN', float4: 'REAL', real: 'REAL', float8: 'DOUBLE', numeric: 'DOUBLE', decimal: 'DOUBLE', date: 'DATE',
};
/** regproc names a function: the catalog knows no function, so a name stays its text (schema dropped). */
const REG_TEXT = new Set(['regproc', 'regprocedure']);
const REG_CASTS: Record<string, { table: string; key: string }> = {
  regclass: { table: 'pg_class', key: 'relname' }, regtype: { table: 'pg_type', key: 'typname' }, regnamespace: { table: 'pg_namespace', key: 'nspname' },
};

function names(list: Node[] | undefined): string[] {
  return (list ?? []).map((n) => {
    if (n.String) return String(n.String.sval ?? '');
    unsupported('a name that is not a plain identifier');
  });
}

/** A one-dimensional array in PostgreSQL's text form (`{a,"b c",NULL}`) → its elements. */
export function parseArrayText(text: string): (string | null)[] {
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw new GatehouseError('REQUEST_INVALID', 'an array parameter must be written {a,b,…}', { hint: 'send the array in PostgreSQL text form' });
  const body = t.slice(1, -1);
  const out: (string | null)[] = [];
  if (body.trim() === '') return out;
  let i = 0;
  while (i <= body.length) {
    let item = '';
    let quoted = false;
    while (i < body.length && body[i] === ' ') i++;
    if (body[i] === '"') {
      quoted = true;
      i++;
      while (i < body.length && body[i] !== '"') { if (body[i] === '\\') i++; item += body[i] ?? ''; i++; }
      i++;
    } else {
      while (i < body.length && body[i] !== ',') { if (body[i] === '{') unsupported('a nested array parameter'); item += body[i]; i++; }
      item = item.trim();
    }
    out.push(!quoted && item.toUpperCase() === 'NULL' ? null : item);
    while (i < body.length && body[i] !== ',') i++;
    i++;
  }
  return out;
}

/** PostgreSQL's rule for the name of an unnamed result column (FigureColnameInternal). */
function figureColname(n: Node | undefined): string {
  if (!n) return '?column?';
  if (n.ColumnRef) {
    const last = (n.ColumnRef.fields as Node[]).at(-1);
    return last?.String ? String(last.String.sval) : '?column?';
  }
  if (n.FuncCall) return names(n.FuncCall.funcname).at(-1) ?? '?column?';
  if (n.TypeCast) {
    const inner = figureColname(n.TypeCast.arg);
    return inner !== '?column?' ? inner : (names(n.TypeCast.typeName?.names).at(-1) ?? '?column?');
  }
  if (n.A_Indirection) return figureColname(n.A_Indirection.arg);
  if (n.CaseExpr) return 'case';
  if (n.CoalesceExpr) return 'coalesce';
  if (n.MinMaxExpr) return n.MinMaxExpr.op === 'IS_GREATEST' ? 'greatest' : 'least';
  if (n.A_ArrayExpr) return 'array';
  if (n.A_Expr && n.A_Expr.kind === 'AEXPR_NULLIF') return 'nullif';
  if (n.SQLValueFunction) return String(n.SQLValueFunction.op ?? '').replace(/^SVFOP_/, '').toLowerCase();
  if (n.SubLink) {
    const k = n.SubLink.subLinkType;
    if (k === 'EXISTS_SUBLINK') return 'exists';
    if (k === 'ARRAY_SUBLINK') return 'array';
    if (k === 'EXPR_SUBLINK') {
      const t = (n.SubLink.subselect?.SelectStmt?.targetList as Node[] | undefined)?.[0]?.ResTarget;
      return t ? (t.name ?? figureColname(t.val)) : '?column?';
    }
  }
  return '?column?';
}

class Renderer {
  readonly #session: CatalogSession;
  readonly #params: readonly (string | null)[] | null;
  #nodes = 0;

  constructor(session: CatalogSession, params: readonly (string | null)[] | null) {
    this.#session = session;
    this.#params = params;
  }

  #tick(depth: number): void {
    if (++this.#nodes > MAX_NODES) throw new GatehouseError('QUERY_TOO_COSTLY', 'the catalog query is too large', { hint: 'simplify it' });
    if (depth > MAX_DEPTH) unsupported('nesting this deep');
  }

  select(s: Node, outer: ReadonlySet<string>, depth: number): string {
    this.#tick(depth);
    for (const k of ['intoClause', 'lockingClause', 'windowClause', 'valuesLists']) if (s[k] !== undefined && (!Array.isArray(s[k]) || s[k].length)) unsupported(k === 'valuesLists' ? 'VALUES' : k === 'windowClause' ? 'WINDOW' : k === 'lockingClause' ? 'FOR UPDATE/SHARE' : 'SELECT INTO');
    const ctes = new Set(outer);
    let sql = '';
    if (s.withClause) {
      if (s.withClause.recursive) unsupported('WITH RECURSIVE');
      const parts: string[] = [];
      for (const c of s.withClause.ctes as Node[]) {
        const cte = c.CommonTableExpr;
        if (!cte?.ctequery?.SelectStmt) unsupported('a CTE that is not a SELECT');
        const name = String(cte.ctename);
        const colnames = names(cte.aliascolnames);
        parts.push(`${quoteIdent(name)}${colnames.length ? `(${colnames.map(quoteIdent).join(', ')})` : ''} AS (${this.select(cte.ctequery.SelectStmt, ctes, depth + 1)})`);
        ctes.add(name.toLowerCase());
      }
      sql += `WITH ${parts.join(', ')} `;
    }
    if (s.op && s.op !== 'SETOP_NONE') {
      const op = { SETOP_UNION: 'UNION', SETOP_INTERSECT: 'INTERSECT', SETOP_EXCEPT: 'EXCEPT' }[s.op as string];
      if (!op) unsupported(`set operation ${s.op}`);
      sql += `(${this.select(s.larg, ctes, depth + 1)}) ${op}${s.all ? ' ALL' : ''} (${this.select(s.rarg, ctes, depth + 1)})`;
    } else {
      sql += 'SELECT ';
      if (s.distinctClause) {
        const on = (s.distinctClause as Node[]).filter((d) => Object.keys(d).length > 0);
        sql += on.length ? `DISTINCT ON (${on.map((e) => this.expr(e, ctes, depth + 1)).join(', ')}) ` : 'DISTINCT ';
      }
      const targets = (s.targetList as Node[] | undefined) ?? [];
      if (targets.length === 0) unsupported('a SELECT without columns');
      sql += targets.map((t) => this.target(t, ctes, depth + 1)).join(', ');
      const from = (s.fromClause as Node[] | undefined) ?? [];
      if (from.length) sql += ` FROM ${from.map((f) => this.fromItem(f, ctes, depth + 1)).join(', ')}`;
      if (s.whereClause) sql += ` WHERE ${this.expr(s.whereClause, ctes, depth + 1)}`;
      if (s.groupClause?.length) {
        sql += ` GROUP BY ${(s.groupClause as Node[]).map((g) => (g.GroupingSet ? unsupported('GROUPING SETS') : this.expr(g, ctes, depth + 1))).join(', ')}`;
      }
      if (s.havingClause) sql += ` HAVING ${this.expr(s.havingClause, ctes, depth + 1)}`;
    }
    if (s.sortClause?.length) sql += ` ORDER BY ${(s.sortClause as Node[]).map((o) => this.sortBy(o, ctes, depth + 1)).join(', ')}`;
    if (s.limitCount) sql += ` LIMIT ${this.expr(s.limitCount, ctes, depth + 1)}`;
    if (s.limitOffset) sql += ` OFFSET ${this.expr(s.limitOffset, ctes, depth + 1)}`;
    if (s.limitOption && s.limitOption !== 'LIMIT_OPTION_DEFAULT' && s.limitOption !== 'LIMIT_OPTION_COUNT') unsupported('FETCH … WITH TIES');
    return sql;
  }

  target(t: Node, ctes: ReadonlySet<string>, depth: number): string {
    const r = t.ResTarget;
    if (!r) unsupported('this select-list item');
    const val = r.val as Node;
    if (val?.ColumnRef && (val.ColumnRef.fields as Node[]).some((f) => f.A_Star)) {
      if (r.name) unsupported('an alias on *');
      return this.expr(val, ctes, depth);
    }
    return `${this.expr(val, ctes, depth)} AS ${quoteIdent(r.name ?? figureColname(val))}`;
  }

  sortBy(o: Node, ctes: ReadonlySet<string>, depth: number): string {
    const s = o.SortBy;
    if (!s) unsupported('this ORDER BY item');
    if (s.useOp) unsupported('ORDER BY … USING');
    const dir = s.sortby_dir === 'SORTBY_DESC' ? ' DESC' : s.sortby_dir === 'SORTBY_ASC' ? ' ASC' : '';
    const nulls = s.sortby_nulls === 'SORTBY_NULLS_FIRST' ? ' NULLS FIRST' : s.sortby_nulls === 'SORTBY_NULLS_LAST' ? ' NULLS LAST' : '';
    return `${this.expr(s.node, ctes, depth)}${dir}${nulls}`;
  }

  alias(a: Node | undefined, fallback: string | null): string {
    if (!a) return fallback === null ? '' : ` AS ${quoteIdent(fallback)}`;
    const cols = names(a.colnames);
    return ` AS ${quoteIdent(String(a.aliasname))}${cols.length ? `(${cols.map(quoteIdent).join(', ')})` : ''}`;
  }

  fromItem(f: Node, ctes: ReadonlySet<string>, depth: number): string {
    this.#tick(depth);
    if (f.RangeVar) {
      const v = f.RangeVar;
      const schema = v.schemaname ? String(v.schemaname).toLowerCase() : null;
      const rel = String(v.relname ?? '');
      if (v.catalogname) unsupported('a database-qualified relation');
      if (schema === null && ctes.has(rel.toLowerCase())) return `${quoteIdent(rel)}${this.alias(v.alias, null)}`;
      const key = schema === 'information_schema' ? `information_schema.${rel.toLowerCase()}` : schema === null || schema === 'pg_catalog' ? rel.toLowerCase() : null;
      const table = key !== null && (schema !== null || key.startsWith('pg_')) ? CATALOG_TABLE_BY_NAME.get(key) : undefined;
      if (!table) {
        const shown = `${schema ? `${schema}.` : ''}${rel}`.slice(0, 64);
        throw new GatehouseError('SQL_UNSUPPORTED', `relation "${shown}" is not part of the catalog the wire front answers`, { hint: HINT });
      }
      return `${catalogTableRef(table.name)}${this.alias(v.alias, rel)}`;
    }
    if (f.RangeSubselect) {
      const s = f.RangeSubselect;
      if (s.lateral) unsupported('LATERAL');
      if (!s.subquery?.SelectStmt) unsupported('this subquery');
      return `(${this.select(s.subquery.SelectStmt, ctes, depth + 1)})${this.alias(s.alias, null)}`;
    }
    if (f.JoinExpr) {
      const j = f.JoinExpr;
      if (j.isNatural) unsupported('NATURAL JOIN');
      if (j.alias || j.join_using_alias) unsupported('an alias on a join');
      const kind = { JOIN_INNER: 'JOIN', JOIN_LEFT: 'LEFT JOIN', JOIN_RIGHT: 'RIGHT JOIN', JOIN_FULL: 'FULL JOIN' }[j.jointype as string];
      if (!kind) unsupported(`join type ${j.jointype}`);
      const left = this.fromItem(j.larg, ctes, depth + 1);
      const right = this.fromItem(j.rarg, ctes, depth + 1);
      if (j.usingClause?.length) return `${left} ${kind} ${right} USING (${names(j.usingClause).map(quoteIdent).join(', ')})`;
      if (!j.quals) return kind === 'JOIN' ? `${left} CROSS JOIN ${right}` : unsupported('an outer join without ON');
      return `${left} ${kind} ${right} ON ${this.expr(j.quals, ctes, depth + 1)}`;
    }
    if (f.RangeFunction) {
      const rf = f.RangeFunction;
      if (rf.lateral || rf.ordinality || rf.is_rowsfrom || (rf.functions as Node[]).length !== 1) unsupported('this function in FROM');
      const call = ((rf.functions as Node[])[0]!.List?.items as Node[] | undefined)?.[0]?.FuncCall;
      if (!call) unsupported('this function in FROM');
      const parts = names(call.funcname).map((n) => n.toLowerCase());
      const name = parts.at(-1)!;
      const tf = (parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog')) ? CATALOG_TABLE_FUNCTIONS.get(name) : undefined;
      if (!tf) throw new GatehouseError('SQL_FUNCTION_NOT_ALLOWED', `function ${parts.join('.').slice(0, 64)}() is not allowed in a catalog query`, { hint: 'only generate_series() and unnest() may appear in FROM of a catalog query' });
      const args = ((call.args as Node[] | undefined) ?? []).map((a) => this.expr(a, ctes, depth + 1));
      if (args.length < tf.min || args.length > tf.max) unsupported(`${name}() with ${args.length} arguments`);
      const a = rf.alias as Node | undefined;
      const aliasName = a ? String(a.aliasname) : name;
      const cols = a ? names(a.colnames) : [];
      return `(SELECT unnest(${tf.duckdb === 'unnest' ? args[0] : `generate_series(${args.join(', ')})`}) AS ${quoteIdent(cols[0] ?? aliasName)}) AS ${quoteIdent(aliasName)}`;
    }
    unsupported(`${Object.keys(f)[0] ?? 'this'} in FROM`);
  }

  expr(n: Node | undefined, ctes: ReadonlySet<string>, depth: number): string {
    this.#tick(depth);
    if (!n) unsupported('an empty expression');
    const [kind] = Object.keys(n);
    const v = n[kind!] as Node;
    const e = (x: Node) => this.expr(x, ctes, depth + 1);
    switch (kind) {
      case 'ColumnRef': {
        return (v.fields as Node[]).map((f) => {
          if (f.A_Star) return '*';
          if (f.String) return quoteIdent(String(f.String.sval));
          unsupported('this column reference');
        }).join('.');
      }
      case 'ParamRef': {
        const i = Number(v.number ?? 0);
        if (this.#params === null) return 'NULL';
        if (i < 1 || i > this.#params.length) throw new GatehouseError('REQUEST_INVALID', `parameter $${i} has no value`, { hint: 'bind a value for every $n' });
        const p = this.#params[i - 1];
        return p === null || p === undefined ? 'NULL' : quoteString(p);
      }
      case 'A_Const': {
        if (v.isnull) return 'NULL';
        if (v.ival !== undefined) return String(Number(v.ival.ival ?? 0));
        if (v.fval !== undefined) {
          const f = String(v.fval.fval);
          if (!/^-?\d+(\.\d*)?([eE][+-]?\d+)?$|^-?\.\d+([eE][+-]?\d+)?$/.test(f)) unsupported('this numeric literal');
          return f;
        }
        if (v.sval !== undefined) return quoteString(String(v.sval.sval ?? ''));
        if (v.boolval !== undefined) return v.boolval.boolval ? 'true' : 'false';
        unsupported('this literal');
      }
      case 'TypeCast': {
        const tn = v.typeName as Node;
        const parts = names(tn.names).map((x) => x.toLowerCase());
        if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog')) unsupported(`a cast to ${parts.join('.').slice(0, 64)}`);
        const type = parts.at(-1)!;
        const array = (tn.arrayBounds as Node[] | undefined)?.length ? '[]' : '';
        const reg = REG_CASTS[type];
        if (reg && !array) {
          const inner = e(v.arg);
          const table = catalogTableRef(reg.table);
          // A name literal becomes its OID; an OID becomes its name (PostgreSQL's reg* output).
          return v.arg?.A_Const?.sval !== undefined
            ? `(SELECT r.oid FROM ${table} AS r WHERE r.${quoteIdent(reg.key)} = ${inner})`
            : `coalesce((SELECT r.${quoteIdent(reg.key)} FROM ${table} AS r WHERE r.oid = ${inner}), CAST(${inner} AS VARCHAR))`;
        }
        // reg*[] (pgcli's function listing): the catalog holds no function, so the OIDs are shown as text.
        if (array && (REG_TEXT.has(type) || REG_CASTS[type])) return `CAST(${e(v.arg)} AS VARCHAR[])`;
        if (REG_TEXT.has(type) && !array) {
          if (v.arg?.A_Const?.sval !== undefined) return quoteString(String(v.arg.A_Const.sval.sval ?? '').replace(/^pg_catalog\./, ''));
          return `CAST(${e(v.arg)} AS VARCHAR)`;
        }
        const target = CASTS[type];
        if (!target) unsupported(`a cast to ${type.slice(0, 64)}`);
        if ((tn.typmods as Node[] | undefined)?.length && target !== 'VARCHAR') unsupported(`a cast to ${type}(…)`);
        return `CAST(${e(v.arg)} AS ${target}${array})`;
      }
      case 'CollateClause': return e(v.arg);
      case 'A_Expr': return this.aExpr(v, e);
      case 'BoolExpr': {
        const args = (v.args as Node[]).map(e);
        if (v.boolop === 'NOT_EXPR') return `(NOT ${args[0]})`;
        if (v.boolop === 'AND_EXPR') return `(${args.join(' AND ')})`;
        if (v.boolop === 'OR_EXPR') return `(${args.join(' OR ')})`;
        unsupported(`boolean operator ${v.boolop}`);
      }
      case 'NullTest': return `(${e(v.arg)} IS ${v.nulltesttype === 'IS_NOT_NULL' ? 'NOT ' : ''}NULL)`;
      case 'BooleanTest': {
        const t = { IS_TRUE: 'IS TRUE', IS_NOT_TRUE: 'IS NOT TRUE', IS_FALSE: 'IS FALSE', IS_NOT_FALSE: 'IS NOT FALSE', IS_UNKNOWN: 'IS NULL', IS_NOT_UNKNOWN: 'IS NOT NULL' }[v.booltesttype as string];
        if (!t) unsupported('this boolean test');
        return `(${e(v.arg)} ${t})`;
      }
      case 'CaseExpr': {
        const whens = (v.args as Node[]).map((w) => `WHEN ${e(w.CaseWhen.expr)} THEN ${e(w.CaseWhen.result)}`).join(' ');
        return `(CASE ${v.arg ? `${e(v.arg)} ` : ''}${whens}${v.defresult ? ` ELSE ${e(v.defresult)}` : ''} END)`;
      }
      case 'CoalesceExpr': return `coalesce(${(v.args as Node[]).map(e).join(', ')})`;
      case 'MinMaxExpr': return `${v.op === 'IS_GREATEST' ? 'greatest' : 'least'}(${(v.args as Node[]).map(e).join(', ')})`;
      case 'A_ArrayExpr': return `[${((v.elements as Node[] | undefined) ?? []).map(e).join(', ')}]`;
      case 'A_Indirection': {
        let out = e(v.arg);
        for (const ind of v.indirection as Node[]) {
          // (record).field — the fields of _pg_expandarray()'s (x, n) record.
          if (ind.String) { out = `struct_extract(${out}, ${quoteString(String(ind.String.sval))})`; continue; }
          if (!ind.A_Indices || ind.A_Indices.is_slice) unsupported('this subscript');
          out = `${out}[${e(ind.A_Indices.uidx)}]`;
        }
        return out;
      }
      case 'SQLValueFunction': {
        const f = SESSION_VALUES[v.op as string];
        if (!f) unsupported(`${String(v.op).replace(/^SVFOP_/, '')}`);
        return f(this.#session);
      }
      case 'SubLink': {
        if (!v.subselect?.SelectStmt) unsupported('this subquery');
        const sub = this.select(v.subselect.SelectStmt, ctes, depth + 1);
        switch (v.subLinkType) {
          case 'EXPR_SUBLINK': return `(${sub})`;
          case 'EXISTS_SUBLINK': return `(EXISTS (${sub}))`;
          case 'ARRAY_SUBLINK': return `ARRAY(${sub})`;
          case 'ANY_SUBLINK': {
            const op = names(v.operName).at(-1) ?? '=';
            if (op !== '=') unsupported(`${op} ANY (subquery)`);
            return `(${e(v.testexpr)} IN (${sub}))`;
          }
          case 'ALL_SUBLINK': {
            const op = names(v.operName).at(-1);
            if (op !== '<>' && op !== '!=') unsupported(`${op} ALL (subquery)`);
            return `(${e(v.testexpr)} NOT IN (${sub}))`;
          }
          default: unsupported(`subquery kind ${v.subLinkType}`);
        }
      }
      case 'FuncCall': return this.funcCall(v, ctes, depth);
      default: unsupported(kind ?? 'this expression');
    }
  }

  aExpr(v: Node, e: (x: Node) => string): string {
    const opParts = names(v.name);
    if (opParts.length > 2 || (opParts.length === 2 && opParts[0] !== 'pg_catalog')) unsupported('this operator');
    const op = opParts.at(-1) ?? '';
    switch (v.kind) {
      case 'AEXPR_OP': {
        if (!v.lexpr) {
          if (op === '-' || op === '+') return `(${op}${e(v.rexpr)})`;
          unsupported(`prefix operator ${op.slice(0, 8)}`);
        }
        const l = e(v.lexpr);
        const r = e(v.rexpr);
        if (COMPARISON.has(op) || ARITHMETIC.has(op)) return `(${l} ${op === '!=' ? '<>' : op} ${r})`;
        // RE2 (DuckDB's regex engine) runs in linear time, so a pattern cannot stall the engine.
        if (op === '~') return `regexp_matches(${l}, ${r})`;
        if (op === '!~') return `(NOT regexp_matches(${l}, ${r}))`;
        if (op === '~*') return `regexp_matches(${l}, ${r}, 'i')`;
        if (op === '!~*') return `(NOT regexp_matches(${l}, ${r}, 'i'))`;
        if (op === '~~') return `(${l} LIKE ${r})`;
        if (op === '!~~') return `(${l} NOT LIKE ${r})`;
        if (op === '~~*') return `(${l} ILIKE ${r})`;
        if (op === '!~~*') return `(${l} NOT ILIKE ${r})`;
        unsupported(`operator ${op.slice(0, 8)}`);
      }
      case 'AEXPR_OP_ANY':
      case 'AEXPR_OP_ALL': {
        const l = e(v.lexpr);
        const r = v.rexpr?.ParamRef ? this.arrayParam(v.rexpr.ParamRef) : e(v.rexpr);
        if (v.kind === 'AEXPR_OP_ANY' && op === '=') return `coalesce(list_contains(${r}, ${l}), false)`;
        if (v.kind === 'AEXPR_OP_ALL' && (op === '<>' || op === '!=')) return `(NOT coalesce(list_contains(${r}, ${l}), false))`;
        unsupported(`${op.slice(0, 8)} ${v.kind === 'AEXPR_OP_ANY' ? 'ANY' : 'ALL'} (array)`);
      }
      case 'AEXPR_IN': {
        const items = ((v.rexpr?.List?.items as Node[] | undefined) ?? []).map(e);
        if (!items.length) unsupported('an empty IN list');
        return `(${e(v.lexpr)} ${op === '<>' ? 'NOT IN' : 'IN'} (${items.join(', ')}))`;
      }
      case 'AEXPR_LIKE':
      case 'AEXPR_ILIKE': {
        if (v.rexpr?.FuncCall) unsupported('LIKE … ESCAPE');
        const word = v.kind === 'AEXPR_LIKE' ? 'LIKE' : 'ILIKE';
        return `(${e(v.lexpr)} ${op.startsWith('!') ? 'NOT ' : ''}${word} ${e(v.rexpr)})`;
      }
      case 'AEXPR_BETWEEN':
      case 'AEXPR_NOT_BETWEEN': {
        const [lo, hi] = (v.rexpr?.List?.items as Node[]).map(e);
        return `(${e(v.lexpr)} ${v.kind === 'AEXPR_NOT_BETWEEN' ? 'NOT ' : ''}BETWEEN ${lo} AND ${hi})`;
      }
      case 'AEXPR_DISTINCT': return `(${e(v.lexpr)} IS DISTINCT FROM ${e(v.rexpr)})`;
      case 'AEXPR_NOT_DISTINCT': return `(${e(v.lexpr)} IS NOT DISTINCT FROM ${e(v.rexpr)})`;
      case 'AEXPR_NULLIF': return `nullif(${e(v.lexpr)}, ${e(v.rexpr)})`;
      default: unsupported(`operator kind ${String(v.kind).replace(/^AEXPR_/, '')}`);
    }
  }

  /** OVER (PARTITION BY … ORDER BY …) with the default frame: JDBC numbers columns with row_number(). */
  over(w: Node, ctes: ReadonlySet<string>, depth: number): string {
    const w2 = (w.WindowDef ?? w) as Node;
    if (w2.name || w2.refname || (w2.frameOptions !== undefined && w2.frameOptions !== 1058)) unsupported('this window definition');
    const parts: string[] = [];
    if ((w2.partitionClause as Node[] | undefined)?.length) parts.push(`PARTITION BY ${(w2.partitionClause as Node[]).map((x) => this.expr(x, ctes, depth + 1)).join(', ')}`);
    if ((w2.orderClause as Node[] | undefined)?.length) parts.push(`ORDER BY ${(w2.orderClause as Node[]).map((o) => this.sortBy(o, ctes, depth + 1)).join(', ')}`);
    return `OVER (${parts.join(' ')})`;
  }

  /** `= ANY($1)` with $1 an array sent in PostgreSQL's text form (`{r,p,f}`, psycopg 3, pgcli): a list literal. */
  arrayParam(p: Node): string {
    const i = Number(p.number ?? 0);
    if (this.#params === null) return 'CAST(NULL AS VARCHAR[])';
    if (i < 1 || i > this.#params.length) throw new GatehouseError('REQUEST_INVALID', `parameter $${i} has no value`, { hint: 'bind a value for every $n' });
    const text = this.#params[i - 1];
    if (text === null || text === undefined) return 'CAST(NULL AS VARCHAR[])';
    const items = parseArrayText(text);
    return `[${items.map((x) => (x === null ? 'NULL' : quoteString(x))).join(', ')}]::VARCHAR[]`;
  }

  funcCall(v: Node, ctes: ReadonlySet<string>, depth: number): string {
    const parts = names(v.funcname).map((x) => x.toLowerCase());
    const shown = parts.join('.').slice(0, 64);
    const qualified = parts.length === 2 && (parts[0] === 'pg_catalog' || (parts[0] === 'information_schema' && parts[1] === '_pg_expandarray'));
    const f = parts.length === 1 || qualified ? CATALOG_FUNCTIONS.get(parts.at(-1)!) : undefined;
    if (!f) {
      throw new GatehouseError('SQL_FUNCTION_NOT_ALLOWED', `function ${shown}() is not allowed in a catalog query`, {
        hint: 'catalog queries may call the PostgreSQL catalog functions clients need (version(), current_schema(), format_type(), pg_get_userbyid(), …; docs/wire-protocol.md); files, settings and engine functions are never reachable',
      });
    }
    if (v.over) {
      if (!f.window) unsupported(`${shown}() as a window function`);
      return `${f.render({ sql: [], constants: [], session: this.#session })} ${this.over(v.over as Node, ctes, depth + 1)}`;
    }
    if (f.window) unsupported(`${shown}() without OVER`);
    if (v.agg_within_group || v.func_variadic) unsupported(`${shown}() in this form`);
    const rawArgs = (v.args as Node[] | undefined) ?? [];
    const args = rawArgs.map((a) => this.expr(a, ctes, depth + 1));
    if (v.agg_star) {
      if (parts.at(-1) !== 'count' || rawArgs.length) unsupported(`${shown}(*)`);
    } else if (args.length < f.min || args.length > f.max) {
      throw new GatehouseError('SQL_UNSUPPORTED', `${shown}() takes ${f.min === f.max ? f.min : `${f.min} to ${f.max}`} arguments in a catalog query`, { hint: HINT });
    }
    if (!f.aggregate && (v.agg_distinct || v.agg_order || v.agg_filter)) unsupported(`DISTINCT, ORDER BY or FILTER in ${shown}()`);
    if (f.aggregate) {
      const inner = v.agg_star ? '*' : `${v.agg_distinct ? 'DISTINCT ' : ''}${args.join(', ')}`;
      const order = v.agg_order?.length ? ` ORDER BY ${(v.agg_order as Node[]).map((o) => this.sortBy(o, ctes, depth + 1)).join(', ')}` : '';
      const filter = v.agg_filter ? ` FILTER (WHERE ${this.expr(v.agg_filter, ctes, depth + 1)})` : '';
      return `${f.render({ sql: [inner + order], constants: [], session: this.#session })}${filter}`;
    }
    const constants = rawArgs.map((a) => (a.A_Const?.sval !== undefined ? String(a.A_Const.sval.sval ?? '') : null));
    return f.render({ sql: args, constants, session: this.#session });
  }
}
