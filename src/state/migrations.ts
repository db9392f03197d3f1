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
  // 3: identity (the PostgreSQL twins of the node:sqlite tables in src/identity/*.ts, plus
  // the session signing keys, which live in files beside the sqlite stores).
  (S) => `
CREATE TABLE ${S}.identity_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE ${S}.identity_users (
  principal_id            text    PRIMARY KEY,
  password_hash           text    NOT NULL,
  totp_secret_sealed      text,
  totp_pending_sealed     text,
  totp_pending_expires_ms bigint,
  mfa_enrolled            integer NOT NULL DEFAULT 0 CHECK (mfa_enrolled IN (0, 1)),
  mfa_enrolled_at         text,
  totp_last_step          bigint,
  disabled                integer NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at              text    NOT NULL,
  updated_at              text    NOT NULL,
  password_changed_at     text    NOT NULL,
  last_login_at           text
);
CREATE TABLE ${S}.identity_recovery_codes (
  principal_id text NOT NULL REFERENCES ${S}.identity_users (principal_id) ON DELETE CASCADE,
  code_hash    text NOT NULL,
  used_at      text,
  PRIMARY KEY (principal_id, code_hash)
);
CREATE TABLE ${S}.identity_login_failures (
  principal_id    text    PRIMARY KEY,
  failures        integer NOT NULL,
  locked_until_ms bigint  NOT NULL,
  last_failure_ms bigint  NOT NULL
);
CREATE INDEX identity_login_failures_by_time ON ${S}.identity_login_failures (last_failure_ms);
CREATE TABLE ${S}.identity_mfa_reset_requests (
  principal_id text   PRIMARY KEY REFERENCES ${S}.identity_users (principal_id) ON DELETE CASCADE,
  requested_by text   NOT NULL,
  requested_at text   NOT NULL,
  expires_ms   bigint NOT NULL
);
CREATE TABLE ${S}.identity_sessions (
  sid            text   PRIMARY KEY,
  principal_id   text   NOT NULL,
  amr            text   NOT NULL,
  mfa_at         bigint,
  created_at     bigint NOT NULL,
  expires_at     bigint NOT NULL,
  revoked_at     bigint,
  revoked_reason text
);
CREATE INDEX identity_sessions_principal ON ${S}.identity_sessions (principal_id);
CREATE TABLE ${S}.identity_refresh_tokens (
  hash       bytea  PRIMARY KEY,
  sid        text   NOT NULL REFERENCES ${S}.identity_sessions (sid),
  issued_at  bigint NOT NULL,
  expires_at bigint NOT NULL,
  used_at    bigint
);
CREATE INDEX identity_refresh_tokens_sid ON ${S}.identity_refresh_tokens (sid);
-- Session signing keys: the public JWK of every key; the private key of the active one,
-- sealed under the key passphrase exactly like a session-signing-<kid>.json file
-- (scrypt + AES-256-GCM, purpose "session-signing-key:<kid>"); erased on rotation.
CREATE TABLE ${S}.identity_session_keys (
  kid        text PRIMARY KEY,
  jwk        text NOT NULL,
  sealed     text,
  created_at text NOT NULL,
  retired_at text,
  CHECK (retired_at IS NOT NULL OR sealed IS NOT NULL)
);
CREATE UNIQUE INDEX identity_session_keys_one_active ON ${S}.identity_session_keys ((true)) WHERE retired_at IS NULL;
CREATE TABLE ${S}.identity_api_keys (
  id           text   PRIMARY KEY,
  lookup       bytea  NOT NULL,
  hash         bytea  NOT NULL,
  principal_id text   NOT NULL,
  scopes       text   NOT NULL,
  created_at   bigint NOT NULL,
  expires_at   bigint,
  revoked_at   bigint,
  last_used_at bigint
);
CREATE INDEX identity_api_keys_lookup ON ${S}.identity_api_keys (lookup);
CREATE INDEX identity_api_keys_principal ON ${S}.identity_api_keys (principal_id);
CREATE TABLE ${S}.identity_connection_passwords (
  id           text    PRIMARY KEY,
  principal_id text    NOT NULL,
  salt         text    NOT NULL,
  iterations   integer NOT NULL,
  stored_key   text    NOT NULL,
  server_key   text    NOT NULL,
  mfa_at       bigint,
  created_at   bigint  NOT NULL,
  expires_at   bigint  NOT NULL,
  revoked_at   bigint
);
CREATE INDEX identity_connection_passwords_principal ON ${S}.identity_connection_passwords (principal_id);
CREATE TABLE ${S}.identity_elevation_requests (
  id               text    PRIMARY KEY,
  principal_id     text    NOT NULL,
  role             text    NOT NULL,
  purpose          text    NOT NULL,
  justification    text    NOT NULL,
  duration_minutes integer NOT NULL CHECK (duration_minutes > 0),
  requested_at     bigint  NOT NULL,
  status           text    NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
  decided_by       text,
  decided_at       bigint,
  decision_reason  text,
  CHECK (decided_by IS NULL OR decided_by <> principal_id)
);
CREATE TABLE ${S}.identity_elevation_grants (
  id            text    PRIMARY KEY,
  request_id    text    UNIQUE REFERENCES ${S}.identity_elevation_requests (id),
  principal_id  text    NOT NULL,
  role          text    NOT NULL,
  purpose       text    NOT NULL,
  granted_by    text    NOT NULL,
  break_glass   integer NOT NULL CHECK (break_glass IN (0, 1)),
  justification text    NOT NULL,
  starts_at     bigint  NOT NULL,
  expires_at    bigint  NOT NULL CHECK (expires_at > starts_at),
  revoked_at    bigint,
  revoked_by    text,
  revoke_reason text
);
CREATE INDEX identity_elevation_grants_active ON ${S}.identity_elevation_grants (principal_id, expires_at);
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
