/**
 * Versioned, idempotent migrations of Gatehouse's own state in PostgreSQL.
 *
 * Everything lives in one schema (default `gatehouse`). `schema_version` holds one row per
 * applied version. `migrate` runs under a transaction-scoped advisory lock keyed by the
 * schema name, so several nodes starting at once apply each migration exactly once; a
 * database whose version is newer than this code knows is refused before anything is
 * changed (StateSchemaTooNew).
 */
import type { PoolClient } from 'pg';
import { StateConfigInvalid, StateSchemaTooNew } from './errors.ts';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a schema name and returns it double-quoted for SQL. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema) || schema.startsWith('pg_')) {
    throw new StateConfigInvalid('schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters, not pg_*)');
  }
  return `"${schema}"`;
}

/** Migration i (1-based) brings the schema to version i. `S` is the quoted schema name. */
const MIGRATIONS: readonly ((S: string) => string)[] = [
  // 1: privacy budgets (the PostgreSQL twin of budget-store.ts's SQLite schema).
  (S) => `
CREATE TABLE ${S}.budgets (
  subject      text    NOT NULL,
  dataset      text    NOT NULL,
  cap_nano     bigint  NOT NULL CHECK (cap_nano > 0),
  window_kind  text    NOT NULL CHECK (window_kind IN ('none', 'calendar-month', 'rolling-days')),
  window_days  integer CHECK ((window_kind = 'rolling-days') = (window_days IS NOT NULL)),
  anchor_ms    bigint  NOT NULL,
  updated_ms   bigint  NOT NULL,
  PRIMARY KEY (subject, dataset)
);
CREATE TABLE ${S}.budget_windows (
  subject      text    NOT NULL,
  dataset      text    NOT NULL,
  start_ms     bigint  NOT NULL,
  end_ms       bigint,
  spent_nano   bigint  NOT NULL DEFAULT 0 CHECK (spent_nano >= 0),
  PRIMARY KEY (subject, dataset, start_ms)
);
CREATE TABLE ${S}.budget_charges (
  charge_id      text    PRIMARY KEY,
  subject        text    NOT NULL,
  dataset        text    NOT NULL,
  query_id       text    NOT NULL,
  nano           bigint  NOT NULL CHECK (nano > 0),
  at_ms          bigint  NOT NULL,
  window_start   bigint  NOT NULL,
  state          text    NOT NULL CHECK (state IN ('charged', 'released', 'refunded')),
  released_ms    bigint,
  refunded_ms    bigint,
  refund_reason  text,
  UNIQUE (subject, dataset, query_id)
);
CREATE TABLE ${S}.budget_ledger (
  seq          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind         text    NOT NULL CHECK (kind IN ('charge', 'refund')),
  charge_id    text    NOT NULL REFERENCES ${S}.budget_charges (charge_id),
  subject      text    NOT NULL,
  dataset      text    NOT NULL,
  query_id     text    NOT NULL,
  nano         bigint  NOT NULL CHECK (nano > 0),
  at_ms        bigint  NOT NULL,
  window_start bigint  NOT NULL,
  reason       text,
  UNIQUE (charge_id, kind)
);
CREATE INDEX budget_ledger_by_budget ON ${S}.budget_ledger (subject, dataset, seq);
CREATE INDEX budget_ledger_by_time ON ${S}.budget_ledger (at_ms);
CREATE FUNCTION ${S}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
CREATE TRIGGER budget_ledger_append_only BEFORE UPDATE OR DELETE ON ${S}.budget_ledger
  FOR EACH ROW EXECUTE FUNCTION ${S}.append_only();
CREATE TRIGGER budget_ledger_no_truncate BEFORE TRUNCATE ON ${S}.budget_ledger
  FOR EACH STATEMENT EXECUTE FUNCTION ${S}.append_only();
`,
  // 2: the transparency log (entries, their leaf hashes, the head and the latest checkpoint).
  (S) => `
CREATE TABLE ${S}.audit_entries (
  idx        bigint NOT NULL PRIMARY KEY CHECK (idx >= 0),
  payload    bytea  NOT NULL,
  leaf_hash  bytea  NOT NULL CHECK (length(leaf_hash) = 32),
  written_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON ${S}.audit_entries
  FOR EACH ROW EXECUTE FUNCTION ${S}.append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON ${S}.audit_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ${S}.append_only();
-- One row: the next index. Appenders lock it (SELECT ... FOR UPDATE): one writer at a time.
CREATE TABLE ${S}.audit_head (
  id         integer PRIMARY KEY CHECK (id = 1),
  next_index bigint  NOT NULL CHECK (next_index >= 0)
);
INSERT INTO ${S}.audit_head (id, next_index) VALUES (1, 0);
-- One row: the signed checkpoint of the largest size any node stored.
CREATE TABLE ${S}.audit_checkpoint (
  id         integer PRIMARY KEY CHECK (id = 1),
  size       bigint  NOT NULL CHECK (size >= 0),
  note       text    NOT NULL,
  stored_at  timestamptz NOT NULL DEFAULT now()
);
`,
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings `schema` to SCHEMA_VERSION (creating it if needed). Idempotent and safe to run
 * from many nodes at once. Returns the version found before and after.
 */
export async function migrate(client: PoolClient, schema: string): Promise<{ from: number; to: number }> {
  const S = quoteSchema(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gatehouse-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${S}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${S}.schema_version (
      version    integer PRIMARY KEY CHECK (version > 0),
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const r = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${S}.schema_version`);
    const from = r.rows[0]?.v ?? 0;
    if (from > SCHEMA_VERSION) throw new StateSchemaTooNew(schema, from, SCHEMA_VERSION);
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
      await client.query(MIGRATIONS[v - 1]!(S));
      await client.query(`INSERT INTO ${S}.schema_version (version) VALUES ($1)`, [v]);
    }
    await client.query('COMMIT');
    return { from, to: SCHEMA_VERSION };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
