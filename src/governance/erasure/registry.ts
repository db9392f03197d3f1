/**
 * The erasure registry a node reads on every request: the erasures and opt-outs recorded
 * in its state (src/sql/tables/erasure.ts), as the set of subject values to exclude per
 * privacy unit for the request's purpose.
 *
 * "Effective from the next request, on every node": each request asks the state for the
 * newest sequence number (one indexed `max(seq)`), and reloads the set only when it moved.
 * A node sharing PostgreSQL state sees another node's erasure at its next request.
 */
import { join } from 'node:path';
import { SqliteDriver, sqliteDialect } from '../../sql/sqlite.ts';
import type { SqlDriver } from '../../sql/driver.ts';
import { ErasureStore, erasureTables, type ErasureRow } from '../../sql/tables/erasure.ts';

/** What the registry needs from a node: its state directory and, on PostgreSQL, the shared driver. */
export interface ErasureHost {
  readonly stateDir: string;
  readonly backend: { readonly kind: string };
}

interface Cached { generation: number; rows: readonly ErasureRow[]; byPurpose: Map<string, ReadonlyMap<string, readonly string[]>> }

export class ErasureRegistry {
  readonly store: ErasureStore;
  readonly #owns: boolean;
  #cache: Cached = { generation: -1, rows: [], byPurpose: new Map() };
  #loading: Promise<Cached> | null = null;
  readonly #listeners = new Set<(rows: readonly ErasureRow[]) => void>();

  constructor(store: ErasureStore, owns: boolean) {
    this.store = store;
    this.#owns = owns;
  }

  /**
   * Calls `listener` with the rows each time they are reloaded because the generation moved
   * (the node rebuilds its erased copies then: copies.ts); returns the function that stops it.
   */
  onChange(listener: (rows: readonly ErasureRow[]) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  /** The current rows (reloaded when the state's generation moved). */
  async rows(): Promise<readonly ErasureRow[]> {
    return (await this.#current()).rows;
  }

  /** Subject values to exclude per privacy unit column, for a request with this purpose. */
  async excludedFor(purpose: string): Promise<ReadonlyMap<string, readonly string[]>> {
    const c = await this.#current();
    let m = c.byPurpose.get(purpose);
    if (!m) {
      const by = new Map<string, Set<string>>();
      for (const r of c.rows) {
        if (r.kind === 'opt-out' && !r.purposes.includes(purpose)) continue;
        let s = by.get(r.unit);
        if (!s) { s = new Set(); by.set(r.unit, s); }
        s.add(r.value);
      }
      m = new Map([...by].map(([u, s]) => [u, [...s].sort()]));
      if (c.byPurpose.size > 256) c.byPurpose.clear();
      c.byPurpose.set(purpose, m);
    }
    return m;
  }

  async #current(): Promise<Cached> {
    const g = await this.store.generation();
    if (g === this.#cache.generation) return this.#cache;
    this.#loading ??= (async () => {
      try {
        const rows = await this.store.all();
        const gen = rows.length ? rows[rows.length - 1]!.seq : 0;
        this.#cache = { generation: gen, rows, byPurpose: new Map() };
        for (const l of this.#listeners) { try { l(rows); } catch { /* a listener never fails a request */ } }
        return this.#cache;
      } finally {
        this.#loading = null;
      }
    })();
    return this.#loading;
  }

  /** Closes the embedded file; a shared PostgreSQL driver belongs to its state. */
  async close(): Promise<void> {
    if (this.#owns) await this.store.close();
  }
}

const registries = new WeakMap<object, ErasureRegistry>();

/**
 * The node's registry: on the PostgreSQL state's driver when the node shares one (its table
 * comes from migration 6), else in the state directory (`erasures.sqlite`).
 */
export function erasureRegistry(host: ErasureHost): ErasureRegistry {
  let r = registries.get(host);
  if (!r) {
    const shared = (host.backend as { driver?: SqlDriver }).driver;
    const owns = !(host.backend.kind === 'postgres' && shared);
    const driver: SqlDriver = owns
      ? SqliteDriver.openSync(join(host.stateDir, 'erasures.sqlite'), { busyTimeoutMs: 5000, schema: erasureTables(sqliteDialect()) })
      : shared!;
    r = new ErasureRegistry(new ErasureStore(driver), owns);
    registries.set(host, r);
  }
  return r;
}

/** Closes a node's registry (its runtime is closing); a later use opens it again. */
export async function closeErasureRegistry(host: ErasureHost): Promise<void> {
  const r = registries.get(host);
  registries.delete(host);
  await r?.close();
}
