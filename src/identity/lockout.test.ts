import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_LOCKOUT, EMPTY_LOCKOUT, TokenBucketLimiter, lockDurationMs, lockRemainingMs, recordFailure, recordSuccess, type LockoutState,
} from './lockout.ts';

const MIN = 60_000;

test('five failures lock for a minute, each further failure doubles the lock up to an hour', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((n) => lockDurationMs(n) / MIN), [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60]);
  let s: LockoutState = EMPTY_LOCKOUT;
  let now = 1_000_000;
  for (let i = 0; i < 4; i++) s = recordFailure(s, now++);
  assert.equal(lockRemainingMs(s, now), 0);
  s = recordFailure(s, now);
  assert.equal(lockRemainingMs(s, now), MIN);
  now += MIN;
  assert.equal(lockRemainingMs(s, now), 0);
  s = recordFailure(s, now);
  assert.equal(lockRemainingMs(s, now), 2 * MIN);
});

test('failures while locked neither count nor extend the lock', () => {
  let s: LockoutState = EMPTY_LOCKOUT;
  for (let i = 0; i < 5; i++) s = recordFailure(s, 0);
  const locked = s;
  for (let i = 0; i < 100; i++) s = recordFailure(s, 10_000);
  assert.deepEqual(s, locked);
});

test('a success resets everything, and so does a quiet day', () => {
  let s: LockoutState = EMPTY_LOCKOUT;
  for (let i = 0; i < 4; i++) s = recordFailure(s, 0);
  assert.deepEqual(recordSuccess(), EMPTY_LOCKOUT);
  s = recordFailure(s, DEFAULT_LOCKOUT.resetAfterMs);
  assert.equal(s.failures, 1);
});

test('the token bucket allows a burst, then refills at its rate', () => {
  let now = 0;
  const rl = new TokenBucketLimiter({ burst: 3, perMinute: 6, maxKeys: 10 }, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => rl.take('203.0.113.7').allowed), [true, true, true, false]);
  const refused = rl.take('203.0.113.7');
  assert.equal(refused.retryAfterMs, 10_000);
  assert.equal(rl.take('198.51.100.1').allowed, true, 'other addresses are unaffected');
  now += 10_000;
  assert.equal(rl.take('203.0.113.7').allowed, true);
  assert.equal(rl.take('203.0.113.7').allowed, false);
});

test('the limiter remembers at most maxKeys addresses, forgetting the least recently used', () => {
  const rl = new TokenBucketLimiter({ burst: 1, perMinute: 1, maxKeys: 100 }, () => 0);
  for (let i = 0; i < 10_000; i++) rl.take(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(rl.size, 100);
  assert.equal(rl.take('10.0.39.15').allowed, false, 'a recent address is still remembered');
});
