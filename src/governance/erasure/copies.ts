/**
 * The node's erasure-filtered copies (issue 23, performance): for each file dataset that has
 * a column named by a full erasure's unit (kind `erasure`, every purpose), a Parquet copy
 * without the erased subjects' rows, built once per erasure version (erased-copy.ts). The
 * DuckDB engine reads the copy instead of the source (src/engine/duckdb-sources.ts), and the
 * erasure transformer filters only subjects the copy does not already exclude
 * (`erasureOver`, src/query/govern/erasure.ts), so a 10M-row aggregation pays nothing per
 * row for 10k erased subjects.
 *
 * Only what the copy excludes exactly as the transformer would is counted as excluded:
 * unit columns of type VARCHAR (text equality) or INTEGER/BIGINT with canonical integer
 * values (`1042`, not `01042` or `1042.0`, whose text would differ from the column's). Any
 * other value stays in the per-query filter. Opt-outs depend on the purpose and always do.
 *
 * Where the copies live: a private (0700) directory on tmpfs (/dev/shm) when there is one,
 * else under the state directory, which already holds the node's private data. The source
 * files are plaintext already; encrypted (ingested) datasets get no copy: their rows are
 * removed from the file itself and the dataset re-keyed (rekey.ts), and their plaintext
 * never lands on disk. The copy is written by fixed Gatehouse SQL on a private, unlocked
 * DuckDB instance that no request reaches; the serving engine may read only the copy's
 * file (allowed_paths) and no rendered query names a file.
 */
import { withFileWriter } from '../../engine/file-writer.ts';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, existsSync, renameSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineSourceView, type ErasedCopyFile } from '../../engine/duckdb-sources.ts';
import { quoteIdent } from '../../query/render/sql.ts';
import type { DatasetDef, Workspace } from '../../model/types.ts';
import { buildErasedCopy, erasureVersion } from './erased-copy.ts';
import type { ErasureRow } from '../../sql/tables/erasure.ts';

const TMPFS_MAGIC = 0x01021994;

/** A subject value the copy excludes exactly as the transformer's filter would, for this column type. */
export function copyExcludesExactly(value: string, type: DatasetDef['columns'][number]['type']): boolean {
  if (type === 'VARCHAR') return true;
  if (type === 'INTEGER' || type === 'BIGINT') return /^(0|-?[1-9]\d{0,18})$/.test(value);
  return false;
}

/** Full erasures (every purpose) per unit column: what a copy may exclude for everyone. */
export function fullErasures(rows: readonly ErasureRow[]): Map<string, string[]> {
  const by = new Map<string, Set<string>>();
  for (const r of rows) {
    if (r.kind !== 'erasure') continue;
    let s = by.get(r.unit);
    if (!s) { s = new Set(); by.set(r.unit, s); }
    s.add(r.value);
  }
  return new Map([...by].map(([u, s]) => [u, [...s].sort()]));
}

/** The version of a copy: the exclusion set and the dataset's definition (a changed source or column list is a new copy). */
function copyVersion(ds: DatasetDef, unit: string, values: readonly string[]): string {
  return erasureVersion(`${ds.name}\u0000${JSON.stringify(ds.source)}\u0000${JSON.stringify(ds.columns)}`, unit, values);
}

interface Wanted { readonly ds: DatasetDef; readonly unit: string; readonly values: readonly string[]; readonly version: string }

/** Per dataset, the copy it should be read from for these erasures (none for unaffected or non-file datasets). */
function wanted(ws: Workspace, erased: ReadonlyMap<string, readonly string[]>): Wanted[] {
  const out: Wanted[] = [];
  for (const ds of ws.datasets.values()) {
    if (ds.source.kind !== 'parquet' && ds.source.kind !== 'csv' && ds.source.kind !== 'duckdb') continue;
    for (const [unit, all] of erased) {
      const col = ds.columns.find((c) => c.name === unit);
      if (!col) continue;
      const values = all.filter((v) => copyExcludesExactly(v, col.type));
      if (values.length === 0) continue;
      // The version covers the dataset's definition too: a changed source or column list is a new copy.
      const version = copyVersion(ds, unit, values);
      out.push({ ds, unit, values, version });
      break; // one copy per dataset; subjects of another unit column stay in the per-query filter
    }
  }
  return out;
}

function privateDir(stateDir: string): string {
  let tmpfs = false;
  try { tmpfs = statfsSync('/dev/shm').type === TMPFS_MAGIC; } catch { /* absent */ }
  const base = tmpfs ? '/dev/shm' : join(stateDir, 'erased-copies');
  mkdirSync(base, { recursive: true, mode: 0o700 });
  return mkdtempSync(join(base, 'gatehouse-erased-'));
}

/** The copies one node builds and the engine reads; one instance per runtime. */
export class ErasedCopyStore {
  readonly #stateDir: string;
  #dir: string | null = null;
  #current = new Map<string, ErasedCopyFile>();
  #previous = new Set<string>();

  constructor(stateDir: string) {
    this.#stateDir = stateDir;
  }

  /** The copies in force (what an engine opened now should read). */
  current(): ReadonlyMap<string, ErasedCopyFile> {
    return this.#current;
  }

  /** The copies in force that are still valid for this workspace's dataset definitions (a reload opening an engine). */
  currentFor(ws: Workspace): ReadonlyMap<string, ErasedCopyFile> {
    const out = new Map<string, ErasedCopyFile>();
    for (const [name, c] of this.#current) {
      const ds = ws.datasets.get(name);
      if (ds && copyVersion(ds, c.unit, [...c.values]) === c.version) out.set(name, c);
    }
    return out;
  }

  /**
   * Builds the copies these erasures call for; null when the ones in force already match
   * (nothing to reopen). Files of the version before are kept for a request still running
   * on the engine that reads them; older ones are removed.
   */
  async update(ws: Workspace, rows: readonly ErasureRow[]): Promise<ReadonlyMap<string, ErasedCopyFile> | null> {
    const want = wanted(ws, fullErasures(rows));
    const same = want.length === this.#current.size && want.every((w) => this.#current.get(w.ds.name)?.version === w.version);
    if (same) return null;
    const dir = (this.#dir ??= privateDir(this.#stateDir));
    const next = new Map<string, ErasedCopyFile>();
    const toBuild = want.filter((w) => !existsSync(join(this.#dir!, `${w.version}.parquet`)));
    if (toBuild.length > 0) {
      await withFileWriter({ threads: 2 }, async (conn) => {
        for (const w of toBuild) {
          const view = quoteIdent(`gh_copy_src_${w.ds.name}`);
          await defineSourceView(conn, w.ds, view);
          const file = join(dir, `${w.version}.parquet`);
          const partial = `${file}.partial`;
          await buildErasedCopy(conn, { source: view, unit: w.unit, values: w.values, target: partial });
          renameSync(partial, file);
        }
      });
    }
    for (const w of want) next.set(w.ds.name, { file: join(this.#dir, `${w.version}.parquet`), unit: w.unit, values: new Set(w.values), version: w.version });
    const keep = new Set([...next.values(), ...this.#current.values()].map((c) => c.file));
    for (const f of readdirSync(this.#dir)) {
      const p = join(this.#dir, f);
      if (!keep.has(p) && !this.#previous.has(p)) rmSync(p, { force: true });
    }
    this.#previous = new Set([...this.#current.values()].map((c) => c.file));
    this.#current = next;
    return next;
  }

  /** Removes every copy (the node is closing). */
  close(): void {
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = null;
    this.#current = new Map();
  }
}

/** What the engines read from erased copies, merged (only the embedded DuckDB has any). */
export function erasedCopiesOf(engines: readonly object[]): ReadonlyMap<string, { readonly unit: string; readonly values: ReadonlySet<string> }> {
  const out = new Map<string, { readonly unit: string; readonly values: ReadonlySet<string> }>();
  for (const e of engines) for (const [d, c] of (e as { erasedCopies?: ReadonlyMap<string, { unit: string; values: ReadonlySet<string> }> }).erasedCopies ?? []) out.set(d, c);
  return out;
}
