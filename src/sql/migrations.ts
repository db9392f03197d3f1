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
import type { Dialect } from './driver.ts';
import { pgDialect } from './postgres.ts';
import { budgetTables } from './tables/budgets.ts';
import { checkpointTables } from './tables/checkpoints.ts';
import { artefactBlobTable, artefactTables, dataKeyTables } from './tables/keys.ts';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a schema name and returns it double-quoted for SQL. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema) || schema.startsWith('pg_')) {
    throw new StateConfigInvalid('schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters, not pg_*)');
  }
  return `"${schema}"`;
}

/**
 * One migration list for both backends. Migration i (1-based) brings a PostgreSQL schema to
 * version i; `ddl` gets the dialect (src/sql/driver.ts) and, for the PostgreSQL-only
 * parts still written as PostgreSQL text, the quoted schema `S`. An embedded sqlite file
 * applies the migrations of its `part` whose DDL is dialect-neutral (`sqlite: true`),
 * idempotently (`IF NOT EXISTS`), so files written by earlier versions open as they are.
 */
export interface Migration {
  readonly part: StatePart;
  /** The DDL works on sqlite too (written through the dialect). */
  readonly sqlite: boolean;
  ddl(d: Dialect, S: string): string;
}

export type StatePart = 'budgets' | 'audit' | 'identity' | 'governance';

export const MIGRATIONS: readonly Migration[] = [
  // 1: privacy budgets (src/sql/tables/budgets.ts), and the append-only trigger function.
  {
    part: 'budgets', sqlite: true,
    ddl: (d, S) => `${d.name === 'postgres' ? `CREATE FUNCTION ${S}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;` : ''}
${budgetTables(d)}`,
  },
  { part: 'audit', sqlite: false, ddl: (_d, S) => `
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
`, },
  // 3: identity (the PostgreSQL twins of the node:sqlite tables in src/identity/*.ts, plus
  // the session signing keys, which live in files beside the sqlite stores).
  { part: 'identity', sqlite: false, ddl: (_d, S) => `
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
  seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
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
`, },
  // 4: contractor governance (src/governance/*: the twin of their SQLite schemas, text in the
  //    "C" collation so ISO times and ids compare as in SQLite), data keys, artefacts and their
  //    ciphertext (src/keys/data-keys.ts, artefacts.ts; src/state/governance-pg.ts, keys-pg.ts).
  { part: 'governance', sqlite: false, ddl: (d, S) => `
CREATE TABLE ${S}.gov_orgs (
  name text COLLATE "C" PRIMARY KEY,
  display_name text COLLATE "C" NOT NULL,
  registered_at text COLLATE "C" NOT NULL,
  registered_by text COLLATE "C" NOT NULL
);
CREATE TABLE ${S}.gov_certifications (
  id text COLLATE "C" PRIMARY KEY,
  org text COLLATE "C" NOT NULL REFERENCES ${S}.gov_orgs(name),
  name text COLLATE "C" NOT NULL,
  issuer text COLLATE "C" NOT NULL,
  valid_until text COLLATE "C" NOT NULL,
  recorded_at text COLLATE "C" NOT NULL
);
CREATE INDEX gov_certifications_org ON ${S}.gov_certifications (org);
CREATE TABLE ${S}.gov_audit_reports (
  id text COLLATE "C" PRIMARY KEY,
  org text COLLATE "C" NOT NULL REFERENCES ${S}.gov_orgs(name),
  title text COLLATE "C" NOT NULL,
  date text COLLATE "C" NOT NULL,
  outcome text COLLATE "C" NOT NULL CHECK (outcome IN ('pass', 'pass-with-findings', 'fail')),
  recorded_at text COLLATE "C" NOT NULL
);
CREATE INDEX gov_audit_reports_org ON ${S}.gov_audit_reports (org, date);
CREATE TABLE ${S}.gov_incidents (
  id text COLLATE "C" PRIMARY KEY,
  org text COLLATE "C" NOT NULL REFERENCES ${S}.gov_orgs(name),
  date text COLLATE "C" NOT NULL,
  severity text COLLATE "C" NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  summary text COLLATE "C" NOT NULL,
  resolved_at text COLLATE "C",
  CHECK (resolved_at IS NULL OR resolved_at >= date)
);
CREATE INDEX gov_incidents_org ON ${S}.gov_incidents (org);
CREATE TABLE ${S}.gov_agreements (
  id text COLLATE "C" PRIMARY KEY,
  kind text COLLATE "C" NOT NULL CHECK (kind IN ('NDA', 'DPA', 'SLA', 'MSA')),
  title text COLLATE "C" NOT NULL,
  our_org text COLLATE "C" NOT NULL,
  partner_org text COLLATE "C" NOT NULL REFERENCES ${S}.gov_orgs(name),
  effective_from text COLLATE "C" NOT NULL,
  ends_on text COLLATE "C",
  ip_clause text COLLATE "C",
  destruction_required integer NOT NULL CHECK (destruction_required IN (0, 1)),
  destruction_within_days integer,
  result_retention_days integer CHECK (result_retention_days IS NULL OR result_retention_days >= 0),
  created_at text COLLATE "C" NOT NULL,
  created_by text COLLATE "C" NOT NULL,
  terminated_at text COLLATE "C",
  terminated_by text COLLATE "C",
  termination_reason text COLLATE "C",
  closed_out_at text COLLATE "C",
  CHECK (our_org <> partner_org),
  CHECK (ends_on IS NULL OR ends_on > effective_from),
  CHECK ((destruction_required = 0 AND destruction_within_days IS NULL) OR (destruction_required = 1 AND destruction_within_days >= 0))
);
CREATE INDEX gov_agreements_partner ON ${S}.gov_agreements (partner_org, kind);
CREATE TABLE ${S}.gov_agreement_datasets (
  agreement_id text COLLATE "C" NOT NULL REFERENCES ${S}.gov_agreements(id),
  dataset text COLLATE "C" NOT NULL,
  PRIMARY KEY (agreement_id, dataset)
);
CREATE TABLE ${S}.gov_agreement_purposes (
  agreement_id text COLLATE "C" NOT NULL REFERENCES ${S}.gov_agreements(id),
  purpose text COLLATE "C" NOT NULL,
  PRIMARY KEY (agreement_id, purpose)
);
CREATE TABLE ${S}.gov_access_requests (
  id text COLLATE "C" PRIMARY KEY,
  principal_id text COLLATE "C" NOT NULL,
  org text COLLATE "C" NOT NULL,
  dataset text COLLATE "C" NOT NULL,
  purpose text COLLATE "C" NOT NULL,
  days integer NOT NULL CHECK (days > 0),
  justification text COLLATE "C" NOT NULL,
  requested_at text COLLATE "C" NOT NULL,
  status text COLLATE "C" NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
  decided_by text COLLATE "C",
  decided_at text COLLATE "C",
  decision_reason text COLLATE "C",
  CHECK (decided_by IS NULL OR decided_by <> principal_id)
);
CREATE INDEX gov_access_requests_status ON ${S}.gov_access_requests (status, requested_at);
CREATE TABLE ${S}.gov_grants (
  id text COLLATE "C" PRIMARY KEY,
  grantee_kind text COLLATE "C" NOT NULL CHECK (grantee_kind IN ('principal', 'org')),
  principal_id text COLLATE "C",
  org text COLLATE "C" NOT NULL,
  dataset text COLLATE "C" NOT NULL,
  purpose text COLLATE "C" NOT NULL,
  agreement_id text COLLATE "C" NOT NULL REFERENCES ${S}.gov_agreements(id),
  valid_from text COLLATE "C" NOT NULL,
  valid_until text COLLATE "C" NOT NULL,
  created_at text COLLATE "C" NOT NULL,
  created_by text COLLATE "C" NOT NULL,
  request_id text COLLATE "C" UNIQUE REFERENCES ${S}.gov_access_requests(id),
  revoked_at text COLLATE "C",
  revoked_by text COLLATE "C",
  revoke_reason text COLLATE "C",
  CHECK (valid_until > valid_from),
  CHECK ((grantee_kind = 'principal') = (principal_id IS NOT NULL))
);
CREATE INDEX gov_grants_lookup ON ${S}.gov_grants (dataset, purpose, org);
CREATE INDEX gov_grants_agreement ON ${S}.gov_grants (agreement_id);
CREATE TABLE ${S}.gov_documents (
  name text COLLATE "C" NOT NULL,
  version integer NOT NULL CHECK (version >= 1),
  sha256 text COLLATE "C" NOT NULL,
  text text COLLATE "C" NOT NULL,
  published_at text COLLATE "C" NOT NULL,
  published_by text COLLATE "C" NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE ${S}.gov_signatures (
  principal_id text COLLATE "C" NOT NULL,
  document text COLLATE "C" NOT NULL,
  version integer NOT NULL,
  sha256 text COLLATE "C" NOT NULL,
  signed_at text COLLATE "C" NOT NULL,
  PRIMARY KEY (principal_id, document, version),
  FOREIGN KEY (document, version) REFERENCES ${S}.gov_documents(name, version)
);
CREATE TABLE ${S}.gov_training (
  id text COLLATE "C" PRIMARY KEY,
  principal_id text COLLATE "C" NOT NULL,
  course text COLLATE "C" NOT NULL,
  completed_at text COLLATE "C" NOT NULL,
  expires_at text COLLATE "C" NOT NULL,
  recorded_at text COLLATE "C" NOT NULL,
  recorded_by text COLLATE "C" NOT NULL,
  CHECK (expires_at > completed_at)
);
CREATE INDEX gov_training_principal ON ${S}.gov_training (principal_id, course, expires_at);
CREATE TABLE ${S}.gov_retention_rules (
  kind text COLLATE "C" NOT NULL CHECK (kind IN ('dataset', 'grant', 'result', 'export')),
  scope text COLLATE "C" NOT NULL,
  days integer NOT NULL CHECK (days >= 0),
  set_at text COLLATE "C" NOT NULL,
  set_by text COLLATE "C" NOT NULL,
  PRIMARY KEY (kind, scope)
);
CREATE TABLE ${S}.gov_legal_holds (
  id text COLLATE "C" PRIMARY KEY,
  subject_kind text COLLATE "C" NOT NULL CHECK (subject_kind IN ('dataset', 'agreement', 'principal', 'artefact')),
  subject text COLLATE "C" NOT NULL,
  reason text COLLATE "C" NOT NULL,
  placed_by text COLLATE "C" NOT NULL,
  placed_at text COLLATE "C" NOT NULL,
  released_at text COLLATE "C",
  released_by text COLLATE "C"
);
CREATE INDEX gov_legal_holds_subject ON ${S}.gov_legal_holds (subject_kind, subject);
CREATE TABLE ${S}.gov_findings (
  id text COLLATE "C" PRIMARY KEY,
  title text COLLATE "C" NOT NULL,
  severity text COLLATE "C" NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  owner text COLLATE "C" NOT NULL,
  due_date text COLLATE "C" NOT NULL,
  status text COLLATE "C" NOT NULL CHECK (status IN ('open', 'in-progress', 'closed')),
  created_at text COLLATE "C" NOT NULL,
  created_by text COLLATE "C" NOT NULL,
  closed_at text COLLATE "C",
  CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE TABLE ${S}.gov_finding_notes (
  -- SQLite's implicit rowid, which the notes are ordered by.
  rowid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  finding_id text COLLATE "C" NOT NULL REFERENCES ${S}.gov_findings(id),
  at text COLLATE "C" NOT NULL,
  by text COLLATE "C" NOT NULL,
  text text COLLATE "C" NOT NULL
);
CREATE INDEX gov_finding_notes_finding ON ${S}.gov_finding_notes (finding_id);
CREATE TABLE ${S}.gov_classification_proposals (
  id text COLLATE "C" PRIMARY KEY,
  dataset text COLLATE "C" NOT NULL,
  column_name text COLLATE "C" NOT NULL,
  level text COLLATE "C" NOT NULL CHECK (level IN ('public', 'internal', 'confidential', 'regulated')),
  tags text COLLATE "C" NOT NULL,
  evidence text COLLATE "C" NOT NULL,
  confidence double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
  proposed_by text COLLATE "C" NOT NULL,
  proposed_at text COLLATE "C" NOT NULL,
  status text COLLATE "C" NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected')),
  decided_by text COLLATE "C",
  decided_at text COLLATE "C",
  decision_reason text COLLATE "C",
  decision_seq integer UNIQUE,
  CHECK ((status = 'pending') = (decided_by IS NULL))
);
CREATE INDEX gov_classification_target ON ${S}.gov_classification_proposals (dataset, column_name, status);
CREATE TABLE ${S}.gov_settings (
  key text COLLATE "C" PRIMARY KEY,
  value text COLLATE "C" NOT NULL,
  set_at text COLLATE "C" NOT NULL,
  set_by text COLLATE "C" NOT NULL
);
${dataKeyTables(d)}
${artefactTables(d)}
${artefactBlobTable(d)}
`, },
  // 5: the audit log's checkpoint anchor (src/sql/tables/checkpoints.ts): the latest
  // checkpoint kept outside the log, so a rolled-back log is refused at start.
  { part: 'audit', sqlite: true, ddl: (d) => checkpointTables(d) },
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
      await client.query(MIGRATIONS[v - 1]!.ddl(pgDialect(schema), S));
      await client.query(`INSERT INTO ${S}.schema_version (version) VALUES ($1)`, [v]);
    }
    await client.query('COMMIT');
    return { from, to: SCHEMA_VERSION };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/**
 * Brings an embedded sqlite file of `part` up to date: the part's dialect-neutral migrations,
 * each idempotent (`IF NOT EXISTS`), so a file written by any earlier version opens as it is.
 */
export async function migrateFile(driver: { readonly dialect: Dialect; exec(ddl: string): Promise<void> }, part: StatePart): Promise<void> {
  for (const m of MIGRATIONS) if (m.part === part && m.sqlite) await driver.exec(m.ddl(driver.dialect, ''));
}
