/**
 * SQL text → Gatehouse IR, using the real PostgreSQL parser (libpg-query, WebAssembly).
 *
 * The converter is an allowlist: every parse-tree node and every field of it must be one
 * we understand, or the query is refused with an error naming the construct and saying
 * what is allowed. Unknown syntax is never passed through (invariant 2).
 */
import { loadModule, parseSync } from 'libpg-query';
import { GatehouseError } from '../errors.ts';
import { lookupFunction } from './functions.ts';
import { SET_OPERATION_ALIAS, type BinaryOp, type CastType, type Cte, type Expr, type FromItem, type OrderItem, type Select, type SetOperator, type Target, type WindowSpec } from './ir.ts';

let loaded: Promise<void> | null = null;
/** Loads the parser's WebAssembly once; call before `parseSql`. */
export function loadParser(): Promise<void> {
  loaded ??= loadModule().then(() => undefined);
  return loaded;
}

type Node = Record<string, any>;

export const MAX_SQL_LENGTH = 100_000;
const MAX_DEPTH = 200;

function unsupported(what: string, hint: string): never {
  throw new GatehouseError('SQL_UNSUPPORTED', `${what} is not supported`, { hint });
}

const STATEMENT_NAMES: Record<string, string> = {
  CopyStmt: 'COPY', InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE',
  CreateStmt: 'CREATE TABLE', CreateTableAsStmt: 'CREATE TABLE AS', DropStmt: 'DROP', AlterTableStmt: 'ALTER TABLE',
  VariableSetStmt: 'SET', VariableShowStmt: 'SHOW', TransactionStmt: 'transaction control', ExplainStmt: 'EXPLAIN',
  LoadStmt: 'LOAD', CreateFunctionStmt: 'CREATE FUNCTION', ViewStmt: 'CREATE VIEW', IndexStmt: 'CREATE INDEX',
  GrantStmt: 'GRANT', CallStmt: 'CALL', DoStmt: 'DO', PrepareStmt: 'PREPARE', ExecuteStmt: 'EXECUTE',
  CreateExtensionStmt: 'CREATE EXTENSION', VacuumStmt: 'VACUUM', CheckPointStmt: 'CHECKPOINT', ListenStmt: 'LISTEN',
  NotifyStmt: 'NOTIFY', TruncateStmt: 'TRUNCATE', DeclareCursorStmt: 'DECLARE CURSOR', LockStmt: 'LOCK',
};

/**
 * Parses one SELECT statement into IR. Throws GatehouseError with a precise code.
 *
 * `params` are the text values of `$1..$n` (the PostgreSQL wire protocol's Bind message).
 * Each becomes a string literal (NULL for null) where it appears, exactly as PostgreSQL
 * treats an untyped parameter: the value is data, never SQL. Without `params`, a `$n`
 * is refused.
 */
export function parseSql(sql: string, params?: readonly (string | null)[]): Select {
  if (loaded === null) throw new Error('parser not loaded: await loadParser() first');
  if (typeof sql !== 'string' || sql.trim().length === 0) throw new GatehouseError('SQL_SYNTAX', 'the query is empty', { hint: 'send one SELECT statement' });
  if (sql.length > MAX_SQL_LENGTH) throw new GatehouseError('SQL_SYNTAX', `the query is longer than ${MAX_SQL_LENGTH} characters`);
  if (sql.includes('\u0000')) throw new GatehouseError('SQL_SYNTAX', 'the query contains a NUL character');
  let tree: { stmts?: { stmt: Node }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (err) {
    const e = err as { message?: string; sqlDetails?: { cursorPosition?: number } };
    const pos = e.sqlDetails?.cursorPosition;
    throw new GatehouseError('SQL_SYNTAX', `syntax error${pos !== undefined ? ` at character ${pos + 1}` : ''}: ${(e.message ?? 'invalid SQL').split('\n')[0]}`, { hint: 'Gatehouse accepts PostgreSQL-style SELECT syntax' });
  }
  const stmts = tree.stmts ?? [];
  if (stmts.length === 0) throw new GatehouseError('SQL_SYNTAX', 'the query is empty', { hint: 'send one SELECT statement' });
  if (stmts.length > 1) throw new GatehouseError('SQL_UNSUPPORTED', `${stmts.length} statements were sent; only one statement per request is allowed`, { hint: 'send a single SELECT without a second statement after ";"' });
  const [kind] = Object.keys(stmts[0]!.stmt);
  if (kind !== 'SelectStmt') {
    const name = STATEMENT_NAMES[kind!] ?? kind!.replace(/Stmt$/, '');
    throw new GatehouseError('SQL_UNSUPPORTED', `${name} statements are refused; only SELECT is allowed`, { hint: 'Gatehouse is read-only: query with SELECT' });
  }
  if (params !== undefined) {
    if (params.length > MAX_PARAMS) throw new GatehouseError('SQL_INVALID', `at most ${MAX_PARAMS} parameters may be bound`);
    for (const v of params) {
      if (v !== null && typeof v !== 'string') throw new GatehouseError('SQL_INVALID', 'parameter values must be text or NULL');
      if (v !== null && v.includes('\u0000')) throw new GatehouseError('SQL_INVALID', 'a parameter value contains a NUL character');
    }
  }
  return new Converter(params ?? null).select(stmts[0]!.stmt.SelectStmt, 0);
}

const MAX_PARAMS = 1000;

function only(node: Node, name: string, allowed: readonly string[]): void {
  for (const [k, v] of Object.entries(node)) {
    if (k === 'location' || allowed.includes(k)) continue;
    if (v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0)) continue;
    unsupported(`${name} with "${k}"`, 'remove that clause; see docs/sql.md for the supported SELECT subset');
  }
}

function unwrap(n: Node): [string, Node] {
  const keys = Object.keys(n);
  if (keys.length !== 1) throw new GatehouseError('SQL_INVALID', 'unexpected parse tree');
  return [keys[0]!, n[keys[0]!]];
}

function strings(list: Node[] | undefined): string[] {
  return (list ?? []).map((n) => {
    const [k, v] = unwrap(n);
    if (k !== 'String') unsupported(`name part ${k}`, 'use plain identifiers');
    return v.sval as string;
  });
}

const OPS: Record<string, BinaryOp> = {
  '=': '=', '<>': '<>', '!=': '<>', '<': '<', '>': '>', '<=': '<=', '>=': '>=',
  '+': '+', '-': '-', '*': '*', '/': '/', '%': '%', '||': '||',
};

const CAST_TYPES: Record<string, CastType['name']> = {
  int4: 'INTEGER', int: 'INTEGER', integer: 'INTEGER', int8: 'BIGINT', bigint: 'BIGINT', int2: 'SMALLINT', smallint: 'SMALLINT',
  float8: 'DOUBLE', double: 'DOUBLE', float4: 'REAL', real: 'REAL', numeric: 'DECIMAL', decimal: 'DECIMAL',
  varchar: 'VARCHAR', text: 'VARCHAR', bpchar: 'VARCHAR', bool: 'BOOLEAN', boolean: 'BOOLEAN',
  date: 'DATE', timestamp: 'TIMESTAMP',
};

class Converter {
  readonly params: readonly (string | null)[] | null;
  constructor(params: readonly (string | null)[] | null) { this.params = params; }

  /** The value bound to $n, as a literal. */
  param(n: number): Expr {
    if (this.params === null) unsupported(`the parameter $${n}`, 'write the value into the query; parameters are bound only by the PostgreSQL wire protocol');
    const v = this.params[n - 1];
    if (v === undefined) throw new GatehouseError('SQL_INVALID', `parameter $${n} has no value: ${this.params.length} were bound`, { hint: 'bind one value per $n placeholder' });
    return v === null ? { kind: 'literal', type: 'null', value: null } : { kind: 'literal', type: 'string', value: v };
  }

  select(s: Node, depth: number): Select {
    if (depth > MAX_DEPTH) throw new GatehouseError('SQL_UNSUPPORTED', 'the query nests too deeply');
    if (s.op && s.op !== 'SETOP_NONE') return this.setOperation(s, depth);
    if (s.valuesLists?.length) unsupported('VALUES lists', 'select from datasets');
    only(s, 'SELECT', ['targetList', 'fromClause', 'whereClause', 'groupClause', 'havingClause', 'sortClause', 'limitCount', 'limitOffset', 'limitOption', 'withClause', 'distinctClause', 'op', 'groupDistinct']);
    if (s.limitOption && s.limitOption !== 'LIMIT_OPTION_DEFAULT' && s.limitOption !== 'LIMIT_OPTION_COUNT') unsupported('FETCH ... WITH TIES', 'use LIMIT n');
    let distinct = false;
    if (s.distinctClause?.length) {
      if (s.distinctClause.length === 1 && Object.keys(s.distinctClause[0]).length === 0) distinct = true;
      else unsupported('DISTINCT ON', 'use DISTINCT or GROUP BY');
    }
    const withClause = this.withClause(s.withClause, depth);
    const targets: Target[] = (s.targetList ?? []).map((t: Node, i: number) => {
      const [k, rt] = unwrap(t);
      if (k !== 'ResTarget') unsupported(k, 'select expressions');
      only(rt, 'select item', ['val', 'name']);
      const expr = this.expr(rt.val, depth, true);
      return { expr, alias: rt.name ?? defaultAlias(expr, i) };
    });
    if (targets.length === 0) throw new GatehouseError('SQL_SYNTAX', 'SELECT needs at least one output expression');
    let from: FromItem | null = null;
    for (const f of (s.fromClause ?? []) as Node[]) {
      const item = this.from(f, depth);
      from = from === null ? item : { kind: 'join', type: 'cross', left: from, right: item, on: null };
    }
    if (s.groupDistinct) unsupported('GROUP BY DISTINCT', 'use GROUP BY');
    const groupBy = (s.groupClause ?? []).map((g: Node) => {
      const [k] = unwrap(g);
      if (k === 'GroupingSet') unsupported('GROUPING SETS, ROLLUP and CUBE', 'group by plain expressions');
      return this.expr(g, depth);
    });
    return {
      kind: 'select', with: withClause, distinct, targets, from,
      where: s.whereClause ? this.expr(s.whereClause, depth) : null,
      groupBy,
      having: s.havingClause ? this.expr(s.havingClause, depth) : null,
      orderBy: (s.sortClause ?? []).map((o: Node) => this.sortBy(o, depth)),
      limit: s.limitCount ? this.count(s.limitCount, 'LIMIT') : null,
      offset: s.limitOffset ? this.count(s.limitOffset, 'OFFSET') : null,
    };
  }

  withClause(w: Node | undefined, depth: number): Cte[] {
    const out: Cte[] = [];
    if (!w) return out;
    only(w, 'WITH', ['ctes', 'recursive']);
    if (w.recursive) unsupported('WITH RECURSIVE', 'use non-recursive common table expressions');
    for (const c of w.ctes as Node[]) {
      const [k, cte] = unwrap(c);
      if (k !== 'CommonTableExpr') unsupported(k, 'use WITH name AS (SELECT ...)');
      only(cte, 'WITH', ['ctename', 'ctequery', 'ctematerialized']);
      const [qk, q] = unwrap(cte.ctequery);
      if (qk !== 'SelectStmt') unsupported(`${STATEMENT_NAMES[qk] ?? qk} inside WITH`, 'common table expressions must be SELECT queries');
      out.push({ name: cte.ctename, query: this.select(q, depth + 1) });
    }
    return out;
  }

  /**
   * `a UNION [ALL] b`, `EXCEPT`, `INTERSECT` (the parser has already nested them by
   * precedence). The result is a block over one `setOp` relation whose targets the binder
   * fills with the left branch's columns; ORDER BY (an output column name or position),
   * LIMIT and OFFSET belong to that block, never to a branch, so the row cap bounds the whole.
   */
  setOperation(s: Node, depth: number): Select {
    only(s, 'set operation', ['op', 'all', 'larg', 'rarg', 'sortClause', 'limitCount', 'limitOffset', 'limitOption', 'withClause']);
    if (s.limitOption && s.limitOption !== 'LIMIT_OPTION_DEFAULT' && s.limitOption !== 'LIMIT_OPTION_COUNT') unsupported('FETCH ... WITH TIES', 'use LIMIT n');
    const op = ({ SETOP_UNION: 'union', SETOP_EXCEPT: 'except', SETOP_INTERSECT: 'intersect' } as const satisfies Record<string, SetOperator>)[s.op as string];
    if (!op) unsupported(`the set operation ${String(s.op)}`, 'use UNION, EXCEPT or INTERSECT');
    const withClause = this.withClause(s.withClause, depth);
    const branch = (b: Node): Select => {
      if (b.sortClause?.length || b.limitCount || b.limitOffset) {
        unsupported(`ORDER BY, LIMIT or OFFSET inside one branch of ${op.toUpperCase()}`, 'order and limit the whole result: write ORDER BY / LIMIT once, after the last branch');
      }
      return this.select(b, depth + 1);
    };
    const left = branch(s.larg), right = branch(s.rarg);
    const orderBy = ((s.sortClause ?? []) as Node[]).map((o) => {
      const item = this.sortBy(o, depth);
      const byName = item.expr.kind === 'ref' && item.expr.qualifier === null;
      const byPosition = item.expr.kind === 'literal' && item.expr.type === 'number' && /^\d+$/.test(item.expr.value);
      if (!byName && !byPosition) unsupported(`ORDER BY an expression on the result of ${op.toUpperCase()}`, 'order by an output column name or position, e.g. ORDER BY 1');
      return item;
    });
    return {
      kind: 'select', with: withClause, distinct: false, targets: [],
      from: { kind: 'setOp', op, all: s.all === true, left, right, alias: SET_OPERATION_ALIAS },
      where: null, groupBy: [], having: null, orderBy,
      limit: s.limitCount ? this.count(s.limitCount, 'LIMIT') : null,
      offset: s.limitOffset ? this.count(s.limitOffset, 'OFFSET') : null,
    };
  }

  count(n: Node, what: string): number | null {
    const [k, v] = unwrap(n);
    if (k === 'ParamRef') {
      const p = this.param(Number(v.number));
      if (p.kind === 'literal' && p.type === 'null') return null;
      const text = p.kind === 'literal' && p.type === 'string' ? p.value.trim() : '';
      if (!/^\d{1,15}$/.test(text)) throw new GatehouseError('SQL_INVALID', `${what} parameter $${String(v.number)} must be a whole number`);
      return Number(text);
    }
    if (k === 'A_Const') {
      if (v.isnull) return null;
      if (v.ival !== undefined) {
        const value = v.ival.ival ?? 0;
        if (value < 0) throw new GatehouseError('SQL_INVALID', `${what} must not be negative`);
        return value;
      }
    }
    unsupported(`${what} with an expression`, `${what} takes a whole number`);
  }

  sortBy(o: Node, depth: number): OrderItem {
    const [k, sb] = unwrap(o);
    if (k !== 'SortBy') unsupported(k, 'ORDER BY expressions');
    only(sb, 'ORDER BY', ['node', 'sortby_dir', 'sortby_nulls']);
    if (sb.sortby_dir === 'SORTBY_USING') unsupported('ORDER BY ... USING', 'use ASC or DESC');
    return {
      expr: this.expr(sb.node, depth),
      desc: sb.sortby_dir === 'SORTBY_DESC',
      nulls: sb.sortby_nulls === 'SORTBY_NULLS_FIRST' ? 'first' : sb.sortby_nulls === 'SORTBY_NULLS_LAST' ? 'last' : null,
    };
  }

  from(n: Node, depth: number): FromItem {
    const [k, v] = unwrap(n);
    switch (k) {
      case 'RangeVar': {
        only(v, 'table reference', ['relname', 'inh', 'relpersistence', 'alias', 'schemaname']);
        // BI tools qualify every name with the schema the catalog lists (`public`, see
        // docs/wire-protocol.md): `public.x` names dataset x; the system catalogs are not
        // queried here (the wire front answers them); any other schema names nothing.
        if (v.schemaname === 'pg_catalog' || v.schemaname === 'information_schema') unsupported(`a system catalog ("${v.schemaname}.${String(v.relname).slice(0, 64)}") in a governed query`, 'list datasets with GET /v1/datasets; PostgreSQL clients read pg_catalog and information_schema on the wire port');
        if (v.schemaname && v.schemaname !== 'public') {
          throw new GatehouseError('SQL_UNKNOWN_DATASET', `there is no dataset "${String(v.schemaname).slice(0, 64)}.${String(v.relname).slice(0, 64)}" you can query`, { hint: 'datasets are in the schema public (or unqualified), as GET /v1/datasets lists them' });
        }
        if (v.alias?.colnames?.length) unsupported('column aliases on a table', 'alias columns in the select list instead');
        return { kind: 'dataset', dataset: v.relname, alias: v.alias?.aliasname ?? v.relname, scan: null };
      }
      case 'RangeSubselect': {
        only(v, 'subquery in FROM', ['subquery', 'alias', 'lateral']);
        if (v.lateral) unsupported('LATERAL', 'use a join or a correlated subquery in WHERE');
        if (!v.alias) throw new GatehouseError('SQL_SYNTAX', 'a subquery in FROM needs an alias', { hint: 'write (SELECT ...) AS name' });
        if (v.alias.colnames?.length) unsupported('column aliases on a subquery', 'alias columns inside the subquery');
        const [qk, q] = unwrap(v.subquery);
        if (qk !== 'SelectStmt') unsupported(qk, 'subqueries must be SELECT queries');
        return { kind: 'derived', query: this.select(q, depth + 1), alias: v.alias.aliasname };
      }
      case 'JoinExpr': {
        only(v, 'JOIN', ['jointype', 'larg', 'rarg', 'quals']);
        const type = ({ JOIN_INNER: 'inner', JOIN_LEFT: 'left', JOIN_RIGHT: 'right', JOIN_FULL: 'full' } as const)[v.jointype as string];
        if (!type) unsupported(`join type ${v.jointype}`, 'use INNER, LEFT, RIGHT, FULL or CROSS JOIN');
        const on = v.quals ? this.expr(v.quals, depth) : null;
        return { kind: 'join', type: on === null && type === 'inner' ? 'cross' : type, left: this.from(v.larg, depth), right: this.from(v.rarg, depth), on };
      }
      case 'RangeFunction':
        unsupported('a function in FROM (table functions such as read_csv, glob or query)', 'select from datasets listed by GET /v1/datasets');
      default:
        unsupported(`${k} in FROM`, 'select from datasets, subqueries and joins');
    }
  }

  expr(n: Node, depth: number, inTargetList = false): Expr {
    if (depth > MAX_DEPTH) throw new GatehouseError('SQL_UNSUPPORTED', 'the query nests too deeply');
    const d = depth + 1;
    const [k, v] = unwrap(n);
    switch (k) {
      case 'ColumnRef': {
        const fields = v.fields as Node[];
        const last = fields[fields.length - 1]!;
        if ('A_Star' in last) {
          if (!inTargetList) unsupported('* outside the select list', 'use * only as a select item or count(*)');
          const q = strings(fields.slice(0, -1));
          if (q.length > 1) unsupported('a qualified star with more than one qualifier', 'write alias.*');
          return { kind: 'ref', qualifier: q[0] ?? null, name: '*' };
        }
        const parts = strings(fields);
        if (parts.length > 2) unsupported(`the name "${parts.join('.')}"`, 'refer to columns as column or alias.column');
        return parts.length === 2 ? { kind: 'ref', qualifier: parts[0]!, name: parts[1]! } : { kind: 'ref', qualifier: null, name: parts[0]! };
      }
      case 'A_Const': return this.constant(v);
      case 'ParamRef': return this.param(Number(v.number));
      case 'TypeCast': return this.cast(v, d);
      case 'A_Expr': return this.aExpr(v, d);
      case 'BoolExpr': {
        only(v, 'boolean expression', ['boolop', 'args']);
        const args = (v.args as Node[]).map((a) => this.expr(a, d));
        if (v.boolop === 'NOT_EXPR') return { kind: 'unary', op: 'NOT', arg: args[0]! };
        const op = v.boolop === 'AND_EXPR' ? 'AND' : 'OR';
        return args.reduce((l, r) => ({ kind: 'binary', op, left: l, right: r }));
      }
      case 'NullTest':
        only(v, 'IS NULL', ['arg', 'nulltesttype', 'argisrow']);
        return { kind: 'isNull', arg: this.expr(v.arg, d), negated: v.nulltesttype === 'IS_NOT_NULL' };
      case 'BooleanTest': {
        only(v, 'IS TRUE/FALSE', ['arg', 'booltesttype']);
        const t = v.booltesttype as string;
        if (t === 'IS_UNKNOWN' || t === 'IS_NOT_UNKNOWN') return { kind: 'isNull', arg: this.expr(v.arg, d), negated: t === 'IS_NOT_UNKNOWN' };
        return { kind: 'isBool', arg: this.expr(v.arg, d), value: t === 'IS_TRUE' || t === 'IS_NOT_TRUE', negated: t.startsWith('IS_NOT') };
      }
      case 'CaseExpr': {
        only(v, 'CASE', ['arg', 'args', 'defresult']);
        return {
          kind: 'case',
          operand: v.arg ? this.expr(v.arg, d) : null,
          whens: (v.args as Node[]).map((w) => {
            const [wk, cw] = unwrap(w);
            if (wk !== 'CaseWhen') unsupported(wk, 'CASE WHEN ... THEN ...');
            return { when: this.expr(cw.expr, d), then: this.expr(cw.result, d) };
          }),
          else: v.defresult ? this.expr(v.defresult, d) : null,
        };
      }
      case 'CoalesceExpr':
        return this.call('coalesce', (v.args as Node[]).map((a) => this.expr(a, d)));
      case 'MinMaxExpr':
        return this.call(v.op === 'IS_GREATEST' ? 'greatest' : 'least', (v.args as Node[]).map((a) => this.expr(a, d)));
      case 'SQLValueFunction':
        if (v.op === 'SVFOP_CURRENT_DATE') return this.call('current_date', []);
        unsupported(`${String(v.op).replace('SVFOP_', '')}`, 'use current_date');
      case 'FuncCall': return this.funcCall(v, d);
      case 'SubLink': {
        only(v, 'subquery', ['subLinkType', 'subselect', 'testexpr', 'operName']);
        const [qk, q] = unwrap(v.subselect);
        if (qk !== 'SelectStmt') unsupported(qk, 'subqueries must be SELECT queries');
        const query = this.select(q, d);
        switch (v.subLinkType) {
          case 'EXISTS_SUBLINK': return { kind: 'exists', query };
          case 'EXPR_SUBLINK': return { kind: 'scalarQuery', query };
          case 'ANY_SUBLINK':
            if (v.operName && strings(v.operName).join('') !== '=') unsupported('op ANY (subquery)', 'use IN (subquery)');
            return { kind: 'inQuery', arg: this.expr(v.testexpr, d), query, negated: false };
          default: unsupported(`${String(v.subLinkType).replace('_SUBLINK', '')} subqueries`, 'use IN, EXISTS or a scalar subquery');
        }
      }
      default:
        unsupported(describeNode(k), 'see docs/sql.md for the supported expressions');
    }
  }

  constant(v: Node): Expr {
    if (v.isnull) return { kind: 'literal', type: 'null', value: null };
    if (v.ival !== undefined || v.fval !== undefined) {
      // The parser folds "-1" into one constant; keep the sign as an operator so the
      // literal itself is always an unsigned decimal.
      const text = String(v.ival !== undefined ? (v.ival.ival ?? 0) : v.fval.fval);
      if (text.startsWith('-')) return { kind: 'unary', op: '-', arg: this.constant(v.ival !== undefined ? { ival: { ival: text.slice(1) } } : { fval: { fval: text.slice(1) } }) };
    }
    if (v.ival !== undefined) return { kind: 'literal', type: 'number', value: String(v.ival.ival ?? 0) };
    if (v.fval !== undefined) {
      const text = String(v.fval.fval);
      if (!/^[0-9]*\.?[0-9]*(e[+-]?[0-9]+)?$/i.test(text)) throw new GatehouseError('SQL_SYNTAX', 'malformed number');
      return { kind: 'literal', type: 'number', value: text };
    }
    if (v.sval !== undefined) return { kind: 'literal', type: 'string', value: String(v.sval.sval ?? '') };
    if (v.boolval !== undefined) return { kind: 'literal', type: 'boolean', value: v.boolval.boolval === true };
    if (v.bsval !== undefined) unsupported('bit-string literals', 'use numbers or strings');
    unsupported('this literal', 'use numbers, strings, TRUE/FALSE or NULL');
  }

  cast(v: Node, d: number): Expr {
    only(v, 'CAST', ['arg', 'typeName']);
    const tn = v.typeName;
    only(tn, 'type name', ['names', 'typmods', 'typemod']);
    const names = strings(tn.names).filter((x) => x !== 'pg_catalog');
    if (names.length !== 1) unsupported(`the type ${names.join('.')}`, 'cast to a built-in type');
    const typeName = names[0]!.toLowerCase();
    const arg = this.expr(v.arg, d);
    // `DATE '2020-01-01'` and friends: typed literals.
    if (arg.kind === 'literal' && arg.type === 'string' && (typeName === 'date' || typeName === 'timestamp' || typeName === 'interval')) {
      const ok = typeName === 'date' ? /^\d{4}-\d{2}-\d{2}$/.test(arg.value)
        : typeName === 'timestamp' ? /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$/.test(arg.value)
          : /^\s*\d+\s+(year|month|day|hour|minute|second)s?\s*$/i.test(arg.value);
      if (!ok) throw new GatehouseError('SQL_SYNTAX', `malformed ${typeName.toUpperCase()} literal`, { hint: typeName === 'interval' ? "write INTERVAL '3 days'" : "write DATE 'YYYY-MM-DD'" });
      return { kind: 'literal', type: typeName, value: arg.value.trim() };
    }
    if (typeName === 'interval') unsupported('casting to INTERVAL', "write an interval literal such as INTERVAL '3 days'");
    const target = CAST_TYPES[typeName];
    if (!target) unsupported(`casting to ${typeName.toUpperCase()}`, `cast to one of ${[...new Set(Object.values(CAST_TYPES))].join(', ')}`);
    if (target === 'DECIMAL') {
      const mods = (tn.typmods ?? []).map((m: Node) => {
        const [, c] = unwrap(m);
        return Number(c?.ival?.ival ?? 0);
      });
      const precision = mods[0] ?? 18;
      const scale = mods[1] ?? 3;
      if (!(precision >= 1 && precision <= 38 && scale >= 0 && scale <= precision)) throw new GatehouseError('SQL_INVALID', 'DECIMAL precision must be 1-38 and scale 0-precision');
      return { kind: 'cast', arg, type: { name: 'DECIMAL', precision, scale } };
    }
    if (tn.typmods?.length && target !== 'VARCHAR') unsupported(`type modifiers on ${target}`, `cast to plain ${target}`);
    return { kind: 'cast', arg, type: { name: target } };
  }

  aExpr(v: Node, d: number): Expr {
    only(v, 'operator expression', ['kind', 'name', 'lexpr', 'rexpr', 'rexpr_list_start', 'rexpr_list_end']);
    const op = strings(v.name).join('.');
    switch (v.kind) {
      case 'AEXPR_OP': {
        if (!v.lexpr) {
          if (op === '-' || op === '+') return { kind: 'unary', op, arg: this.expr(v.rexpr, d) };
          unsupported(`the prefix operator ${op}`, 'use - or +');
        }
        const bop = OPS[op];
        if (!bop) unsupported(`the operator ${op}`, `use ${Object.keys(OPS).join(' ')}, LIKE, IN, BETWEEN or functions`);
        return { kind: 'binary', op: bop, left: this.expr(v.lexpr, d), right: this.expr(v.rexpr, d) };
      }
      case 'AEXPR_DISTINCT': return { kind: 'binary', op: 'IS DISTINCT FROM', left: this.expr(v.lexpr, d), right: this.expr(v.rexpr, d) };
      case 'AEXPR_NOT_DISTINCT': return { kind: 'binary', op: 'IS NOT DISTINCT FROM', left: this.expr(v.lexpr, d), right: this.expr(v.rexpr, d) };
      case 'AEXPR_NULLIF': return this.call('nullif', [this.expr(v.lexpr, d), this.expr(v.rexpr, d)]);
      case 'AEXPR_IN': {
        const [lk, list] = unwrap(v.rexpr);
        if (lk !== 'List') unsupported('IN with this right-hand side', 'use IN (value, ...) or IN (SELECT ...)');
        return { kind: 'inList', arg: this.expr(v.lexpr, d), list: (list.items as Node[]).map((x) => this.expr(x, d)), negated: op === '<>' };
      }
      case 'AEXPR_LIKE':
      case 'AEXPR_ILIKE': {
        if (v.rexpr && 'FuncCall' in v.rexpr) unsupported('LIKE ... ESCAPE', 'use LIKE without ESCAPE');
        return { kind: 'like', arg: this.expr(v.lexpr, d), pattern: this.expr(v.rexpr, d), negated: op.startsWith('!'), caseInsensitive: v.kind === 'AEXPR_ILIKE' };
      }
      case 'AEXPR_BETWEEN':
      case 'AEXPR_NOT_BETWEEN': {
        const [, list] = unwrap(v.rexpr);
        const [low, high] = (list.items as Node[]).map((x) => this.expr(x, d));
        return { kind: 'between', arg: this.expr(v.lexpr, d), low: low!, high: high!, negated: v.kind === 'AEXPR_NOT_BETWEEN' };
      }
      default:
        unsupported(String(v.kind).replace('AEXPR_', '').replace(/_/g, ' ') + ` (${op})`, 'use =, <>, <, >, LIKE, IN, BETWEEN');
    }
  }

  funcCall(v: Node, d: number): Expr {
    only(v, 'function call', ['funcname', 'args', 'agg_star', 'agg_distinct', 'agg_filter', 'over', 'funcformat']);
    let parts = strings(v.funcname);
    if (parts.length === 2 && parts[0] === 'pg_catalog') parts = [parts[1]!];
    if (parts.length !== 1) unsupported(`the function ${parts.join('.')}`, 'call functions without a schema');
    const name = parts[0]!.toLowerCase();
    const args = ((v.args ?? []) as Node[]).map((a) => this.expr(a, d));
    let over: WindowSpec | null = null;
    if (v.over) {
      only(v.over, 'OVER', ['partitionClause', 'orderClause', 'frameOptions']);
      if (v.over.frameOptions !== undefined && v.over.frameOptions !== 1058) unsupported('window frame clauses (ROWS/RANGE/GROUPS)', 'use OVER (PARTITION BY ... ORDER BY ...) with the default frame');
      over = {
        partitionBy: ((v.over.partitionClause ?? []) as Node[]).map((p) => this.expr(p, d)),
        orderBy: ((v.over.orderClause ?? []) as Node[]).map((o) => this.sortBy(o, d)),
      };
    }
    return this.call(name, args, { star: v.agg_star === true, distinct: v.agg_distinct === true, filter: v.agg_filter ? this.expr(v.agg_filter, d) : null, over });
  }

  call(name: string, args: Expr[], opts: { star?: boolean; distinct?: boolean; filter?: Expr | null; over?: WindowSpec | null } = {}): Expr {
    const info = lookupFunction(name);
    if (!info || info.internal) {
      throw new GatehouseError('SQL_FUNCTION_NOT_ALLOWED', `the function ${name}() is not allowed`, { hint: 'see docs/sql.md for the function allowlist' });
    }
    const star = opts.star ?? false;
    if (star && name !== 'count') unsupported(`${name}(*)`, 'only count(*) takes *');
    const n = args.length;
    if (!star && (n < info.minArgs || n > info.maxArgs)) {
      throw new GatehouseError('SQL_INVALID', `${name}() takes ${info.minArgs === info.maxArgs ? info.minArgs : `${info.minArgs} to ${info.maxArgs}`} argument${info.maxArgs === 1 ? '' : 's'}, not ${n}`);
    }
    if (name === 'count' && !star && n === 0) throw new GatehouseError('SQL_INVALID', 'count() needs an argument or *');
    if (info.kind === 'scalar' && (opts.distinct || opts.filter || opts.over)) unsupported(`DISTINCT, FILTER or OVER on the scalar function ${name}()`, 'use them with aggregate functions');
    if (info.kind === 'window' && !opts.over) throw new GatehouseError('SQL_INVALID', `${name}() needs an OVER clause`);
    if (opts.over && (opts.distinct || opts.filter)) unsupported('DISTINCT or FILTER in a window function', 'use a plain aggregate in the window');
    return { kind: 'func', name, args, star, distinct: opts.distinct ?? false, filter: opts.filter ?? null, over: opts.over ?? null };
  }
}

function describeNode(k: string): string {
  const names: Record<string, string> = {
    A_Indirection: 'subscripts and field access ([] or .field)', A_ArrayExpr: 'ARRAY[...] constructors', RowExpr: 'row constructors',
    CollateClause: 'COLLATE', GroupingFunc: 'GROUPING()', XmlExpr: 'XML functions', JsonObjectConstructor: 'JSON constructors',
    CurrentOfExpr: 'CURRENT OF', SetToDefault: 'DEFAULT',
  };
  return names[k] ?? k;
}

function defaultAlias(e: Expr, i: number): string {
  if (e.kind === 'ref') return e.name;
  if (e.kind === 'func') return e.name;
  if (e.kind === 'cast' && e.arg.kind === 'ref') return e.arg.name;
  return `col${i + 1}`;
}
