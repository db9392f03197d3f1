/**
 * The identity tables (src/identity/*), declared once for both backends; the dialect
 * (src/sql/driver.ts) supplies what differs. On PostgreSQL they are migration 3 (every store
 * in Gatehouse's schema, names prefixed `identity_`); embedded, each store keeps its own file
 * and applies its own tables idempotently when it opens:
 *
 *   userTables                 users.sqlite         accounts, TOTP, recovery codes (recovery-codes.ts),
 *                                                   lockout (lockout.ts), MFA reset requests
 *   sessionTables              sessions.sqlite      sessions and single-use refresh tokens (session.ts)
 *   sessionKeyTable            PostgreSQL only      session signing keys (embedded: files beside sessions.sqlite)
 *   apiKeyTables               api-keys.sqlite      (api-keys.ts)
 *   connectionPasswordTables   connection-passwords.sqlite (connection-passwords.ts)
 *   elevationTables            elevation.sqlite     just-in-time roles and break-glass (elevation.ts)
 *
 * Embedded files written before the names were unified keep their names
 * (IDENTITY_SQLITE_NAMES), and their tables keep their form: STRICT except elevation's,
 * which was created without it. A file's tables are never rebuilt, so a declaration here
 * must produce, on sqlite, the very DDL those files were created with (test/state-tables-compat
 * compares it with the frozen text of schema version 4). Times are integer epoch
 * milliseconds or seconds (bigint on PostgreSQL), or ISO text; flags are 0/1 integers.
 */
import type { Dialect } from '../driver.ts';

/** Logical table names (what the driver sees: `{identity_users}`) → the real names in the embedded files. */
export const IDENTITY_SQLITE_NAMES: Readonly<Record<string, string>> = {
  identity_users: 'users', identity_meta: 'meta', identity_recovery_codes: 'recovery_codes',
  identity_login_failures: 'login_failures', identity_mfa_reset_requests: 'mfa_reset_requests',
  identity_sessions: 'identity_sessions', identity_refresh_tokens: 'identity_refresh_tokens',
  identity_api_keys: 'identity_api_keys', identity_connection_passwords: 'connection_passwords',
  identity_elevation_requests: 'elevation_requests', identity_elevation_grants: 'elevation_grants',
  identity_session_keys: 'identity_session_keys',
};

/** Accounts (user-store.ts), their recovery codes, lockout counters and MFA reset requests. */
export function userTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), S = d.text, I = d.int, B = d.bigint;
  return `
CREATE TABLE ${X}${T('identity_meta')} (key ${S} PRIMARY KEY, value ${S} NOT NULL)${d.tableSuffix};
CREATE TABLE ${X}${T('identity_users')} (
  principal_id            ${S} PRIMARY KEY,
  password_hash           ${S} NOT NULL,
  totp_secret_sealed      ${S},
  totp_pending_sealed     ${S},
  totp_pending_expires_ms ${B},
  mfa_enrolled            ${I} NOT NULL DEFAULT 0 CHECK (mfa_enrolled IN (0, 1)),
  mfa_enrolled_at         ${S},
  totp_last_step          ${B},
  disabled                ${I} NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at              ${S} NOT NULL,
  updated_at              ${S} NOT NULL,
  password_changed_at     ${S} NOT NULL,
  last_login_at           ${S}
)${d.tableSuffix};
CREATE TABLE ${X}${T('identity_recovery_codes')} (
  principal_id ${S} NOT NULL REFERENCES ${T('identity_users')} (principal_id) ON DELETE CASCADE,
  code_hash    ${S} NOT NULL,
  used_at      ${S},
  PRIMARY KEY (principal_id, code_hash)
)${d.tableSuffix};
CREATE TABLE ${X}${T('identity_login_failures')} (
  principal_id    ${S} PRIMARY KEY,
  failures        ${I} NOT NULL,
  locked_until_ms ${B} NOT NULL,
  last_failure_ms ${B} NOT NULL
)${d.tableSuffix};
CREATE INDEX ${X}${d.bare('identity_login_failures')}_by_time ON ${T('identity_login_failures')} (last_failure_ms);
CREATE TABLE ${X}${T('identity_mfa_reset_requests')} (
  principal_id ${S} PRIMARY KEY REFERENCES ${T('identity_users')} (principal_id) ON DELETE CASCADE,
  requested_by ${S} NOT NULL,
  requested_at ${S} NOT NULL,
  expires_ms   ${B} NOT NULL
)${d.tableSuffix};
`;
}

/** Sessions and their refresh tokens (session.ts); times in epoch seconds. */
export function sessionTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), S = d.text, B = d.bigint;
  return `
CREATE TABLE ${X}${T('identity_sessions')} (
  sid            ${S} PRIMARY KEY,
  principal_id   ${S} NOT NULL,
  amr            ${S} NOT NULL,
  mfa_at         ${B},
  created_at     ${B} NOT NULL,
  expires_at     ${B} NOT NULL,
  revoked_at     ${B},
  revoked_reason ${S}
)${d.tableSuffix};
CREATE INDEX ${X}${d.bare('identity_sessions')}_principal ON ${T('identity_sessions')} (principal_id);
${d.name === 'sqlite'
    // Embedded files have always had this index of revoked sessions; PostgreSQL's migration 3
    // never created it (adding it there would be a new migration, not a change to 3).
    ? `CREATE INDEX ${X}${d.bare('identity_sessions')}_revoked ON ${T('identity_sessions')} (expires_at) WHERE revoked_at IS NOT NULL;`
    : ''}
CREATE TABLE ${X}${T('identity_refresh_tokens')} (
  hash       ${d.blob} PRIMARY KEY,
  sid        ${S} NOT NULL REFERENCES ${T('identity_sessions')} (sid),
  issued_at  ${B} NOT NULL,
  expires_at ${B} NOT NULL,
  used_at    ${B}
)${d.tableSuffix};
CREATE INDEX ${X}${d.bare('identity_refresh_tokens')}_sid ON ${T('identity_refresh_tokens')} (sid);
`;
}

/**
 * Session signing keys, where the nodes share a database (PostgreSQL): the public JWK of every
 * key; the private key of the active one, sealed under the key passphrase exactly like a
 * session-signing-<kid>.json file (scrypt + AES-256-GCM, purpose "session-signing-key:<kid>");
 * erased on rotation. At most one key is active. An embedded node keeps these as files.
 */
export function sessionKeyTable(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), S = d.text;
  return `
CREATE TABLE ${X}${T('identity_session_keys')} (
  seq        ${d.bigint} GENERATED ALWAYS AS IDENTITY UNIQUE,
  kid        ${S} PRIMARY KEY,
  jwk        ${S} NOT NULL,
  sealed     ${S},
  created_at ${S} NOT NULL,
  retired_at ${S},
  CHECK (retired_at IS NOT NULL OR sealed IS NOT NULL)
)${d.tableSuffix};
CREATE UNIQUE INDEX ${X}${d.bare('identity_session_keys')}_one_active ON ${T('identity_session_keys')} ((true)) WHERE retired_at IS NULL;
`;
}

/** API keys (api-keys.ts): looked up by a keyed digest, verified by a second one; times in epoch seconds. */
export function apiKeyTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), S = d.text, B = d.bigint;
  return `
CREATE TABLE ${X}${T('identity_api_keys')} (
  id            ${S} PRIMARY KEY,
  lookup        ${d.blob} NOT NULL,
  hash          ${d.blob} NOT NULL,
  principal_id  ${S} NOT NULL,
  scopes        ${S} NOT NULL,
  created_at    ${B} NOT NULL,
  expires_at    ${B},
  revoked_at    ${B},
  last_used_at  ${B}
)${d.tableSuffix};
CREATE INDEX ${X}${d.bare('identity_api_keys')}_lookup ON ${T('identity_api_keys')} (lookup);
CREATE INDEX ${X}${d.bare('identity_api_keys')}_principal ON ${T('identity_api_keys')} (principal_id);
`;
}

/** Connection passwords for the PostgreSQL wire front (connection-passwords.ts): SCRAM-SHA-256 verifiers only. */
export function connectionPasswordTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), S = d.text, B = d.bigint;
  return `
CREATE TABLE ${X}${T('identity_connection_passwords')} (
  id           ${S} PRIMARY KEY,
  principal_id ${S} NOT NULL,
  salt         ${S} NOT NULL,
  iterations   ${d.int} NOT NULL,
  stored_key   ${S} NOT NULL,
  server_key   ${S} NOT NULL,
  mfa_at       ${B},
  created_at   ${B} NOT NULL,
  expires_at   ${B} NOT NULL,
  revoked_at   ${B}
)${d.tableSuffix};
CREATE INDEX ${X}${d.bare('identity_connection_passwords')}_principal ON ${T('identity_connection_passwords')} (principal_id);
`;
}

/**
 * Elevation requests and grants (elevation.ts); times in epoch milliseconds. The approver is
 * never the requester, a grant ends after it starts. Embedded, these two tables were created
 * without STRICT, and stay so.
 */
export function elevationTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), S = d.text, I = d.int, B = d.bigint;
  return `
CREATE TABLE ${X}${T('identity_elevation_requests')} (
  id               ${S} PRIMARY KEY,
  principal_id     ${S} NOT NULL,
  role             ${S} NOT NULL,
  purpose          ${S} NOT NULL,
  justification    ${S} NOT NULL,
  duration_minutes ${I} NOT NULL CHECK (duration_minutes > 0),
  requested_at     ${B} NOT NULL,
  status           ${S} NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
  decided_by       ${S},
  decided_at       ${B},
  decision_reason  ${S},
  CHECK (decided_by IS NULL OR decided_by <> principal_id)
);
CREATE TABLE ${X}${T('identity_elevation_grants')} (
  id            ${S} PRIMARY KEY,
  request_id    ${S} UNIQUE REFERENCES ${T('identity_elevation_requests')} (id),
  principal_id  ${S} NOT NULL,
  role          ${S} NOT NULL,
  purpose       ${S} NOT NULL,
  granted_by    ${S} NOT NULL,
  break_glass   ${I} NOT NULL CHECK (break_glass IN (0, 1)),
  justification ${S} NOT NULL,
  starts_at     ${B} NOT NULL,
  expires_at    ${B} NOT NULL CHECK (expires_at > starts_at),
  revoked_at    ${B},
  revoked_by    ${S},
  revoke_reason ${S}
);
CREATE INDEX ${X}${d.bare('identity_elevation_grants')}_active ON ${T('identity_elevation_grants')} (principal_id, expires_at);
`;
}

/** Every identity table, as PostgreSQL's migration 3 creates them. */
export function identityTables(d: Dialect): string {
  return [userTables(d), sessionTables(d), sessionKeyTable(d), apiKeyTables(d), connectionPasswordTables(d), elevationTables(d)].join('');
}
