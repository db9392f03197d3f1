/**
 * Session tokens: short-lived signed access tokens, rotating refresh tokens and
 * server-side revocation.
 *
 * - Access tokens are JWTs (RFC 7519) signed with EdDSA over Ed25519 (RFC 8037, RFC 8032)
 *   through `jose`, typed `at+jwt` (RFC 9068 §2.1) so no other Gatehouse JWT can be
 *   replayed as one. Claims: iss, aud, sub (principal), sid (session), iat, nbf, exp,
 *   amr (RFC 8176 values such as "pwd", "otp"), mfa_at (epoch seconds of the last MFA
 *   event). Verification accepts exactly one algorithm, EdDSA (RFC 8725 §3.1: the
 *   verifier, never the token, chooses the algorithm), so `alg: none` and HS256 made
 *   with the public key as an HMAC secret are refused before any key is touched.
 * - Refresh tokens are opaque 256-bit random strings, stored only as SHA-256 digests.
 *   Each use returns a new one and marks the old one used; presenting a used one again
 *   is treated as theft and revokes the whole session ("refresh token rotation" with
 *   reuse detection, OAuth 2.0 Security BCP, RFC 9700 §4.14.2).
 * - Revocation is checked on every verify against an in-memory set of revoked session
 *   ids that mirrors the sqlite table. Another process's revocation is noticed through
 *   `PRAGMA data_version` (one cheap read per verify), so a revoked session is refused on
 *   the very next call in every process that shares the database.
 * - Signing keys are sealed at rest exactly like the audit log's (scrypt + AES-256-GCM,
 *   src/audit/keys.ts). Rotation erases the old private half; its public half stays so
 *   tokens signed before the rotation keep verifying until they expire.
 *
 * This file also holds the typed token errors (TOKEN_*) shared by every identity token
 * check (sessions, OIDC), all subclasses of `IdentityError` (./password.ts): callers
 * match on `code` and map `status` to the HTTP response. Messages never carry tokens,
 * keys, passphrases or principal identifiers.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  SignJWT, errors as joseErrors, jwtVerify, type JWK, type JWTPayload, type JWTHeaderParameters,
} from 'jose';
import { loadOrCreateSealedEd25519, resolvePassphrase } from '../audit/keys.ts';
import { writeFileAtomicSync } from '../audit/fsutil.ts';
import { IdentityError } from './password.ts';

// ---- Errors ------------------------------------------------------------------------------

/** Not a compact JWS/JWT, undecodable header or payload, or an unsupported construct. */
export class TokenMalformed extends IdentityError {
  constructor(message = 'the token is malformed', options?: { cause?: unknown }) { super('TOKEN_MALFORMED', message, 401, options); }
}
/** The token's `alg` is not on the verifier's allowlist (`none`, HS256, ...). */
export class TokenAlgorithmNotAllowed extends IdentityError {
  constructor(options?: { cause?: unknown }) { super('TOKEN_ALG_NOT_ALLOWED', 'the token\'s signing algorithm is not allowed', 401, options); }
}
/** The signature does not verify under the key the token names. */
export class TokenSignatureInvalid extends IdentityError {
  constructor(options?: { cause?: unknown }) { super('TOKEN_SIGNATURE_INVALID', 'the token\'s signature does not verify', 401, options); }
}
/** The token names no `kid`, or a `kid` the verifier does not know (even after a refetch). */
export class TokenKeyUnknown extends IdentityError {
  constructor(options?: { cause?: unknown }) { super('TOKEN_KEY_UNKNOWN', 'the token is signed with an unknown key', 401, options); }
}
export class TokenExpired extends IdentityError {
  constructor(options?: { cause?: unknown }) { super('TOKEN_EXPIRED', 'the token has expired', 401, options); }
}
/** `nbf` is in the future (beyond the clock tolerance). */
export class TokenNotYetValid extends IdentityError {
  constructor(options?: { cause?: unknown }) { super('TOKEN_NOT_YET_VALID', 'the token is not yet valid', 401, options); }
}
export class TokenIssuerInvalid extends IdentityError {
  constructor(options?: { cause?: unknown }) { super('TOKEN_ISSUER_INVALID', 'the token was issued by an unexpected issuer', 401, options); }
}
export class TokenAudienceInvalid extends IdentityError {
  constructor(options?: { cause?: unknown }) { super('TOKEN_AUDIENCE_INVALID', 'the token is not meant for this audience', 401, options); }
}
/** A required claim is missing or has the wrong type, or the `typ` header is wrong. */
export class TokenClaimInvalid extends IdentityError {
  readonly claim: string;
  constructor(claim: string, options?: { cause?: unknown }) {
    super('TOKEN_CLAIM_INVALID', `the token's "${claim}" is missing or invalid`, 401, options);
    this.claim = claim;
  }
}
/** The session was revoked (logout, admin action, disabled user, refresh token theft). */
export class SessionRevoked extends IdentityError {
  constructor() { super('SESSION_REVOKED', 'the session was revoked', 401); }
}
/** The session reached its absolute lifetime: log in again. */
export class SessionExpired extends IdentityError {
  constructor() { super('SESSION_EXPIRED', 'the session has expired; log in again', 401); }
}
export class SessionNotFound extends IdentityError {
  constructor() { super('SESSION_NOT_FOUND', 'no such session', 401); }
}
/** Unknown or malformed refresh token. */
export class RefreshTokenInvalid extends IdentityError {
  constructor() { super('REFRESH_TOKEN_INVALID', 'the refresh token is invalid', 401); }
}
export class RefreshTokenExpired extends IdentityError {
  constructor() { super('REFRESH_TOKEN_EXPIRED', 'the refresh token has expired; log in again', 401); }
}
/** A refresh token was presented after it had been used: the session was revoked. */
export class RefreshTokenReused extends IdentityError {
  constructor() { super('REFRESH_TOKEN_REUSED', 'the refresh token was already used; the session has been revoked', 401); }
}
/** A caller passed a malformed argument (programming error, not an attack). */
export class IdentityInputInvalid extends IdentityError {
  constructor(message: string) { super('IDENTITY_INPUT_INVALID', message, 400); }
}
/** Deployment configuration is invalid (issuer, audience, algorithms, claim mapping). */
export class IdentityConfigInvalid extends IdentityError {
  constructor(message: string) { super('IDENTITY_CONFIG_INVALID', message, 500); }
}
/** Signing keys are missing, damaged, or the passphrase is wrong. */
export class IdentityKeyUnavailable extends IdentityError {
  constructor(message: string, options?: { cause?: unknown }) { super('IDENTITY_KEY_UNAVAILABLE', message, 500, options); }
}
/** The identity database cannot be opened or written, or is closed. */
export class IdentityStoreUnavailable extends IdentityError {
  constructor(message: string, options?: { cause?: unknown }) { super('IDENTITY_STORE_UNAVAILABLE', message, 503, options); }
}

/**
 * Maps an error thrown by `jose` while verifying a JWT to the identity error with its
 * stable code. Errors that are already identity errors pass through; anything else is
 * rethrown unchanged (a bug, not a bad token).
 */
export function fromJoseError(err: unknown): IdentityError {
  if (err instanceof IdentityError) return err;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new TokenAlgorithmNotAllowed({ cause: err });
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new TokenSignatureInvalid({ cause: err });
  if (err instanceof joseErrors.JWTExpired) return new TokenExpired({ cause: err });
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new TokenKeyUnknown({ cause: err });
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return new TokenNotYetValid({ cause: err });
    if (err.claim === 'iss') return new TokenIssuerInvalid({ cause: err });
    if (err.claim === 'aud') return new TokenAudienceInvalid({ cause: err });
    return new TokenClaimInvalid(err.claim, { cause: err });
  }
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return new TokenKeyUnknown({ cause: err });
  // JWSInvalid, JWTInvalid, JOSENotSupported, JWKInvalid and the rest: not a token we can use.
  if (err instanceof joseErrors.JOSEError) return new TokenMalformed(undefined, { cause: err });
  // jose reports a key that does not fit the algorithm as a TypeError ("CryptoKey does not
  // support this operation" and the like): the token named a key of the wrong type.
  if (err instanceof TypeError) return new TokenSignatureInvalid({ cause: err });
  throw err;
}

// ---- Signing keys --------------------------------------------------------------------------

interface SessionKeyRecord {
  readonly kid: string;
  /** Public JWK (OKP / Ed25519). */
  readonly jwk: JWK;
  readonly createdAt: string;
  readonly retiredAt: string | null;
}
interface SessionKeyIndex { readonly version: 1; readonly keys: SessionKeyRecord[] }

const INDEX_FILE = 'session-keys.json';
const privateFile = (kid: string): string => `session-signing-${kid}.json`;
const purposeOf = (kid: string): string => `session-signing-key:${kid}`;

/**
 * The session signing keys in `dir`: `session-keys.json` lists every key's public half;
 * `session-signing-<kid>.json` holds the active private key sealed with the passphrase
 * (the format of src/audit/keys.ts `loadOrCreateSealedEd25519`, purpose bound to the kid).
 */
class SessionKeyring {
  readonly dir: string;
  #passphrase: string;
  #index: SessionKeyIndex;
  #active: { kid: string; key: KeyObject };
  #public = new Map<string, KeyObject>();
  #lastReload = 0;

  constructor(dir: string, passphrase: string) {
    this.dir = dir;
    this.#passphrase = passphrase;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, INDEX_FILE);
    if (existsSync(path)) {
      this.#index = readIndex(path);
    } else {
      const rec = this.#createKey(new Date());
      this.#index = { version: 1, keys: [rec] };
      writeFileAtomicSync(path, JSON.stringify(this.#index, null, 2) + '\n', 0o600);
    }
    this.#active = this.#loadActive();
    this.#loadPublic();
  }

  get activeKid(): string { return this.#active.kid; }
  get activeKey(): KeyObject { return this.#active.key; }

  #createKey(now: Date): SessionKeyRecord {
    const kid = randomBytes(12).toString('base64url');
    const key = loadOrCreateSealedEd25519(join(this.dir, privateFile(kid)), this.#passphrase, purposeOf(kid));
    const jwk = createPublicKey(key).export({ format: 'jwk' }) as JWK;
    return { kid, jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' }, createdAt: now.toISOString(), retiredAt: null };
  }

  #loadActive(): { kid: string; key: KeyObject } {
    const active = this.#index.keys.find((k) => k.retiredAt === null);
    if (!active) throw new IdentityKeyUnavailable('no active session signing key');
    const path = join(this.dir, privateFile(active.kid));
    // loadOrCreate would silently make a new key if the file were missing: refuse instead.
    if (!existsSync(path)) throw new IdentityKeyUnavailable('the active session signing key file is missing');
    let key: KeyObject;
    try {
      key = loadOrCreateSealedEd25519(path, this.#passphrase, purposeOf(active.kid));
    } catch (err) {
      throw new IdentityKeyUnavailable('cannot decrypt the session signing key: wrong passphrase or damaged key file', { cause: err });
    }
    const x = (createPublicKey(key).export({ format: 'jwk' }) as JWK).x;
    if (x !== active.jwk.x) throw new IdentityKeyUnavailable('the session signing key does not match its recorded public key');
    return { kid: active.kid, key };
  }

  #loadPublic(): void {
    this.#public.clear();
    for (const k of this.#index.keys) {
      if (k.jwk.kty !== 'OKP' || k.jwk.crv !== 'Ed25519' || typeof k.jwk.x !== 'string') throw new IdentityKeyUnavailable('a session public key is not an Ed25519 JWK');
      this.#public.set(k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.jwk.x }, format: 'jwk' }));
    }
  }

  /**
   * The public key for `kid`. An unknown kid re-reads the index once a second at most, so
   * a rotation done by another process is picked up without letting random kids turn
   * every request into a file read.
   */
  publicKey(kid: string): KeyObject | undefined {
    const hit = this.#public.get(kid);
    if (hit) return hit;
    const now = Date.now();
    if (now - this.#lastReload < 1000) return undefined;
    this.#lastReload = now;
    const index = readIndex(join(this.dir, INDEX_FILE));
    if (index.keys.length === this.#index.keys.length) return undefined;
    this.#index = index;
    this.#loadPublic();
    const active = index.keys.find((k) => k.retiredAt === null);
    if (active && active.kid !== this.#active.kid && existsSync(join(this.dir, privateFile(active.kid)))) this.#active = this.#loadActive();
    return this.#public.get(kid);
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.#index.keys.map((k) => ({ ...k.jwk })) };
  }

  history(): readonly { kid: string; createdAt: string; retiredAt: string | null }[] {
    return this.#index.keys.map(({ kid, createdAt, retiredAt }) => ({ kid, createdAt, retiredAt }));
  }

  rotate(now: Date): string {
    const fresh = this.#createKey(now);
    const old = this.#active.kid;
    const keys = this.#index.keys.map((k) => (k.retiredAt === null ? { ...k, retiredAt: now.toISOString() } : k));
    keys.push(fresh);
    const index: SessionKeyIndex = { version: 1, keys };
    writeFileAtomicSync(join(this.dir, INDEX_FILE), JSON.stringify(index, null, 2) + '\n', 0o600);
    this.#index = index;
    // Erase the retired private half only once the index no longer calls it active.
    rmSync(join(this.dir, privateFile(old)), { force: true });
    this.#active = this.#loadActive();
    this.#loadPublic();
    return fresh.kid;
  }

  close(): void { this.#passphrase = ''; }
}

function readIndex(path: string): SessionKeyIndex {
  try {
    const index = JSON.parse(readFileSync(path, 'utf8')) as SessionKeyIndex;
    if (index.version !== 1 || !Array.isArray(index.keys)) throw new Error('unknown format');
    return index;
  } catch (err) {
    throw new IdentityKeyUnavailable('the session key index is unreadable', { cause: err });
  }
}

// ---- Session service -----------------------------------------------------------------------

export interface SessionServiceOptions {
  /** sqlite database file (may be shared with other identity tables, e.g. api keys). */
  readonly path: string;
  /** Directory for the sealed signing keys (created 0700). */
  readonly keyDir: string;
  /** Passphrase sealing the private key; defaults to GATEHOUSE_KEY_PASSPHRASE. */
  readonly passphrase?: string;
  /** Allow the public demo passphrase when none is configured (`--demo` only). */
  readonly allowDemoPassphrase?: boolean;
  /** `iss` of every token, fixed per deployment (e.g. "https://gatehouse.example.org"). */
  readonly issuer: string;
  /** `aud` of every token, fixed per deployment (e.g. "gatehouse"). */
  readonly audience: string;
  /** Access-token lifetime; default 900 s (15 min). */
  readonly accessTtlSec?: number;
  /** Refresh-token lifetime from its issue (idle timeout); default 8 h. */
  readonly refreshTtlSec?: number;
  /** Absolute session lifetime: no token of the session outlives it; default 24 h. */
  readonly sessionTtlSec?: number;
  /** Clock skew accepted on exp/nbf; default 5 s. */
  readonly clockToleranceSec?: number;
  /** Busy timeout for the sqlite connection; default 5000 ms. */
  readonly busyTimeoutMs?: number;
  readonly clock?: () => Date;
}

export interface IssuedTokens {
  readonly accessToken: string;
  /** Opaque; shown to the client once, stored only as SHA-256. */
  readonly refreshToken: string;
  /** Epoch seconds at which the access token expires. */
  readonly expiresAt: number;
  readonly sessionId: string;
}

export interface VerifiedSession {
  readonly principalId: string;
  readonly sessionId: string;
  readonly amr: readonly string[];
  /** Epoch seconds of the last MFA event, or null if the session never had one. */
  readonly mfaAt: number | null;
  /** Epoch seconds at which the access token expires. */
  readonly expiresAt: number;
}

export interface SessionInfo {
  readonly sessionId: string;
  readonly principalId: string;
  readonly amr: readonly string[];
  readonly mfaAt: number | null;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
  readonly revokedReason: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS identity_sessions (
  sid            TEXT PRIMARY KEY,
  principal_id   TEXT NOT NULL,
  amr            TEXT NOT NULL,
  mfa_at         INTEGER,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  revoked_at     INTEGER,
  revoked_reason TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS identity_sessions_principal ON identity_sessions(principal_id);
CREATE INDEX IF NOT EXISTS identity_sessions_revoked ON identity_sessions(expires_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS identity_refresh_tokens (
  hash       BLOB PRIMARY KEY,
  sid        TEXT NOT NULL REFERENCES identity_sessions(sid),
  issued_at  INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS identity_refresh_tokens_sid ON identity_refresh_tokens(sid);
`;

const ACCESS_TYP = 'at+jwt';
const REFRESH_PREFIX = 'ghr_';
const REFRESH_RE = /^ghr_[A-Za-z0-9_-]{43}$/;
const AMR_RE = /^[A-Za-z0-9_.-]{1,32}$/;
const MAX_ID = 256;

interface SessionRow {
  sid: string; principal_id: string; amr: string; mfa_at: number | null;
  created_at: number; expires_at: number; revoked_at: number | null; revoked_reason: string | null;
}
interface RefreshRow { hash: Uint8Array; sid: string; issued_at: number; expires_at: number; used_at: number | null }

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const epoch = (d: Date): number => Math.floor(d.getTime() / 1000);

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) throw new IdentityConfigInvalid(`${name} must be a positive integer`);
  return v;
}

function checkAmr(amr: unknown): string[] {
  if (!Array.isArray(amr) || amr.length === 0 || amr.length > 16 || !amr.every((a) => typeof a === 'string' && AMR_RE.test(a))) {
    throw new IdentityInputInvalid('amr must be a non-empty list of authentication method references such as "pwd", "otp"');
  }
  return [...new Set(amr as string[])];
}

export class SessionService {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTtlSec: number;
  readonly refreshTtlSec: number;
  readonly sessionTtlSec: number;
  #tolerance: number;
  #clock: () => Date;
  #db: DatabaseSync;
  #keys: SessionKeyring;
  #revoked = new Set<string>();
  #dataVersion = -1;
  #closed = false;
  #st: {
    dataVersion: StatementSync; revokedLive: StatementSync; insertSession: StatementSync; insertRefresh: StatementSync;
    session: StatementSync; refresh: StatementSync; useRefresh: StatementSync; revoke: StatementSync;
    revokeAll: StatementSync; stepUp: StatementSync; list: StatementSync;
  };

  private constructor(db: DatabaseSync, keys: SessionKeyring, o: SessionServiceOptions) {
    this.#db = db;
    this.#keys = keys;
    this.issuer = o.issuer;
    this.audience = o.audience;
    this.accessTtlSec = positiveInt('accessTtlSec', o.accessTtlSec, 900);
    this.refreshTtlSec = positiveInt('refreshTtlSec', o.refreshTtlSec, 8 * 3600);
    this.sessionTtlSec = positiveInt('sessionTtlSec', o.sessionTtlSec, 24 * 3600);
    this.#tolerance = o.clockToleranceSec ?? 5;
    this.#clock = o.clock ?? (() => new Date());
    this.#st = {
      dataVersion: db.prepare('PRAGMA data_version'),
      revokedLive: db.prepare('SELECT sid FROM identity_sessions WHERE revoked_at IS NOT NULL AND expires_at > ?'),
      insertSession: db.prepare('INSERT INTO identity_sessions (sid, principal_id, amr, mfa_at, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      insertRefresh: db.prepare('INSERT INTO identity_refresh_tokens (hash, sid, issued_at, expires_at) VALUES (?, ?, ?, ?)'),
      session: db.prepare('SELECT * FROM identity_sessions WHERE sid = ?'),
      refresh: db.prepare('SELECT * FROM identity_refresh_tokens WHERE hash = ?'),
      useRefresh: db.prepare('UPDATE identity_refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL'),
      revoke: db.prepare('UPDATE identity_sessions SET revoked_at = ?, revoked_reason = ? WHERE sid = ? AND revoked_at IS NULL'),
      revokeAll: db.prepare('UPDATE identity_sessions SET revoked_at = ?, revoked_reason = ? WHERE principal_id = ? AND revoked_at IS NULL AND expires_at > ? RETURNING sid'),
      stepUp: db.prepare('UPDATE identity_sessions SET mfa_at = ?, amr = ? WHERE sid = ?'),
      list: db.prepare('SELECT * FROM identity_sessions WHERE principal_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at'),
    };
    this.#syncRevoked(true);
  }

  /** Opens (creating if needed) the session tables and the signing keys. */
  static open(options: SessionServiceOptions): SessionService {
    if (typeof options.issuer !== 'string' || options.issuer === '') throw new IdentityConfigInvalid('issuer must be a non-empty string');
    if (typeof options.audience !== 'string' || options.audience === '') throw new IdentityConfigInvalid('audience must be a non-empty string');
    const tol = options.clockToleranceSec;
    if (tol !== undefined && (!Number.isSafeInteger(tol) || tol < 0 || tol > 300)) throw new IdentityConfigInvalid('clockToleranceSec must be an integer in [0, 300]');
    let passphrase: string;
    try {
      passphrase = resolvePassphrase(options.passphrase, options.allowDemoPassphrase ?? false);
    } catch (err) {
      throw new IdentityKeyUnavailable('no key passphrase: set GATEHOUSE_KEY_PASSPHRASE or pass the passphrase option', { cause: err });
    }
    const keys = new SessionKeyring(options.keyDir, passphrase);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    } catch (err) {
      throw new IdentityStoreUnavailable('cannot open the session store', { cause: err });
    }
    try {
      db.exec('PRAGMA journal_mode = WAL');
      // Revocations are security decisions: durable before they are acknowledged.
      db.exec('PRAGMA synchronous = FULL');
      db.exec('PRAGMA foreign_keys = ON');
      db.exec(SCHEMA);
      return new SessionService(db, keys, options);
    } catch (err) {
      db.close();
      if (err instanceof IdentityError) throw err;
      throw new IdentityStoreUnavailable('cannot initialise the session store', { cause: err });
    }
  }

  #now(now?: Date): Date {
    return now ?? this.#clock();
  }

  #assertOpen(): void {
    if (this.#closed) throw new IdentityStoreUnavailable('the session service is closed');
  }

  /**
   * Reloads the revoked-session set when another connection committed since the last
   * look (`data_version` changes only on other connections' commits, SQLite docs).
   */
  #syncRevoked(force = false): void {
    const v = (this.#st.dataVersion.get() as { data_version: number }).data_version;
    if (!force && v === this.#dataVersion) return;
    this.#dataVersion = v;
    const rows = this.#st.revokedLive.all(epoch(this.#clock())) as { sid: string }[];
    this.#revoked = new Set(rows.map((r) => r.sid));
  }

  #tx<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (err) {
      try { this.#db.exec('ROLLBACK'); } catch { /* already rolled back */ }
      throw err;
    }
  }

  async #sign(s: { sid: string; principal_id: string; amr: string; mfa_at: number | null; expires_at: number }, iat: number): Promise<{ accessToken: string; expiresAt: number }> {
    const exp = Math.min(iat + this.accessTtlSec, s.expires_at);
    const claims: JWTPayload = { sid: s.sid, amr: JSON.parse(s.amr) as string[] };
    if (s.mfa_at !== null) claims['mfa_at'] = s.mfa_at;
    const accessToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TYP, kid: this.#keys.activeKid })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(s.principal_id)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .sign(this.#keys.activeKey);
    return { accessToken, expiresAt: exp };
  }

  #newRefresh(sid: string, now: number, sessionExpiresAt: number): string {
    const token = REFRESH_PREFIX + randomBytes(32).toString('base64url');
    this.#st.insertRefresh.run(sha256(token), sid, now, Math.min(now + this.refreshTtlSec, sessionExpiresAt));
    return token;
  }

  /** Starts a session for an authenticated principal and returns its first tokens. */
  async issue(principalId: string, options: { amr: readonly string[]; mfaAt?: number | null; now?: Date }): Promise<IssuedTokens> {
    this.#assertOpen();
    if (typeof principalId !== 'string' || principalId === '' || principalId.length > MAX_ID) throw new IdentityInputInvalid('principalId must be a non-empty string of at most 256 characters');
    const amr = checkAmr(options?.amr);
    const now = epoch(this.#now(options.now));
    const mfaAt = options.mfaAt ?? null;
    if (mfaAt !== null && (!Number.isSafeInteger(mfaAt) || mfaAt < 0 || mfaAt > now + this.#tolerance)) throw new IdentityInputInvalid('mfaAt must be epoch seconds, not in the future');
    const row = { sid: randomBytes(16).toString('base64url'), principal_id: principalId, amr: JSON.stringify(amr), mfa_at: mfaAt, expires_at: now + this.sessionTtlSec };
    const refreshToken = this.#tx(() => {
      this.#st.insertSession.run(row.sid, row.principal_id, row.amr, row.mfa_at, now, row.expires_at);
      return this.#newRefresh(row.sid, now, row.expires_at);
    });
    const { accessToken, expiresAt } = await this.#sign(row, now);
    return { accessToken, refreshToken, expiresAt, sessionId: row.sid };
  }

  /**
   * Verifies an access token: signature (EdDSA only, known kid), typ, iss, aud, exp, nbf,
   * claim types, then that its session is not revoked. Never writes to the store.
   */
  async verify(accessToken: string, options: { now?: Date } = {}): Promise<VerifiedSession> {
    this.#assertOpen();
    if (typeof accessToken !== 'string' || accessToken.length > 8192) throw new TokenMalformed();
    const now = this.#now(options.now);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(accessToken, (header: JWTHeaderParameters) => {
        if (typeof header.kid !== 'string') throw new TokenKeyUnknown();
        const key = this.#keys.publicKey(header.kid);
        if (!key) throw new TokenKeyUnknown();
        return key;
      }, {
        algorithms: ['EdDSA'],
        issuer: this.issuer,
        audience: this.audience,
        typ: ACCESS_TYP,
        currentDate: now,
        clockTolerance: this.#tolerance,
        requiredClaims: ['sub', 'sid', 'iat', 'nbf', 'exp', 'amr'],
      }));
    } catch (err) {
      throw fromJoseError(err);
    }
    const { sub, sid, amr, mfa_at: mfaAt, exp } = payload as JWTPayload & { sid?: unknown; amr?: unknown; mfa_at?: unknown };
    if (typeof sub !== 'string' || sub === '') throw new TokenClaimInvalid('sub');
    if (typeof sid !== 'string' || sid === '') throw new TokenClaimInvalid('sid');
    if (!Array.isArray(amr) || !amr.every((a) => typeof a === 'string')) throw new TokenClaimInvalid('amr');
    if (mfaAt !== undefined && !Number.isSafeInteger(mfaAt)) throw new TokenClaimInvalid('mfa_at');
    this.#syncRevoked();
    if (this.#revoked.has(sid)) throw new SessionRevoked();
    return { principalId: sub, sessionId: sid, amr: amr as string[], mfaAt: (mfaAt as number | undefined) ?? null, expiresAt: exp as number };
  }

  /**
   * Exchanges a refresh token for a new access token and a new refresh token; the old
   * one is spent. Presenting a spent token revokes the session (theft detection).
   */
  async refresh(refreshToken: string, options: { now?: Date } = {}): Promise<IssuedTokens> {
    this.#assertOpen();
    if (typeof refreshToken !== 'string' || !REFRESH_RE.test(refreshToken)) throw new RefreshTokenInvalid();
    const now = epoch(this.#now(options.now));
    const hash = sha256(refreshToken);
    const out = this.#tx((): { reusedBy: string } | { session: SessionRow; refreshToken: string } => {
      const rt = this.#st.refresh.get(hash) as RefreshRow | undefined;
      if (!rt) throw new RefreshTokenInvalid();
      const s = this.#st.session.get(rt.sid) as SessionRow | undefined;
      if (!s) throw new RefreshTokenInvalid();
      if (s.revoked_at !== null) throw new SessionRevoked();
      if (rt.used_at !== null) {
        // Theft detection: commit the revocation, then refuse (below, outside the transaction).
        this.#st.revoke.run(now, 'refresh token reused', s.sid);
        return { reusedBy: s.sid };
      }
      if (s.expires_at <= now) throw new SessionExpired();
      if (rt.expires_at <= now) throw new RefreshTokenExpired();
      this.#st.useRefresh.run(now, hash);
      return { session: s, refreshToken: this.#newRefresh(s.sid, now, s.expires_at) };
    });
    if ('reusedBy' in out) {
      this.#revoked.add(out.reusedBy);
      throw new RefreshTokenReused();
    }
    const { accessToken, expiresAt } = await this.#sign(out.session, now);
    return { accessToken, refreshToken: out.refreshToken, expiresAt, sessionId: out.session.sid };
  }

  /** Revokes one session: its access tokens fail on the next verify, its refresh tokens at once. */
  revokeSession(sessionId: string, options: { reason?: string; now?: Date } = {}): boolean {
    this.#assertOpen();
    if (typeof sessionId !== 'string' || sessionId === '') throw new IdentityInputInvalid('sessionId must be a non-empty string');
    const changed = this.#tx(() => this.#st.revoke.run(epoch(this.#now(options.now)), options.reason ?? 'revoked', sessionId).changes);
    if (Number(changed) > 0) this.#revoked.add(sessionId);
    return Number(changed) > 0;
  }

  /** Revokes every live session of a principal (logout everywhere, disabled or deleted user). */
  revokeAllFor(principalId: string, options: { reason?: string; now?: Date } = {}): number {
    this.#assertOpen();
    if (typeof principalId !== 'string' || principalId === '') throw new IdentityInputInvalid('principalId must be a non-empty string');
    const now = epoch(this.#now(options.now));
    const rows = this.#tx(() => this.#st.revokeAll.all(now, options.reason ?? 'all sessions revoked', principalId, now) as { sid: string }[]);
    for (const r of rows) this.#revoked.add(r.sid);
    return rows.length;
  }

  /**
   * Records a new MFA event on a live session and returns an access token carrying the
   * fresh `mfa_at` (step-up). `amr`, when given, replaces the session's methods.
   */
  async stepUp(sessionId: string, mfaAt: number, options: { amr?: readonly string[]; now?: Date } = {}): Promise<{ accessToken: string; expiresAt: number }> {
    this.#assertOpen();
    const now = epoch(this.#now(options.now));
    if (!Number.isSafeInteger(mfaAt) || mfaAt < 0 || mfaAt > now + this.#tolerance) throw new IdentityInputInvalid('mfaAt must be epoch seconds, not in the future');
    const amr = options.amr === undefined ? undefined : checkAmr(options.amr);
    const s = this.#tx(() => {
      const row = this.#st.session.get(sessionId) as SessionRow | undefined;
      if (!row) throw new SessionNotFound();
      if (row.revoked_at !== null) throw new SessionRevoked();
      if (row.expires_at <= now) throw new SessionExpired();
      const updated = { ...row, mfa_at: Math.max(row.mfa_at ?? 0, mfaAt), amr: amr ? JSON.stringify(amr) : row.amr };
      this.#st.stepUp.run(updated.mfa_at, updated.amr, sessionId);
      return updated;
    });
    return this.#sign(s, now);
  }

  /** Live (unrevoked, unexpired) sessions of a principal, for "where am I logged in" and reviews. */
  sessionsOf(principalId: string, options: { now?: Date } = {}): SessionInfo[] {
    this.#assertOpen();
    const rows = this.#st.list.all(principalId, epoch(this.#now(options.now))) as unknown as SessionRow[];
    return rows.map(toInfo);
  }

  session(sessionId: string): SessionInfo | null {
    this.#assertOpen();
    const row = this.#st.session.get(sessionId) as SessionRow | undefined;
    return row ? toInfo(row) : null;
  }

  /** The public keys that verify session tokens (RFC 7517 JWK Set), retired ones included. */
  jwks(): { keys: JWK[] } { return this.#keys.jwks(); }

  keyHistory(): readonly { kid: string; createdAt: string; retiredAt: string | null }[] { return this.#keys.history(); }

  /** Makes a new signing key active, erasing the old private key; old tokens keep verifying. */
  rotateSigningKey(options: { now?: Date } = {}): string {
    this.#assertOpen();
    return this.#keys.rotate(this.#now(options.now));
  }

  /**
   * Deletes refresh tokens and sessions past their absolute lifetime (they can no longer
   * yield a valid token) and drops them from the revoked set. Call it periodically.
   */
  prune(options: { now?: Date } = {}): { sessions: number; refreshTokens: number } {
    this.#assertOpen();
    const now = epoch(this.#now(options.now));
    const out = this.#tx(() => {
      const r = this.#db.prepare('DELETE FROM identity_refresh_tokens WHERE sid IN (SELECT sid FROM identity_sessions WHERE expires_at <= ?) OR expires_at <= ?').run(now, now);
      const s = this.#db.prepare('DELETE FROM identity_sessions WHERE expires_at <= ?').run(now);
      return { sessions: Number(s.changes), refreshTokens: Number(r.changes) };
    });
    this.#syncRevoked(true);
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#keys.close();
    this.#db.close();
  }
}

function toInfo(r: SessionRow): SessionInfo {
  return {
    sessionId: r.sid, principalId: r.principal_id, amr: JSON.parse(r.amr) as string[], mfaAt: r.mfa_at,
    createdAt: r.created_at, expiresAt: r.expires_at, revokedAt: r.revoked_at, revokedReason: r.revoked_reason,
  };
}
