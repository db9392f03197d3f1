/**
 * Identity administration on the one path: only administrators manage users and service
 * keys; scoped keys reach only their datasets; a revoked key, a disabled user and an MFA
 * reset (two administrators) take effect at once; rate limits refuse bursts. All audited.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { codeOf, demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let fx: ServerFixture;
let app: FastifyInstance;
let olivia = '';
const as = (credential: string) => ({ credential, source: '127.0.0.1', channel: 'test' });
const PW = 'a long enough passphrase 2026';

before(async () => {
  fx = await demoFixture({ patients: 300, http: true, edit: (ws) => appendFileSync(join(ws, 'gatehouse.yaml'), '\nidentity:\n  adminGroups: [admins]\n  rateLimits: { perPrincipal: { burst: 40, perMinute: 60 } }\n') });
  olivia = JSON.parse(readFileSync(join(fx.wsDir, 'demo-keys.json'), 'utf8')).olivia;
  app = fx.http.app;
});
after(async () => { await fx.close(); });

describe('identity administration', () => {
  let key = '';
  let keyId = '';

  it('refuses administration to non-administrators', async () => {
    assert.equal(await codeOf(fx.gh.adminCreateKey(as(KEYS.ivan), { principal: 'ivan', datasets: ['claims'] })), 'POLICY_DENIED');
    assert.equal(await codeOf(fx.gh.adminCreateUser(as(KEYS.ada), { principal: 'ada', password: PW })), 'POLICY_DENIED');
  });

  it('issues a scoped service key that reaches only its datasets, then revokes it at once (over HTTP)', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/admin/keys', headers: { authorization: `Bearer ${olivia}` }, payload: { principal: 'ivan', datasets: ['claims'] } });
    assert.equal(res.statusCode, 200, res.body);
    ({ key, id: keyId } = res.json());
    const q = (sql: string) => app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${key}` }, payload: { sql, purpose: 'claims-processing' } });
    assert.equal((await q('SELECT count(*) FROM claims')).statusCode, 200);
    const outside = await q('SELECT count(*) FROM patients');
    assert.equal(outside.statusCode, 403);
    assert.match(outside.json().error.message, /not scoped for "patients"/);
    const listed = await app.inject({ url: '/v1/admin/keys?principal=ivan', headers: { authorization: `Bearer ${olivia}` } });
    assert.ok(!listed.body.includes(key), 'a listing never shows the key');
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/admin/keys/${keyId}`, headers: { authorization: `Bearer ${olivia}` } })).statusCode, 200);
    assert.equal((await q('SELECT count(*) FROM claims')).statusCode, 401);
  });

  it('disabling a user ends their sessions on the next request; enabling restores sign-in', async () => {
    await fx.gh.adminCreateUser(as(olivia), { principal: 'ada', password: PW });
    const t = await fx.gh.login(as(''), { principal: 'ada', password: PW });
    const ask = () => fx.gh.query({ credential: t.accessToken, sql: 'SELECT 1', purpose: 'operations', source: '127.0.0.1', channel: 'test' });
    await ask();
    await fx.gh.adminSetUserEnabled(as(olivia), 'ada', false);
    assert.equal(await codeOf(ask()), 'AUTH_INVALID');
    assert.equal(await codeOf(fx.gh.login(as(''), { principal: 'ada', password: PW })), 'AUTH_INVALID');
    await fx.gh.adminSetUserEnabled(as(olivia), 'ada', true);
    await fx.gh.login(as(''), { principal: 'ada', password: PW });
  });

  it('an MFA reset needs a second administrator', async () => {
    await fx.gh.adminMfaReset(as(olivia), 'ada', 'request');
    assert.equal(await codeOf(fx.gh.adminMfaReset(as(olivia), 'ada', 'approve')), 'POLICY_DENIED');
  });

  it('refuses a burst beyond the per-principal rate limit, and audits it', async () => {
    let limited = 0;
    for (let i = 0; i < 60; i++) {
      try { await fx.gh.query({ credential: KEYS.audrey, sql: 'SELECT 1', purpose: 'operations', source: '10.9.9.9', channel: 'test' }); } catch (e) { if ((e as { code?: string }).code === 'RATE_LIMITED') limited++; }
    }
    assert.ok(limited >= 15, `limited ${limited}`);
  });
});
