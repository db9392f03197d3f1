/**
 * Managed datasets encrypted at rest, under a per-dataset data key (data-keys.ts).
 *
 * Two on-disk formats:
 *
 * - `duckdb-native`: DuckDB's own database encryption (DuckDB ≥ 1.4: AES-256-GCM per
 *   block, `ATTACH 'file' AS x (ENCRYPTION_KEY '…')`). The key DuckDB is given is the
 *   base64 of the 32-byte random data key (DuckDB derives its block key from that string).
 *   *Reading* works everywhere (DuckDB's built-in mbedTLS decrypts). *Writing* needs
 *   DuckDB's OpenSSL crypto module, which comes with the httpfs extension: DuckDB refuses
 *   to write with its built-in mbedTLS because that path draws nonces from a
 *   non-cryptographic generator (DuckDB calls the override `force_mbedtls_unsafe`). With
 *   @duckdb/node-api 1.5.5 and no httpfs installed (it cannot be installed offline), a
 *   secure native write is not possible on this machine; `ingestEncrypted` then uses:
 *
 * - `sealed-duckdb`: a plain DuckDB database file sealed as a Gatehouse blob (blob.ts,
 *   chunked AES-256-GCM under the data key). The plaintext database exists only in a
 *   private directory on a memory-backed file system (tmpfs, /dev/shm by default) while
 *   it is being built or loaded, and is deleted right after. The engine loads datasets
 *   into memory at start anyway, so queries pay nothing for it; opening pays one
 *   decryption.
 *
 * Crypto-shredding a dataset = destroying its data key: every copy of the file (backups
 * included) becomes unreadable.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { existsSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { open as openFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decryptFileTo, encryptFile } from './blob.ts';

/** DuckDB never spills plaintext to a temp directory (docs/engines.md: encrypted spill is not available offline). */
import { CiphertextTampered, DatasetEncryptionUnavailable, DatasetKeyWrong, KeyInputInvalid } from './errors.ts';

export type EncryptedDatasetFormat = 'duckdb-native' | 'sealed-duckdb';

const TMPFS_MAGIC = 0x01021994;
const BLOB_MAGIC = Buffer.from('GHEB', 'latin1');
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function quoteString(s: string): string {
  if (s.includes('\0')) throw new KeyInputInvalid('a path may not contain NUL');
  return `'${s.replaceAll("'", "''")}'`;
}

export function quoteIdent(s: string): string {
  if (!IDENT.test(s)) throw new KeyInputInvalid(`${JSON.stringify(s)} is not a valid table or alias name (letters, digits, _; up to 63)`);
  return `"${s}"`;
}

export function checkKey(dataKey: Buffer): string {
  if (!Buffer.isBuffer(dataKey) || dataKey.length !== 32) throw new KeyInputInvalid('a dataset data key is a 32-byte Buffer');
  return dataKey.toString('base64');
}

/**
 * The statement that attaches a natively encrypted dataset read-only. It contains the key:
 * run it on the engine's setup connection before the lockdown, and never log it.
 */
export function attachEncryptedSql(path: string, alias: string, dataKey: Buffer): string {
  return `ATTACH ${quoteString(resolve(path))} AS ${quoteIdent(alias)} (ENCRYPTION_KEY ${quoteString(checkKey(dataKey))}, READ_ONLY)`;
}

/** Runs attachEncryptedSql on `conn`, reporting a wrong key or damaged file as DATASET_KEY_WRONG. */
export async function attachEncrypted(conn: DuckDBConnection, path: string, alias: string, dataKey: Buffer): Promise<void> {
  try {
    await conn.run(attachEncryptedSql(path, alias, dataKey));
  } catch (e) {
    const msg = String((e as Error).message);
    if (/encryption key|AES tag|encrypted database|not a valid DuckDB database/i.test(msg)) throw new DatasetKeyWrong(basename(path));
    throw new DatasetEncryptionUnavailable(`cannot attach ${basename(path)}`, 'check that the file exists and is a Gatehouse encrypted dataset', { cause: e });
  }
}

/** Which format an encrypted dataset file is in (by its first bytes). */
export async function encryptedDatasetFormat(path: string): Promise<EncryptedDatasetFormat> {
  const fh = await openFile(path, 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    return head.equals(BLOB_MAGIC) ? 'sealed-duckdb' : 'duckdb-native';
  } finally {
    await fh.close();
  }
}

/** Where plaintext may briefly live: a private directory on tmpfs. */
export function scratchDir(explicit: string | undefined): string {
  const base = explicit ?? '/dev/shm';
  if (explicit === undefined) {
    let tmpfs = false;
    try { tmpfs = statfsSync(base).type === TMPFS_MAGIC; } catch { /* absent */ }
    if (!tmpfs) {
      throw new DatasetEncryptionUnavailable('no memory-backed scratch directory for decrypted datasets (/dev/shm is not tmpfs here)',
        'pass scratchDir pointing to a tmpfs mount (plaintext must not reach a persistent disk), or install DuckDB httpfs for native encryption');
    }
  }
  return mkdtempSync(join(base, 'gatehouse-ds-'));
}

/**
 * Makes an encrypted dataset readable for the duration of `fn`, which receives a
 * `ATTACH … (READ_ONLY)` statement for alias `alias` to run (before the engine's lockdown):
 * - native: the statement carries the key (never log it);
 * - sealed: the file is decrypted into a private tmpfs directory first and removed when
 *   `fn` returns — so `fn` should copy what it needs (the engine copies datasets into
 *   memory) and DETACH.
 * A wrong key (or a damaged file) is DATASET_KEY_WRONG.
 */
export async function withEncryptedDataset<T>(
  path: string, alias: string, dataKey: Buffer, fn: (attachSql: string) => Promise<T>, options: { scratchDir?: string } = {},
): Promise<T> {
  checkKey(dataKey);
  quoteIdent(alias);
  if ((await encryptedDatasetFormat(path)) === 'duckdb-native') return fn(attachEncryptedSql(path, alias, dataKey));
  const scratch = scratchDir(options.scratchDir);
  try {
    const plain = join(scratch, 'dataset.duckdb');
    try {
      await decryptFileTo(path, plain, dataKey);
    } catch (e) {
      if (e instanceof CiphertextTampered) throw new DatasetKeyWrong(basename(path));
      throw e;
    }
    return await fn(`ATTACH ${quoteString(plain)} AS ${quoteIdent(alias)} (READ_ONLY)`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Attaches an encrypted dataset on `conn` and copies `table` into `intoTable` (in memory), then detaches. */
export async function loadEncryptedDataset(
  conn: DuckDBConnection, input: { path: string; table: string; intoTable: string; dataKey: Buffer; scratchDir?: string },
): Promise<number> {
  const alias = `gh_src_${randomBytes(4).toString('hex')}`;
  return withEncryptedDataset(input.path, alias, input.dataKey, async (attachSql) => {
    try {
      await conn.run(attachSql);
    } catch (e) {
      const msg = String((e as Error).message);
      if (/encryption key|AES tag|encrypted database/i.test(msg)) throw new DatasetKeyWrong(basename(input.path));
      throw e;
    }
    try {
      await conn.run(`CREATE TABLE ${input.intoTable} AS SELECT * FROM ${quoteIdent(alias)}.main.${quoteIdent(input.table)}`);
      const r = await conn.runAndReadAll(`SELECT count(*) FROM ${input.intoTable}`);
      return Number(r.getRowsJS()[0]![0]);
    } finally {
      await conn.run(`DETACH ${quoteIdent(alias)}`);
    }
  }, input.scratchDir === undefined ? {} : { scratchDir: input.scratchDir });
}
