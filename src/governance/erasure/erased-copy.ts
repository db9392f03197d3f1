/**
 * An erasure-filtered copy of a dataset, materialised once per erasure version (issue 23,
 * performance). Measured on DuckDB over Parquet (docs/benchmarks.md, issue 23): any per-row
 * exclusion — `IN (SELECT unnest(…))`, an anti-join against a materialised table, a bitmap —
 * costs 3.5–6× on a 10M-row aggregation, and merely *reading* the unit column costs 2.8×,
 * because the aggregation itself never reads it. No filter can meet "≤ 5 %". Reading a copy
 * that already lacks the erased subjects' rows costs what the plain query costs.
 *
 * So the exclusion is paid once, when the erasure set changes, not on every query:
 *
 *   erasureVersion()   the digest of one exclusion set (unit column + sorted values); a copy
 *                      is valid for exactly that set, and a new erasure gives a new version
 *   buildErasedCopy()  writes `SELECT * FROM source WHERE (unit IN set) IS NOT TRUE` as
 *                      Parquet, the values bound as one parameter (never SQL text)
 *
 * Where the copy lives matters: it is plaintext of data the caller may see only through
 * governance, so it is written into a private (0700) directory on a memory-backed file
 * system, like decrypted datasets (src/keys/datasets.ts), and removed with its version.
 * The engine (src/engine/duckdb.ts) is what must read it: see docs/erasure.md for how the
 * lead wires it (the copy replaces the dataset's view for full erasures; opt-outs, which
 * depend on the purpose, keep the per-query filter).
 */
import { createHash } from 'node:crypto';
import type { DuckDBConnection } from '../../engine/file-writer.ts';
import { GatehouseError } from '../../errors.ts';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The version of one exclusion set: equal sets give equal versions, whatever their order. */
export function erasureVersion(dataset: string, unit: string, values: readonly string[]): string {
  const h = createHash('sha256').update(dataset).update('\u0000').update(unit);
  for (const v of [...new Set(values)].sort()) h.update('\u0000').update(v);
  return h.digest('hex').slice(0, 32);
}

export interface ErasedCopyInput {
  /** A relation the connection can read: a view name or `read_parquet([...])` (trusted, engine-built). */
  readonly source: string;
  readonly unit: string;
  readonly values: readonly string[];
  /** The Parquet file to write (in a private tmpfs directory). */
  readonly target: string;
}

/** Writes the copy; returns how many rows it kept. */
export async function buildErasedCopy(conn: DuckDBConnection, input: ErasedCopyInput): Promise<number> {
  if (!IDENT.test(input.unit)) throw new GatehouseError('REQUEST_INVALID', 'the unit column must be a plain identifier');
  if (input.values.some((v) => v.includes('\u0000'))) throw new GatehouseError('REQUEST_INVALID', 'a subject identifier may not contain NUL');
  const target = `'${input.target.replaceAll("'", "''")}'`;
  const kept = `SELECT * FROM ${input.source} s WHERE (CAST(s."${input.unit}" AS VARCHAR) IN (SELECT unnest(string_split($1, chr(0))))) IS NOT TRUE`;
  await conn.run(`COPY (${kept}) TO ${target} (FORMAT parquet)`, [input.values.join('\u0000')]);
  const r = await conn.runAndReadAll(`SELECT count(*) FROM read_parquet(${target})`);
  return Number(r.getRowsJS()[0]![0]);
}
