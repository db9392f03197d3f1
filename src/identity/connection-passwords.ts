/**
 * Connection passwords for the PostgreSQL wire protocol (psql, JDBC, BI tools).
 *
 * A wire client authenticates with SCRAM-SHA-256 (RFC 5802, RFC 7677), so the server
 * must hold a SCRAM verifier — StoredKey and ServerKey derived from the password — and
 * never the password. Gatehouse's own credentials cannot serve: API keys are stored only
 * as SHA-256 digests, and a password + TOTP sign-in cannot be replayed by psql. So a
 * principal who is already signed in (with MFA when their group requires it) asks for a
 * *connection password*: 32 random bytes shown once, stored as a SCRAM verifier, bound
 * to the principal, to the MFA time of the session that asked for it, and to an expiry no
 * later than that session's. Issuing a new one revokes the previous one.
 *
 * The pipeline sees a connection as the typed credential `{ kind: 'connection-password', id }` and resolves it
 * here on every request, so revocation and expiry act on the very next query.
 *
 *   SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)
 *   StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
 *   ServerKey      = HMAC(SaltedPassword, "Server Key")
 *
 * The password is 256 random bits, so the iteration count (4096, PostgreSQL's default)
 * protects nothing a guess could find; it is kept for client compatibility.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { SqliteIdentitySql, type IdentitySql } from './sql.ts';
import { IdentityError } from './password.ts';
import { IdentityStoreUnavailable } from './session.ts';

/** Prefix of the credential the wire front passes on; random per process, so no client can send it. */

export const SCRAM_ITERATIONS = 4096;

export interface ScramVerifier {
  /** base64 */
  readonly salt: string;
  readonly iterations: number;
  /** base64 */
  readonly storedKey: string;
  /** base64 */
  readonly serverKey: string;
}

export interface ConnectionPassword {
  readonly id: string;
  /** The user name to connect with: the principal id. */
  readonly username: string;
  /** Shown once; never stored. */
  readonly password: string;
  readonly expiresAt: string;
}

export interface ResolvedConnection {
  readonly id: string;
  readonly principalId: string;
  /** Epoch seconds of the MFA event of the session that issued it; null if none. */
  readonly mfaAt: number | null;
}

export class ConnectionPasswordInvalid extends IdentityError {
  constructor() { super('CONNECTION_PASSWORD_INVALID', 'the connection password is no longer valid (expired, revoked or replaced)', 401); }
}

/** Derives a SCRAM-SHA-256 verifier from a password (RFC 5802 §3). */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): ScramVerifier {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return { salt: salt.toString('base64'), iterations, storedKey: storedKey.toString('base64'), serverKey: serverKey.toString('base64') };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS connection_passwords (
  id           TEXT PRIMARY KEY,
  principal_id TEXT NOT NULL,
  salt         TEXT NOT NULL,
  iterations   INTEGER NOT NULL,
  stored_key   TEXT NOT NULL,
  server_key   TEXT NOT NULL,
  mfa_at       INTEGER,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  revoked_at   INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS connection_passwords_principal ON connection_passwords(principal_id);
`;

interface Row {
  id: string; principal_id: string; salt: string; iterations: number; stored_key: string; server_key: string;
  mfa_at: number | null; created_at: number; expires_at: number; revoked_at: number | null;
}

export class ConnectionPasswordStore {
  readonly #sql: IdentitySql;
  readonly #clock: () => Date;

  private constructor(sql: IdentitySql, clock: () => Date) {
    this.#sql = sql;
    this.#clock = clock;
  }

  static open(path: string, options: { clock?: () => Date } = {}): ConnectionPasswordStore {
    const sql = SqliteIdentitySql.open(path, SCHEMA, {
      unavailable: (what, cause) => new IdentityStoreUnavailable(`the connection-password store: ${what}`, { cause }),
    });
    return new ConnectionPasswordStore(sql, options.clock ?? (() => new Date()));
  }

  /** The store on shared storage (PostgreSQL: src/state/identity.ts); its tables exist already. */
  static openOn(sql: IdentitySql, options: { clock?: () => Date } = {}): ConnectionPasswordStore {
    return new ConnectionPasswordStore(sql, options.clock ?? (() => new Date()));
  }

  #now(): number { return Math.floor(this.#clock().getTime() / 1000); }

  /** Issues a new password for `principalId` (revoking the previous one), valid until `expiresAt`. */
  async issue(principalId: string, options: { mfaAt: number | null; expiresAt: number }): Promise<ConnectionPassword> {
    const now = this.#now();
    if (!(options.expiresAt > now)) throw new ConnectionPasswordInvalid();
    const password = randomBytes(32).toString('base64url');
    const v = scramVerifier(password);
    const id = `cp_${randomBytes(12).toString('base64url')}`;
    await this.#sql.write(async (q) => {
      await q.run('UPDATE {connection_passwords} SET revoked_at = ? WHERE principal_id = ? AND revoked_at IS NULL', [now, principalId]);
      await q.run('INSERT INTO {connection_passwords} (id, principal_id, salt, iterations, stored_key, server_key, mfa_at, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [id, principalId, v.salt, v.iterations, v.storedKey, v.serverKey, options.mfaAt, now, options.expiresAt]);
    });
    return { id, username: principalId, password, expiresAt: new Date(options.expiresAt * 1000).toISOString() };
  }

  /** The verifier SCRAM needs for a user name, or null (unknown, expired, revoked). */
  async verifier(username: string): Promise<{ id: string; verifier: ScramVerifier } | null> {
    const r = await this.#sql.get<Row>('SELECT * FROM {connection_passwords} WHERE principal_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC, id LIMIT 1', [username, this.#now()]);
    if (!r) return null;
    return { id: r.id, verifier: { salt: r.salt, iterations: r.iterations, storedKey: r.stored_key, serverKey: r.server_key } };
  }

  /** Checked on every request of a wire connection (reads the row every time). */
  async resolve(id: string): Promise<ResolvedConnection> {
    const r = await this.#sql.get<Row>('SELECT * FROM {connection_passwords} WHERE id = ?', [id]);
    if (!r || r.revoked_at !== null || r.expires_at <= this.#now()) throw new ConnectionPasswordInvalid();
    return { id: r.id, principalId: r.principal_id, mfaAt: r.mfa_at };
  }

  /** Revokes every connection password of a principal (sign-out, disable). Returns how many. */
  async revokeAll(principalId: string): Promise<number> {
    return this.#sql.run('UPDATE {connection_passwords} SET revoked_at = ? WHERE principal_id = ? AND revoked_at IS NULL', [this.#now(), principalId]);
  }

  /** Closes the store (and its sqlite file; shared storage is closed by its owner). */
  async close(): Promise<void> {
    if (this.#sql.dialect === 'sqlite') await this.#sql.close();
  }
}
