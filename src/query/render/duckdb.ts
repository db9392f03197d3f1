/**
 * DuckDB dialect. Casts render as TRY_CAST so a failed conversion yields NULL instead of an
 * error — errors would otherwise be a side channel (and DuckDB's messages quote values).
 * The keyed hash (the `hash` mask, src/query/masks/keyed-hash.ts) is HMAC-SHA-256 (RFC 2104) composed from DuckDB's sha256 over the
 * workspace key, so equal values hash equally across datasets and joins still work.
 */
import { createHash } from 'node:crypto';
import type { Expr } from '../ir.ts';
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
    inList: longInList,
  };
}

/**
 * DuckDB evaluates a long constant `NOT IN (…)` list row by row against every constant
 * (10k constants over 2M rows: ~20 s), while `IN (SELECT unnest([…]))` is one hash join.
 * Long lists of non-null literals of one kind (the erasure transformer's subject lists,
 * src/query/govern/erasure.ts, or a caller's own) are rendered that way: same result, since
 * the list holds no NULL, and a cost bounded before execution (invariant 11).
 */
const LONG_IN_LIST = 64;
function longInList(arg: string, items: readonly string[], ir: readonly Expr[], negated: boolean): string | undefined {
  if (items.length < LONG_IN_LIST) return undefined;
  const first = ir[0]!;
  if (first.kind !== 'literal' || (first.type !== 'number' && first.type !== 'string')) return undefined;
  if (!ir.every((x) => x.kind === 'literal' && x.type === first.type)) return undefined;
  return `(${arg} ${negated ? 'NOT ' : ''}IN (SELECT unnest([${items.join(', ')}])))`;
}
