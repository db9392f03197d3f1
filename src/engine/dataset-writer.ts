/**
 * Writing an encrypted dataset (gatehouse ingest, an audited operation; and a clean-room
 * compute node sealing its members' columns): the operator's CSV or Parquet file is read into
 * a new DuckDB database that is encrypted at rest — natively (DuckDB's OpenSSL module) or
 * sealed by Gatehouse (src/keys/blob.ts) — through the locked-down file writer. The formats,
 * keys and the read side stay in src/keys/datasets.ts.
 */
import { existsSync, rmSync } from 'node:fs';
import { open as openFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { encryptFile } from '../keys/blob.ts';
import { DatasetEncryptionUnavailable, KeyInputInvalid } from '../keys/errors.ts';
import { checkKey, quoteIdent, quoteString, scratchDir, type EncryptedDatasetFormat } from '../keys/datasets.ts';
import { withFileWriter, type DuckDBConnection } from './file-writer.ts';

let secureWriterProbe: Promise<boolean> | null = null;

/** True when DuckDB can write natively encrypted databases securely (its OpenSSL module via a locally installed httpfs). */
export function duckdbSecureNativeWriter(): Promise<boolean> {
  secureWriterProbe ??= (async () => {
    return withFileWriter({}, async (c) => {
      try {
        await c.run('LOAD httpfs');
        return true;
      } catch {
        return false;
      }
    });
  })();
  return secureWriterProbe;
}

export interface IngestInput {
  /** A CSV (with header) or Parquet file. */
  readonly source: string;
  readonly table: string;
  /** The encrypted dataset file to write (replaced atomically). */
  readonly target: string;
  readonly dataKey: Buffer;
  /** Names the data key in a sealed file's header (default "dataset"). */
  readonly keyId?: string;
  readonly format?: 'auto' | EncryptedDatasetFormat;
  /** tmpfs directory for transient plaintext (sealed format); default /dev/shm. */
  readonly scratchDir?: string;
  /**
   * Tests and benchmarks only: let DuckDB write native encryption with its built-in mbedTLS,
   * whose nonces DuckDB itself labels unsafe. Never for real data.
   */
  readonly unsafeMbedtlsWriter?: boolean;
  readonly threads?: number;
}

export interface IngestResult {
  readonly format: EncryptedDatasetFormat;
  readonly path: string;
  readonly table: string;
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: number;
}

function readerFor(source: string): string {
  const ext = extname(source).toLowerCase();
  if (ext === '.parquet') return `read_parquet(${quoteString(resolve(source))})`;
  if (ext === '.csv') return `read_csv(${quoteString(resolve(source))}, header = true)`;
  throw new KeyInputInvalid(`unsupported source ${basename(source)}: give a .csv or .parquet file`);
}

/** Reads `source` into table `table` of a new encrypted DuckDB database at `target`. */
export async function ingestEncrypted(input: IngestInput): Promise<IngestResult> {
  const t0 = performance.now();
  const keyB64 = checkKey(input.dataKey);
  quoteIdent(input.table);
  if (!existsSync(input.source)) throw new KeyInputInvalid(`source ${basename(input.source)} does not exist`);
  const reader = readerFor(input.source);
  const wanted = input.format ?? 'auto';
  const secure = wanted === 'sealed-duckdb' ? false : await duckdbSecureNativeWriter();
  const format: EncryptedDatasetFormat = wanted === 'auto' ? (secure ? 'duckdb-native' : 'sealed-duckdb') : wanted;
  if (format === 'duckdb-native' && !secure && !input.unsafeMbedtlsWriter) {
    throw new DatasetEncryptionUnavailable('DuckDB cannot write natively encrypted databases securely on this installation (no OpenSSL crypto module: httpfs is not installed)',
      "use format 'sealed-duckdb' (or 'auto'), or install DuckDB's httpfs extension for this DuckDB version");
  }
  const scratch = scratchDir(input.scratchDir);
  const tmpTarget = `${input.target}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    // Spills only into this ingestion's private scratch directory (removed below).
    return await withFileWriter({ threads: input.threads ?? 2, spillDirectory: scratch }, async (conn) => {
    let rows: number;
    if (format === 'duckdb-native') {
      if (secure) await conn.run('LOAD httpfs');
      else await conn.run('SET force_mbedtls_unsafe = true');
      await conn.run('SET temp_file_encryption = true');
      await conn.run(`ATTACH ${quoteString(resolve(tmpTarget))} AS gh_enc (ENCRYPTION_KEY ${quoteString(keyB64)})`);
      rows = await copyInto(conn, `gh_enc.main.${quoteIdent(input.table)}`, reader);
      await conn.run('DETACH gh_enc');
      await fsyncFile(tmpTarget);
      await rename(tmpTarget, input.target);
    } else {
      const plain = join(scratch, 'dataset.duckdb');
      await conn.run(`ATTACH ${quoteString(plain)} AS gh_plain`);
      rows = await copyInto(conn, `gh_plain.main.${quoteIdent(input.table)}`, reader);
      await conn.run('DETACH gh_plain');
      await encryptFile(plain, input.target, input.dataKey, input.keyId ?? 'dataset');
    }
    return { format, path: input.target, table: input.table, rows, bytes: (await stat(input.target)).size, seconds: (performance.now() - t0) / 1000 };
    });
  } finally {
    await rm(tmpTarget, { force: true });
    await rm(`${tmpTarget}.wal`, { force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function copyInto(conn: DuckDBConnection, table: string, reader: string): Promise<number> {
  await conn.run(`CREATE TABLE ${table} AS SELECT * FROM ${reader}`);
  const r = await conn.runAndReadAll(`SELECT count(*) FROM ${table}`);
  return Number(r.getRowsJS()[0]![0]);
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await openFile(path, 'r+');
  try { await fh.sync(); } finally { await fh.close(); }
  const d = await openFile(dirname(path), 'r');
  try { await d.sync(); } finally { await d.close(); }
}

