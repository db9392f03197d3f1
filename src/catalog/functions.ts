/**
 * The functions a catalog query may call, each with the SQL Gatehouse renders for it.
 *
 * A client's function name never reaches the engine: each allowlisted name maps to SQL
 * chosen here — a constant (version(), current_schema(), pg_get_userbyid()), a lookup in
 * the catalog rows (format_type(), obj_description()), or one named DuckDB scalar that reads
 * nothing but its arguments (lower(), array_to_string()). Everything else — files
 * (read_blob, read_text, read_csv, glob), settings (duckdb_settings, current_setting of a
 * server parameter), the environment (getenv), the function list — is not in the table and
 * is refused as SQL_FUNCTION_NOT_ALLOWED. current_setting() answers only the session's own
 * harmless parameters (src/wire/settings.ts) and NULL for every other name.
 */
import { quoteIdent, quoteString } from '../query/render/sql.ts';
import { GatehouseError } from '../errors.ts';
import { TYPE_FORMAT_TABLE } from './tables.ts';

export const CATALOG_SCHEMA = 'gh';
export function catalogTableRef(name: string): string {
  return `${quoteIdent('memory')}.${quoteIdent(CATALOG_SCHEMA)}.${quoteIdent(name)}`;
}

/** PostgreSQL's version string, as `SELECT version()` answers on the wire front. */
export const SERVER_VERSION = '15.0';
export const VERSION_STRING = `PostgreSQL ${SERVER_VERSION} (Gatehouse governed wire front; catalog answered from the data-free view of what you may see)`;

export interface CatalogSession {
  readonly user: string;
  readonly database: string;
  /** A session parameter the wire front itself keeps (SHOW answers it), or null. */
  readonly setting: (name: string) => string | null;
}

export interface FunctionArgs {
  /** Rendered (already validated) arguments. */
  readonly sql: readonly string[];
  /** The constant text of each argument, when it is a string literal. */
  readonly constants: readonly (string | null)[];
  readonly session: CatalogSession;
}

interface CatalogFunction {
  readonly min: number;
  readonly max: number;
  readonly aggregate?: boolean;
  /** A window function: only with OVER (…). */
  readonly window?: boolean;
  readonly render: (a: FunctionArgs) => string;
}

const NULL_TEXT = 'CAST(NULL AS VARCHAR)';
/** Server constants clients read with current_setting() (PostgreSQL 15's compiled-in values). */
const SERVER_CONSTANTS: Record<string, string> = { max_index_keys: '32', block_size: '8192', max_function_args: '100', server_version_num: '150000' };
const constant = (sql: string) => (): string => sql;
const same = (name: string) => (a: FunctionArgs): string => `${name}(${a.sql.join(', ')})`;
const fn = (min: number, max: number, render: (a: FunctionArgs) => string): CatalogFunction => ({ min, max, render });
const agg = (min: number, max: number, name: string): CatalogFunction => ({ min, max, aggregate: true, render: same(name) });

const description = (oid: string, sub: string): string =>
  `(SELECT d.description FROM ${catalogTableRef('pg_description')} AS d WHERE d.objoid = ${oid} AND d.objsubid = ${sub} LIMIT 1)`;

export const CATALOG_FUNCTIONS: ReadonlyMap<string, CatalogFunction> = new Map<string, CatalogFunction>([
  // session and server identity, as PostgreSQL answers them for this session
  ['version', fn(0, 0, constant(quoteString(VERSION_STRING)))],
  ['current_schema', fn(0, 0, constant("'public'"))],
  ['current_database', fn(0, 0, (a) => quoteString(a.session.database))],
  ['current_catalog', fn(0, 0, (a) => quoteString(a.session.database))],
  ['current_user', fn(0, 0, (a) => quoteString(a.session.user))],
  ['session_user', fn(0, 0, (a) => quoteString(a.session.user))],
  ['current_schemas', fn(1, 1, (a) => `CASE WHEN ${a.sql[0]} THEN ['pg_catalog', 'public'] ELSE ['public'] END`)],
  ['current_setting', fn(1, 2, (a) => {
    const name = a.constants[0];
    if (name === null || name === undefined) return NULL_TEXT;
    const v = a.session.setting(name.toLowerCase()) ?? SERVER_CONSTANTS[name.toLowerCase()] ?? null;
    if (v !== null) return quoteString(v);
    // A server parameter Gatehouse does not disclose answers NULL (nothing of the host). A
    // gatehouse.* name is Gatehouse's own: unknown, it is PostgreSQL's error for an unset
    // custom parameter (42704) unless missing_ok is true.
    if (a.sql[1] === 'true' || !name.toLowerCase().startsWith('gatehouse.')) return NULL_TEXT;
    throw new GatehouseError('NOT_FOUND', `unrecognized configuration parameter "${name.slice(0, 64)}"`, { hint: 'SHOW ALL lists the gatehouse.* parameters of this session; current_setting(name, true) answers NULL for an unknown one' });
  })],
  ['pg_backend_pid', fn(0, 0, constant('CAST(0 AS INTEGER)'))],
  ['pg_is_in_recovery', fn(0, 0, constant('false'))],
  ['inet_server_addr', fn(0, 0, constant(NULL_TEXT))],
  ['inet_server_port', fn(0, 0, constant('CAST(NULL AS INTEGER)'))],
  ['inet_client_addr', fn(0, 0, constant(NULL_TEXT))],
  // catalog lookups over the catalog rows
  ['format_type', fn(2, 2, (a) => `(SELECT f.format FROM ${catalogTableRef(TYPE_FORMAT_TABLE)} AS f WHERE f.oid = ${a.sql[0]})`)],
  ['obj_description', fn(1, 2, (a) => description(a.sql[0]!, '0'))],
  ['col_description', fn(2, 2, (a) => description(a.sql[0]!, a.sql[1]!))],
  ['shobj_description', fn(2, 2, constant(NULL_TEXT))],
  ['pg_get_userbyid', fn(1, 1, constant("'gatehouse'"))],
  ['pg_encoding_to_char', fn(1, 1, constant("'UTF8'"))],
  ['pg_char_to_encoding', fn(1, 1, constant('6'))],
  ['pg_table_is_visible', fn(1, 1, constant('true'))],
  ['pg_type_is_visible', fn(1, 1, constant('true'))],
  ['pg_function_is_visible', fn(1, 1, constant('true'))],
  ['pg_relation_is_publishable', fn(1, 1, constant('false'))],
  ['has_table_privilege', fn(2, 3, constant('true'))],
  ['has_schema_privilege', fn(2, 3, constant('true'))],
  ['has_database_privilege', fn(2, 3, constant('true'))],
  ['has_column_privilege', fn(3, 4, constant('true'))],
  ['has_any_column_privilege', fn(2, 3, constant('true'))],
  ['pg_relation_size', fn(1, 2, constant('CAST(0 AS BIGINT)'))],
  ['pg_total_relation_size', fn(1, 1, constant('CAST(0 AS BIGINT)'))],
  ['pg_table_size', fn(1, 1, constant('CAST(0 AS BIGINT)'))],
  ['pg_indexes_size', fn(1, 1, constant('CAST(0 AS BIGINT)'))],
  // definitions of objects the catalog never holds (defaults, constraints, indexes, triggers …)
  ...['pg_get_expr', 'pg_get_constraintdef', 'pg_get_indexdef', 'pg_get_triggerdef', 'pg_get_viewdef', 'pg_get_statisticsobjdef_columns',
    'pg_get_function_result', 'pg_get_function_arguments', 'pg_get_function_identity_arguments', 'pg_get_partkeydef', 'pg_get_serial_sequence', 'pg_get_ruledef']
    .map((n) => [n, fn(1, 3, constant(NULL_TEXT))] as const),
  // arrays
  ['array_to_string', fn(2, 2, same('array_to_string'))],
  ['array_upper', fn(2, 2, (a) => `len(${a.sql[0]})`)],
  ['array_length', fn(2, 2, (a) => `len(${a.sql[0]})`)],
  ['array_lower', fn(2, 2, (a) => `CASE WHEN len(${a.sql[0]}) > 0 THEN 1 END`)],
  ['cardinality', fn(1, 1, (a) => `len(${a.sql[0]})`)],
  // text
  ['lower', fn(1, 1, same('lower'))], ['upper', fn(1, 1, same('upper'))], ['length', fn(1, 1, same('length'))],
  ['char_length', fn(1, 1, same('length'))], ['btrim', fn(1, 2, same('trim'))], ['trim', fn(1, 2, same('trim'))],
  ['ltrim', fn(1, 2, same('ltrim'))], ['rtrim', fn(1, 2, same('rtrim'))], ['replace', fn(3, 3, same('replace'))],
  ['substr', fn(2, 3, same('substr'))], ['substring', fn(2, 3, same('substr'))], ['left', fn(2, 2, same('left'))],
  ['right', fn(2, 2, same('right'))], ['concat', fn(1, 20, same('concat'))], ['split_part', fn(3, 3, same('split_part'))],
  ['quote_ident', fn(1, 1, (a) => `('"' || replace(${a.sql[0]}, '"', '""') || '"')`)],
  ['abs', fn(1, 1, same('abs'))],
  // information_schema._pg_expandarray(array): one (x, n) record per element, as a DuckDB struct
  ['_pg_expandarray', fn(1, 1, (a) => `unnest(list_transform(generate_series(1, len(${a.sql[0]})), gh_ord -> {'x': (${a.sql[0]})[gh_ord], 'n': gh_ord}))`)],
  // set-returning functions in the select list (pgcli's foreign-key and function queries)
  ['unnest', fn(1, 1, (a) => `unnest(${a.sql[0]})`)],
  ['generate_subscripts', fn(2, 2, (a) => `unnest(generate_series(1, len(${a.sql[0]})))`)],
  // JSON built from catalog values (SQLAlchemy's column reflection builds identity options this way)
  ['json_build_object', fn(0, 40, (a) => {
    if (a.sql.length % 2 !== 0) throw new GatehouseError('SQL_UNSUPPORTED', 'json_build_object() takes key/value pairs', { hint: 'pass an even number of arguments' });
    return `json_object(${a.sql.join(', ')})`;
  })],
  ['json_build_array', fn(0, 40, (a) => `json_array(${a.sql.join(', ')})`)],
  // window functions (OVER is rendered by the caller)
  ['row_number', { min: 0, max: 0, window: true, render: constant('row_number()') }],
  ['rank', { min: 0, max: 0, window: true, render: constant('rank()') }],
  ['dense_rank', { min: 0, max: 0, window: true, render: constant('dense_rank()') }],
  // aggregates
  ['count', agg(0, 1, 'count')], ['sum', agg(1, 1, 'sum')], ['min', agg(1, 1, 'min')], ['max', agg(1, 1, 'max')],
  ['avg', agg(1, 1, 'avg')], ['bool_and', agg(1, 1, 'bool_and')], ['bool_or', agg(1, 1, 'bool_or')],
  ['string_agg', agg(2, 2, 'string_agg')], ['array_agg', agg(1, 1, 'array_agg')],
]);

/** Set-returning functions allowed in FROM, with the DuckDB table function each becomes. */
export const CATALOG_TABLE_FUNCTIONS: ReadonlyMap<string, { readonly min: number; readonly max: number; readonly duckdb: string }> = new Map([
  ['generate_series', { min: 2, max: 3, duckdb: 'generate_series' }],
  ['unnest', { min: 1, max: 1, duckdb: 'unnest' }],
]);
