/**
 * The SQL texts of logged queries, kept only where the workspace opts in:
 *
 *   audit:
 *     keepSqlText: true        # default false
 *     sqlTextDays: 90          # texts unseen for longer are deleted (default 90)
 *
 * Why opt-in: a statement's literals may be personal data (`WHERE ssn = '…'`), and the
 * audit log is append-only and replicated to witnesses, so the text never goes into it.
 * It lives here instead, in the node's state directory, keyed by the SQL fingerprint the
 * audit entry already carries (SHA-256 of the normalised text, literals kept: one text per
 * fingerprint), so the what-if replay joins the two and runs the real planner on the text.
 * Without a text the replay uses the bound query's shape from the entry (datasets and
 * columns) — decisions, masks, row filters, caps and DP costs, but not refusals that depend
 * on the statement's form (aggregation-only, join-only).
 *
 * Per node, like the differencing history (src/kernel/runtime.ts): a cluster replays on the
 * node that served the traffic, or each node's texts are merged (docs/policy-whatif.md).
 */
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { GatehouseError } from '../../errors.ts';

export interface SqlTextSetting {
  readonly keepSqlText: boolean;
  readonly sqlTextDays: number;
}

const OFF: SqlTextSetting = { keepSqlText: false, sqlTextDays: 90 };
const settings = new Map<string, SqlTextSetting>();

/**
 * The workspace's `audit:` section (gatehouse.yaml), read once per policy version (the
 * version hashes the whole file, so a change to the section is a new version).
 */
export function sqlTextSetting(workspace: { readonly dir: string; readonly policyVersion: string }): SqlTextSetting {
  const hit = settings.get(workspace.policyVersion);
  if (hit) return hit;
  const s = parseSqlTextSetting(readFileSync(join(workspace.dir, 'gatehouse.yaml'), 'utf8'));
  if (settings.size > 64) settings.clear();
  settings.set(workspace.policyVersion, s);
  return s;
}

export function parseSqlTextSetting(yamlText: string): SqlTextSetting {
  const root = parse(yamlText, { maxAliasCount: 0 }) as { audit?: unknown } | null;
  return auditSection(root?.audit);
}

/** The `audit:` section's value (the loader checks it with this too, so a bad one is refused at load). */
export function auditSection(a: unknown): SqlTextSetting {
  if (a === undefined || a === null) return OFF;
  if (typeof a !== 'object' || Array.isArray(a)) throw new GatehouseError('WORKSPACE_INVALID', 'gatehouse.yaml audit: must be a mapping {keepSqlText: true|false, sqlTextDays: N}');
  const { keepSqlText, sqlTextDays, ...rest } = a as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new GatehouseError('WORKSPACE_INVALID', `gatehouse.yaml audit.${unknown[0]}: unknown key (expected keepSqlText, sqlTextDays)`);
  if (keepSqlText !== undefined && typeof keepSqlText !== 'boolean') throw new GatehouseError('WORKSPACE_INVALID', 'gatehouse.yaml audit.keepSqlText must be true or false');
  if (sqlTextDays !== undefined && (!Number.isInteger(sqlTextDays) || (sqlTextDays as number) < 1 || (sqlTextDays as number) > 3660)) throw new GatehouseError('WORKSPACE_INVALID', 'gatehouse.yaml audit.sqlTextDays must be a whole number of days from 1 to 3660');
  return { keepSqlText: keepSqlText === true, sqlTextDays: (sqlTextDays as number | undefined) ?? OFF.sqlTextDays };
}

const DAY_MS = 86_400_000;

/** Fingerprint → SQL text, with the last time each was seen (for the retention sweep). */
export class QueryTextStore {
  readonly #db: DatabaseSync;
  readonly #put: ReturnType<DatabaseSync['prepare']>;
  readonly #get: ReturnType<DatabaseSync['prepare']>;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    // NORMAL, not FULL: no fsync on the query path; a text lost to a power cut only makes
    // the replay of that one request fall back to its shape.
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS query_texts (
  fingerprint TEXT PRIMARY KEY,
  sql         TEXT NOT NULL,
  first_ms    INTEGER NOT NULL,
  last_ms     INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS query_texts_last ON query_texts (last_ms);`);
    this.#put = db.prepare('INSERT INTO query_texts (fingerprint, sql, first_ms, last_ms) VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms)');
    this.#get = db.prepare('SELECT sql FROM query_texts WHERE fingerprint = ?');
  }

  /** The store in a node's state directory (`query-texts.sqlite`, mode 0600 like the rest of the state). */
  static open(stateDir: string): QueryTextStore {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    return new QueryTextStore(new DatabaseSync(join(stateDir, 'query-texts.sqlite'), { timeout: 5000 }));
  }

  /** Keeps one statement's text under the fingerprint its audit entry carries (src/kernel/digest.ts). */
  keep(fingerprint: string, sql: string, now: Date): void {
    this.#put.run(fingerprint, sql, now.getTime(), now.getTime());
  }

  get(fingerprint: string): string | null {
    const row = this.#get.get(fingerprint) as { sql: string } | undefined;
    return row?.sql ?? null;
  }

  /** Deletes texts not seen for `days` days; returns how many. */
  sweep(now: Date, days: number): number {
    const r = this.#db.prepare('DELETE FROM query_texts WHERE last_ms < ?').run(now.getTime() - days * DAY_MS);
    return Number(r.changes);
  }

  count(): number {
    return Number((this.#db.prepare('SELECT count(*) AS n FROM query_texts').get() as { n: number }).n);
  }

  close(): void {
    try { this.#db.close(); } catch { /* closed */ }
  }
}

/** One store per state directory per process (the query path opens it on first use). */
const stores = new Map<string, QueryTextStore>();

export function queryTextStore(stateDir: string): QueryTextStore {
  let s = stores.get(stateDir);
  if (!s) { s = QueryTextStore.open(stateDir); stores.set(stateDir, s); }
  return s;
}

export function closeQueryTextStore(stateDir: string): void {
  stores.get(stateDir)?.close();
  stores.delete(stateDir);
}

/**
 * The query path's hook (one line in src/operations/query/query.ts): keeps the text when
 * the workspace opted in; otherwise does nothing. Never fails the request: losing a text
 * only makes the replay fall back to the shape.
 */
export function keepQueryText(rt: { readonly stateDir: string; now(): Date }, workspace: { readonly dir: string; readonly policyVersion: string }, sql: unknown, fingerprint: string | null): void {
  if (typeof sql !== 'string' || sql.length === 0 || sql.length > 1_000_000 || fingerprint === null) return;
  try {
    if (!sqlTextSetting(workspace).keepSqlText) return;
    queryTextStore(rt.stateDir).keep(fingerprint, sql, rt.now());
  } catch { /* the replay falls back to the bound query's shape */ }
}
