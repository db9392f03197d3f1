/**
 * Erasure where Gatehouse owns the data (issue 23): an ingested dataset (`gatehouse ingest`,
 * src/keys/datasets.ts) is rewritten without the erased subjects' rows and sealed under a
 * NEW data key; the caller then destroys the old key. Every earlier copy of the file
 * (backups, replicas) still holds the rows but can no longer be decrypted: crypto-shredding
 * reaches copies that deletion cannot.
 *
 * The rewrite reads the old file through the same decrypt-to-tmpfs path the engine uses
 * (`withEncryptedDataset`), writes the new plaintext database only in a private tmpfs
 * directory, seals it (blob.ts, chunked AES-256-GCM), fsyncs and renames it over the old
 * file, so a crash leaves either the old or the new file, never a partial one. The new file
 * is always in the `sealed-duckdb` format (readable by the loader whichever format it was).
 *
 * Subject values are bound as one parameter (joined by NUL, split in DuckDB), never spliced
 * into SQL text; the unit column is compared as text, as the erasure transformer does.
 */
import { withFileWriter } from '../../engine/file-writer.ts';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { open as openFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { encryptFile } from '../../keys/blob.ts';
import { withEncryptedDataset } from '../../keys/datasets.ts';
import { GatehouseError } from '../../errors.ts';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const TMPFS_MAGIC = 0x01021994;

export interface RewriteInput {
  readonly path: string;
  /** The table inside the file (ENCRYPTED_DATASET_TABLE). */
  readonly table: string;
  /** The privacy-unit column. */
  readonly unit: string;
  /** The erased subjects' identifiers (as text). */
  readonly values: readonly string[];
  readonly oldKey: Buffer;
  readonly newKey: Buffer;
  readonly newKeyId: string;
  /** A tmpfs directory for the transient plaintext (default /dev/shm; must be memory-backed unless given). */
  readonly scratchDir?: string;
}

function privateScratch(explicit: string | undefined): string {
  const base = explicit ?? '/dev/shm';
  if (explicit === undefined) {
    let tmpfs = false;
    try { tmpfs = statfsSync(base).type === TMPFS_MAGIC; } catch { /* absent */ }
    if (!tmpfs) throw new GatehouseError('UNAVAILABLE', 'no memory-backed scratch directory to re-key an ingested dataset (/dev/shm is not tmpfs here)', { hint: 'run the node where /dev/shm is a tmpfs mount; plaintext must not reach a persistent disk' });
  }
  return mkdtempSync(join(base, 'gatehouse-rekey-'));
}

/** Rewrites the dataset without the subjects' rows under `newKey`; returns the row counts. */
export async function rewriteWithout(input: RewriteInput): Promise<{ before: number; after: number }> {
  if (!IDENT.test(input.table) || !IDENT.test(input.unit)) throw new GatehouseError('REQUEST_INVALID', 'the table and unit column must be plain identifiers');
  if (input.values.some((v) => v.includes('\u0000'))) throw new GatehouseError('REQUEST_INVALID', 'a subject identifier may not contain NUL');
  const scratch = privateScratch(input.scratchDir);
  const tmpTarget = `${input.path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const alias = `gh_old_${randomBytes(4).toString('hex')}`;
    const plain = join(scratch, 'dataset.duckdb');
    const counts = await withFileWriter({ threads: 1 }, (conn) => withEncryptedDataset(input.path, alias, input.oldKey, async (attachSql) => {
      await conn.run(attachSql);
      try {
        await conn.run(`ATTACH '${plain.replaceAll("'", "''")}' AS gh_new`);
        const before = Number((await conn.runAndReadAll(`SELECT count(*) FROM ${alias}.main."${input.table}"`)).getRowsJS()[0]![0]);
        await conn.run(`CREATE TABLE gh_new.main."${input.table}" AS SELECT * FROM ${alias}.main."${input.table}" s
          WHERE (CAST(s."${input.unit}" AS VARCHAR) IN (SELECT unnest(string_split($1, chr(0))))) IS NOT TRUE`, [input.values.join('\u0000')]);
        const after = Number((await conn.runAndReadAll(`SELECT count(*) FROM gh_new.main."${input.table}"`)).getRowsJS()[0]![0]);
        await conn.run('DETACH gh_new');
        return { before, after };
      } finally {
        await conn.run(`DETACH ${alias}`);
      }
    }, input.scratchDir === undefined ? {} : { scratchDir: input.scratchDir }));
    await encryptFile(plain, tmpTarget, input.newKey, input.newKeyId);
    const fh = await openFile(tmpTarget, 'r+');
    try { await fh.sync(); } finally { await fh.close(); }
    await rename(tmpTarget, input.path);
    const d = await openFile(dirname(input.path), 'r');
    try { await d.sync(); } finally { await d.close(); }
    return counts;
  } finally {
    await rm(tmpTarget, { force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
}
