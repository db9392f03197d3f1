/**
 * The identity service the request path uses: built-in users (password + TOTP) and
 * session tokens, kept in the deployment's state directory. It turns credentials into a
 * principal id plus how it was authenticated; the pipeline decides what that may do.
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

export interface IdentityServiceOptions {
  readonly stateDir: string;
  /** The workspace is a demo: the published demo passphrase may seal secrets. */
  readonly demo: boolean;
  readonly sessionTtlSec: number;
  readonly issuer?: string;
}

export interface SessionIdentity {
  readonly principalId: string;
  readonly sessionId: string;
  readonly amr: readonly string[];
  /** Epoch seconds of the last MFA event, or null. */
  readonly mfaAt: number | null;
}

/** A JWT has three base64url parts; API keys never do. */
export function looksLikeJwt(credential: string): boolean {
  return /^[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}$/.test(credential);
}

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
  #elevation: ElevationStore | null = null;
  #apiKeys: ApiKeyStore | null = null;
  #connectionPasswords: ConnectionPasswordStore | null = null;

  /** Connection passwords for the PostgreSQL wire protocol (SCRAM verifiers). */
  get connectionPasswords(): ConnectionPasswordStore {
    this.#connectionPasswords ??= ConnectionPasswordStore.open(join(this.#stateDir, 'connection-passwords.sqlite'));
    return this.#connectionPasswords;
  }

  /** Service API keys issued by administrators (scoped, expiring, revocable). */
  get apiKeys(): ApiKeyStore {
    this.#apiKeys ??= ApiKeyStore.open(join(this.#stateDir, 'api-keys.sqlite'));
    return this.#apiKeys;
  }
  readonly #verified = new Map<string, SessionIdentity & { readonly expiresAt: number }>();

  private constructor(users: UserStore, sessions: SessionService, stateDir: string) {
    this.users = users;
    this.sessions = sessions;
    this.#stateDir = stateDir;
  }

  /** Privileged-access elevations; the policy (who approves what) is read on every call. */
  elevation(policy: () => ElevationPolicy): ElevationStore {
    this.#elevation ??= ElevationStore.open({
      path: join(this.#stateDir, 'elevation.sqlite'),
      isApprover: (a, r) => policy().isApprover(a, r),
      canBreakGlass: (p, r) => policy().canBreakGlass(p, r),
      maxDurationMinutes: 10080,
    });
    return this.#elevation;
  }

  static async open(o: IdentityServiceOptions): Promise<IdentityService> {
    mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
    const users = await UserStore.open(join(o.stateDir, 'users.sqlite'), { allowDemoPassphrase: o.demo, issuer: o.issuer ?? 'Gatehouse' });
    try {
      const sessions = SessionService.open({
        path: join(o.stateDir, 'sessions.sqlite'), keyDir: join(o.stateDir, 'session-keys'), allowDemoPassphrase: o.demo,
        issuer: o.issuer ?? 'gatehouse', audience: 'gatehouse', accessTtlSec: o.sessionTtlSec,
      });
      return new IdentityService(users, sessions, o.stateDir);
    } catch (err) {
      users.close();
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
   * expiry and the user's status are still read on every call, so a logout, a revocation or
   * a disabled account takes effect on the very next request (zero trust).
   */
  async verify(token: string): Promise<SessionIdentity> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = Math.floor(Date.now() / 1000);
    let v = this.#verified.get(key);
    if (v && v.expiresAt > now) {
      const info = this.sessions.session(v.sessionId);
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

  close(): void {
    this.#elevation?.close();
    this.#apiKeys?.close();
    this.#connectionPasswords?.close();
    this.sessions.close();
    this.users.close();
  }
}
