/**
 * The one way Gatehouse opens a DuckDB instance that is not a query engine: an in-memory,
 * data-free instance that runs Gatehouse's own fixed SQL to write a file — the demo's Parquet
 * (src/demo/workspace.ts), an ingested dataset sealed at rest (src/keys/datasets.ts), an
 * erasure's re-keyed dataset and its erased copies (src/governance/erasure/). No request's SQL
 * ever reaches one: callers pass literal statements and bound parameters only, and the
 * architecture test fails when anything outside src/engine opens an instance itself.
 *
 * Locked down like the query engines: no extension is installed or loaded by itself, and
 * nothing spills to disk unless the caller names a private scratch directory for it.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

export type { DuckDBConnection };

export interface FileWriterOptions {
  /** Worker threads (default 2). */
  readonly threads?: number;
  /** A private directory DuckDB may spill to (0700, removed by the caller); absent: never spill. */
  readonly spillDirectory?: string;
}

/** Opens a locked-down writer, runs `fn` on its connection, and always closes it. */
export async function withFileWriter<T>(options: FileWriterOptions, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  const inst = await DuckDBInstance.create(':memory:', {
    threads: String(options.threads ?? 2),
    temp_directory: options.spillDirectory ?? '',
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  const conn = await inst.connect();
  try {
    return await fn(conn);
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
}
