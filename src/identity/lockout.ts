/**
 * Brute-force protection, as pure logic with an injectable clock (times are milliseconds
 * since the epoch).
 *
 * Per account — exponential backoff (NIST SP 800-63B §5.2.2, "rate limiting"): the first
 * `threshold - 1` consecutive failures cost nothing; the `threshold`th locks the account
 * for `baseLockMs`, and every further failure after a lock has run out locks it again for
 * twice as long, up to `maxLockMs`. Attempts while locked are refused without checking
 * the password and do not extend the lock. A success resets everything; so does a quiet
 * period of `resetAfterMs` without failures. Defaults: 5 failures → 1 min, 2, 4, … 60 min.
 * The state is a small record the caller persists (user-store keeps it in SQLite so every
 * process sees it).
 *
 * Per address — a token bucket (capacity `burst`, refilled at `perMinute` tokens a
 * minute) kept in memory in a map bounded to `maxKeys` entries; the least recently used
 * address is forgotten first, which at worst hands that address a full bucket again.
 */
import { IdentityError, type IdentityErrorOptions } from './password.ts';

export class AccountLocked extends IdentityError {
  constructor(retryAfterMs: number, options: IdentityErrorOptions = {}) {
    super('IDENTITY_ACCOUNT_LOCKED', 'too many failed attempts: try again later', 429, { ...options, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) });
  }
}

export class RateLimited extends IdentityError {
  constructor(retryAfterMs: number, options: IdentityErrorOptions = {}) {
    super('IDENTITY_RATE_LIMITED', 'too many attempts from this address: slow down', 429, { ...options, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) });
  }
}

// ---- per-account lockout ------------------------------------------------------------------

export interface LockoutPolicy {
  readonly threshold: number;
  readonly baseLockMs: number;
  readonly maxLockMs: number;
  readonly resetAfterMs: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = { threshold: 5, baseLockMs: 60_000, maxLockMs: 3_600_000, resetAfterMs: 86_400_000 };

/** What is persisted per account. A fresh account has `EMPTY_LOCKOUT`. */
export interface LockoutState {
  /** Consecutive failures since the last success (or quiet period). */
  readonly failures: number;
  /** 0 when not locked. */
  readonly lockedUntil: number;
  /** 0 when there was none. */
  readonly lastFailureAt: number;
}

export const EMPTY_LOCKOUT: LockoutState = { failures: 0, lockedUntil: 0, lastFailureAt: 0 };

/** The state as it stands at `now` (a quiet period forgets old failures). */
export function currentLockout(state: LockoutState, now: number, policy: LockoutPolicy = DEFAULT_LOCKOUT): LockoutState {
  if (state.failures > 0 && state.lockedUntil <= now && now - state.lastFailureAt >= policy.resetAfterMs) return EMPTY_LOCKOUT;
  return state;
}

/** Milliseconds the account stays locked at `now` (0: an attempt may proceed). */
export function lockRemainingMs(state: LockoutState, now: number, policy: LockoutPolicy = DEFAULT_LOCKOUT): number {
  const s = currentLockout(state, now, policy);
  return Math.max(0, s.lockedUntil - now);
}

/** Lock length after the `failures`th consecutive failure (0 below the threshold). */
export function lockDurationMs(failures: number, policy: LockoutPolicy = DEFAULT_LOCKOUT): number {
  if (failures < policy.threshold) return 0;
  const doublings = Math.min(failures - policy.threshold, 40);
  return Math.min(policy.maxLockMs, policy.baseLockMs * 2 ** doublings);
}

/**
 * The state after a failed attempt at `now`. A failure while locked (the caller should not
 * have checked the password) changes nothing, so hammering a locked account does not
 * extend its lock.
 */
export function recordFailure(state: LockoutState, now: number, policy: LockoutPolicy = DEFAULT_LOCKOUT): LockoutState {
  const s = currentLockout(state, now, policy);
  if (s.lockedUntil > now) return s;
  const failures = s.failures + 1;
  const lock = lockDurationMs(failures, policy);
  return { failures, lockedUntil: lock > 0 ? now + lock : 0, lastFailureAt: now };
}

/** The state after a successful attempt: everything forgotten. */
export function recordSuccess(): LockoutState {
  return EMPTY_LOCKOUT;
}

// ---- per-address token bucket -------------------------------------------------------------

export interface RateLimitPolicy {
  /** Bucket size: attempts allowed in a burst. */
  readonly burst: number;
  /** Refill rate. */
  readonly perMinute: number;
  /** Most addresses remembered at once. */
  readonly maxKeys: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitPolicy = { burst: 20, perMinute: 10, maxKeys: 10_000 };

export interface RateDecision { readonly allowed: boolean; readonly retryAfterMs: number; readonly remaining: number }

export class TokenBucketLimiter {
  readonly policy: RateLimitPolicy;
  readonly #clock: () => number;
  /** key → bucket; Map order is recency order (oldest first). */
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(policy: Partial<RateLimitPolicy> = {}, clock: () => number = Date.now) {
    this.policy = { ...DEFAULT_RATE_LIMIT, ...policy };
    const { burst, perMinute, maxKeys } = this.policy;
    if (!(burst >= 1) || !(perMinute > 0) || !Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError('rate limit policy needs burst ≥ 1, perMinute > 0, maxKeys ≥ 1');
    this.#clock = clock;
  }

  /** Takes one token for `key` if there is one. */
  take(key: string, now: number = this.#clock()): RateDecision {
    const { burst, perMinute, maxKeys } = this.policy;
    const ratePerMs = perMinute / 60_000;
    const old = this.#buckets.get(key);
    let tokens = burst;
    if (old) {
      tokens = Math.min(burst, old.tokens + Math.max(0, now - old.at) * ratePerMs);
      this.#buckets.delete(key);
    } else if (this.#buckets.size >= maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (tokens >= 1) {
      this.#buckets.set(key, { tokens: tokens - 1, at: now });
      return { allowed: true, retryAfterMs: 0, remaining: Math.floor(tokens - 1) };
    }
    this.#buckets.set(key, { tokens, at: now });
    return { allowed: false, retryAfterMs: Math.ceil((1 - tokens) / ratePerMs), remaining: 0 };
  }

  /** Number of addresses remembered (never above `maxKeys`). */
  get size(): number {
    return this.#buckets.size;
  }
}
