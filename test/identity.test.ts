/**
 * Built-in users on the one request path: a workspace that requires MFA for a group
 * refuses API keys for its members; they enrol TOTP, sign in with password + code, query
 * with the session token; logout and disabling take effect on the very next request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { codeOf, demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';
import { generateTotp, totpStep } from '../src/identity/totp.ts';
import type { FastifyInstance } from 'fastify';

let fx: ServerFixture;
let app: FastifyInstance;
const meta = { credential: null, source: '127.0.0.1', channel: 'test' } as const;
const PASSWORD = 'correct horse battery staple 42';

before(async () => {
  fx = await demoFixture({
    patients: 400,
    http: true,
    edit: (ws) => {
      const y = join(ws, 'gatehouse.yaml');
      writeFileSync(y, `${readFileSync(y, 'utf8')}\nidentity:\n  mfa: { requiredForGroups: [research-contractors] }\n  sessions: { ttlMinutes: 15 }\n`);
    },
  });
  app = fx.http.app;
  await fx.gh.createUser({ ...meta, admin: 'test-admin' }, 'rhea', PASSWORD);
});
after(async () => { await fx.close(); });

/** A code for a step the store has not seen yet (TOTP codes are single use). */
async function freshCode(secret: string, offsetSteps: number): Promise<string> {
  return generateTotp(secret, { now: (totpStep() + offsetSteps) * 30_000 });
}

describe('MFA on the request path', () => {
  let secret = '';
  let access = '';
  let usedCode = '';

  it('refuses the contractor\'s API key: the account needs an MFA session', async () => {
    assert.equal(await codeOf(fx.query('rhea', 'SELECT count(*) FROM claims')), 'MFA_REQUIRED');
    // Principals outside the group keep their API keys.
    await fx.query('ada', 'SELECT count(*) FROM claims');
  });

  it('refuses sign-in before enrolment, and enrols an authenticator with the password', async () => {
    assert.equal(await codeOf(fx.gh.login(meta, { principal: 'rhea', password: PASSWORD })), 'MFA_REQUIRED');
    assert.equal(await codeOf(fx.gh.enrolTotp(meta, { principal: 'rhea', password: 'wrong password here' })), 'AUTH_INVALID');
    const e = await fx.gh.enrolTotp(meta, { principal: 'rhea', password: PASSWORD });
    assert.match(e.otpauthUri, /^otpauth:\/\/totp\//);
    secret = e.secret;
    const r = await fx.gh.confirmTotp(meta, { principal: 'rhea', password: PASSWORD, code: await freshCode(secret, -1) });
    assert.equal(r.recoveryCodes.length, 10);
  });

  it('signs in with password and code, and the session token queries under the same policy', async () => {
    usedCode = await freshCode(secret, 1);
    const t = await fx.gh.login(meta, { principal: 'rhea', password: PASSWORD, code: usedCode });
    assert.equal(t.mfa, true);
    access = t.accessToken;
    const r = await fx.gh.query({ credential: access, sql: 'SELECT status, count(*) FROM claims GROUP BY status', purpose: 'research', source: '127.0.0.1', channel: 'test' });
    assert.ok(r.governance.obligationsApplied.some((o) => o.startsWith('aggregationOnly:claims')));
  });

  it('refuses a replayed code and a wrong password, and audits both', async () => {
    const before = fx.log.size;
    // The very code that signed in before (a 30 s boundary may have passed since: the code
    // itself, not "the current step", is what is replayed).
    assert.equal(await codeOf(fx.gh.login(meta, { principal: 'rhea', password: PASSWORD, code: usedCode })), 'AUTH_INVALID');
    assert.equal(await codeOf(fx.gh.login(meta, { principal: 'rhea', password: 'not the password at all', code: '000000' })), 'AUTH_INVALID');
    assert.equal(fx.log.size, before + 2);
    assert.equal(fx.log.leaf(before).entry.decision, 'deny');
    assert.ok(!JSON.stringify(fx.log.leaf(before + 1).entry).includes('not the password'));
  });

  it('answers an unknown principal exactly like a wrong password', async () => {
    assert.equal(await codeOf(fx.gh.login(meta, { principal: 'nobody', password: PASSWORD })), 'AUTH_INVALID');
  });

  it('refuses a forged or tampered session token', async () => {
    const [h, p, sig] = access.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'ada' })).toString('base64url')}.${sig}`;
    assert.equal(await codeOf(fx.gh.query({ credential: tampered, sql: 'SELECT 1', purpose: 'research', source: '127.0.0.1', channel: 'test' })), 'AUTH_INVALID');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.AAAAAAAAAAAAAAAAAAAAAAAAAAAA`;
    assert.equal(await codeOf(fx.gh.query({ credential: none, sql: 'SELECT 1', purpose: 'research', source: '127.0.0.1', channel: 'test' })), 'AUTH_INVALID');
  });

  it('revokes the session at logout: the very next request with it is refused (over HTTP)', async () => {
    const ask = () => app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${access}` }, payload: { sql: 'SELECT count(*) FROM claims', purpose: 'research' } });
    assert.equal((await ask()).statusCode, 200);
    const out = await app.inject({ method: 'POST', url: '/v1/auth/logout', headers: { authorization: `Bearer ${access}` } });
    assert.equal(out.statusCode, 200, out.body);
    const after = await ask();
    assert.equal(after.statusCode, 401);
    assert.equal(after.json().error.code, 'AUTH_INVALID');
  });

  it('serves the sign-in routes with schemas in the OpenAPI document', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    for (const p of ['/v1/auth/login', '/v1/auth/totp/enrol', '/v1/auth/totp/confirm', '/v1/auth/refresh', '/v1/auth/logout']) assert.ok(doc.paths[p], p);
    const bad = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { principal: 'rhea' } });
    assert.equal(bad.statusCode, 400);
  });
});

void KEYS;
