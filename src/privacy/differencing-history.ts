/**
 * Storage for differencing detection (differencing.ts): each principal's filters on each
 * aggregation-only dataset over a long window, and the refusals the check has issued.
 *
 * Kept behind one narrow interface so the embedded store (node:sqlite, below) can move
 * into the unified state layer without touching the detector. The history is bounded per
 * principal and dataset by *refusing* new distinct filters once `capacity` is reached —
 * never by evicting old ones — so it cannot be flushed by a burst of throw-away queries
 * (the attack on the previous 20-entry in-memory list). It is synchronous because the
 * check runs inside one request between planning and execution.
 */
import { DatabaseSync } from 'node:sqlite';
import type { Expr } from '../query/ir.ts';

export interface DifferencingEntry {
  readonly dataset: string;
  /** Structural key of the predicate (identical filters are one entry). */
  readonly key: string;
  readonly predicate: Expr;
  /** The query's group keys over the probe alias ([] ungrouped, null unknown). */
  readonly keys: readonly Expr[] | null;
  /** Milliseconds since the epoch: the last time this filter was asked for. */
  readonly at: number;
}

export interface DifferencingHistory {
  /** Adds the entry, or refreshes `at` of an entry with the same principal, dataset and key. */
  record(principal: string, entry: DifferencingEntry): void;
  /** Drops one entry (a refused query released nothing, so its filter need not be compared). */
  remove(principal: string, dataset: string, key: string): void;
  /** Entries of the principal on the dataset asked for at or after `since` (ms), newest first. */
  recent(principal: string, dataset: string, since: number): DifferencingEntry[];
  /** Remembers that the check refused one of the principal's queries on the dataset. */
  recordRefusal(principal: string, dataset: string, at: number): void;
  /** Refusals of the principal on the dataset at or after `since` (ms). */
  refusals(principal: string, dataset: string, since: number): number;
}

/** Expressions carry lineage as Sets; stored as arrays and revived. */
export function serialisePredicate(e: Expr): string {
  return JSON.stringify(e, (_k, v: unknown) => (v instanceof Set ? { __set: [...v] } : v));
}

export function deserialisePredicate(text: string): Expr {
  return JSON.parse(text, (_k, v: unknown) => (v !== null && typeof v === 'object' && '__set' in v ? new Set((v as { __set: string[] }).__set) : v)) as Expr;
}

function serialiseFilter(predicate: Expr, keys: readonly Expr[] | null): string {
  return JSON.stringify({ p: JSON.parse(serialisePredicate(predicate)), k: keys === null ? null : keys.map((x) => JSON.parse(serialisePredicate(x))) });
}

function deserialiseFilter(text: string): { predicate: Expr; keys: Expr[] | null } {
  const o = JSON.parse(text) as { p: unknown; k: unknown[] | null };
  return { predicate: deserialisePredicate(JSON.stringify(o.p)), keys: o.k === null ? null : o.k.map((x) => deserialisePredicate(JSON.stringify(x))) };
}

/** In memory: for tests and single-process demos (lost at restart). */
export class MemoryDifferencingHistory implements DifferencingHistory {
  readonly #entries = new Map<string, Map<string, DifferencingEntry>>();
  readonly #refusals = new Map<string, number[]>();

  record(principal: string, entry: DifferencingEntry): void {
    const k = `${principal}\u0000${entry.dataset}`;
    const m = this.#entries.get(k) ?? new Map<string, DifferencingEntry>();
    m.set(entry.key, entry);
    this.#entries.set(k, m);
  }

  remove(principal: string, dataset: string, key: string): void {
    this.#entries.get(`${principal}\u0000${dataset}`)?.delete(key);
  }

  recent(principal: string, dataset: string, since: number): DifferencingEntry[] {
    const m = this.#entries.get(`${principal}\u0000${dataset}`);
    return m ? [...m.values()].filter((e) => e.at >= since).sort((a, b) => b.at - a.at) : [];
  }

  recordRefusal(principal: string, dataset: string, at: number): void {
    const k = `${principal}\u0000${dataset}`;
    this.#refusals.set(k, [...(this.#refusals.get(k) ?? []), at]);
  }

  refusals(principal: string, dataset: string, since: number): number {
    return (this.#refusals.get(`${principal}\u0000${dataset}`) ?? []).filter((t) => t >= since).length;
  }
}

/** node:sqlite: survives restarts; one file per node (or an open database handle). */
export class SqliteDifferencingHistory implements DifferencingHistory {
  readonly #db: DatabaseSync;
  readonly #owned: boolean;

  constructor(target: string | DatabaseSync) {
    this.#owned = typeof target === 'string';
    this.#db = typeof target === 'string' ? new DatabaseSync(target) : target;
    if (this.#owned) this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS differencing_history (
        principal TEXT NOT NULL, dataset TEXT NOT NULL, key TEXT NOT NULL,
        predicate TEXT NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (principal, dataset, key)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS differencing_history_at ON differencing_history (principal, dataset, at);
      CREATE TABLE IF NOT EXISTS differencing_refusals (principal TEXT NOT NULL, dataset TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS differencing_refusals_at ON differencing_refusals (principal, dataset, at);
    `);
  }

  record(principal: string, entry: DifferencingEntry): void {
    this.#db.prepare(`INSERT INTO differencing_history (principal, dataset, key, predicate, at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (principal, dataset, key) DO UPDATE SET at = max(at, excluded.at)`)
      .run(principal, entry.dataset, entry.key, serialiseFilter(entry.predicate, entry.keys), entry.at);
  }

  remove(principal: string, dataset: string, key: string): void {
    this.#db.prepare('DELETE FROM differencing_history WHERE principal = ? AND dataset = ? AND key = ?').run(principal, dataset, key);
  }

  recent(principal: string, dataset: string, since: number): DifferencingEntry[] {
    const rows = this.#db.prepare('SELECT key, predicate, at FROM differencing_history WHERE principal = ? AND dataset = ? AND at >= ? ORDER BY at DESC')
      .all(principal, dataset, since) as { key: string; predicate: string; at: number }[];
    return rows.map((r) => ({ dataset, key: r.key, ...deserialiseFilter(r.predicate), at: Number(r.at) }));
  }

  recordRefusal(principal: string, dataset: string, at: number): void {
    this.#db.prepare('INSERT INTO differencing_refusals (principal, dataset, at) VALUES (?, ?, ?)').run(principal, dataset, at);
  }

  refusals(principal: string, dataset: string, since: number): number {
    const r = this.#db.prepare('SELECT count(*) AS n FROM differencing_refusals WHERE principal = ? AND dataset = ? AND at >= ?').get(principal, dataset, since) as { n: number };
    return Number(r.n);
  }

  close(): void {
    if (this.#owned) this.#db.close();
  }
}
