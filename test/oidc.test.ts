/**
 * External identity providers on the one path: a token from a configured OpenID Connect
 * provider authenticates a principal built from its mapped claims, which Cedar and the
 * row filters then use; forged, expired, mis-addressed or unsigned tokens are refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { codeOf, demoFixture, type Fixture } from './helpers/workspace.ts';

let fx: Fixture;
let key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const ISSUER = 'https://idp.example.test';

async function idToken(claims: Record<string, unknown>, opts: { aud?: string; exp?: string | number; iss?: string } = {}): Promise<string> {
  return new SignJWT({ org: 'keystone-mutual', groups: ['insurers'], region: 'us-east', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
    .setIssuer(opts.iss ?? ISSUER).setSubject('maria').setAudience(opts.aud ?? 'gatehouse')
    .setIssuedAt().setExpirationTime(opts.exp ?? '10m')
    .sign(key);
}

const ask = (token: string, sql = 'SELECT region, count(*) FROM claims GROUP BY region') =>
  fx.gh.query({ credential: token, sql, purpose: 'claims-processing', source: '127.0.0.1', channel: 'test' });

before(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
  fx = await demoFixture({
    patients: 300,
    edit: (ws) => appendFileSync(join(ws, 'gatehouse.yaml'), `\nidentity:\n  oidc:\n    - issuer: ${ISSUER}\n      audience: gatehouse\n      jwks: { keys: [${JSON.stringify(jwk)}] }\n      algorithms: [ES256]\n      claimMapping: { principal: sub, org: org, groups: groups, region: region }\n      principalPrefix: "idp:"\n`),
  });
});
after(async () => { await fx.close(); });

describe('OIDC tokens on the request path', () => {
  it('authenticates a principal from the mapped claims, governed like any other', async () => {
    const r = await ask(await idToken({}));
    assert.deepEqual(r.rows.map((x) => x[0]), ['us-east'], 'the region claim drives the row filter');
    assert.ok(r.governance.policies.includes('insurer-claims'), 'the groups claim drives Cedar');
    const entry = fx.log.leaf(Number(r.governance.auditId)).entry;
    assert.equal(entry.decision, 'allow');
  });

  it('refuses a token for another audience, an expired one, a forged one and an unsigned one', async () => {
    assert.equal(await codeOf(ask(await idToken({}, { aud: 'someone-else' }))), 'AUTH_INVALID');
    assert.equal(await codeOf(ask(await idToken({}, { exp: Math.floor(Date.now() / 1000) - 3600 }))), 'AUTH_INVALID');
    const good = await idToken({});
    const [h, , sig] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ iss: ISSUER, sub: 'maria', aud: 'gatehouse', groups: ['internal-analysts'], org: 'st-avery', region: 'us-east', exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.${sig}`;
    assert.equal(await codeOf(ask(forged)), 'AUTH_INVALID');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${good.split('.')[1]}.AAAAAAAAAAAAAAAAAAAAAAAAAAAA`;
    assert.equal(await codeOf(ask(none)), 'AUTH_INVALID');
  });

  it('applies the obligations of whatever groups the provider asserts', async () => {
    const token = await idToken({ groups: ['research-contractors'] });
    const r = await fx.gh.query({ credential: token, sql: 'SELECT status, count(*) FROM claims GROUP BY status', purpose: 'research', source: '127.0.0.1', channel: 'test' });
    assert.ok(r.governance.obligationsApplied.some((o) => o.startsWith('aggregationOnly:claims')));
    assert.equal(await codeOf(fx.gh.query({ credential: token, sql: 'SELECT * FROM claims', purpose: 'research', source: '127.0.0.1', channel: 'test' })), 'OBLIGATION_VIOLATION');
  });
});
