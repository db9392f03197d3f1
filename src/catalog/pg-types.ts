/**
 * Gatehouse result column types (DuckDB type names) → PostgreSQL type OIDs and names: what
 * the catalog reports and what the wire front sends in RowDescription.
 */

export const OID = {
  bool: 16, bytea: 17, int8: 20, int2: 21, int4: 23, text: 25, oid: 26, json: 114, float4: 700, float8: 701, unknown: 705,
  bool_array: 1000, int2_array: 1005, int4_array: 1007, text_array: 1009, int8_array: 1016, float8_array: 1022,
  varchar: 1043, date: 1082, time: 1083, timestamp: 1114, timestamptz: 1184, interval: 1186, numeric: 1700, uuid: 2950,
} as const;

export interface PgType { readonly oid: number; readonly size: number; readonly name: string }

const SIZES: Record<number, number> = { 16: 1, 20: 8, 21: 2, 23: 4, 26: 4, 700: 4, 701: 8, 1082: 4, 1083: 8, 1114: 8, 1184: 8, 1186: 16, 2950: 16 };

function t(oid: number, name: string): PgType { return { oid, size: SIZES[oid] ?? -1, name }; }

/** The PostgreSQL type of a Gatehouse (DuckDB) column type name. */
export function pgTypeOf(type: string): PgType {
  const u = type.toUpperCase().trim();
  if (u.endsWith('[]')) {
    const el = pgTypeOf(u.slice(0, -2)).oid;
    const arr = ({ [OID.bool]: OID.bool_array, [OID.int2]: OID.int2_array, [OID.int4]: OID.int4_array, [OID.int8]: OID.int8_array, [OID.float8]: OID.float8_array } as Record<number, number>)[el];
    return arr ? t(arr, 'array') : t(OID.text_array, '_text');
  }
  if (u === 'BOOLEAN' || u === 'BOOL') return t(OID.bool, 'bool');
  if (u === 'TINYINT' || u === 'SMALLINT' || u === 'UTINYINT') return t(OID.int2, 'int2');
  if (u === 'INTEGER' || u === 'INT' || u === 'USMALLINT') return t(OID.int4, 'int4');
  if (u === 'BIGINT' || u === 'UINTEGER') return t(OID.int8, 'int8');
  if (u === 'HUGEINT' || u === 'UBIGINT' || u === 'UHUGEINT' || u.startsWith('DECIMAL') || u.startsWith('NUMERIC')) return t(OID.numeric, 'numeric');
  if (u === 'FLOAT' || u === 'REAL') return t(OID.float4, 'float4');
  if (u === 'DOUBLE') return t(OID.float8, 'float8');
  if (u === 'DATE') return t(OID.date, 'date');
  if (u === 'TIME') return t(OID.time, 'time');
  if (u === 'TIMESTAMP' || u === 'TIMESTAMP_MS' || u === 'TIMESTAMP_NS' || u === 'TIMESTAMP_S') return t(OID.timestamp, 'timestamp');
  if (u === 'TIMESTAMP WITH TIME ZONE' || u === 'TIMESTAMPTZ') return t(OID.timestamptz, 'timestamptz');
  if (u === 'UUID') return t(OID.uuid, 'uuid');
  if (u === 'BLOB') return t(OID.bytea, 'bytea');
  if (u.startsWith('STRUCT') || u.startsWith('MAP') || u === 'JSON') return t(OID.json, 'json');
  if (u === 'VARCHAR') return t(OID.varchar, 'varchar');
  return t(OID.text, 'text');
}

