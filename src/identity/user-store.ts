/**
 * Built-in users of the embedded identity provider, keyed by principal id, in SQLite
 * (node:sqlite, WAL) or — for several nodes — PostgreSQL (src/identity/sql.ts).
 *
 * Per user: an scrypt password hash (password.ts), the TOTP secret sealed with
 * AES-256-GCM (secret-box.ts; a pending one during enrolment), whether MFA is enrolled,
 * the last TOTP step accepted (replay protection), SHA-256 hashes of the recovery codes
 * (recovery-codes.ts), `disabled`, and timestamps. Failed-attempt counters and lock state
 * (lockout.ts) live in `login_failures`, keyed by the principal id *as typed*, so an
 * unknown account is counted and locked exactly like a real one and a caller cannot tell
 * them apart (same error, same scrypt work, same writes). The per-address token bucket is
 * in memory, per store instance. The scrypt cost is DEFAULT_SCRYPT unless `options.scrypt`
 * says otherwise (tests lower it); the unknown-account decoy is made at the same cost, so the
 * two paths stay alike whatever it is.
 *
 * Every state change is one transaction (`BEGIN IMMEDIATE`; SERIALIZABLE on PostgreSQL),
 * and the two "use once" steps are compare-and-set updates (`... WHERE totp_last_step < ?`,
 * `... WHERE used_at IS NULL`), so two verifications racing — in one process, in two
 * processes on one file, or on two nodes on one database — cannot both accept the same
 * TOTP step or recovery code, and failure counters never lose an increment. The
 * per-address token bucket is in memory, per node.
 *
 * Every method that changes state returns (or, on failure, attaches to the thrown
 * IdentityError as `audit`) a small `IdentityAuditEvent` for the audit log: never a
 * password, code or secret. Authorisation of the *caller* (is `by` an admin?) is not this
 * module's job: the pipeline asks Cedar before calling the admin operations.
 */
import { SqliteIdentitySql, type IdentitySql, type SqlQueries } from './sql.ts';
import {
  IdentityError, checkPasswordPolicy, hashPassword, needsRehash, verifyPassword as verifyPasswordHash,
  verifyPasswordDecoy, prepareDecoy, DEFAULT_SCRYPT, type IdentityErrorOptions, type IdentityAuditEvent, type ScryptParams,
} from './password.ts';
import { IdentityInputInvalid, IdentityStoreUnavailable } from './session.ts';
import {
  AccountLocked, DEFAULT_LOCKOUT, EMPTY_LOCKOUT, RateLimited, TokenBucketLimiter, currentLockout, lockRemainingMs,
  recordFailure, type LockoutPolicy, type LockoutState, type RateLimitPolicy,
} from './lockout.ts';
import { SecretBox, resolveSecretPassphrase, type SecretBoxParams } from './secret-box.ts';
import { generateTotpSecret, otpauthUri, verifyTotp } from './totp.ts';
import { RECOVERY_CODE_COUNT, generateRecoveryCodes, hashRecoveryCode } from './recovery-codes.ts';
import { userTables } from '../sql/tables/identity.ts';

// ---- errors ---------------------------------------------------------------------------------

type ErrorOptions = IdentityErrorOptions;

/** Wrong password, unknown account or malformed id: one error for all, by design. */
export class CredentialsInvalid extends IdentityError {
  constructor(options: ErrorOptions = {}) { super('IDENTITY_CREDENTIALS_INVALID', 'invalid principal or password', 401, options); }
}
/** The password was right but the account is disabled. */
export class AccountDisabled extends IdentityError {
  constructor(options: ErrorOptions = {}) { super('IDENTITY_ACCOUNT_DISABLED', 'this account is disabled: ask an administrator', 403, options); }
}
/** Wrong, replayed, out-of-window or already used second factor. */
export class MfaCodeInvalid extends IdentityError {
  constructor(options: ErrorOptions = {}) { super('IDENTITY_MFA_CODE_INVALID', 'invalid authentication code', 401, options); }
}
/** A second factor was asked of an account that has not enrolled one. */
export class MfaNotEnrolled extends IdentityError {
  constructor(options: ErrorOptions = {}) { super('IDENTITY_MFA_NOT_ENROLLED', 'no authenticator enrolled: enrol TOTP first', 403, options); }
}
/** Enrolment while an authenticator is active (replacing it needs an MFA reset). */
export class MfaAlreadyEnrolled extends IdentityError {
  constructor() { super('IDENTITY_MFA_ALREADY_ENROLLED', 'an authenticator is already enrolled: an MFA reset (two administrators) replaces it', 409); }
}
/** Confirmation without a pending enrolment (none begun, or it expired). */
export class MfaEnrolmentNotPending extends IdentityError {
  constructor() { super('IDENTITY_MFA_ENROLMENT_NOT_PENDING', 'no TOTP enrolment in progress (or it expired): begin again', 409); }
}
/** Two-person rule broken: self-request, self-approval, or approval by the requester. */
export class MfaResetForbidden extends IdentityError {
  constructor(message: string, options: ErrorOptions = {}) { super('IDENTITY_MFA_RESET_FORBIDDEN', message, 403, options); }
}
/** Approval without a pending (unexpired) request. */
export class MfaResetNotRequested extends IdentityError {
  constructor() { super('IDENTITY_MFA_RESET_NOT_REQUESTED', 'no pending MFA reset request for this account (or it expired)', 409); }
}
export class UserExists extends IdentityError {
  constructor() { super('IDENTITY_USER_EXISTS', 'a user with this principal id already exists', 409); }
}
/** Admin operations only; logins never say whether an account exists. */
export class UserNotFound extends IdentityError {
  constructor() { super('IDENTITY_USER_NOT_FOUND', 'no such user', 404); }
}

// ---- types ------------------------------------------------------------------------------------

export interface UserStoreOptions {
  /** Seals TOTP secrets; default GATEHOUSE_KEY_PASSPHRASE. */
  readonly passphrase?: string;
  /** Use the published demo passphrase when none is configured (demo workspaces only). */
  readonly allowDemoPassphrase?: boolean;
  /** Issuer shown in authenticator apps. Default "Gatehouse". */
  readonly issuer?: string;
  readonly lockout?: Partial<LockoutPolicy>;
  readonly rateLimit?: Partial<RateLimitPolicy>;
  /** Time source (tests); each call may also pass `now`. */
  readonly clock?: () => Date;
  /** How long a begun TOTP enrolment may be confirmed. Default 10 min. */
  readonly enrolmentTtlMs?: number;
  /** How long an MFA reset request waits for approval. Default 24 h. */
  readonly mfaResetTtlMs?: number;
  /** SQLite busy timeout. Default 5 s. */
  readonly busyTimeoutMs?: number;
  /**
   * scrypt cost for new hashes, the decoy of unknown accounts and `needsRehash`. Default
   * DEFAULT_SCRYPT (N=2^15, r=8, p=1; password.ts). Only tests lower it: a hash at N=2^15
   * costs ~0.1 s of CPU, and a suite that creates hundreds of users spends seconds on it.
   */
  readonly scrypt?: ScryptParams;
}

export interface Now { readonly now?: Date }
export interface ByAdmin extends Now { readonly by: string }

export interface PasswordVerified {
  readonly principalId: string;
  /** When true the login is not complete until `verifySecondFactor` succeeds. */
  readonly mfaEnrolled: boolean;
  readonly audit: IdentityAuditEvent;
}

export interface SecondFactorVerified {
  readonly principalId: string;
  readonly method: 'totp' | 'recovery_code';
  /** Unused recovery codes left (tell the user when it runs low). */
  readonly recoveryCodesLeft: number;
  readonly audit: IdentityAuditEvent;
}

export interface UserStatus {
  readonly principalId: string;
  readonly disabled: boolean;
  readonly mfaEnrolled: boolean;
  readonly mfaEnrolmentPending: boolean;
  readonly recoveryCodesLeft: number;
  readonly failedAttempts: number;
  readonly lockedUntil: string | null;
  readonly mfaResetRequest: { readonly requestedBy: string; readonly requestedAt: string; readonly expiresAt: string } | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly passwordChangedAt: string;
  readonly lastLoginAt: string | null;
  readonly mfaEnrolledAt: string | null;
}

interface UserRow {
  principal_id: string;
  password_hash: string;
  totp_secret_sealed: string | null;
  totp_pending_sealed: string | null;
  totp_pending_expires_ms: number | null;
  mfa_enrolled: number;
  mfa_enrolled_at: string | null;
  totp_last_step: number | null;
  disabled: number;
  created_at: string;
  updated_at: string;
  password_changed_at: string;
  last_login_at: string | null;
}

const MAX_PRINCIPAL_ID = 256;
/** Rows in login_failures for accounts that are quiet and unlocked are pruned past this many. */
const MAX_FAILURE_ROWS = 100_000;

function validPrincipalId(id: unknown): id is string {
  // eslint-disable-next-line no-control-regex
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_PRINCIPAL_ID && !/[\u0000-\u001f\u007f]/.test(id);
}

function requirePrincipalId(id: unknown, what = 'principal id'): string {
  if (!validPrincipalId(id)) throw new IdentityInputInvalid(`${what} must be 1…${MAX_PRINCIPAL_ID} characters without control characters`);
  return id;
}

/** Words of an id worth keeping out of its password ("user:alice@example.org" → alice, example, …). */
function idWords(id: string): string[] {
  return [id, ...id.split(/[^\p{L}\p{N}]+/u).filter((w) => w.length >= 4)];
}

// ---- the store ------------------------------------------------------------------------------

export class UserStore {
  readonly path: string;
  readonly issuer: string;
  readonly #sql: IdentitySql;
  readonly #box: SecretBox;
  readonly #clock: () => Date;
  readonly #lockout: LockoutPolicy;
  readonly #limiter: TokenBucketLimiter;
  readonly #enrolmentTtlMs: number;
  readonly #mfaResetTtlMs: number;
  readonly #scrypt: ScryptParams;
  #closed = false;

  private constructor(path: string, sql: IdentitySql, box: SecretBox, options: UserStoreOptions) {
    this.path = path;
    this.#sql = sql;
    this.#box = box;
    this.issuer = options.issuer ?? 'Gatehouse';
    this.#clock = options.clock ?? (() => new Date());
    this.#scrypt = options.scrypt ?? DEFAULT_SCRYPT;
    this.#lockout = { ...DEFAULT_LOCKOUT, ...options.lockout };
    this.#limiter = new TokenBucketLimiter(options.rateLimit, () => this.#clock().getTime());
    this.#enrolmentTtlMs = options.enrolmentTtlMs ?? 10 * 60_000;
    this.#mfaResetTtlMs = options.mfaResetTtlMs ?? 24 * 3_600_000;
  }

  /**
   * Opens (creating if needed) the store at `path`. The first open creates the secret-box
   * parameters; later opens with a different passphrase throw IDENTITY_SECRET_KEY_WRONG.
   */
  static async open(path: string, options: UserStoreOptions = {}): Promise<UserStore> {
    const passphrase = resolveSecretPassphrase(options.passphrase, options.allowDemoPassphrase ?? false);
    const sql = SqliteIdentitySql.open(path, userTables, {
      busyTimeoutMs: options.busyTimeoutMs,
      unavailable: (what, cause) => new IdentityStoreUnavailable(what === 'closed' ? 'the user store is closed' : 'cannot open the user store', { cause }),
    });
    try {
      return await UserStore.#openWith(path, sql, passphrase, options);
    } catch (err) {
      await sql.close();
      throw err;
    }
  }

  /**
   * The store on shared storage (PostgreSQL, src/state/identity.ts: its tables exist). Every
   * node must be given the same passphrase: the first one to open creates the secret-box
   * parameters, the others check theirs against them (IDENTITY_SECRET_KEY_WRONG).
   */
  static async openOn(sql: IdentitySql, options: UserStoreOptions = {}): Promise<UserStore> {
    const passphrase = resolveSecretPassphrase(options.passphrase, options.allowDemoPassphrase ?? false);
    return UserStore.#openWith(`${sql.dialect}:identity`, sql, passphrase, options);
  }

  static async #openWith(path: string, sql: IdentitySql, passphrase: string, options: UserStoreOptions): Promise<UserStore> {
    const box = await UserStore.#openBox(sql, passphrase);
    try {
      await prepareDecoy(options.scrypt ?? DEFAULT_SCRYPT);
      return new UserStore(path, sql, box, options);
    } catch (err) {
      box.close();
      throw err;
    }
  }

  static async #openBox(sql: IdentitySql, passphrase: string): Promise<SecretBox> {
    const row = await sql.get<{ value: string }>("SELECT value FROM {meta} WHERE key = 'secret_box'");
    if (row) return SecretBox.open(JSON.parse(row.value) as SecretBoxParams, passphrase);
    const fresh = SecretBox.create(passphrase);
    await sql.run("INSERT INTO {meta} (key, value) VALUES ('secret_box', ?) ON CONFLICT DO NOTHING", [JSON.stringify(fresh.params)]);
    // Another process or node may have created the parameters first: use whatever is stored.
    const stored = (await sql.get<{ value: string }>("SELECT value FROM {meta} WHERE key = 'secret_box'"))!.value;
    if (stored === JSON.stringify(fresh.params)) return fresh;
    fresh.close();
    return SecretBox.open(JSON.parse(stored) as SecretBoxParams, passphrase);
  }

  /** Closes the store (and its sqlite file; shared storage is closed by its owner). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#box.close();
    if (this.#sql.dialect === 'sqlite') await this.#sql.close();
  }

  // ---- users ----------------------------------------------------------------------------------

  /** Creates a user with a password that passes the policy. MFA is not enrolled yet. */
  async createUser(principalId: string, password: string, options: Partial<ByAdmin> = {}): Promise<IdentityAuditEvent> {
    requirePrincipalId(principalId);
    checkPasswordPolicy(password, idWords(principalId));
    const hash = await hashPassword(password, this.#scrypt);
    const at = this.#iso(options.now);
    await this.#write(async (q) => {
      if (await this.#user(q, principalId)) throw new UserExists();
      await q.run(`INSERT INTO {users} (principal_id, password_hash, created_at, updated_at, password_changed_at) VALUES (?, ?, ?, ?, ?)`,
        [principalId, hash, at, at, at]);
    });
    return this.#event('identity.user.create', principalId, at, { actor: options.by });
  }

  /** Replaces the password (policy applies) and clears the account's lockout. */
  async setPassword(principalId: string, password: string, options: Partial<ByAdmin> = {}): Promise<IdentityAuditEvent> {
    requirePrincipalId(principalId);
    checkPasswordPolicy(password, idWords(principalId));
    const hash = await hashPassword(password, this.#scrypt);
    const at = this.#iso(options.now);
    await this.#write(async (q) => {
      const r = await q.run('UPDATE {users} SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE principal_id = ?', [hash, at, at, principalId]);
      if (r !== 1) throw new UserNotFound();
      await q.run('DELETE FROM {login_failures} WHERE principal_id = ?', [principalId]);
    });
    return this.#event('identity.password.set', principalId, at, { actor: options.by });
  }

  async disableUser(principalId: string, options: ByAdmin): Promise<IdentityAuditEvent> {
    return this.#setDisabled(principalId, true, options);
  }

  async enableUser(principalId: string, options: ByAdmin): Promise<IdentityAuditEvent> {
    return this.#setDisabled(principalId, false, options);
  }

  async #setDisabled(principalId: string, disabled: boolean, options: ByAdmin): Promise<IdentityAuditEvent> {
    requirePrincipalId(principalId);
    requirePrincipalId(options?.by, 'by');
    const at = this.#iso(options.now);
    await this.#write(async (q) => {
      const r = await q.run('UPDATE {users} SET disabled = ?, updated_at = ? WHERE principal_id = ?', [disabled ? 1 : 0, at, principalId]);
      if (r !== 1) throw new UserNotFound();
    });
    return this.#event(disabled ? 'identity.user.disable' : 'identity.user.enable', principalId, at, { actor: options.by });
  }

  // ---- login: password --------------------------------------------------------------------------

  /**
   * Checks a password, applying the per-address rate limit and the per-account lockout.
   * Unknown accounts, malformed ids and wrong passwords all throw CredentialsInvalid after
   * the same scrypt work and the same failure bookkeeping. A correct password for a
   * disabled account throws AccountDisabled (which reveals only what the password holder
   * knows). With MFA enrolled, the failure count is reset only by `verifySecondFactor`, so
   * knowing the password does not buy fresh guesses at the code.
   */
  async verifyPassword(principalId: string, password: string, options: { address?: string } & Now = {}): Promise<PasswordVerified> {
    const now = this.#nowMs(options.now);
    const id = typeof principalId === 'string' ? principalId : '';
    const known = validPrincipalId(id);
    this.#rateLimit('identity.password.verify', id, options.address, now);
    if (known) await this.#checkLock('identity.password.verify', id, now);
    const user = known ? await this.#read((q) => this.#user(q, id)) : undefined;
    const ok = user ? await verifyPasswordHash(password, user.password_hash) : await verifyPasswordDecoy(typeof password === 'string' ? password : '', this.#scrypt);
    if (!ok) {
      const state = known ? await this.#write((q) => this.#fail(q, id, now)) : EMPTY_LOCKOUT;
      throw new CredentialsInvalid({ audit: this.#failure('identity.password.verify', id, now, user ? 'wrong_password' : 'unknown_account', state) });
    }
    const u = user!;
    if (u.disabled === 1) {
      throw new AccountDisabled({ audit: this.#failure('identity.password.verify', id, now, 'disabled', null) });
    }
    const mfaEnrolled = u.mfa_enrolled === 1;
    const rehash = needsRehash(u.password_hash, this.#scrypt) ? await hashPassword(password, this.#scrypt) : null;
    const at = new Date(now).toISOString();
    await this.#write(async (q) => {
      if (!mfaEnrolled) {
        await q.run('DELETE FROM {login_failures} WHERE principal_id = ?', [id]);
        await q.run('UPDATE {users} SET last_login_at = ? WHERE principal_id = ?', [at, id]);
      }
      if (rehash) await q.run('UPDATE {users} SET password_hash = ? WHERE principal_id = ? AND password_hash = ?', [rehash, id, u.password_hash]);
    });
    return {
      principalId: id,
      mfaEnrolled,
      audit: this.#event('identity.password.verify', id, at, { details: { mfaRequired: mfaEnrolled, rehashed: rehash !== null } }),
    };
  }

  // ---- login: second factor ------------------------------------------------------------------------

  /**
   * Checks a TOTP code (6 digits; the current step ±1, each step accepted once) or a
   * recovery code (consumed). Call only after `verifyPassword` succeeded for this login.
   * Failures count towards the account's lockout.
   */
  async verifySecondFactor(principalId: string, codeOrRecoveryCode: string, options: { address?: string } & Now = {}): Promise<SecondFactorVerified> {
    const action = 'identity.mfa.verify';
    const now = this.#nowMs(options.now);
    const id = typeof principalId === 'string' ? principalId : '';
    this.#rateLimit(action, id, options.address, now);
    if (!validPrincipalId(id)) throw new CredentialsInvalid({ audit: this.#failure(action, id, now, 'unknown_account', null) });
    await this.#checkLock(action, id, now);
    const user = await this.#read((q) => this.#user(q, id));
    if (!user || user.disabled === 1) throw new CredentialsInvalid({ audit: this.#failure(action, id, now, user ? 'disabled' : 'unknown_account', null) });
    if (user.mfa_enrolled !== 1 || user.totp_secret_sealed === null) throw new MfaNotEnrolled({ audit: this.#failure(action, id, now, 'not_enrolled', null) });
    const code = typeof codeOrRecoveryCode === 'string' ? codeOrRecoveryCode.trim() : '';
    const at = new Date(now).toISOString();

    if (/^[0-9]{6}$/.test(code)) {
      const sealed = user.totp_secret_sealed;
      const secret = this.#box.open(`totp:${id}`, sealed);
      let result: Awaited<ReturnType<typeof verifyTotp>>;
      try {
        result = await verifyTotp(secret.toString('utf8'), code, { lastUsedStep: user.totp_last_step, now });
      } finally {
        secret.fill(0);
      }
      if (result.valid) {
        // Compare-and-set: only the first verification to store this step wins (on any node).
        const won = await this.#write(async (q) => {
          const r = await q.run('UPDATE {users} SET totp_last_step = ?, last_login_at = ? WHERE principal_id = ? AND mfa_enrolled = 1 AND totp_secret_sealed = ? AND (totp_last_step IS NULL OR totp_last_step < ?)',
            [result.step, at, id, sealed, result.step]);
          if (r !== 1) return { won: false, state: await this.#fail(q, id, now) };
          await q.run('DELETE FROM {login_failures} WHERE principal_id = ?', [id]);
          return { won: true, state: EMPTY_LOCKOUT };
        });
        if (won.won) return { principalId: id, method: 'totp', recoveryCodesLeft: await this.#read((q) => this.#recoveryCodesLeft(q, id)), audit: this.#event(action, id, at, { details: { method: 'totp', delta: result.delta } }) };
        throw new MfaCodeInvalid({ audit: this.#failure(action, id, now, 'totp_replayed', won.state) });
      }
      const state = await this.#write((q) => this.#fail(q, id, now));
      throw new MfaCodeInvalid({ audit: this.#failure(action, id, now, `totp_${result.reason}`, state) });
    }

    const hash = hashRecoveryCode(id, code);
    const outcome = await this.#write(async (q) => {
      if (hash !== null) {
        const r = await q.run('UPDATE {recovery_codes} SET used_at = ? WHERE principal_id = ? AND code_hash = ? AND used_at IS NULL', [at, id, hash]);
        if (r === 1) {
          await q.run('DELETE FROM {login_failures} WHERE principal_id = ?', [id]);
          await q.run('UPDATE {users} SET last_login_at = ? WHERE principal_id = ?', [at, id]);
          return { ok: true as const };
        }
      }
      const used = hash !== null && (await q.get('SELECT 1 AS one FROM {recovery_codes} WHERE principal_id = ? AND code_hash = ?', [id, hash])) !== undefined;
      return { ok: false as const, reason: hash === null ? 'code_malformed' : used ? 'recovery_code_used' : 'recovery_code_unknown', state: await this.#fail(q, id, now) };
    });
    if (!outcome.ok) throw new MfaCodeInvalid({ audit: this.#failure(action, id, now, outcome.reason, outcome.state) });
    const left = await this.#read((q) => this.#recoveryCodesLeft(q, id));
    return { principalId: id, method: 'recovery_code', recoveryCodesLeft: left, audit: this.#event(action, id, at, { details: { method: 'recovery_code', recoveryCodesLeft: left } }) };
  }

  // ---- TOTP enrolment --------------------------------------------------------------------------------

  /**
   * Starts enrolment: a fresh secret, sealed as *pending*; it becomes active only when
   * `confirmTotpEnrolment` sees a valid code from it. Show `secret`/`otpauthUri` (as a QR
   * code) once. Refused while an authenticator is active: replacing one is an MFA reset.
   */
  async beginTotpEnrolment(principalId: string, options: Now = {}): Promise<{ secret: string; otpauthUri: string; audit: IdentityAuditEvent }> {
    requirePrincipalId(principalId);
    const now = this.#nowMs(options.now);
    const secret = generateTotpSecret();
    const uri = otpauthUri(this.issuer, principalId, secret);
    const sealed = this.#box.seal(`totp-pending:${principalId}`, Buffer.from(secret, 'utf8'));
    const at = new Date(now).toISOString();
    await this.#write(async (q) => {
      const user = await this.#user(q, principalId);
      if (!user) throw new UserNotFound();
      if (user.mfa_enrolled === 1) throw new MfaAlreadyEnrolled();
      await q.run('UPDATE {users} SET totp_pending_sealed = ?, totp_pending_expires_ms = ?, updated_at = ? WHERE principal_id = ?',
        [sealed, now + this.#enrolmentTtlMs, at, principalId]);
    });
    return { secret, otpauthUri: uri, audit: this.#event('identity.mfa.enrol.begin', principalId, at) };
  }

  /**
   * Activates the pending secret if `code` is valid for it (its step becomes the last
   * used one, so the confirmation code cannot also log in), and issues fresh recovery
   * codes, returned once in display form.
   */
  async confirmTotpEnrolment(principalId: string, code: string, options: Now = {}): Promise<{ recoveryCodes: string[]; audit: IdentityAuditEvent }> {
    const action = 'identity.mfa.enrol.confirm';
    requirePrincipalId(principalId);
    const now = this.#nowMs(options.now);
    const user = await this.#read((q) => this.#user(q, principalId));
    if (!user) throw new UserNotFound();
    if (user.mfa_enrolled === 1) throw new MfaAlreadyEnrolled();
    const pending = user.totp_pending_sealed;
    if (pending === null || (user.totp_pending_expires_ms ?? 0) <= now) throw new MfaEnrolmentNotPending();
    const secret = this.#box.open(`totp-pending:${principalId}`, pending);
    try {
      const result = await verifyTotp(secret.toString('utf8'), typeof code === 'string' ? code.trim() : '', { now });
      if (!result.valid) throw new MfaCodeInvalid({ audit: this.#failure(action, principalId, now, `totp_${result.reason}`, null) });
      const active = this.#box.seal(`totp:${principalId}`, secret);
      const recoveryCodes = generateRecoveryCodes(RECOVERY_CODE_COUNT);
      const hashes = recoveryCodes.map((c) => hashRecoveryCode(principalId, c)!);
      const at = new Date(now).toISOString();
      await this.#write(async (q) => {
        const r = await q.run(`UPDATE {users} SET totp_secret_sealed = ?, mfa_enrolled = 1, mfa_enrolled_at = ?, totp_last_step = ?,
            totp_pending_sealed = NULL, totp_pending_expires_ms = NULL, updated_at = ?
          WHERE principal_id = ? AND mfa_enrolled = 0 AND totp_pending_sealed = ?`, [active, at, result.step, at, principalId, pending]);
        if (r !== 1) throw new MfaEnrolmentNotPending();
        await q.run('DELETE FROM {recovery_codes} WHERE principal_id = ?', [principalId]);
        for (const h of hashes) await q.run('INSERT INTO {recovery_codes} (principal_id, code_hash) VALUES (?, ?)', [principalId, h]);
      });
      return { recoveryCodes, audit: this.#event(action, principalId, at, { details: { recoveryCodesIssued: recoveryCodes.length } }) };
    } finally {
      secret.fill(0);
    }
  }

  // ---- MFA reset (two-person rule) ---------------------------------------------------------------

  /** An administrator (not the user) asks for the account's MFA to be reset. */
  async requestMfaReset(principalId: string, requestedBy: string, options: Now = {}): Promise<IdentityAuditEvent> {
    const action = 'identity.mfa.reset.request';
    requirePrincipalId(principalId);
    requirePrincipalId(requestedBy, 'requestedBy');
    const now = this.#nowMs(options.now);
    const at = new Date(now).toISOString();
    if (requestedBy === principalId) {
      throw new MfaResetForbidden('a user cannot request their own MFA reset: another administrator must', { audit: this.#failure(action, principalId, now, 'self_request', null, requestedBy) });
    }
    await this.#write(async (q) => {
      if (!(await this.#user(q, principalId))) throw new UserNotFound();
      await q.run(`INSERT INTO {mfa_reset_requests} (principal_id, requested_by, requested_at, expires_ms) VALUES (?, ?, ?, ?)
        ON CONFLICT (principal_id) DO UPDATE SET requested_by = excluded.requested_by, requested_at = excluded.requested_at, expires_ms = excluded.expires_ms`,
      [principalId, requestedBy, at, now + this.#mfaResetTtlMs]);
    });
    return this.#event(action, principalId, at, { actor: requestedBy, details: { expiresAt: new Date(now + this.#mfaResetTtlMs).toISOString() } });
  }

  /**
   * A second administrator — neither the requester nor the user — approves; the TOTP
   * secret (active and pending), the last used step and every recovery code are erased,
   * and the user must enrol again.
   */
  async approveMfaReset(principalId: string, approvedBy: string, options: Now = {}): Promise<IdentityAuditEvent> {
    const action = 'identity.mfa.reset.approve';
    requirePrincipalId(principalId);
    requirePrincipalId(approvedBy, 'approvedBy');
    const now = this.#nowMs(options.now);
    const at = new Date(now).toISOString();
    const requestedBy = await this.#write(async (q) => {
      if (!(await this.#user(q, principalId))) throw new UserNotFound();
      const req = await q.get<{ requested_by: string; expires_ms: number }>('SELECT requested_by, expires_ms FROM {mfa_reset_requests} WHERE principal_id = ?', [principalId]);
      if (!req || req.expires_ms <= now) throw new MfaResetNotRequested();
      if (approvedBy === principalId) {
        throw new MfaResetForbidden('a user cannot approve their own MFA reset', { audit: this.#failure(action, principalId, now, 'self_approval', null, approvedBy) });
      }
      if (approvedBy === req.requested_by) {
        throw new MfaResetForbidden('the administrator who requested an MFA reset cannot approve it: a second administrator must', { audit: this.#failure(action, principalId, now, 'requester_approval', null, approvedBy) });
      }
      await q.run(`UPDATE {users} SET totp_secret_sealed = NULL, totp_pending_sealed = NULL, totp_pending_expires_ms = NULL,
          mfa_enrolled = 0, mfa_enrolled_at = NULL, totp_last_step = NULL, updated_at = ? WHERE principal_id = ?`, [at, principalId]);
      await q.run('DELETE FROM {recovery_codes} WHERE principal_id = ?', [principalId]);
      await q.run('DELETE FROM {mfa_reset_requests} WHERE principal_id = ?', [principalId]);
      return req.requested_by;
    });
    return this.#event(action, principalId, at, { actor: approvedBy, details: { requestedBy } });
  }

  // ---- status ----------------------------------------------------------------------------------------

  /** The account's state for administrators (no secrets); null if there is no such user. */
  async status(principalId: string, options: Now = {}): Promise<UserStatus | null> {
    requirePrincipalId(principalId);
    const now = this.#nowMs(options.now);
    return this.#read(async (q) => {
      const u = await this.#user(q, principalId);
      if (!u) return null;
      const lock = currentLockout(await this.#lockState(q, principalId), now, this.#lockout);
      const req = await q.get<{ requested_by: string; requested_at: string; expires_ms: number }>(
        'SELECT requested_by, requested_at, expires_ms FROM {mfa_reset_requests} WHERE principal_id = ? AND expires_ms > ?', [principalId, now]);
      return {
        principalId,
        disabled: u.disabled === 1,
        mfaEnrolled: u.mfa_enrolled === 1,
        mfaEnrolmentPending: u.totp_pending_sealed !== null && (u.totp_pending_expires_ms ?? 0) > now,
        recoveryCodesLeft: await this.#recoveryCodesLeft(q, principalId),
        failedAttempts: lock.failures,
        lockedUntil: lock.lockedUntil > now ? new Date(lock.lockedUntil).toISOString() : null,
        mfaResetRequest: req ? { requestedBy: req.requested_by, requestedAt: req.requested_at, expiresAt: new Date(req.expires_ms).toISOString() } : null,
        createdAt: u.created_at,
        updatedAt: u.updated_at,
        passwordChangedAt: u.password_changed_at,
        lastLoginAt: u.last_login_at,
        mfaEnrolledAt: u.mfa_enrolled_at,
      };
    });
  }

  // ---- internals -------------------------------------------------------------------------------------

  #rateLimit(action: string, id: string, address: string | undefined, now: number): void {
    if (address === undefined) return;
    const d = this.#limiter.take(`addr:${address}`, now);
    if (!d.allowed) throw new RateLimited(d.retryAfterMs, { audit: this.#failure(action, id, now, 'rate_limited', null, undefined, { address }) });
  }

  async #checkLock(action: string, id: string, now: number): Promise<void> {
    const remaining = lockRemainingMs(await this.#read((q) => this.#lockState(q, id)), now, this.#lockout);
    if (remaining > 0) throw new AccountLocked(remaining, { audit: this.#failure(action, id, now, 'locked', null) });
  }

  /** Records one failure for `id` (known or not); runs inside a write transaction. */
  async #fail(q: SqlQueries, id: string, now: number): Promise<LockoutState> {
    const next = recordFailure(await this.#lockState(q, id), now, this.#lockout);
    await q.run(`INSERT INTO {login_failures} (principal_id, failures, locked_until_ms, last_failure_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT (principal_id) DO UPDATE SET failures = excluded.failures, locked_until_ms = excluded.locked_until_ms, last_failure_ms = excluded.last_failure_ms`,
    [id, next.failures, next.lockedUntil, next.lastFailureAt]);
    // Bound the table: forget quiet, unlocked entries (they would reset anyway) beyond the cap.
    const { n } = (await q.get<{ n: number }>('SELECT count(*) AS n FROM {login_failures}'))!;
    if (n > MAX_FAILURE_ROWS) {
      await q.run(`DELETE FROM {login_failures} WHERE principal_id IN (SELECT principal_id FROM {login_failures}
        WHERE locked_until_ms <= ? ORDER BY last_failure_ms LIMIT ?)`, [now, n - MAX_FAILURE_ROWS]);
    }
    return next;
  }

  async #lockState(q: SqlQueries, id: string): Promise<LockoutState> {
    const row = await q.get<{ failures: number; locked_until_ms: number; last_failure_ms: number }>(
      'SELECT failures, locked_until_ms, last_failure_ms FROM {login_failures} WHERE principal_id = ?', [id]);
    return row ? { failures: row.failures, lockedUntil: row.locked_until_ms, lastFailureAt: row.last_failure_ms } : EMPTY_LOCKOUT;
  }

  #user(q: SqlQueries, id: string): Promise<UserRow | undefined> {
    return q.get<UserRow>('SELECT * FROM {users} WHERE principal_id = ?', [id]);
  }

  async #recoveryCodesLeft(q: SqlQueries, id: string): Promise<number> {
    return (await q.get<{ n: number }>('SELECT count(*) AS n FROM {recovery_codes} WHERE principal_id = ? AND used_at IS NULL', [id]))!.n;
  }

  #event(action: string, principalId: string, at: string, extra: { actor?: string; details?: IdentityAuditEvent['details'] } = {}): IdentityAuditEvent {
    return { action, outcome: 'success', principalId, at, ...(extra.actor !== undefined ? { actor: extra.actor } : {}), ...(extra.details ? { details: extra.details } : {}) };
  }

  #failure(action: string, principalId: string, now: number, reason: string, state: LockoutState | null, actor?: string, details: Record<string, string | number | boolean | null> = {}): IdentityAuditEvent {
    const d: Record<string, string | number | boolean | null> = { ...details };
    if (state) {
      d.failures = state.failures;
      d.lockedUntil = state.lockedUntil > now ? new Date(state.lockedUntil).toISOString() : null;
    }
    return {
      action, outcome: 'failure', principalId: principalId.slice(0, MAX_PRINCIPAL_ID), reason, at: new Date(now).toISOString(),
      ...(actor !== undefined ? { actor } : {}), ...(Object.keys(d).length > 0 ? { details: d } : {}),
    };
  }

  #nowMs(now: Date | undefined): number {
    const t = (now ?? this.#clock()).getTime();
    if (!Number.isFinite(t)) throw new IdentityInputInvalid('now must be a valid date');
    return t;
  }

  #iso(now: Date | undefined): string {
    return new Date(this.#nowMs(now)).toISOString();
  }

  #live(): void {
    if (this.#closed) throw new IdentityStoreUnavailable('the user store is closed');
  }

  /**
   * One write transaction (sqlite: BEGIN IMMEDIATE, its busy timeout waits for other
   * writers; PostgreSQL: SERIALIZABLE, re-run on a conflict with another node).
   */
  async #write<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    this.#live();
    try {
      return await this.#sql.write(fn);
    } catch (err) {
      if (err instanceof IdentityError) throw err;
      throw new IdentityStoreUnavailable('user store error', { cause: err });
    }
  }

  async #read<T>(fn: (q: SqlQueries) => Promise<T>): Promise<T> {
    this.#live();
    try {
      return await this.#sql.read(fn);
    } catch (err) {
      if (err instanceof IdentityError) throw err;
      throw new IdentityStoreUnavailable('user store error', { cause: err });
    }
  }
}
