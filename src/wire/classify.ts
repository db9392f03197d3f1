/**
 * Routing of one Query/Parse string, decided on the real PostgreSQL parse tree
 * (libpg-query): session commands the front answers itself (SET, SHOW, BEGIN/COMMIT/
 * ROLLBACK), catalog queries for the data-free introspection view, and everything else
 * — every other SELECT, every refused statement kind, every syntax error — for the
 * governed path, which parses, decides, audits and refuses on its own.
 */
import { parseSync, scanSync } from 'libpg-query';
import { loadParser } from '../query/parse.ts';

export { loadParser };

type Node = Record<string, any>;

export type Classified =
  | { readonly kind: 'empty' }
  | { readonly kind: 'multi'; readonly count: number }
  | { readonly kind: 'set'; readonly name: string; readonly value: string | null; readonly resetAll: boolean }
  | { readonly kind: 'set-unsupported'; readonly what: string }
  | { readonly kind: 'show'; readonly name: string }
  | { readonly kind: 'transaction'; readonly tag: string }
  | { readonly kind: 'catalog'; readonly params: number }
  | { readonly kind: 'catalog-reads-data'; readonly relations: readonly string[] }
  | { readonly kind: 'governed'; readonly params: number }
  /** DECLARE name CURSOR FOR <query>: `query` is the client's text of the inner SELECT, routed on its own. */
  | { readonly kind: 'declare'; readonly name: string; readonly query: string; readonly route: Classified; readonly hold: boolean; readonly binary: boolean; readonly scroll: boolean; readonly params: number }
  /** FETCH/MOVE forward `count` rows (null: ALL) of a cursor; `backward` is refused by the front. */
  | { readonly kind: 'fetch'; readonly name: string; readonly count: number | null; readonly move: boolean; readonly direction: string }
  | { readonly kind: 'close-cursor'; readonly name: string | null };

/** PostgreSQL's DECLARE options bits (nodes/parsenodes.h CURSOR_OPT_*). */
const CURSOR_OPT = { binary: 0x1, scroll: 0x2, hold: 0x20 } as const;
const FETCH_ALL = 2147483647;

/** The text of DECLARE's query: everything after the first FOR keyword that follows CURSOR. */
function declaredQuery(sql: string): string | null {
  const bytes = Buffer.from(sql, 'utf8');
  const tokens = (scanSync(sql) as { tokens: { start: number; end: number; text: string; keywordKind: number }[] }).tokens;
  let cursorSeen = false;
  for (const t of tokens) {
    const word = t.keywordKind > 0 ? t.text.toUpperCase() : '';
    if (word === 'CURSOR') cursorSeen = true;
    else if (cursorSeen && word === 'FOR') return bytes.subarray(t.end).toString('utf8');
  }
  return null;
}

const CATALOG_SCHEMAS = new Set(['pg_catalog', 'information_schema']);
const CATALOG_FUNCTIONS = new Set([
  'version', 'current_schema', 'current_schemas', 'current_database', 'current_catalog', 'current_user', 'session_user', 'current_setting',
  'format_type', 'obj_description', 'col_description', 'shobj_description', 'has_table_privilege', 'has_schema_privilege', 'has_database_privilege',
  'has_column_privilege', 'inet_server_addr', 'inet_server_port',
]);
const SESSION_VALUE_OPS = new Set(['SVFOP_CURRENT_USER', 'SVFOP_SESSION_USER', 'SVFOP_USER', 'SVFOP_CURRENT_ROLE', 'SVFOP_CURRENT_SCHEMA', 'SVFOP_CURRENT_CATALOG']);

interface Walk {
  relations: { schema: string | null; name: string }[];
  ctes: Set<string>;
  catalogFunction: boolean;
  maxParam: number;
  into: boolean;
}

function walk(node: unknown, w: Walk, depth = 0): void {
  if (depth > 400 || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) { for (const n of node) walk(n, w, depth + 1); return; }
  const o = node as Node;
  for (const [k, v] of Object.entries(o)) {
    if (k === 'RangeVar') w.relations.push({ schema: v.schemaname ? String(v.schemaname).toLowerCase() : null, name: String(v.relname ?? '').toLowerCase() });
    else if (k === 'CommonTableExpr' && v.ctename) w.ctes.add(String(v.ctename).toLowerCase());
    else if (k === 'ParamRef') w.maxParam = Math.max(w.maxParam, Number(v.number ?? 0));
    else if (k === 'intoClause') w.into = true;
    else if (k === 'SQLValueFunction' && SESSION_VALUE_OPS.has(v.op)) w.catalogFunction = true;
    else if (k === 'FuncCall') {
      const names = ((v.funcname ?? []) as Node[]).map((n) => String(n.String?.sval ?? '').toLowerCase());
      const last = names[names.length - 1] ?? '';
      if (names.length > 1 && names[0] === 'pg_catalog' && !['count', 'sum', 'avg', 'min', 'max'].includes(last)) w.catalogFunction = true;
      if (CATALOG_FUNCTIONS.has(last) || last.startsWith('pg_')) w.catalogFunction = true;
    }
    walk(v, w, depth + 1);
  }
}

function constText(n: Node | undefined): string | null {
  if (!n) return null;
  if (n.A_Const) {
    const c = n.A_Const;
    if (c.isnull) return null;
    if (c.sval) return String(c.sval.sval ?? '');
    if (c.ival) return String(c.ival.ival ?? 0);
    if (c.fval) return String(c.fval.fval);
    if (c.boolval) return c.boolval.boolval ? 'on' : 'off';
    return '';
  }
  if (n.TypeCast) return constText(n.TypeCast.arg);
  return null;
}

/** Classifies one query string. Never throws: unparseable text goes to the governed path. */
export function classify(sql: string): Classified {
  if (sql.trim() === '' || /^[\s;]*$/.test(sql)) return { kind: 'empty' };
  let stmts: { stmt: Node }[];
  try {
    stmts = ((parseSync(sql) as { stmts?: { stmt: Node }[] }).stmts ?? []);
  } catch {
    return { kind: 'governed', params: 0 };
  }
  if (stmts.length === 0) return { kind: 'empty' };
  if (stmts.length > 1) return { kind: 'multi', count: stmts.length };
  const stmt = stmts[0]!.stmt;
  const [type] = Object.keys(stmt);
  const body = stmt[type!] as Node;
  switch (type) {
    case 'VariableSetStmt': {
      const kind = String(body.kind);
      const name = String(body.name ?? '').toLowerCase();
      if (kind === 'VAR_RESET_ALL') return { kind: 'set', name: 'all', value: null, resetAll: true };
      if (kind === 'VAR_RESET' || kind === 'VAR_SET_DEFAULT') return { kind: 'set', name, value: null, resetAll: false };
      if (kind === 'VAR_SET_VALUE') {
        const args = (body.args ?? []) as Node[];
        const values = args.map(constText);
        if (values.some((v) => v === null)) return { kind: 'set-unsupported', what: `SET ${name}` };
        return { kind: 'set', name, value: values.join(', '), resetAll: false };
      }
      return { kind: 'set-unsupported', what: `SET ${name || kind}` };
    }
    case 'DeclareCursorStmt': {
      const query = declaredQuery(sql);
      if (query === null || !body.query?.SelectStmt) return { kind: 'governed', params: 0 };
      const options = Number(body.options ?? 0);
      const inner = classify(query);
      return {
        kind: 'declare', name: String(body.portalname ?? ''), query, route: inner,
        hold: (options & CURSOR_OPT.hold) !== 0, binary: (options & CURSOR_OPT.binary) !== 0, scroll: (options & CURSOR_OPT.scroll) !== 0,
        params: 'params' in inner ? inner.params : 0,
      };
    }
    case 'FetchStmt': {
      const n = Number(body.howMany ?? 0);
      return { kind: 'fetch', name: String(body.portalname ?? ''), count: n >= FETCH_ALL ? null : n, move: !!body.ismove, direction: String(body.direction ?? 'FETCH_FORWARD') };
    }
    case 'ClosePortalStmt': return { kind: 'close-cursor', name: body.portalname ? String(body.portalname) : null };
    case 'VariableShowStmt': return { kind: 'show', name: String(body.name ?? '').toLowerCase() };
    case 'TransactionStmt': {
      const k = String(body.kind);
      const tag = k === 'TRANS_STMT_BEGIN' || k === 'TRANS_STMT_START' ? 'BEGIN'
        : k === 'TRANS_STMT_COMMIT' ? 'COMMIT'
        : k === 'TRANS_STMT_ROLLBACK' ? 'ROLLBACK'
        : k === 'TRANS_STMT_SAVEPOINT' ? 'SAVEPOINT'
        : k === 'TRANS_STMT_RELEASE' ? 'RELEASE'
        : k === 'TRANS_STMT_ROLLBACK_TO' ? 'ROLLBACK'
        : null;
      // PREPARE TRANSACTION and two-phase commit go to the governed path, which refuses them.
      return tag ? { kind: 'transaction', tag } : { kind: 'governed', params: 0 };
    }
    case 'SelectStmt': {
      const w: Walk = { relations: [], ctes: new Set(), catalogFunction: false, maxParam: 0, into: false };
      walk(body, w);
      if (w.into) return { kind: 'governed', params: w.maxParam };
      const isCatalogRel = (r: { schema: string | null; name: string }) => (r.schema !== null && CATALOG_SCHEMAS.has(r.schema)) || (r.schema === null && r.name.startsWith('pg_'));
      const catalogRels = w.relations.filter(isCatalogRel);
      const dataRels = w.relations.filter((r) => !isCatalogRel(r) && !(r.schema === null && w.ctes.has(r.name)));
      if (catalogRels.length > 0) {
        return dataRels.length > 0 ? { kind: 'catalog-reads-data', relations: dataRels.map((r) => (r.schema ? `${r.schema}.${r.name}` : r.name)) } : { kind: 'catalog', params: w.maxParam };
      }
      if (w.catalogFunction && dataRels.length === 0) return { kind: 'catalog', params: w.maxParam };
      return { kind: 'governed', params: w.maxParam };
    }
    default: return { kind: 'governed', params: 0 };
  }
}
