/**
 * Service API keys: shown once, stored hashed, scoped, expiring, revocable.
 *
 * A key is `gh_` + 32 random bytes in base64url (256 bits from the CSPRNG). Only its
 * SHA-256 digest (FIPS 180-4) is stored. A fast hash is the right choice here, and a
 * memory-hard KDF is not: scrypt and argon2 exist to slow down guessing of low-entropy
 * secrets such as passwords; a 256-bit random key cannot be guessed at any hashing speed
 * (2^255 tries on average), every key is unique so a salt adds nothing, and verification
 * sits on the request path, where SHA-256 costs about a microsecond and a KDF tens of
 * milliseconds (and would hand an attacker a cheap way to burn CPU).
 *
 * Lookup uses the first 8 bytes of the digest (an index, not a secret: learning that a
 * stored digest shares a prefix with the digest of one's own guess reveals nothing about
 * a preimage); the full 32-byte digests are then compared with `timingSafeEqual`.
 *
 * Verification reads the row on every call, so a revocation — in this process or in any
 * other sharing the database (the sqlite file, or PostgreSQL for several nodes) — refuses
 * the very next request. Refused keys change
 * nothing in the store; accepted ones update `last_used_at` (at most once per
 * `lastUsedResolutionSec`, so access reviews see usage without a write per request).
 *
 * Scopes bound what a key may do; they never grant: Cedar still decides every request.
 * A dimension that is absent or empty permits nothing; "*" permits everything in it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SqliteIdentitySql, type IdentitySql } from './sql.ts';
import { IdentityError } from './password.ts';
import { IdentityConfigInvalid, IdentityInputInvalid, IdentityStoreUnavailable } from './session.ts';
import { apiKeyTables } from '../sql/tables/identity.ts';

/** Unknown, malformed or wrong key. Deliberately says nothing about which. */
export class ApiKeyInvalid extends IdentityError {
  constructor() { super('API_KEY_INVALID', 'the API key is invalid', 401); }
}
/** The key was revoked (reported only to a caller who holds the real key). */
export class ApiKeyRevoked extends IdentityError {
  constructor() { super('API_KEY_REVOKED', 'the API key was revoked', 401); }
}
export class ApiKeyExpired extends IdentityError {
  constructor() { super('API_KEY_EXPIRED', 'the API key has expired', 401); }
}
/** Administrative lookup of a key id that does not exist. */
export class ApiKeyNotFound extends IdentityError {
  constructor() { super('API_KEY_NOT_FOUND', 'no API key with this id', 404); }
}
/** The key is valid but its scopes do not cover this dataset or action. */
export class ApiKeyScopeDenied extends IdentityError {
  constructor(what: 'dataset' | 'action') { super('API_KEY_SCOPE_DENIED', `the API key's scopes do not include this ${what}`, 403); }
}

export interface ApiKeyScopes {
  readonly datasets?: readonly string[];
  readonly actions?: readonly string[];
}

export interface ApiKeyInfo {
  readonly id: string;
  readonly principalId: string;
  readonly scopes: ApiKeyScopes;
  /** Epoch seconds. */
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
  readonly lastUsedAt: number | null;
}

export interface VerifiedApiKey {
  readonly id: string;
  readonly principalId: string;
  readonly scopes: ApiKeyScopes;
}

export interface ApiKeyStoreOptions {
  /** Granularity of `last_used_at` updates; default 60 s (0 = every use). */
  readonly lastUsedResolutionSec?: number;
  readonly busyTimeoutMs?: number;
  readonly clock?: () => Date;
}

export const API_KEY_PREFIX = 'gh_';
const KEY_RE = /^gh_[A-Za-z0-9_-]{43}$/;
const SCOPE_RE = /^[A-Za-z0-9_.:*\/-]{1,128}$/;

interface KeyRow {
  id: string; lookup: Uint8Array; hash: Uint8Array; principal_id: string; scopes: string;
  created_at: number; expires_at: number | null; revoked_at: number | null; last_used_at: number | null;
}

const epoch = (d: Date): number => Math.floor(d.getTime() / 1000);

function scopeList(name: string, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > 1000 || !v.every((s) => typeof s === 'string' && SCOPE_RE.test(s))) {
    throw new IdentityInputInvalid(`scopes.${name} must be a list of names`);
  }
  return [...new Set(v as string[])];
}

/** Whether `scopes` cover a dataset and/or an action (absent/empty permits nothing; "*" all). */
export function scopesPermit(scopes: ApiKeyScopes, request: { dataset?: string; action?: string }): boolean {
  const has = (list: readonly string[] | undefined, v: string): boolean => list !== undefined && (list.includes('*') || list.includes(v));
  if (request.dataset !== undefined && !has(scopes.datasets, request.dataset)) return false;
  if (request.action !== undefined && !has(scopes.actions, request.action)) return false;
  return true;
}

/** Throws ApiKeyScopeDenied (403) unless the verified key's scopes cover the request. */
export function assertScope(key: VerifiedApiKey, request: { dataset?: string; action?: string }): void {
  if (request.action !== undefined && !scopesPermit(key.scopes, { action: request.action })) throw new ApiKeyScopeDenied('action');
  if (request.dataset !== undefined && !scopesPermit(key.scopes, { dataset: request.dataset })) throw new ApiKeyScopeDenied('dataset');
}

export class ApiKeyStore {
  readonly #sql: IdentitySql;
  readonly #clock: () => Date;
  readonly #resolution: number;
  #closed = false;

  private constructor(sql: IdentitySql, options: ApiKeyStoreOptions) {
    this.#sql = sql;
    this.#clock = options.clock ?? (() => new Date());
    this.#resolution = options.lastUsedResolutionSec ?? 60;
  }

  static #check(options: ApiKeyStoreOptions): void {
    const res = options.lastUsedResolutionSec;
    if (res !== undefined && (!Number.isSafeInteger(res) || res < 0)) throw new IdentityConfigInvalid('lastUsedResolutionSec must be a non-negative integer');
  }

  /** Opens (creating if needed) the key table in the sqlite file at `path`. */
  static open(path: string, options: ApiKeyStoreOptions = {}): ApiKeyStore {
    ApiKeyStore.#check(options);
    const sql = SqliteIdentitySql.open(path, apiKeyTables, {
      busyTimeoutMs: options.busyTimeoutMs,
      unavailable: (what, cause) => new IdentityStoreUnavailable(`the API key store: ${what}`, { cause }),
    });
    return new ApiKeyStore(sql, options);
  }

  /** The store on shared storage (PostgreSQL: src/state/identity.ts); its tables exist already. */
  static openOn(sql: IdentitySql, options: ApiKeyStoreOptions = {}): ApiKeyStore {
    ApiKeyStore.#check(options);
    return new ApiKeyStore(sql, options);
  }

  #assertOpen(): void {
    if (this.#closed) throw new IdentityStoreUnavailable('the API key store is closed');
  }

  /** Creates a key. `key` is returned this once and never stored; keep `id` to manage it. */
  async create(input: { principalId: string; scopes: ApiKeyScopes; expiresAt?: Date | number | null; now?: Date }): Promise<{ key: string; id: string }> {
    this.#assertOpen();
    const { principalId } = input;
    if (typeof principalId !== 'string' || principalId === '' || principalId.length > 256) throw new IdentityInputInvalid('principalId must be a non-empty string of at most 256 characters');
    if (input.scopes === null || typeof input.scopes !== 'object') throw new IdentityInputInvalid('scopes must be an object');
    const scopes: ApiKeyScopes = {};
    const datasets = scopeList('datasets', input.scopes.datasets);
    const actions = scopeList('actions', input.scopes.actions);
    if (datasets) (scopes as { datasets?: string[] }).datasets = datasets;
    if (actions) (scopes as { actions?: string[] }).actions = actions;
    const now = epoch(input.now ?? this.#clock());
    let expiresAt: number | null = null;
    if (input.expiresAt !== undefined && input.expiresAt !== null) {
      expiresAt = input.expiresAt instanceof Date ? epoch(input.expiresAt) : input.expiresAt;
      if (!Number.isSafeInteger(expiresAt) || expiresAt <= now) throw new IdentityInputInvalid('expiresAt must be in the future');
    }
    const secret = randomBytes(32);
    const key = API_KEY_PREFIX + secret.toString('base64url');
    secret.fill(0);
    const hash = createHash('sha256').update(key, 'utf8').digest();
    const id = 'key_' + randomBytes(12).toString('base64url');
    await this.#sql.run('INSERT INTO {api_keys} (id, lookup, hash, principal_id, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [id, hash.subarray(0, 8), hash, principalId, JSON.stringify(scopes), now, expiresAt]);
    return { key, id };
  }

  /**
   * Verifies a presented key: format, digest (constant-time), revocation, expiry.
   * Refusals change nothing; success records the last use. Reads the row every time.
   */
  async verify(key: string, options: { now?: Date } = {}): Promise<VerifiedApiKey> {
    this.#assertOpen();
    if (typeof key !== 'string' || !KEY_RE.test(key)) throw new ApiKeyInvalid();
    const hash = createHash('sha256').update(key, 'utf8').digest();
    const rows = await this.#sql.all<KeyRow>('SELECT * FROM {api_keys} WHERE lookup = ?', [hash.subarray(0, 8)]);
    let row: KeyRow | undefined;
    for (const r of rows) {
      // Compare every candidate (normally one) so the time does not depend on which matched.
      if (timingSafeEqual(Buffer.from(r.hash), hash) && row === undefined) row = r;
    }
    if (!row) throw new ApiKeyInvalid();
    const now = epoch(options.now ?? this.#clock());
    if (row.revoked_at !== null) throw new ApiKeyRevoked();
    if (row.expires_at !== null && row.expires_at <= now) throw new ApiKeyExpired();
    if (row.last_used_at === null || row.last_used_at <= now - this.#resolution) {
      await this.#sql.run('UPDATE {api_keys} SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)', [now, row.id, now - this.#resolution]);
    }
    return { id: row.id, principalId: row.principal_id, scopes: JSON.parse(row.scopes) as ApiKeyScopes };
  }

  /** Revokes a key; the next verify refuses it. Returns false if it was already revoked. */
  async revoke(id: string, options: { now?: Date } = {}): Promise<boolean> {
    this.#assertOpen();
    if (!(await this.#sql.get('SELECT id FROM {api_keys} WHERE id = ?', [id]))) throw new ApiKeyNotFound();
    return (await this.#sql.run('UPDATE {api_keys} SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [epoch(options.now ?? this.#clock()), id])) > 0;
  }

  /** One key's metadata (never the key or its digest). */
  async get(id: string): Promise<ApiKeyInfo> {
    this.#assertOpen();
    const row = await this.#sql.get<KeyRow>('SELECT * FROM {api_keys} WHERE id = ?', [id]);
    if (!row) throw new ApiKeyNotFound();
    return toInfo(row);
  }

  /** A principal's keys, revoked and expired included, with last use (for access reviews). */
  async list(principalId: string): Promise<ApiKeyInfo[]> {
    this.#assertOpen();
    return (await this.#sql.all<KeyRow>('SELECT * FROM {api_keys} WHERE principal_id = ? ORDER BY created_at, id', [principalId])).map(toInfo);
  }

  /** Closes the store (and its sqlite file; shared storage is closed by its owner). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sql.dialect === 'sqlite') await this.#sql.close();
  }
}

function toInfo(r: KeyRow): ApiKeyInfo {
  return {
    id: r.id, principalId: r.principal_id, scopes: JSON.parse(r.scopes) as ApiKeyScopes,
    createdAt: r.created_at, expiresAt: r.expires_at, revokedAt: r.revoked_at, lastUsedAt: r.last_used_at,
  };
}
