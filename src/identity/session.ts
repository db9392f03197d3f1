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
 * - Revocation is read from the store on every verify (one indexed row), so a revoked
 *   session is refused on the very next call in every process — or node, on PostgreSQL —
 *   that shares the store.
 * - Signing keys are sealed at rest exactly like the audit log's (scrypt + AES-256-GCM,
 *   src/audit/keys.ts): in files beside the sqlite store, or as the same sealed document in
 *   PostgreSQL (every node needs the same passphrase). Rotation erases the old private half;
 *   its public half stays so tokens signed before the rotation keep verifying until they
 *   expire.
 *
 * This file also holds the typed token errors (TOKEN_*) shared by every identity token
 * check (sessions, OIDC), all subclasses of `IdentityError` (./password.ts): callers
 * match on `code` and map `status` to the HTTP response. Messages never carry tokens,
 * keys, passphrases or principal identifiers.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteIdentitySql, type IdentitySql, type SqlQueries } from './sql.ts';
import { createSealedEd25519, openSealedEd25519 } from './sealed-key.ts';
import {
  SignJWT, errors as joseErrors, jwtVerify, type JWK, type JWTPayload, type JWTHeaderParameters,
} from 'jose';
import { loadOrCreateSealedEd25519, resolvePassphrase } from '../audit/keys.ts';
import { writeFileAtomicSync } from '../audit/fsutil.ts';
import { IdentityError } from './password.ts';
import { sessionTables } from '../sql/tables/identity.ts';

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

/** Where the session signing keys live: files beside the sqlite store, or the shared database. */
interface SessionKeyStorage {
  /** Creates the first key when there is none (safe against another node doing the same). */
  ensure(now: Date): Promise<void>;
  index(): Promise<SessionKeyRecord[]>;
  /** The private key of `kid`, unsealed; IdentityKeyUnavailable when missing or undecryptable. */
  privateKey(kid: string): Promise<KeyObject>;
  /** Retires the active key (erasing its private half) and makes a new one active. */
  rotate(now: Date): Promise<string>;
  /** Whether `kid` exists, by one indexed read (storages where that is cheap). */
  has?(kid: string): Promise<boolean>;
  close(): void;
}

function publicJwk(kid: string, key: KeyObject): JWK {
  const jwk = createPublicKey(key).export({ format: 'jwk' }) as JWK;
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' };
}

/**
 * Files in `dir`: `session-keys.json` lists every key's public half;
 * `session-signing-<kid>.json` holds the active private key sealed with the passphrase
 * (the format of src/audit/keys.ts `loadOrCreateSealedEd25519`, purpose bound to the kid).
 */
class FileSessionKeys implements SessionKeyStorage {
  readonly #dir: string;
  #passphrase: string;
  /** Keys this instance sealed: opening them again would pay a second scrypt for the same key. */
  readonly #created = new Map<string, KeyObject>();

  constructor(dir: string, passphrase: string) {
    this.#dir = dir;
    this.#passphrase = passphrase;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  #create(now: Date): SessionKeyRecord {
    const kid = randomBytes(12).toString('base64url');
    const key = loadOrCreateSealedEd25519(join(this.#dir, privateFile(kid)), this.#passphrase, purposeOf(kid));
    this.#created.set(kid, key);
    return { kid, jwk: publicJwk(kid, key), createdAt: now.toISOString(), retiredAt: null };
  }

  async ensure(now: Date): Promise<void> {
    const path = join(this.#dir, INDEX_FILE);
    if (existsSync(path)) return;
    const index: SessionKeyIndex = { version: 1, keys: [this.#create(now)] };
    writeFileAtomicSync(path, JSON.stringify(index, null, 2) + '\n', 0o600);
  }

  async index(): Promise<SessionKeyRecord[]> {
    return readIndex(join(this.#dir, INDEX_FILE)).keys;
  }

  async privateKey(kid: string): Promise<KeyObject> {
    const path = join(this.#dir, privateFile(kid));
    // loadOrCreate would silently make a new key if the file were missing: refuse instead.
    if (!existsSync(path)) throw new IdentityKeyUnavailable('the active session signing key file is missing');
    const created = this.#created.get(kid);
    if (created) return created;
    try {
      return loadOrCreateSealedEd25519(path, this.#passphrase, purposeOf(kid));
    } catch (err) {
      throw new IdentityKeyUnavailable('cannot decrypt the session signing key: wrong passphrase or damaged key file', { cause: err });
    }
  }

  async rotate(now: Date): Promise<string> {
    const current = await this.index();
    const fresh = this.#create(now);
    const old = current.filter((k) => k.retiredAt === null).map((k) => k.kid);
    const keys = current.map((k) => (k.retiredAt === null ? { ...k, retiredAt: now.toISOString() } : k));
    keys.push(fresh);
    writeFileAtomicSync(join(this.#dir, INDEX_FILE), JSON.stringify({ version: 1, keys } satisfies SessionKeyIndex, null, 2) + '\n', 0o600);
    // Erase the retired private half only once the index no longer calls it active.
    for (const kid of old) { rmSync(join(this.#dir, privateFile(kid)), { force: true }); this.#created.delete(kid); }
    return fresh.kid;
  }

  close(): void { this.#passphrase = ''; this.#created.clear(); }
}

/**
 * Rows of `{session_keys}` in shared storage (PostgreSQL): the public JWK of every key and
 * the active private key as the very document a `session-signing-<kid>.json` file holds
 * (sealed-key.ts), so every node given the same passphrase signs and verifies with the same
 * keys. At most one row is active (a unique index); rotation erases the old private half.
 */
class SqlSessionKeys implements SessionKeyStorage {
  readonly #sql: IdentitySql;
  #passphrase: string;
  /** Keys this instance sealed, by kid (the row is still read: a key another node retired is refused). */
  readonly #created = new Map<string, KeyObject>();

  constructor(sql: IdentitySql, passphrase: string) {
    this.#sql = sql;
    this.#passphrase = passphrase;
  }

  #create(now: Date): { rec: SessionKeyRecord; sealed: string } {
    const kid = randomBytes(12).toString('base64url');
    const { key, document } = createSealedEd25519(this.#passphrase, purposeOf(kid));
    this.#created.set(kid, key);
    return { rec: { kid, jwk: publicJwk(kid, key), createdAt: now.toISOString(), retiredAt: null }, sealed: document };
  }

  async ensure(now: Date): Promise<void> {
    if (await this.#sql.get('SELECT kid FROM {session_keys} WHERE retired_at IS NULL')) return;
    const { rec, sealed } = this.#create(now);
    // Two nodes starting at once: the unique index on the active row lets one insert win.
    await this.#sql.run('INSERT INTO {session_keys} (kid, jwk, sealed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      [rec.kid, JSON.stringify(rec.jwk), sealed, rec.createdAt]);
  }

  async index(): Promise<SessionKeyRecord[]> {
    const rows = await this.#sql.all<{ kid: string; jwk: string; created_at: string; retired_at: string | null }>(
      'SELECT kid, jwk, created_at, retired_at FROM {session_keys} ORDER BY seq');
    try {
      return rows.map((r) => ({ kid: r.kid, jwk: JSON.parse(r.jwk) as JWK, createdAt: r.created_at, retiredAt: r.retired_at }));
    } catch (err) {
      throw new IdentityKeyUnavailable('the session key index is unreadable', { cause: err });
    }
  }

  async has(kid: string): Promise<boolean> {
    return (await this.#sql.get('SELECT kid FROM {session_keys} WHERE kid = ?', [kid])) !== undefined;
  }

  async privateKey(kid: string): Promise<KeyObject> {
    const row = await this.#sql.get<{ sealed: string | null }>('SELECT sealed FROM {session_keys} WHERE kid = ?', [kid]);
    if (!row || row.sealed === null) throw new IdentityKeyUnavailable('the active session signing key is missing');
    const created = this.#created.get(kid);
    if (created) return created;
    try {
      return openSealedEd25519(row.sealed, this.#passphrase, purposeOf(kid));
    } catch (err) {
      throw new IdentityKeyUnavailable('cannot decrypt the session signing key: wrong passphrase (every node needs the same one) or damaged key', { cause: err });
    }
  }

  async rotate(now: Date): Promise<string> {
    const { rec, sealed } = this.#create(now);
    await this.#sql.write(async (q) => {
      await q.run('UPDATE {session_keys} SET retired_at = ?, sealed = NULL WHERE retired_at IS NULL', [now.toISOString()]);
      await q.run('INSERT INTO {session_keys} (kid, jwk, sealed, created_at) VALUES (?, ?, ?, ?)', [rec.kid, JSON.stringify(rec.jwk), sealed, rec.createdAt]);
    });
    return rec.kid;
  }

  close(): void { this.#passphrase = ''; this.#created.clear(); }
}

/**
 * The signing keys in memory: the active private key and every public key. An unknown kid
 * re-reads the key files once a second at most, so a rotation done by another process is
 * picked up without letting random kids turn every request into a file read; on shared
 * storage an unknown kid is looked up by one indexed read, and the index is re-read only
 * when it exists (a token from a node that just rotated verifies at once). Signing checks
 * for a new active key at most once a second.
 */
class SessionKeyring {
  readonly #storage: SessionKeyStorage;
  #index: SessionKeyRecord[] = [];
  #active!: { kid: string; key: KeyObject };
  #public = new Map<string, KeyObject>();
  #lastReload = 0;

  private constructor(storage: SessionKeyStorage) {
    this.#storage = storage;
  }

  static async open(storage: SessionKeyStorage, now: Date): Promise<SessionKeyring> {
    const ring = new SessionKeyring(storage);
    await storage.ensure(now);
    ring.#index = await storage.index();
    ring.#active = await ring.#loadActive();
    ring.#loadPublic();
    return ring;
  }

  get activeKid(): string { return this.#active.kid; }

  async #loadActive(): Promise<{ kid: string; key: KeyObject }> {
    const active = this.#index.find((k) => k.retiredAt === null);
    if (!active) throw new IdentityKeyUnavailable('no active session signing key');
    const key = await this.#storage.privateKey(active.kid);
    const x = (createPublicKey(key).export({ format: 'jwk' }) as JWK).x;
    if (x !== active.jwk.x) throw new IdentityKeyUnavailable('the session signing key does not match its recorded public key');
    return { kid: active.kid, key };
  }

  #loadPublic(): void {
    const next = new Map<string, KeyObject>();
    for (const k of this.#index) {
      if (k.jwk.kty !== 'OKP' || k.jwk.crv !== 'Ed25519' || typeof k.jwk.x !== 'string') throw new IdentityKeyUnavailable('a session public key is not an Ed25519 JWK');
      next.set(k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.jwk.x }, format: 'jwk' }));
    }
    this.#public = next;
  }

  /** Re-reads the index (at most once a second unless forced); true if it changed. */
  async #reload(force = false): Promise<boolean> {
    const now = Date.now();
    if (!force && now - this.#lastReload < 1000) return false;
    this.#lastReload = now;
    const index = await this.#storage.index();
    const same = index.length === this.#index.length && index.every((k, i) => k.kid === this.#index[i]!.kid && k.retiredAt === this.#index[i]!.retiredAt);
    if (same) return false;
    this.#index = index;
    this.#loadPublic();
    const active = index.find((k) => k.retiredAt === null);
    if (active && active.kid !== this.#active.kid) this.#active = await this.#loadActive();
    return true;
  }

  async publicKey(kid: string): Promise<KeyObject | undefined> {
    const hit = this.#public.get(kid);
    if (hit) return hit;
    if (this.#storage.has) {
      // Shared storage: a key rotated in by another node is found at once (one indexed read
      // per unknown kid, like the revocation read every request makes anyway).
      if (!(await this.#storage.has(kid))) return undefined;
      await this.#reload(true);
    } else if (!(await this.#reload())) {
      return undefined;
    }
    return this.#public.get(kid);
  }

  /** The active signing key, after checking (once a second) whether another node rotated. */
  async signingKey(): Promise<{ kid: string; key: KeyObject }> {
    await this.#reload();
    return this.#active;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.#index.map((k) => ({ ...k.jwk })) };
  }

  history(): readonly { kid: string; createdAt: string; retiredAt: string | null }[] {
    return this.#index.map(({ kid, createdAt, retiredAt }) => ({ kid, createdAt, retiredAt }));
  }

  async rotate(now: Date): Promise<string> {
    const kid = await this.#storage.rotate(now);
    await this.#reload(true);
    return kid;
  }

  close(): void { this.#storage.close(); }
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
  readonly path?: string;
  /** Directory for the sealed signing keys (created 0700). */
  readonly keyDir?: string;
  /**
   * Shared storage instead of `path` and `keyDir` (PostgreSQL, src/state/identity.ts):
   * sessions, refresh tokens and the sealed signing keys, for several nodes.
   */
  readonly storage?: IdentitySql;
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
  #sql: IdentitySql;
  #keys: SessionKeyring;
  #closed = false;

  private constructor(sql: IdentitySql, keys: SessionKeyring, o: SessionServiceOptions) {
    this.#sql = sql;
    this.#keys = keys;
    this.issuer = o.issuer;
    this.audience = o.audience;
    this.accessTtlSec = positiveInt('accessTtlSec', o.accessTtlSec, 900);
    this.refreshTtlSec = positiveInt('refreshTtlSec', o.refreshTtlSec, 8 * 3600);
    this.sessionTtlSec = positiveInt('sessionTtlSec', o.sessionTtlSec, 24 * 3600);
    this.#tolerance = o.clockToleranceSec ?? 5;
    this.#clock = o.clock ?? (() => new Date());
  }

  /**
   * Opens (creating if needed) the session tables and the signing keys: the sqlite file at
   * `path` with keys in `keyDir`, or — with `storage` — shared storage (PostgreSQL), keys
   * included, so that every node verifies every other node's tokens.
   */
  static async open(options: SessionServiceOptions): Promise<SessionService> {
    if (typeof options.issuer !== 'string' || options.issuer === '') throw new IdentityConfigInvalid('issuer must be a non-empty string');
    if (typeof options.audience !== 'string' || options.audience === '') throw new IdentityConfigInvalid('audience must be a non-empty string');
    const tol = options.clockToleranceSec;
    if (tol !== undefined && (!Number.isSafeInteger(tol) || tol < 0 || tol > 300)) throw new IdentityConfigInvalid('clockToleranceSec must be an integer in [0, 300]');
    for (const k of ['accessTtlSec', 'refreshTtlSec', 'sessionTtlSec'] as const) positiveInt(k, options[k], 1);
    let passphrase: string;
    try {
      passphrase = resolvePassphrase(options.passphrase, options.allowDemoPassphrase ?? false);
    } catch (err) {
      throw new IdentityKeyUnavailable('no key passphrase: set GATEHOUSE_KEY_PASSPHRASE or pass the passphrase option', { cause: err });
    }
    const now = (options.clock ?? (() => new Date()))();
    if (options.storage) {
      const keys = await SessionKeyring.open(new SqlSessionKeys(options.storage, passphrase), now);
      return new SessionService(options.storage, keys, options);
    }
    if (typeof options.path !== 'string' || typeof options.keyDir !== 'string') throw new IdentityConfigInvalid('path and keyDir (or storage) are required');
    const keys = await SessionKeyring.open(new FileSessionKeys(options.keyDir, passphrase), now);
    try {
      const sql = SqliteIdentitySql.open(options.path, sessionTables, {
        busyTimeoutMs: options.busyTimeoutMs,
        unavailable: (what, cause) => new IdentityStoreUnavailable(`the session store: ${what}`, { cause }),
      });
      return new SessionService(sql, keys, options);
    } catch (err) {
      keys.close();
      throw err;
    }
  }

  #now(now?: Date): Date {
    return now ?? this.#clock();
  }

  #assertOpen(): void {
    if (this.#closed) throw new IdentityStoreUnavailable('the session service is closed');
  }

  async #sign(s: { sid: string; principal_id: string; amr: string; mfa_at: number | null; expires_at: number }, iat: number): Promise<{ accessToken: string; expiresAt: number }> {
    const exp = Math.min(iat + this.accessTtlSec, s.expires_at);
    const claims: JWTPayload = { sid: s.sid, amr: JSON.parse(s.amr) as string[] };
    if (s.mfa_at !== null) claims['mfa_at'] = s.mfa_at;
    const { kid, key } = await this.#keys.signingKey();
    const accessToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TYP, kid })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(s.principal_id)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .sign(key);
    return { accessToken, expiresAt: exp };
  }

  async #newRefresh(q: SqlQueries, sid: string, now: number, sessionExpiresAt: number): Promise<string> {
    const token = REFRESH_PREFIX + randomBytes(32).toString('base64url');
    await q.run('INSERT INTO {refresh_tokens} (hash, sid, issued_at, expires_at) VALUES (?, ?, ?, ?)', [sha256(token), sid, now, Math.min(now + this.refreshTtlSec, sessionExpiresAt)]);
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
    const refreshToken = await this.#sql.write(async (q) => {
      await q.run('INSERT INTO {sessions} (sid, principal_id, amr, mfa_at, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)', [row.sid, row.principal_id, row.amr, row.mfa_at, now, row.expires_at]);
      return this.#newRefresh(q, row.sid, now, row.expires_at);
    });
    const { accessToken, expiresAt } = await this.#sign(row, now);
    return { accessToken, refreshToken, expiresAt, sessionId: row.sid };
  }

  /**
   * Verifies an access token: signature (EdDSA only, known kid), typ, iss, aud, exp, nbf,
   * claim types, then that its session is not revoked — read from the store on every call,
   * so a revocation by any process or node refuses the very next request. Never writes.
   */
  async verify(accessToken: string, options: { now?: Date } = {}): Promise<VerifiedSession> {
    this.#assertOpen();
    if (typeof accessToken !== 'string' || accessToken.length > 8192) throw new TokenMalformed();
    const now = this.#now(options.now);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(accessToken, async (header: JWTHeaderParameters) => {
        if (typeof header.kid !== 'string') throw new TokenKeyUnknown();
        const key = await this.#keys.publicKey(header.kid);
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
    const s = await this.#sql.get<{ revoked_at: number | null }>('SELECT revoked_at FROM {sessions} WHERE sid = ?', [sid]);
    if (s && s.revoked_at !== null) throw new SessionRevoked();
    return { principalId: sub, sessionId: sid, amr: amr as string[], mfaAt: (mfaAt as number | undefined) ?? null, expiresAt: exp as number };
  }

  /**
   * Exchanges a refresh token for a new access token and a new refresh token; the old
   * one is spent (atomically: on PostgreSQL, two nodes racing with one token cannot both
   * win). Presenting a spent token revokes the session (theft detection).
   */
  async refresh(refreshToken: string, options: { now?: Date } = {}): Promise<IssuedTokens> {
    this.#assertOpen();
    if (typeof refreshToken !== 'string' || !REFRESH_RE.test(refreshToken)) throw new RefreshTokenInvalid();
    const now = epoch(this.#now(options.now));
    const hash = sha256(refreshToken);
    const out = await this.#sql.write(async (q): Promise<{ reusedBy: string } | { session: SessionRow; refreshToken: string }> => {
      const rt = await q.get<RefreshRow>('SELECT * FROM {refresh_tokens} WHERE hash = ?', [hash]);
      if (!rt) throw new RefreshTokenInvalid();
      const s = await q.get<SessionRow>('SELECT * FROM {sessions} WHERE sid = ?', [rt.sid]);
      if (!s) throw new RefreshTokenInvalid();
      if (s.revoked_at !== null) throw new SessionRevoked();
      if (rt.used_at !== null) {
        // Theft detection: commit the revocation, then refuse (below, outside the transaction).
        await q.run('UPDATE {sessions} SET revoked_at = ?, revoked_reason = ? WHERE sid = ? AND revoked_at IS NULL', [now, 'refresh token reused', s.sid]);
        return { reusedBy: s.sid };
      }
      if (s.expires_at <= now) throw new SessionExpired();
      if (rt.expires_at <= now) throw new RefreshTokenExpired();
      // Compare-and-set: the token is spent by exactly one caller.
      if (await q.run('UPDATE {refresh_tokens} SET used_at = ? WHERE hash = ? AND used_at IS NULL', [now, hash]) !== 1) throw new RefreshTokenReused();
      return { session: s, refreshToken: await this.#newRefresh(q, s.sid, now, s.expires_at) };
    });
    if ('reusedBy' in out) throw new RefreshTokenReused();
    const { accessToken, expiresAt } = await this.#sign(out.session, now);
    return { accessToken, refreshToken: out.refreshToken, expiresAt, sessionId: out.session.sid };
  }

  /** Revokes one session: its access tokens fail on the next verify, its refresh tokens at once. */
  async revokeSession(sessionId: string, options: { reason?: string; now?: Date } = {}): Promise<boolean> {
    this.#assertOpen();
    if (typeof sessionId !== 'string' || sessionId === '') throw new IdentityInputInvalid('sessionId must be a non-empty string');
    const changed = await this.#sql.run('UPDATE {sessions} SET revoked_at = ?, revoked_reason = ? WHERE sid = ? AND revoked_at IS NULL',
      [epoch(this.#now(options.now)), options.reason ?? 'revoked', sessionId]);
    return changed > 0;
  }

  /** Revokes every live session of a principal (logout everywhere, disabled or deleted user). */
  async revokeAllFor(principalId: string, options: { reason?: string; now?: Date } = {}): Promise<number> {
    this.#assertOpen();
    if (typeof principalId !== 'string' || principalId === '') throw new IdentityInputInvalid('principalId must be a non-empty string');
    const now = epoch(this.#now(options.now));
    return this.#sql.run('UPDATE {sessions} SET revoked_at = ?, revoked_reason = ? WHERE principal_id = ? AND revoked_at IS NULL AND expires_at > ?',
      [now, options.reason ?? 'all sessions revoked', principalId, now]);
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
    const s = await this.#sql.write(async (q) => {
      const row = await q.get<SessionRow>('SELECT * FROM {sessions} WHERE sid = ?', [sessionId]);
      if (!row) throw new SessionNotFound();
      if (row.revoked_at !== null) throw new SessionRevoked();
      if (row.expires_at <= now) throw new SessionExpired();
      const updated = { ...row, mfa_at: Math.max(row.mfa_at ?? 0, mfaAt), amr: amr ? JSON.stringify(amr) : row.amr };
      await q.run('UPDATE {sessions} SET mfa_at = ?, amr = ? WHERE sid = ?', [updated.mfa_at, updated.amr, sessionId]);
      return updated;
    });
    return this.#sign(s, now);
  }

  /** Live (unrevoked, unexpired) sessions of a principal, for "where am I logged in" and reviews. */
  async sessionsOf(principalId: string, options: { now?: Date } = {}): Promise<SessionInfo[]> {
    this.#assertOpen();
    const rows = await this.#sql.all<SessionRow>('SELECT * FROM {sessions} WHERE principal_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at',
      [principalId, epoch(this.#now(options.now))]);
    return rows.map(toInfo);
  }

  async session(sessionId: string): Promise<SessionInfo | null> {
    this.#assertOpen();
    const row = await this.#sql.get<SessionRow>('SELECT * FROM {sessions} WHERE sid = ?', [sessionId]);
    return row ? toInfo(row) : null;
  }

  /** The public keys that verify session tokens (RFC 7517 JWK Set), retired ones included. */
  jwks(): { keys: JWK[] } { return this.#keys.jwks(); }

  keyHistory(): readonly { kid: string; createdAt: string; retiredAt: string | null }[] { return this.#keys.history(); }

  /** Makes a new signing key active, erasing the old private key; old tokens keep verifying. */
  async rotateSigningKey(options: { now?: Date } = {}): Promise<string> {
    this.#assertOpen();
    return this.#keys.rotate(this.#now(options.now));
  }

  /**
   * Deletes refresh tokens and sessions past their absolute lifetime (they can no longer
   * yield a valid token). Call it periodically (from one node is enough).
   */
  async prune(options: { now?: Date } = {}): Promise<{ sessions: number; refreshTokens: number }> {
    this.#assertOpen();
    const now = epoch(this.#now(options.now));
    return this.#sql.write(async (q) => {
      const refreshTokens = await q.run('DELETE FROM {refresh_tokens} WHERE sid IN (SELECT sid FROM {sessions} WHERE expires_at <= ?) OR expires_at <= ?', [now, now]);
      const sessions = await q.run('DELETE FROM {sessions} WHERE expires_at <= ?', [now]);
      return { sessions, refreshTokens };
    });
  }

  /** Closes the service (and its sqlite file; shared storage is closed by its owner). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#keys.close();
    if (this.#sql.dialect === 'sqlite') await this.#sql.close();
  }
}

function toInfo(r: SessionRow): SessionInfo {
  return {
    sessionId: r.sid, principalId: r.principal_id, amr: JSON.parse(r.amr) as string[], mfaAt: r.mfa_at,
    createdAt: r.created_at, expiresAt: r.expires_at, revokedAt: r.revoked_at, revokedReason: r.revoked_reason,
  };
}
