/**
 * The identity service the request path uses: built-in users (password + TOTP) and
 * session tokens, API keys, connection passwords and elevations. It turns credentials into
 * a principal id plus how it was authenticated; the pipeline decides what that may do.
 *
 * Storage: node:sqlite files in the deployment's state directory (one node), or — with
 * `storage` — shared storage such as PostgreSQL (`openPostgresIdentity`,
 * src/state/identity.ts), so several nodes behind a load balancer share users, sessions,
 * signing keys, keys and elevations. Every store has the same semantics on both.
 */
import { ConnectionPasswordStore } from './connection-passwords.ts';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { IdentityError } from './password.ts';
import { SessionService, type IssuedTokens } from './session.ts';
import { UserStore } from './user-store.ts';
import { ElevationStore } from './elevation.ts';
import { ApiKeyStore } from './api-keys.ts';
import type { IdentitySql } from './sql.ts';

export interface IdentityServiceOptions {
  readonly stateDir: string;
  /** The workspace is a demo: the published demo passphrase may seal secrets. */
  readonly demo: boolean;
  readonly sessionTtlSec: number;
  readonly issuer?: string;
  /** Key passphrase (default GATEHOUSE_KEY_PASSPHRASE); with shared storage every node needs the same one. */
  readonly passphrase?: string;
  /**
   * Shared identity storage (PostgreSQL: `(await openPostgresIdentity(state)).storage`,
   * src/state/identity.ts). Absent: node:sqlite files in `stateDir`.
   */
  readonly storage?: IdentitySql;
}

export interface SessionIdentity {
  readonly principalId: string;
  readonly sessionId: string;
  readonly amr: readonly string[];
  /** Epoch seconds of the last MFA event, or null. */
  readonly mfaAt: number | null;
}

export { looksLikeJwt } from './jwt-shape.ts';

export interface ElevationPolicy {
  readonly roles: readonly string[];
  isApprover(approverId: string, role: string): boolean;
  canBreakGlass(principalId: string, role: string): boolean;
  maxMinutes: number;
}

export class IdentityService {
  readonly users: UserStore;
  readonly sessions: SessionService;
  readonly #stateDir: string;
  readonly #storage: IdentitySql | null;
  #elevation: ElevationStore | null = null;
  #apiKeys: ApiKeyStore | null = null;
  #connectionPasswords: ConnectionPasswordStore | null = null;

  /** Connection passwords for the PostgreSQL wire protocol (SCRAM verifiers). */
  get connectionPasswords(): ConnectionPasswordStore {
    this.#connectionPasswords ??= this.#storage
      ? ConnectionPasswordStore.openOn(this.#storage)
      : ConnectionPasswordStore.open(join(this.#stateDir, 'connection-passwords.sqlite'));
    return this.#connectionPasswords;
  }

  /** Service API keys issued by administrators (scoped, expiring, revocable). */
  get apiKeys(): ApiKeyStore {
    this.#apiKeys ??= this.#storage ? ApiKeyStore.openOn(this.#storage) : ApiKeyStore.open(join(this.#stateDir, 'api-keys.sqlite'));
    return this.#apiKeys;
  }
  readonly #verified = new Map<string, SessionIdentity & { readonly expiresAt: number }>();

  private constructor(users: UserStore, sessions: SessionService, stateDir: string, storage: IdentitySql | null) {
    this.users = users;
    this.sessions = sessions;
    this.#stateDir = stateDir;
    this.#storage = storage;
  }

  /** Which storage this service runs on ('sqlite' files or shared 'postgres'). */
  get backend(): 'sqlite' | 'postgres' { return this.#storage?.dialect ?? 'sqlite'; }

  /** Privileged-access elevations; the policy (who approves what) is read on every call. */
  elevation(policy: () => ElevationPolicy): ElevationStore {
    const settings = {
      isApprover: (a: string, r: string) => policy().isApprover(a, r),
      canBreakGlass: (p: string, r: string) => policy().canBreakGlass(p, r),
      maxDurationMinutes: 10080,
    };
    this.#elevation ??= this.#storage
      ? ElevationStore.openOn(this.#storage, settings)
      : ElevationStore.open({ path: join(this.#stateDir, 'elevation.sqlite'), ...settings });
    return this.#elevation;
  }

  static async open(o: IdentityServiceOptions): Promise<IdentityService> {
    const storage = o.storage ?? null;
    if (!storage) mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
    const userOptions = { allowDemoPassphrase: o.demo, issuer: o.issuer ?? 'Gatehouse', ...(o.passphrase !== undefined ? { passphrase: o.passphrase } : {}) };
    const users = storage ? await UserStore.openOn(storage, userOptions) : await UserStore.open(join(o.stateDir, 'users.sqlite'), userOptions);
    try {
      const sessions = await SessionService.open({
        ...(storage ? { storage } : { path: join(o.stateDir, 'sessions.sqlite'), keyDir: join(o.stateDir, 'session-keys') }),
        allowDemoPassphrase: o.demo, ...(o.passphrase !== undefined ? { passphrase: o.passphrase } : {}),
        issuer: o.issuer ?? 'gatehouse', audience: 'gatehouse', accessTtlSec: o.sessionTtlSec,
      });
      return new IdentityService(users, sessions, o.stateDir, storage);
    } catch (err) {
      await users.close();
      throw err;
    }
  }

  /** Password and, when enrolled, a TOTP or recovery code → session tokens. */
  async login(principalId: string, password: string, code: string | null, address: string): Promise<IssuedTokens & { mfa: boolean }> {
    const pw = await this.users.verifyPassword(principalId, password, { address });
    if (!pw.mfaEnrolled) {
      const tokens = await this.sessions.issue(principalId, { amr: ['pwd'] });
      return { ...tokens, mfa: false };
    }
    if (!code) throw new IdentityError('IDENTITY_MFA_CODE_REQUIRED', 'this account signs in with a TOTP code: send "code"', 401);
    await this.users.verifySecondFactor(principalId, code, { address });
    const tokens = await this.sessions.issue(principalId, { amr: ['pwd', 'otp'], mfaAt: Math.floor(Date.now() / 1000) });
    return { ...tokens, mfa: true };
  }

  /**
   * Verifies a session token. The signature check (~100 µs of Ed25519) is done once per
   * token and remembered by the token's SHA-256 until it expires; revocation, session
   * expiry and the user's status are still read from the store on every call, so a logout,
   * a revocation or a disabled account — on this node or any other sharing the store —
   * takes effect on the very next request (zero trust).
   */
  async verify(token: string): Promise<SessionIdentity> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = Math.floor(Date.now() / 1000);
    let v = this.#verified.get(key);
    if (v && v.expiresAt > now) {
      const info = await this.sessions.session(v.sessionId);
      if (!info || info.revokedAt !== null || info.expiresAt <= now) throw new IdentityError('SESSION_REVOKED', 'the session was revoked or has ended', 401);
    } else {
      const fresh = await this.sessions.verify(token);
      v = { principalId: fresh.principalId, sessionId: fresh.sessionId, amr: fresh.amr, mfaAt: fresh.mfaAt, expiresAt: fresh.expiresAt };
      if (this.#verified.size >= 10_000) this.#verified.delete(this.#verified.keys().next().value!);
      this.#verified.set(key, v);
    }
    const status = await this.users.status(v.principalId);
    if (!status || status.disabled) throw new IdentityError('IDENTITY_ACCOUNT_DISABLED', 'this account is disabled', 401);
    return { principalId: v.principalId, sessionId: v.sessionId, amr: v.amr, mfaAt: v.mfaAt };
  }

  /** Closes the stores (sqlite files; shared storage is closed by its owner). */
  async close(): Promise<void> {
    await this.#elevation?.close();
    await this.#apiKeys?.close();
    await this.#connectionPasswords?.close();
    await this.sessions.close();
    await this.users.close();
  }
}
