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
 * later than that session's.
 *
 * A principal may hold several, each with a name (one per tool: `dbeaver`, `metabase`),
 * listed and revoked by name; issuing a name again replaces only the password of that
 * name, so a second tool never breaks the first one's next connection. SCRAM names the
 * user before the client proves anything, so the server must send one salt before it
 * knows which password the client holds: a principal's passwords share one salt (the
 * passwords themselves are independent random values), and the client proof is checked
 * against each of their StoredKeys (src/wire/server.ts). The name is part of the id
 * (`cp_<hex>_<name>`), so the store keeps the table layout it had.
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
import { GatehouseError } from '../errors.ts';
import { IdentityError } from './password.ts';
import { IdentityStoreUnavailable } from './session.ts';
import { connectionPasswordTables } from '../sql/tables/identity.ts';

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
  readonly name: string;
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

/** One active connection password as a list shows it (never the password or its verifier). */
export interface ConnectionPasswordInfo {
  readonly name: string;
  readonly id: string;
  readonly createdAt: string;
  readonly expiresAt: string;
}

/** The verifiers a SCRAM exchange for one user name may match: one salt, one StoredKey/ServerKey per active password. */
export interface ScramCandidates {
  readonly salt: string;
  readonly iterations: number;
  readonly candidates: readonly { readonly id: string; readonly storedKey: string; readonly serverKey: string }[];
  /** The newest password's id and verifier. */
  readonly id: string;
  readonly verifier: ScramVerifier;
}

/** A connection password's name: what a list shows and a revoke names. */
export const CONNECTION_PASSWORD_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const DEFAULT_CONNECTION_PASSWORD_NAME = 'default';
/** Active connection passwords a principal may hold at once (each is one more StoredKey tried per sign-in). */
export const MAX_CONNECTION_PASSWORDS = 10;

/** The name inside an id (`cp_<hex>_<name>`); ids from before names existed are `default`. */
export function connectionPasswordName(id: string): string {
  const m = /^cp_[0-9a-f]{24}_([a-z0-9][a-z0-9-]{0,31})$/.exec(id);
  return m ? m[1]! : DEFAULT_CONNECTION_PASSWORD_NAME;
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
    const sql = SqliteIdentitySql.open(path, connectionPasswordTables, {
      unavailable: (what, cause) => new IdentityStoreUnavailable(`the connection-password store: ${what}`, { cause }),
    });
    return new ConnectionPasswordStore(sql, options.clock ?? (() => new Date()));
  }

  /** The store on shared storage (PostgreSQL: src/state/identity.ts); its tables exist already. */
  static openOn(sql: IdentitySql, options: { clock?: () => Date } = {}): ConnectionPasswordStore {
    return new ConnectionPasswordStore(sql, options.clock ?? (() => new Date()));
  }

  #now(): number { return Math.floor(this.#clock().getTime() / 1000); }

  /**
   * Issues a new password named `name` for `principalId`, valid until `expiresAt`. It
   * replaces the active password of the same name only; the others keep working.
   */
  async issue(principalId: string, options: { name?: string; mfaAt: number | null; expiresAt: number }): Promise<ConnectionPassword> {
    const name = options.name ?? DEFAULT_CONNECTION_PASSWORD_NAME;
    if (!CONNECTION_PASSWORD_NAME.test(name)) throw new GatehouseError('REQUEST_INVALID', 'a connection password name is 1 to 32 lower-case letters, digits and -, starting with a letter or digit', { hint: 'name it after the tool, e.g. dbeaver' });
    const now = this.#now();
    if (!(options.expiresAt > now)) throw new ConnectionPasswordInvalid();
    const password = randomBytes(32).toString('base64url');
    const id = `cp_${randomBytes(12).toString('hex')}_${name}`;
    return this.#sql.write(async (q) => {
      const unrevoked = await q.all<Row>('SELECT * FROM {connection_passwords} WHERE principal_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id', [principalId]);
      const others = unrevoked.filter((r) => r.expires_at > now && connectionPasswordName(r.id) !== name);
      if (others.length >= MAX_CONNECTION_PASSWORDS) {
        throw new GatehouseError('CONFLICT', `at most ${MAX_CONNECTION_PASSWORDS} connection passwords may be active at once`, { hint: 'revoke one you no longer use: gatehouse pg-password --list, then --revoke NAME' });
      }
      // One salt per principal (the newest active password's), so SCRAM can send it before the client proves which password it holds.
      const shared = others[0];
      const v = shared ? scramVerifier(password, Buffer.from(shared.salt, 'base64'), shared.iterations) : scramVerifier(password);
      for (const r of unrevoked) if (connectionPasswordName(r.id) === name) await q.run('UPDATE {connection_passwords} SET revoked_at = ? WHERE id = ?', [now, r.id]);
      await q.run('INSERT INTO {connection_passwords} (id, principal_id, salt, iterations, stored_key, server_key, mfa_at, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [id, principalId, v.salt, v.iterations, v.storedKey, v.serverKey, options.mfaAt, now, options.expiresAt]);
      return { id, name, username: principalId, password, expiresAt: new Date(options.expiresAt * 1000).toISOString() };
    });
  }

  /**
   * What SCRAM needs for a user name: the salt of the principal's newest active password
   * and the keys of every active password with that salt; null when there is none.
   */
  async verifier(username: string): Promise<ScramCandidates | null> {
    const rows = await this.#sql.all<Row>('SELECT * FROM {connection_passwords} WHERE principal_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC, id LIMIT ?', [username, this.#now(), MAX_CONNECTION_PASSWORDS + 1]);
    const first = rows[0];
    if (!first) return null;
    const same = rows.filter((r) => r.salt === first.salt && r.iterations === first.iterations);
    return {
      salt: first.salt, iterations: first.iterations, candidates: same.map((r) => ({ id: r.id, storedKey: r.stored_key, serverKey: r.server_key })),
      id: first.id, verifier: { salt: first.salt, iterations: first.iterations, storedKey: first.stored_key, serverKey: first.server_key },
    };
  }

  /** The principal's active connection passwords, newest first. */
  async list(principalId: string): Promise<ConnectionPasswordInfo[]> {
    const rows = await this.#sql.all<Row>('SELECT * FROM {connection_passwords} WHERE principal_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC, id', [principalId, this.#now()]);
    return rows.map((r) => ({ name: connectionPasswordName(r.id), id: r.id, createdAt: new Date(r.created_at * 1000).toISOString(), expiresAt: new Date(r.expires_at * 1000).toISOString() }));
  }

  /** Revokes the principal's active password named `name`; returns how many were revoked (0 or 1). */
  async revoke(principalId: string, name: string): Promise<number> {
    const now = this.#now();
    return this.#sql.write(async (q) => {
      const active = await q.all<Row>('SELECT * FROM {connection_passwords} WHERE principal_id = ? AND revoked_at IS NULL', [principalId]);
      let n = 0;
      for (const r of active) if (connectionPasswordName(r.id) === name) n += await q.run('UPDATE {connection_passwords} SET revoked_at = ? WHERE id = ?', [now, r.id]);
      return n;
    });
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
