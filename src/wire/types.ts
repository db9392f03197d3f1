/**
 * Gatehouse result column types (DuckDB type names) → PostgreSQL type OIDs, and values →
 * PostgreSQL's text output (booleans t/f, `YYYY-MM-DD HH:MM:SS[.ffffff]` timestamps, float8
 * in shortest form with a two-digit exponent, arrays as `{…}` literals). Binary output is
 * honoured for booleans, integers, floats and text; other types refuse a binary request.
 */
import type { CellValue } from '../model/result.ts';

export { OID, pgTypeOf, type PgType } from '../catalog/pg-types.ts';
import { OID, type PgType } from '../catalog/pg-types.ts';

/** float8 text output as PostgreSQL ≥ 12 prints it (shortest exact form). */
export function float8Text(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  if (Object.is(n, -0)) return '-0';
  const a = Math.abs(n);
  const s = a !== 0 && (a >= 1e15 || a < 1e-4) ? n.toExponential() : String(n);
  return s.replace(/e([+-])(\d)$/, 'e$10$2');
}

/** `2024-01-02T03:04:05.120Z` → `2024-01-02 03:04:05.12` (plus `+00` for timestamptz). */
function timestampText(v: string, tz: boolean): string {
  const m = /^(\d{4,}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d(?::?\d\d)?)?$/.exec(v);
  if (!m) return v;
  const frac = (m[3] ?? '').replace(/0+$/, '');
  return `${m[1]} ${m[2]}${frac ? `.${frac}` : ''}${tz ? '+00' : ''}`;
}

function arrayElement(v: CellValue): string {
  if (v === null) return 'NULL';
  const s = typeof v === 'boolean' ? (v ? 't' : 'f') : typeof v === 'number' ? float8Text(v) : typeof v === 'string' ? v : Array.isArray(v) ? arrayText(v) : JSON.stringify(v);
  if (Array.isArray(v)) return s;
  return s === '' || /[{},"\\\s]/.test(s) || s.toUpperCase() === 'NULL' ? `"${s.replace(/(["\\])/g, '\\$1')}"` : s;
}

function arrayText(v: readonly CellValue[]): string { return `{${v.map(arrayElement).join(',')}}`; }

/** PostgreSQL text output of one value of a column of `type`. */
export function textValue(v: CellValue, type: PgType): string | null {
  if (v === null) return null;
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (typeof v === 'number') {
    if (type.oid === OID.float8 || type.oid === OID.float4 || type.oid === OID.numeric) return float8Text(v);
    return Number.isInteger(v) ? String(v) : float8Text(v);
  }
  if (typeof v === 'string') {
    if (type.oid === OID.timestamp) return timestampText(v, false);
    if (type.oid === OID.timestamptz) return timestampText(v, true);
    if (type.oid === OID.bool) return v === 'true' ? 't' : v === 'false' ? 'f' : v;
    if (type.oid === OID.bytea) return `\\x${v}`;
    return v;
  }
  if (Array.isArray(v)) return arrayText(v);
  return JSON.stringify(v);
}

const BINARY_OK = new Set<number>([OID.bool, OID.int2, OID.int4, OID.int8, OID.float4, OID.float8, OID.text, OID.varchar, OID.json]);

/** Whether a binary result format can be honoured for this type. */
export function binarySupported(type: PgType): boolean { return BINARY_OK.has(type.oid); }

/** PostgreSQL binary output of one value (types for which binarySupported is true). */
export function binaryValue(v: CellValue, type: PgType): Buffer | null {
  if (v === null) return null;
  switch (type.oid) {
    case OID.bool: return Buffer.from([v === true || v === 't' || v === 'true' ? 1 : 0]);
    case OID.int2: { const b = Buffer.alloc(2); b.writeInt16BE(Number(v)); return b; }
    case OID.int4: { const b = Buffer.alloc(4); b.writeInt32BE(Number(v)); return b; }
    case OID.int8: { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(typeof v === 'number' ? Math.trunc(v) : String(v))); return b; }
    case OID.float4: { const b = Buffer.alloc(4); b.writeFloatBE(Number(v)); return b; }
    case OID.float8: { const b = Buffer.alloc(8); b.writeDoubleBE(Number(v)); return b; }
    default: return Buffer.from(textValue(v, type) ?? '', 'utf8');
  }
}

/**
 * A binary-format parameter of a declared type → its text form (what the governed path
 * binds). Returns null when the type's binary form is not understood.
 */
export function binaryParamText(b: Buffer, typeOid: number): string | null {
  switch (typeOid) {
    case OID.bool: return b.length === 1 ? (b[0] ? 'true' : 'false') : null;
    case OID.int2: return b.length === 2 ? String(b.readInt16BE()) : null;
    case OID.int4: return b.length === 4 ? String(b.readInt32BE()) : null;
    case OID.int8: return b.length === 8 ? b.readBigInt64BE().toString() : null;
    case OID.float4: return b.length === 4 ? float8Text(b.readFloatBE()) : null;
    case OID.float8: return b.length === 8 ? float8Text(b.readDoubleBE()) : null;
    case OID.text: case OID.varchar: case OID.unknown: return b.toString('utf8');
    default: return null;
  }
}
