/**
 * DuckDB dialect. Casts render as TRY_CAST so a failed conversion yields NULL instead of an
 * error — errors would otherwise be a side channel (and DuckDB's messages quote values).
 * The keyed hash (the `hash` mask, src/query/masks/keyed-hash.ts) is HMAC-SHA-256 (RFC 2104) composed from DuckDB's sha256 over the
 * workspace key, so equal values hash equally across datasets and joins still work.
 */
import { createHash } from 'node:crypto';
import type { ColumnType } from '../../model/types.ts';
import type { CastType } from '../ir.ts';
import type { Dialect } from './sql.ts';

const HMAC_BLOCK = 64;

/** The inner and outer padded keys of HMAC-SHA-256 (RFC 2104 §2), as hex. */
export function hmacPads(key: Buffer): { ipad: string; opad: string } {
  const k = Buffer.alloc(HMAC_BLOCK);
  (key.length > HMAC_BLOCK ? createHash('sha256').update(key).digest() : key).copy(k);
  const ipad = Buffer.alloc(HMAC_BLOCK), opad = Buffer.alloc(HMAC_BLOCK);
  for (let i = 0; i < HMAC_BLOCK; i++) { ipad[i] = k[i]! ^ 0x36; opad[i] = k[i]! ^ 0x5c; }
  return { ipad: ipad.toString('hex'), opad: opad.toString('hex') };
}

export function castTypeSql(t: CastType): string {
  return t.name === 'DECIMAL' ? `DECIMAL(${t.precision}, ${t.scale})` : t.name;
}

export function duckdbDialect(options: { sourceOf: (dataset: string) => string; hashKey: Buffer }): Dialect {
  const pads = hmacPads(options.hashKey);
  const typeName = (t: ColumnType): string => (t === 'DECIMAL' ? 'DOUBLE' : t);
  return {
    name: 'duckdb',
    source: options.sourceOf,
    typeName,
    functionName: (n) => n,
    guard: (sql) => `TRY(${sql})`,
    cast: (arg, t) => `TRY_CAST(${arg} AS ${castTypeSql(t)})`,
    keyedHash(x: string): string {
      return `sha256(unhex('${pads.opad}') || unhex(sha256(unhex('${pads.ipad}') || encode(CAST(${x} AS VARCHAR)))))`;
    },
  };
}
