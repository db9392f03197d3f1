/**
 * An attacker who may not know which principals exist tries to learn it from sign-in:
 * by the time an answer takes, and by whether the per-address limit and the lockout
 * apply. An unknown name must cost the same scrypt work as a wrong password for a real
 * principal, and must be counted against the same limits (issue 13, "Identity").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { codeOf, demoFixture, type Fixture } from './helpers/workspace.ts';

let fx: Fixture;
const PASSWORD = 'correct horse battery staple 42';
const KNOWN = ['rhea', 'ivan', 'ada', 'audrey'] as const;
const admin = { credential: null, source: '127.0.0.1', channel: 'test', admin: 'test-admin' } as const;

// The limits refill with time: the node's clock stands still, so a slow
// machine cannot refill a bucket between two attempts.
const clock = Date.parse('2026-06-01T09:00:00Z');
before(async () => {
  fx = await demoFixture({ patients: 50, now: () => new Date(clock) });
  for (const p of [...KNOWN, 'olivia']) await fx.gh.createUser(admin, p, PASSWORD);
});
after(async () => { await fx.close(); });

/** Milliseconds one sign-in attempt takes to be refused, from a fresh address each time. */
async function refusalMs(principal: string, source: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const code = await codeOf(fx.gh.login({ credential: null, source, channel: 'test' }, { principal, password: 'not the password at all' }));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(code, 'AUTH_INVALID');
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

describe('sign-in does not tell which principals exist', () => {
  it('takes as long to refuse an unknown name as a wrong password for a real principal', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    // Interleaved so that load on the machine falls on both alike; at most 4 tries per real
    // principal stays under the lockout threshold, and each try comes from its own address.
    for (let i = 0; i < 15; i++) {
      known.push(await refusalMs(KNOWN[i % KNOWN.length]!, `10.1.0.${i}`));
      unknown.push(await refusalMs(`ghost-${i}`, `10.2.0.${i}`));
    }
    const ratio = median(unknown) / median(known);
    // Before the fix the ratio was ~0.04 (8 ms against ~200 ms): scrypt was skipped.
    assert.ok(ratio > 0.5 && ratio < 2, `median unknown ${median(unknown).toFixed(1)} ms vs known ${median(known).toFixed(1)} ms`);
  });

  it('counts unknown names against the per-address limit like known ones', async () => {
    const source = '10.3.0.1';
    const codes: string[] = [];
    for (let i = 0; i < 21; i++) codes.push(await codeOf(fx.gh.login({ credential: null, source, channel: 'test' }, { principal: `nobody-${i}`, password: 'not the password at all' })));
    assert.deepEqual(codes.slice(0, 20), Array(20).fill('AUTH_INVALID'));
    assert.equal(codes[20], 'RATE_LIMITED');
    // The address is now limited for real principals as well: the limit is per address, not per name.
    assert.equal(await codeOf(fx.gh.login({ credential: null, source, channel: 'test' }, { principal: 'rhea', password: PASSWORD })), 'RATE_LIMITED');
  });

  it('locks an unknown name after as many failures as a known one, with the same answer', async () => {
    const attempt = (principal: string, i: number): Promise<string> =>
      codeOf(fx.gh.login({ credential: null, source: `10.4.${principal.length}.${i}`, channel: 'test' }, { principal, password: 'not the password at all' }));
    const known: string[] = [];
    const unknown: string[] = [];
    for (let i = 0; i < 6; i++) { known.push(await attempt('olivia', i)); unknown.push(await attempt('no-such-principal', i)); }
    assert.deepEqual(unknown, known);
    assert.notEqual(known[5], 'AUTH_INVALID', 'the sixth attempt is refused by the lockout');
  });

  it('refuses TOTP enrolment for an unknown name after the same work, and audits it', async () => {
    const before = fx.log.size;
    assert.equal(await codeOf(fx.gh.enrolTotp({ credential: null, source: '10.5.0.1', channel: 'test' }, { principal: 'ghost-enrol', password: PASSWORD })), 'AUTH_INVALID');
    assert.equal(fx.log.size, before + 1);
    const e = fx.log.leaf(before).entry;
    assert.equal(e.action, 'auth.totp.enrol');
    assert.equal(e.errorCode, 'AUTH_INVALID');
  });
});
