/**
 * The catalog a wire client may read: the pg_catalog and information_schema relations
 * PostgreSQL clients and BI tools ask for (psql's \d family, JDBC/ODBC metadata calls,
 * information_schema browsing), each with the PostgreSQL column names, and rows built by
 * Gatehouse from the data-free `DatasetView[]` of what the principal may see.
 *
 * Nothing here is read from an engine or the host: no settings, no function list, no
 * paths, no row counts (reltuples is -1, sizes are 0). A relation not listed here is not
 * part of the catalog and a query naming it is refused (src/wire/catalog/render.ts).
 * Column layouts follow the PostgreSQL 15 system catalogs
 * (https://www.postgresql.org/docs/15/catalogs.html) and information schema
 * (https://www.postgresql.org/docs/15/information-schema.html), trimmed to the columns
 * clients read.
 */
import type { DatasetView } from '../model/dataset-view.ts';
import { pgTypeOf } from './pg-types.ts';

export type CatalogCell = string | number | boolean | null | readonly (string | number)[];

export interface CatalogTable {
  /** How a query names it: `pg_class` (pg_catalog, or unqualified) or `information_schema.tables`. */
  readonly name: string;
  /** Column name and DuckDB type, in PostgreSQL's order. */
  readonly columns: readonly (readonly [string, string])[];
  readonly rows: (c: CatalogContent) => readonly (readonly CatalogCell[])[];
}

/** The fixed OIDs PostgreSQL gives these objects (pg_catalog 11, public 2200, the bootstrap superuser 10). */
export const NS = { pg_catalog: 11, public: 2200, information_schema: 13_183 } as const;
const OWNER = 10;
const DATABASE_OID = 16_384;
const PG_CLASS_OID = 1259;
const DEFAULT_COLLATION = 100;
const FIRST_TABLE_OID = 16_400;

/** PostgreSQL types a catalog answer can mention: oid, name, format_type() text, length, category. */
export const PG_TYPES: readonly (readonly [number, string, string, number, string])[] = [
  [16, 'bool', 'boolean', 1, 'B'], [17, 'bytea', 'bytea', -1, 'U'], [18, 'char', '"char"', 1, 'S'], [19, 'name', 'name', 64, 'S'],
  [20, 'int8', 'bigint', 8, 'N'], [21, 'int2', 'smallint', 2, 'N'], [23, 'int4', 'integer', 4, 'N'], [25, 'text', 'text', -1, 'S'],
  [26, 'oid', 'oid', 4, 'N'], [114, 'json', 'json', -1, 'U'], [700, 'float4', 'real', 4, 'N'], [701, 'float8', 'double precision', 8, 'N'],
  [1000, '_bool', 'boolean[]', -1, 'A'], [1005, '_int2', 'smallint[]', -1, 'A'], [1007, '_int4', 'integer[]', -1, 'A'],
  [1009, '_text', 'text[]', -1, 'A'], [1016, '_int8', 'bigint[]', -1, 'A'], [1022, '_float8', 'double precision[]', -1, 'A'],
  [1043, 'varchar', 'character varying', -1, 'S'], [1082, 'date', 'date', 4, 'D'], [1083, 'time', 'time without time zone', 8, 'D'],
  [1114, 'timestamp', 'timestamp without time zone', 8, 'D'], [1184, 'timestamptz', 'timestamp with time zone', 8, 'D'],
  [1186, 'interval', 'interval', 16, 'T'], [1700, 'numeric', 'numeric', -1, 'N'], [2950, 'uuid', 'uuid', 16, 'U'],
  [2205, 'regclass', 'regclass', 4, 'N'], [2206, 'regtype', 'regtype', 4, 'N'],
];
const TYPE_BY_OID = new Map(PG_TYPES.map((t) => [t[0], t]));
/** Element type → its array type (pg_type.typarray). */
const ARRAY_OF = new Map(PG_TYPES.filter((t) => t[4] === 'A').map((t) => [PG_TYPES.find((e) => e[1] === t[1].slice(1))?.[0] ?? 0, t[0]] as const));
const COLLATABLE = new Set([18, 19, 25, 1043]);

/** The rows every catalog relation is built from: the principal's datasets, in name order, with stable OIDs. */
export interface CatalogContent {
  readonly database: string;
  readonly tables: readonly {
    readonly oid: number;
    readonly view: DatasetView;
    readonly columns: readonly { readonly name: string; readonly typeOid: number; readonly note: string | null }[];
  }[];
}

export function catalogContent(views: readonly DatasetView[], database: string): CatalogContent {
  const sorted = [...views].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    database,
    tables: sorted.map((view, i) => ({
      oid: FIRST_TABLE_OID + i,
      view,
      columns: view.columns.map((c) => {
        const notes = [c.description, c.masked ? `masked: ${c.masked}` : null, c.joinOnly ? 'join only' : null].filter((x): x is string => !!x);
        return { name: c.name, typeOid: pgTypeOf(c.type === 'DECIMAL' ? 'DECIMAL(18,3)' : c.type).oid, note: notes.length ? notes.join('; ') : null };
      }),
    })),
  };
}

const none = (): readonly CatalogCell[][] => [];
const cols = (spec: string): (readonly [string, string])[] => spec.split(',').map((s) => {
  const [n, t] = s.trim().split(/\s+/);
  return [n!, t!] as const;
});

const typeName = (oid: number): string => TYPE_BY_OID.get(oid)?.[2] ?? 'text';

export const CATALOG_TABLES: readonly CatalogTable[] = [
  {
    name: 'pg_namespace', columns: cols('oid BIGINT, nspname VARCHAR, nspowner BIGINT, nspacl VARCHAR[]'),
    rows: () => [[NS.pg_catalog, 'pg_catalog', OWNER, null], [NS.public, 'public', OWNER, null], [NS.information_schema, 'information_schema', OWNER, null]],
  },
  {
    name: 'pg_class',
    columns: cols('oid BIGINT, relname VARCHAR, relnamespace BIGINT, reltype BIGINT, reloftype BIGINT, relowner BIGINT, relam BIGINT, relfilenode BIGINT, reltablespace BIGINT, relpages INTEGER, reltuples REAL, relallvisible INTEGER, reltoastrelid BIGINT, relhasindex BOOLEAN, relisshared BOOLEAN, relpersistence VARCHAR, relkind VARCHAR, relnatts SMALLINT, relchecks SMALLINT, relhasrules BOOLEAN, relhastriggers BOOLEAN, relhassubclass BOOLEAN, relrowsecurity BOOLEAN, relforcerowsecurity BOOLEAN, relispopulated BOOLEAN, relreplident VARCHAR, relispartition BOOLEAN, relrewrite BIGINT, relacl VARCHAR[], reloptions VARCHAR[], relpartbound VARCHAR'),
    rows: (c) => c.tables.map((t) => [t.oid, t.view.name, NS.public, 0, 0, OWNER, 2, 0, 0, 0, -1, 0, 0, false, false, 'p', 'r', t.columns.length, 0, false, false, false, false, false, true, 'd', false, 0, null, null, null]),
  },
  {
    name: 'pg_attribute',
    columns: cols('attrelid BIGINT, attname VARCHAR, atttypid BIGINT, attstattarget INTEGER, attlen SMALLINT, attnum SMALLINT, attndims INTEGER, atttypmod INTEGER, attbyval BOOLEAN, attnotnull BOOLEAN, atthasdef BOOLEAN, atthasmissing BOOLEAN, attidentity VARCHAR, attgenerated VARCHAR, attisdropped BOOLEAN, attislocal BOOLEAN, attinhcount INTEGER, attcollation BIGINT, attacl VARCHAR[], attoptions VARCHAR[], attfdwoptions VARCHAR[]'),
    rows: (c) => c.tables.flatMap((t) => t.columns.map((col, i) => [
      t.oid, col.name, col.typeOid, -1, TYPE_BY_OID.get(col.typeOid)?.[3] ?? -1, i + 1, 0, -1, (TYPE_BY_OID.get(col.typeOid)?.[3] ?? -1) > 0, false, false, false, '', '', false, true, 0,
      COLLATABLE.has(col.typeOid) ? DEFAULT_COLLATION : 0, null, null, null,
    ])),
  },
  {
    name: 'pg_type',
    columns: cols('oid BIGINT, typname VARCHAR, typnamespace BIGINT, typowner BIGINT, typlen SMALLINT, typbyval BOOLEAN, typtype VARCHAR, typcategory VARCHAR, typispreferred BOOLEAN, typisdefined BOOLEAN, typdelim VARCHAR, typrelid BIGINT, typelem BIGINT, typarray BIGINT, typnotnull BOOLEAN, typbasetype BIGINT, typtypmod INTEGER, typndims INTEGER, typcollation BIGINT, typdefault VARCHAR, typinput VARCHAR, typoutput VARCHAR, typreceive VARCHAR, typsend VARCHAR'),
    // typinput: JDBC's getTypeInfo and type cache tell array types by typinput = 'array_in'.
    rows: () => PG_TYPES.map(([oid, name, , len, cat]) => {
      const elem = cat === 'A' ? (PG_TYPES.find((t) => t[1] === name.slice(1))?.[0] ?? 0) : 0;
      const io = cat === 'A' ? 'array' : name;
      return [oid, name, NS.pg_catalog, OWNER, len, len > 0 && len <= 8, 'b', cat, false, true, ',', 0, elem, ARRAY_OF.get(oid) ?? 0, false, 0, -1, 0, COLLATABLE.has(oid) ? DEFAULT_COLLATION : 0, null, `${io}_in`, `${io}_out`, `${io}_recv`, `${io}_send`];
    }),
  },
  {
    name: 'pg_description', columns: cols('objoid BIGINT, classoid BIGINT, objsubid INTEGER, description VARCHAR'),
    rows: (c) => c.tables.flatMap((t) => [
      ...(t.view.description ? [[t.oid, PG_CLASS_OID, 0, t.view.description]] : []),
      ...t.columns.flatMap((col, i) => (col.note ? [[t.oid, PG_CLASS_OID, i + 1, col.note]] : [])),
    ]),
  },
  {
    name: 'pg_database',
    columns: cols('oid BIGINT, datname VARCHAR, datdba BIGINT, encoding INTEGER, datlocprovider VARCHAR, datistemplate BOOLEAN, datallowconn BOOLEAN, datconnlimit INTEGER, dattablespace BIGINT, datcollate VARCHAR, datctype VARCHAR, daticulocale VARCHAR, daticurules VARCHAR, datcollversion VARCHAR, datacl VARCHAR[]'),
    rows: (c) => [[DATABASE_OID, c.database, OWNER, 6, 'c', false, true, -1, 1663, 'C', 'C', null, null, null, null]],
  },
  {
    name: 'pg_roles',
    columns: cols('oid BIGINT, rolname VARCHAR, rolsuper BOOLEAN, rolinherit BOOLEAN, rolcreaterole BOOLEAN, rolcreatedb BOOLEAN, rolcanlogin BOOLEAN, rolreplication BOOLEAN, rolconnlimit INTEGER, rolpassword VARCHAR, rolvaliduntil TIMESTAMP, rolbypassrls BOOLEAN, rolconfig VARCHAR[]'),
    rows: () => [[OWNER, 'gatehouse', false, true, false, false, false, false, -1, '********', null, false, null]],
  },
  {
    name: 'pg_user', columns: cols('usename VARCHAR, usesysid BIGINT, usecreatedb BOOLEAN, usesuper BOOLEAN, userepl BOOLEAN, usebypassrls BOOLEAN, passwd VARCHAR, valuntil TIMESTAMP, useconfig VARCHAR[]'),
    rows: () => [['gatehouse', OWNER, false, false, false, false, '********', null, null]],
  },
  { name: 'pg_am', columns: cols('oid BIGINT, amname VARCHAR, amhandler BIGINT, amtype VARCHAR'), rows: () => [[2, 'heap', 0, 't'], [403, 'btree', 0, 'i'], [405, 'hash', 0, 'i']] },
  {
    // Compiled-in constants only (what JDBC's getImportedKeys/getIndexInfo read): no server configuration.
    name: 'pg_settings', columns: cols('name VARCHAR, setting VARCHAR, unit VARCHAR, category VARCHAR, short_desc VARCHAR, context VARCHAR, vartype VARCHAR, source VARCHAR'),
    rows: () => [['max_index_keys', '32', null, 'Preset Options', 'Shows the maximum number of index keys.', 'internal', 'integer', 'default'],
      ['max_identifier_length', '63', null, 'Preset Options', 'Shows the maximum identifier length.', 'internal', 'integer', 'default'],
      ['server_version_num', '150000', null, 'Preset Options', 'Shows the server version as an integer.', 'internal', 'integer', 'default'],
      ['block_size', '8192', null, 'Preset Options', 'Shows the size of a disk block.', 'internal', 'integer', 'default']],
  },
  {
    name: 'pg_collation', columns: cols('oid BIGINT, collname VARCHAR, collnamespace BIGINT, collowner BIGINT, collprovider VARCHAR, collisdeterministic BOOLEAN, collencoding INTEGER, collcollate VARCHAR, collctype VARCHAR'),
    rows: () => [[DEFAULT_COLLATION, 'default', NS.pg_catalog, OWNER, 'd', true, -1, null, null]],
  },
  {
    name: 'pg_tables', columns: cols('schemaname VARCHAR, tablename VARCHAR, tableowner VARCHAR, tablespace VARCHAR, hasindexes BOOLEAN, hasrules BOOLEAN, hastriggers BOOLEAN, rowsecurity BOOLEAN'),
    rows: (c) => c.tables.map((t) => ['public', t.view.name, 'gatehouse', null, false, false, false, false]),
  },
  { name: 'pg_attrdef', columns: cols('oid BIGINT, adrelid BIGINT, adnum SMALLINT, adbin VARCHAR'), rows: none },
  { name: 'pg_index', columns: cols('indexrelid BIGINT, indrelid BIGINT, indnatts SMALLINT, indnkeyatts SMALLINT, indisunique BOOLEAN, indisprimary BOOLEAN, indisexclusion BOOLEAN, indimmediate BOOLEAN, indisclustered BOOLEAN, indisvalid BOOLEAN, indisreplident BOOLEAN, indkey SMALLINT[], indcollation BIGINT[], indclass BIGINT[], indoption SMALLINT[], indexprs VARCHAR, indpred VARCHAR'), rows: none },
  { name: 'pg_constraint', columns: cols('oid BIGINT, conname VARCHAR, connamespace BIGINT, contype VARCHAR, condeferrable BOOLEAN, condeferred BOOLEAN, convalidated BOOLEAN, conrelid BIGINT, contypid BIGINT, conindid BIGINT, conparentid BIGINT, confrelid BIGINT, confupdtype VARCHAR, confdeltype VARCHAR, confmatchtype VARCHAR, conislocal BOOLEAN, coninhcount INTEGER, connoinherit BOOLEAN, conkey SMALLINT[], confkey SMALLINT[], conbin VARCHAR'), rows: none },
  { name: 'pg_inherits', columns: cols('inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN'), rows: none },
  { name: 'pg_policy', columns: cols('oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR'), rows: none },
  { name: 'pg_statistic_ext', columns: cols('oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT, stxstattarget INTEGER, stxkeys SMALLINT[], stxkind VARCHAR[], stxexprs VARCHAR'), rows: none },
  { name: 'pg_publication', columns: cols('oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN'), rows: none },
  { name: 'pg_publication_rel', columns: cols('oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs SMALLINT[]'), rows: none },
  { name: 'pg_publication_namespace', columns: cols('oid BIGINT, pnpubid BIGINT, pnnspid BIGINT'), rows: none },
  { name: 'pg_trigger', columns: cols('oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT, tgtype INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN'), rows: none },
  { name: 'pg_partitioned_table', columns: cols('partrelid BIGINT, partstrat VARCHAR, partnatts SMALLINT'), rows: none },
  { name: 'pg_proc', columns: cols('oid BIGINT, proname VARCHAR, pronamespace BIGINT, proowner BIGINT, prolang BIGINT, prokind VARCHAR, prosecdef BOOLEAN, proretset BOOLEAN, provolatile VARCHAR, prorettype BIGINT, pronargs SMALLINT, pronargdefaults SMALLINT, proargtypes BIGINT[], proallargtypes BIGINT[], proargmodes VARCHAR[], proargnames VARCHAR[], proargdefaults VARCHAR, prosrc VARCHAR, proacl VARCHAR[]'), rows: none },
  { name: 'pg_depend', columns: cols('classid BIGINT, objid BIGINT, objsubid INTEGER, refclassid BIGINT, refobjid BIGINT, refobjsubid INTEGER, deptype VARCHAR'), rows: none },
  { name: 'pg_views', columns: cols('schemaname VARCHAR, viewname VARCHAR, viewowner VARCHAR, definition VARCHAR'), rows: none },
  { name: 'pg_matviews', columns: cols('schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, tablespace VARCHAR, hasindexes BOOLEAN, ispopulated BOOLEAN, definition VARCHAR'), rows: none },
  { name: 'pg_enum', columns: cols('oid BIGINT, enumtypid BIGINT, enumsortorder REAL, enumlabel VARCHAR'), rows: none },
  { name: 'pg_extension', columns: cols('oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, extrelocatable BOOLEAN, extversion VARCHAR'), rows: none },
  { name: 'pg_foreign_table', columns: cols('ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]'), rows: none },
  { name: 'pg_rewrite', columns: cols('oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR, ev_enabled VARCHAR, is_instead BOOLEAN'), rows: none },
  { name: 'pg_sequence', columns: cols('seqrelid BIGINT, seqtypid BIGINT, seqstart BIGINT, seqincrement BIGINT, seqmax BIGINT, seqmin BIGINT, seqcache BIGINT, seqcycle BOOLEAN'), rows: none },
  {
    name: 'information_schema.schemata', columns: cols('catalog_name VARCHAR, schema_name VARCHAR, schema_owner VARCHAR, default_character_set_catalog VARCHAR, default_character_set_schema VARCHAR, default_character_set_name VARCHAR, sql_path VARCHAR'),
    rows: (c) => ['information_schema', 'pg_catalog', 'public'].map((s) => [c.database, s, 'gatehouse', null, null, null, null]),
  },
  {
    name: 'information_schema.tables',
    columns: cols('table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, table_type VARCHAR, self_referencing_column_name VARCHAR, reference_generation VARCHAR, user_defined_type_catalog VARCHAR, user_defined_type_schema VARCHAR, user_defined_type_name VARCHAR, is_insertable_into VARCHAR, is_typed VARCHAR, commit_action VARCHAR'),
    rows: (c) => c.tables.map((t) => [c.database, 'public', t.view.name, 'BASE TABLE', null, null, null, null, null, 'NO', 'NO', null]),
  },
  {
    name: 'information_schema.columns',
    columns: cols('table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR, ordinal_position INTEGER, column_default VARCHAR, is_nullable VARCHAR, data_type VARCHAR, character_maximum_length INTEGER, character_octet_length INTEGER, numeric_precision INTEGER, numeric_precision_radix INTEGER, numeric_scale INTEGER, datetime_precision INTEGER, interval_type VARCHAR, collation_name VARCHAR, udt_catalog VARCHAR, udt_schema VARCHAR, udt_name VARCHAR, is_identity VARCHAR, is_generated VARCHAR, is_updatable VARCHAR'),
    rows: (c) => c.tables.flatMap((t) => t.columns.map((col, i) => {
      const numeric = { 20: [64, 2, 0], 21: [16, 2, 0], 23: [32, 2, 0], 700: [24, 2, null], 701: [53, 2, null], 1700: [18, 10, 3] }[col.typeOid as 20] ?? [null, null, null];
      return [c.database, 'public', t.view.name, col.name, i + 1, null, 'YES', typeName(col.typeOid), null, null, numeric[0], numeric[1], numeric[2],
        [1082, 1083, 1114, 1184].includes(col.typeOid) ? (col.typeOid === 1082 ? 0 : 6) : null, null, null, c.database, 'pg_catalog', TYPE_BY_OID.get(col.typeOid)?.[1] ?? 'text', 'NO', 'NEVER', 'NO'];
    })),
  },
  { name: 'information_schema.views', columns: cols('table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, view_definition VARCHAR, check_option VARCHAR, is_updatable VARCHAR, is_insertable_into VARCHAR'), rows: none },
  { name: 'information_schema.table_constraints', columns: cols('constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, constraint_type VARCHAR, is_deferrable VARCHAR, initially_deferred VARCHAR, enforced VARCHAR'), rows: none },
  { name: 'information_schema.key_column_usage', columns: cols('constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR, ordinal_position INTEGER, position_in_unique_constraint INTEGER'), rows: none },
  { name: 'information_schema.referential_constraints', columns: cols('constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, unique_constraint_catalog VARCHAR, unique_constraint_schema VARCHAR, unique_constraint_name VARCHAR, match_option VARCHAR, update_rule VARCHAR, delete_rule VARCHAR'), rows: none },
  { name: 'information_schema.routines', columns: cols('specific_catalog VARCHAR, specific_schema VARCHAR, specific_name VARCHAR, routine_catalog VARCHAR, routine_schema VARCHAR, routine_name VARCHAR, routine_type VARCHAR, data_type VARCHAR'), rows: none },
];

/** Hidden helper: format_type()'s text per type OID (not a relation a query can name). */
export const TYPE_FORMAT_TABLE = 'gh_type_format';

export const CATALOG_TABLE_BY_NAME: ReadonlyMap<string, CatalogTable> = new Map(CATALOG_TABLES.map((t) => [t.name, t]));
