/**
 * Password hashing and password policy for built-in users.
 *
 * Hashing: scrypt (RFC 7914), memory-hard, from node:crypto. Default cost N=2^15, r=8,
 * p=1 (32 MiB, ~0.1 s on a server core; the parameters OWASP's password storage guidance
 * lists for scrypt), a fresh 16-byte random salt per hash and a 32-byte output. The
 * encoded form names everything needed to verify it, so the cost can be raised later
 * without a migration (`needsRehash` tells the caller when to re-hash at the next login):
 *
 *     scrypt$<N>$<r>$<p>$<salt, base64url>$<hash, base64url>
 *
 * Verification recomputes the hash and compares with crypto.timingSafeEqual.
 *
 * Policy (NIST SP 800-63B §5.1.1.2 / 800-63B-4 §3.1.1.2): at least 12 characters
 * (Unicode code points after NFKC normalisation, which is also what is hashed), at most
 * 1,024; no composition rules; rejected when it is one of a small embedded list of about
 * 100 of the most common breached passwords (SecLists' "10-million-password-list-top-100"
 * plus a few long favourites) or such a password with digits/symbols around it, a run of
 * one repeated character or an ascending/descending sequence, or the account's own
 * identifier. The list is deliberately small: it is not a breach corpus. An organisation
 * that needs the full NIST "compromised passwords" check should put an external identity
 * provider (OIDC) in front.
 *
 * `IdentityError`, the base of every identity error, lives here because every identity
 * module (and this one first) depends on it, and this module depends only on src/errors.ts.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { codeFor, GatehouseError, type ErrorCode } from '../errors.ts';

// ---- errors shared by src/identity/* --------------------------------------------------------------

/** Small, secret-free description of an identity event, for the audit log. */
export interface IdentityAuditEvent {
  /** e.g. "identity.password.verify", "identity.mfa.reset.approve". */
  readonly action: string;
  readonly outcome: 'success' | 'failure';
  /** The account the event is about (as typed, for failed logins of unknown accounts). */
  readonly principalId: string;
  /** Who caused it when that is not the account itself (an admin). */
  readonly actor?: string;
  /** Machine-readable reason for failures (never shown to the caller: it may say "unknown account"). */
  readonly reason?: string;
  readonly at: string;
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
}

/**
 * Base of every identity error in src/identity (sessions, OIDC, API keys and the built-in
 * users): a GatehouseError whose `code` comes from IDENTITY_CODES (or the HTTP status the
 * error was raised with) and whose `detail` is the identity part's own code
 * (`IDENTITY_ACCOUNT_LOCKED`, `TOKEN_EXPIRED`), also the first of its `reasons` so audit
 * entries keep it. Messages never contain passwords, codes, tokens, secrets or whether an
 * account exists. `audit`, when present, is the entry the caller should record for a
 * refused attempt; its `reason` is for operators only and never leaves in `toJSON`.
 * `retryAfterSeconds` is set by lockouts and rate limits (sent as Retry-After).
 */
export class IdentityError extends GatehouseError {
  declare readonly detail: string;
  readonly audit: IdentityAuditEvent | null;
  constructor(code: string, message: string, status: number, options: IdentityErrorOptions = {}) {
    super(codeFor(code, IDENTITY_CODES, status), message, {
      detail: code, reasons: options.reasons ?? [code], cause: options.cause, retryAfterSeconds: options.retryAfterSeconds ?? null,
    });
    this.audit = options.audit ?? null;
  }
}

/**
 * Identity codes whose union code the HTTP status alone would get wrong; every other code
 * follows CODE_BY_STATUS (401 → AUTH_INVALID, 409 → CONFLICT, 429 → RATE_LIMITED, 503 → UNAVAILABLE).
 */
export const IDENTITY_CODES: Readonly<Record<string, ErrorCode>> = {
  IDENTITY_MFA_CODE_REQUIRED: 'MFA_REQUIRED',
  // A disabled account is answered like any invalid credential (401 or 403 when raised).
  IDENTITY_ACCOUNT_DISABLED: 'AUTH_INVALID',
};

export interface IdentityErrorOptions { readonly audit?: IdentityAuditEvent; readonly retryAfterSeconds?: number; readonly cause?: unknown; readonly reasons?: readonly string[] }

/** The password breaks the policy; `reasons` says which rule, never echoing the password. */
export class PasswordPolicyViolation extends IdentityError {
  constructor(reasons: readonly string[]) {
    super('IDENTITY_PASSWORD_POLICY', `password rejected: ${reasons.join('; ')}`, 400, { reasons: ['IDENTITY_PASSWORD_POLICY', ...reasons] });
  }
}

/** A stored hash that is not a well-formed `scrypt$...` string (damaged store). */
export class PasswordHashInvalid extends IdentityError {
  constructor(message: string) { super('IDENTITY_PASSWORD_HASH_INVALID', message, 500); }
}

// ---- hashing ------------------------------------------------------------------------------

export interface ScryptParams { readonly N: number; readonly r: number; readonly p: number }

/** RFC 7914 cost used for new hashes. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Bounds accepted when parsing a stored hash, so a damaged row cannot ask for 1 TiB. */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 128 * params.N * params.r * params.p + 32 * 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCb(Buffer.from(password, 'utf8'), salt, HASH_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function checkParams(params: ScryptParams): void {
  const { N, r, p } = params;
  const ok = Number.isSafeInteger(N) && N >= 2 && N <= MAX_N && (N & (N - 1)) === 0
    && Number.isSafeInteger(r) && r >= 1 && r <= MAX_R && Number.isSafeInteger(p) && p >= 1 && p <= MAX_P;
  if (!ok) throw new PasswordHashInvalid('scrypt parameters out of range');
}

/** NFKC, as NIST SP 800-63B asks, so the same password typed on two keyboards matches. */
function normalise(password: string): string {
  return password.normalize('NFKC');
}

interface ParsedHash { readonly params: ScryptParams; readonly salt: Buffer; readonly hash: Buffer }

function parseHash(encoded: string): ParsedHash {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') throw new PasswordHashInvalid('stored password hash is not in scrypt$N$r$p$salt$hash form');
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  if (![n, r, p].every((x) => /^[1-9][0-9]{0,8}$/.test(x))) throw new PasswordHashInvalid('stored password hash has malformed parameters');
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  checkParams(params);
  const s = Buffer.from(salt, 'base64url');
  const h = Buffer.from(hash, 'base64url');
  if (s.length < 16 || h.length !== HASH_BYTES) throw new PasswordHashInvalid('stored password hash has a bad salt or hash length');
  return { params, salt: s, hash: h };
}

/**
 * Hashes a password (after NFKC) with a fresh salt. Does not apply the policy: call
 * `checkPasswordPolicy` first when the password is being chosen.
 */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  if (typeof password !== 'string') throw new PasswordPolicyViolation(['not a string']);
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const hash = await scrypt(normalise(password), salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** True iff `password` matches `encoded`; constant-time comparison of the derived keys. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const { params, salt, hash } = parseHash(encoded);
  // Overlong input is never a valid password; bound the work without a shortcut that
  // would reveal anything (the policy caps chosen passwords at the same length).
  if (typeof password !== 'string' || password.length > PASSWORD_MAX_LENGTH * 4) return false;
  const candidate = await scrypt(normalise(password), salt, params);
  const equal = timingSafeEqual(candidate, hash);
  candidate.fill(0);
  return equal;
}

/** True when `encoded` was made with a cost below `params` (re-hash after the next successful login). */
export function needsRehash(encoded: string, params: ScryptParams = DEFAULT_SCRYPT): boolean {
  const parsed = parseHash(encoded).params;
  return parsed.N < params.N || parsed.r < params.r || parsed.p < params.p;
}

/** One decoy hash per cost (a store may use a non-default cost: UserStoreOptions.scrypt). */
const decoys = new Map<string, Promise<string>>();

function decoyFor(params: ScryptParams): Promise<string> {
  const key = `${params.N}$${params.r}$${params.p}`;
  let d = decoys.get(key);
  if (!d) { d = hashPassword(randomBytes(32).toString('base64url'), params); decoys.set(key, d); }
  return d;
}

/** Makes the decoy hash ahead of time, so the first unknown-account attempt is not slower. */
export async function prepareDecoy(params: ScryptParams = DEFAULT_SCRYPT): Promise<void> {
  await decoyFor(params);
}

/**
 * Spends the same work as verifying against a real hash made with `params` (the cost the
 * store hashes with, `DEFAULT_SCRYPT` unless configured), and returns false. Used for unknown
 * or disabled accounts so that a login attempt takes as long whether or not the account exists.
 */
export async function verifyPasswordDecoy(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<false> {
  await verifyPassword(password, await decoyFor(params));
  return false;
}

// ---- policy -------------------------------------------------------------------------------

/**
 * About 100 of the most common passwords in public breach-frequency lists (SecLists,
 * "10-million-password-list-top-100", with the obscene entries left out and a few common
 * long passwords added). Most are shorter than 12 characters and already fail the length
 * rule; they matter here as *stems*: "Password2024!" and "123qwe123qwe" are refused.
 */
const COMMON_PASSWORDS: ReadonlySet<string> = new Set([
  '123456', 'password', '12345678', 'qwerty', '123456789', '12345', '1234', '111111', '1234567', 'dragon',
  '123123', 'baseball', 'abc123', 'football', 'monkey', 'letmein', '696969', 'shadow', 'master', '666666',
  'qwertyuiop', '123321', 'mustang', '1234567890', 'michael', '654321', 'superman', '1qaz2wsx', '7777777', '121212',
  '000000', 'qazwsx', '123qwe', 'killer', 'trustno1', 'jordan', 'jennifer', 'zxcvbnm', 'asdfgh', 'hunter',
  'buster', 'soccer', 'harley', 'batman', 'andrew', 'tigger', 'sunshine', 'iloveyou', 'charlie', 'robert',
  'thomas', 'hockey', 'ranger', 'daniel', 'starwars', 'klaster', '112233', 'george', 'computer', 'michelle',
  'jessica', 'pepper', '1111', 'zxcvbn', '555555', '11111111', '131313', 'freedom', '777777', 'pass',
  'maggie', '159753', 'aaaaaa', 'ginger', 'princess', 'joshua', 'cheese', 'amanda', 'summer', 'love',
  'ashley', 'nicole', 'chelsea', 'matthew', 'access', 'yankees', '987654321', 'dallas', 'austin', 'thunder',
  'taylor', 'matrix', 'welcome', 'admin', 'login', 'passw0rd', 'qwerty123', '1q2w3e4r', 'changeme', 'secret',
  'letmein123', 'password1', 'qwertyuiopasdfghjkl', 'correcthorsebatterystaple', 'administrator', 'gatehouse',
]);

/** Cyclic runs: "789012" and "xyzabc" count as sequences too. */
const SEQUENCES = ['abcdefghijklmnopqrstuvwxyz'.repeat(3), '0123456789'.repeat(4), 'qwertyuiop', 'asdfghjkl', 'zxcvbnm'];

function isRunOrSequence(s: string): boolean {
  if (s.length < 3) return false;
  if ([...s].every((c) => c === s[0])) return true;
  return SEQUENCES.some((seq) => seq.includes(s) || [...seq].reverse().join('').includes(s));
}

/** The password's repeated unit, if it is one word written several times ("abcabcabc" → "abc"). */
function repeatedUnit(s: string): string {
  for (let len = 1; len <= s.length / 2; len++) {
    if (s.length % len === 0 && s.slice(0, len).repeat(s.length / len) === s) return s.slice(0, len);
  }
  return s;
}

/**
 * Returns the rules `password` breaks (empty when acceptable). `context` lists strings
 * the password must not be or contain (the principal id, the service name).
 */
export function passwordPolicyViolations(password: string, context: readonly string[] = []): string[] {
  if (typeof password !== 'string') return ['not a string'];
  const p = normalise(password);
  const length = [...p].length;
  const out: string[] = [];
  if (length < PASSWORD_MIN_LENGTH) out.push(`shorter than ${PASSWORD_MIN_LENGTH} characters`);
  if (length > PASSWORD_MAX_LENGTH) out.push(`longer than ${PASSWORD_MAX_LENGTH} characters`);
  const lower = p.toLowerCase();
  const stem = lower.replace(/^[\d\W_]+|[\d\W_]+$/gu, '');
  const unit = repeatedUnit(lower);
  if (COMMON_PASSWORDS.has(lower) || COMMON_PASSWORDS.has(stem) || COMMON_PASSWORDS.has(unit) || COMMON_PASSWORDS.has(repeatedUnit(stem))) {
    out.push('a commonly used password');
  } else if (isRunOrSequence(lower) || isRunOrSequence(unit) || (stem !== '' && isRunOrSequence(stem) && lower.replace(stem, '').length <= 4)) {
    out.push('a repeated character or a keyboard/alphabet sequence');
  }
  for (const c of context) {
    const word = c.normalize('NFKC').toLowerCase();
    if (word.length >= 4 && lower.includes(word)) { out.push('contains the account name'); break; }
  }
  return out;
}

/** Throws PasswordPolicyViolation unless `password` is acceptable. */
export function checkPasswordPolicy(password: string, context: readonly string[] = []): void {
  const reasons = passwordPolicyViolations(password, context);
  if (reasons.length > 0) throw new PasswordPolicyViolation(reasons);
}
