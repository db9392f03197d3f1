/**
 * The one SQL driver interface under every store of Gatehouse's own state (budgets, identity,
 * governance, keys): node:sqlite for the embedded default (sqlite.ts) and PostgreSQL for
 * several nodes sharing one database (postgres.ts). A store is written once against it.
 *
 * SQL is written once, in the subset both engines share:
 *  - `?` positional parameters (`?NNN` for "parameter NNN"); PostgreSQL's driver numbers them `$n`;
 *  - logical table names in braces, `{budget_ledger}`, which the driver's dialect maps to the
 *    table's real name (schema-qualified on PostgreSQL; older names in existing sqlite files);
 *  - integers for booleans and epoch times, text for JSON and ISO times, blobs/bytea for bytes;
 *  - `ON CONFLICT … DO UPDATE/NOTHING` and `RETURNING`;
 *  - what differs (DDL types, `FOR UPDATE`, append-only triggers) comes from `dialect`.
 *
 * Transactions (`transaction(fn, { mode })`) and the retry policy (retry.ts) are the driver's,
 * not the stores': one way to begin, commit, roll back and re-run after a lost race.
 *
 *  mode           sqlite              PostgreSQL
 *  'read'         BEGIN (a snapshot)  REPEATABLE READ READ ONLY
 *  'write'        BEGIN IMMEDIATE     READ COMMITTED + lock_timeout; the body locks what it
 *                                     reads-then-writes (`dialect.forUpdate`), or passes `lock`
 *                                     for one transaction-scoped advisory lock (one writer per key)
 *  'serializable' BEGIN IMMEDIATE     SERIALIZABLE
 *
 * SQLite has one writer per file, so every write mode is the same there.
 */
import type { RetryPolicy } from './retry.ts';

export type SqlValue = string | number | bigint | null | Uint8Array;
export type SqlRow = Record<string, SqlValue>;

/** Statements, inside or outside a transaction. */
export interface SqlQueries {
  /** Every row the statement returns. */
  query<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** The first row, or undefined. */
  get<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export type TxMode = 'read' | 'write' | 'serializable';

export interface TxOptions {
  readonly mode: TxMode;
  /** PostgreSQL 'write': one writer at a time per key, across every node (pg_advisory_xact_lock). */
  readonly lock?: string;
  /** Overrides the driver's retry policy's maxRetries for this transaction. */
  readonly maxRetries?: number;
}

/** What SQL text differs between the engines: DDL types, names, row locks. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** A logical table as written in SQL: `"schema".budget_ledger`, or `ledger` in an older sqlite file. */
  table(logical: string): string;
  /** The unqualified real name (for naming indexes and triggers). */
  bare(logical: string): string;
  /** Column types. `textC` compares and sorts bytewise (sqlite's default; "C" collation on PostgreSQL). */
  readonly int: string;
  readonly bigint: string;
  readonly real: string;
  readonly text: string;
  readonly textC: string;
  readonly blob: string;
  /** An ever-increasing integer primary key. */
  readonly serialKey: string;
  /** What follows a CREATE TABLE's closing parenthesis (sqlite: STRICT). */
  readonly tableSuffix: string;
  /** What follows the closing parenthesis of a table that is nothing but its primary key's index (sqlite: WITHOUT ROWID). */
  readonly withoutRowid: string;
  /**
   * The first column of a table whose rows are read in insertion order: sqlite's implicit
   * rowid is that order, so nothing there; PostgreSQL has no rowid, so an identity column
   * named `rowid` (with its comma).
   */
  readonly rowidColumn: string;
  /** `IF NOT EXISTS` where DDL is re-applied to existing files (sqlite); nothing where migrations are versioned. */
  readonly ifNotExists: string;
  /** Appended to a SELECT that reads rows it will change (`FOR UPDATE` on PostgreSQL; sqlite's write lock covers it). */
  readonly forUpdate: string;
  /** Epoch milliseconds now, as an SQL expression. */
  readonly nowMs: string;
  /** DDL that refuses UPDATE, DELETE (and TRUNCATE) on a table: its rows are evidence. */
  appendOnly(logical: string): string;
}

export interface SqlDriver extends SqlQueries {
  readonly dialect: Dialect;
  readonly retry: RetryPolicy;
  /**
   * Runs `fn` as one transaction (see the module comment): committed if it returns, rolled
   * back if it throws. A lost race (retry.ts) re-runs `fn` from the start, so `fn` does only
   * SQL and pure computation; after the policy's attempts the call fails with StateBusy.
   */
  transaction<T>(fn: (q: SqlQueries) => Promise<T>, options: TxOptions): Promise<T>;
  /** Runs DDL (several statements, no parameters) in one write transaction. */
  exec(ddl: string): Promise<void>;
  close(): Promise<void>;
}

/** `{name}` → `table(name)`, outside string literals. */
export function mapTables(sql: string, table: (name: string) => string): string {
  return sql.replace(/'(?:[^']|'')*'|\{([a-z_][a-z0-9_]*)\}/g, (m: string, n: string | undefined) => (n === undefined ? m : table(n)));
}
