import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { OidcVerifier, type OidcVerifierOptions } from './oidc.ts';

const ISS = 'https://idp.example.test/realms/partners';
const AUD = 'gatehouse';
const NOW = Math.floor(Date.now() / 1000);

interface TestKey { kid: string; alg: string; privateKey: CryptoKey; jwk: JWK }
async function key(kid: string, alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function sign(k: TestKey, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ iss: ISS, aud: AUD, iat: NOW, exp: NOW + 300, sub: 'u-123', email: 'ann@partner.example', email_verified: true, ...claims })
    .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT', ...header })
    .sign(k.privateKey);
}

/** A JWKS endpoint on 127.0.0.1 that serves whatever `keys` holds and counts fetches. */
async function jwksServer(t: { after: (fn: () => Promise<void>) => void }, initial: JWK[]) {
  const state = { keys: initial, fetches: 0, hang: false };
  const server: Server = createServer((req, res) => {
    state.fetches++;
    if (state.hang) return; // never answers: the verifier's timeout must fire
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  return { state, url };
}

async function rejects(p: Promise<unknown>, code: string, status = 401): Promise<void> {
  await assert.rejects(p, (err: { detail?: string | null; status?: number }) => {
    assert.equal(err.detail, code);
    assert.equal(err.status, status);
    return true;
  });
}

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

test('a token from the provider maps to a principal and the attributes Cedar decides on', async (t) => {
  const k = await key('k1', 'RS256');
  const { url } = await jwksServer(t, [k.jwk]);
  const v = new OidcVerifier({
    issuer: ISS, audience: AUD, jwksUri: url,
    claimMapping: { principal: 'email', org: 'org', groups: 'realm_access.roles', clearance: 'clearance', region: 'region', department: 'dept' },
  });
  const id = await v.verify(await sign(k, { org: 'acme', realm_access: { roles: ['analyst', 'contractor'] }, clearance: 'restricted', region: 'eu', dept: 'finance', amr: ['pwd', 'otp'], auth_time: NOW - 30 }));
  assert.deepEqual(id, {
    principalId: 'ann@partner.example',
    attributes: { org: 'acme', groups: ['analyst', 'contractor'], clearance: 'restricted', region: 'eu', department: 'finance' },
    issuer: ISS, subject: 'u-123', expiresAt: NOW + 300, amr: ['pwd', 'otp'], authTime: NOW - 30,
  });
  // Unmapped or absent attributes are null / empty, never guessed.
  const bare = await new OidcVerifier({ issuer: ISS, audience: AUD, jwks: { keys: [k.jwk] }, principalPrefix: 'idp:' }).verify(await sign(k));
  assert.deepEqual([bare.principalId, bare.attributes], ['idp:u-123', { org: null, groups: [], clearance: null, region: null }]);
});

test('hostile provider tokens are each refused with their own code', async (t) => {
  const rsa = await key('rsa-1', 'RS256');
  const ec = await key('ec-1', 'ES256');
  const { url } = await jwksServer(t, [rsa.jwk, ec.jwk]);
  const v = new OidcVerifier({ issuer: ISS, audience: AUD, jwksUri: url, claimMapping: { principal: 'sub', groups: 'groups' } });
  const good = await sign(rsa);
  await v.verify(good);
  const [h, p, s] = good.split('.') as [string, string, string];

  // Forged signature: claims changed, signature kept.
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as JWTPayload;
  await rejects(v.verify(`${h}.${b64({ ...payload, sub: 'admin' })}.${s}`), 'TOKEN_SIGNATURE_INVALID');
  await rejects(v.verify(`${b64({ alg: 'none', typ: 'JWT' })}.${p}.`), 'TOKEN_ALG_NOT_ALLOWED');
  // Algorithm confusion: HS256 keyed with the RSA public key (PEM and JWK forms) under its kid.
  const { createPublicKey } = await import('node:crypto');
  const pem = createPublicKey({ key: rsa.jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  for (const secret of [pem, JSON.stringify(rsa.jwk), Buffer.from(rsa.jwk.n!, 'base64url')]) {
    const hh = b64({ alg: 'HS256', typ: 'JWT', kid: 'rsa-1' });
    await rejects(v.verify(`${hh}.${p}.${createHmac('sha256', secret).update(`${hh}.${p}`).digest('base64url')}`), 'TOKEN_ALG_NOT_ALLOWED');
  }
  // Claims.
  await rejects(v.verify(await sign(rsa, { exp: NOW - 120 })), 'TOKEN_EXPIRED');
  await rejects(v.verify(await sign(rsa, { nbf: NOW + 120 })), 'TOKEN_NOT_YET_VALID');
  await rejects(v.verify(await sign(rsa, { iss: 'https://evil.example.test' })), 'TOKEN_ISSUER_INVALID');
  await rejects(v.verify(await sign(rsa, { aud: 'some-other-client' })), 'TOKEN_AUDIENCE_INVALID');
  await rejects(v.verify(await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(ISS).setAudience(AUD).sign(rsa.privateKey)), 'TOKEN_CLAIM_INVALID');
  await rejects(v.verify(await sign(rsa, { sub: undefined })), 'OIDC_CLAIM_MISSING');
  await rejects(v.verify(await sign(rsa, { groups: { admin: true } })), 'OIDC_CLAIM_INVALID');
  // A correctly signed token from a key the provider never published.
  const stranger = await key('stranger', 'ES256');
  await rejects(v.verify(await sign(stranger)), 'TOKEN_KEY_UNKNOWN');
  // A known kid with a key of the wrong type for the claimed algorithm.
  await rejects(v.verify(await sign({ ...ec, kid: 'rsa-1' })), 'TOKEN_KEY_UNKNOWN');
  await rejects(v.verify('not.a.jwt'), 'TOKEN_MALFORMED');
});

test('the JWKS rotates mid-test: a new kid triggers a refetch, a removed key stops verifying', async (t) => {
  const k1 = await key('2030-01', 'ES256');
  const k2 = await key('2030-02', 'EdDSA');
  const { state, url } = await jwksServer(t, [k1.jwk]);
  const v = new OidcVerifier({ issuer: ISS, audience: AUD, jwksUri: url, jwksCooldownMs: 0 });
  const old = await sign(k1);
  assert.equal((await v.verify(old)).principalId, 'u-123');
  assert.equal(state.fetches, 1);
  await v.verify(old);
  assert.equal(state.fetches, 1, 'known keys are served from the cache');

  state.keys = [k1.jwk, k2.jwk]; // the provider publishes the next key, then signs with it
  assert.equal((await v.verify(await sign(k2))).principalId, 'u-123');
  assert.equal(state.fetches, 2, 'the unknown kid caused exactly one refetch');

  state.keys = [k2.jwk]; // and retires the old one
  await rejects(v.verify(await sign(await key('2030-03', 'RS256'))), 'TOKEN_KEY_UNKNOWN');
  assert.equal(state.fetches, 3);
  await rejects(v.verify(old), 'TOKEN_KEY_UNKNOWN');
});

test('an unknown kid inside the cooldown does not refetch the JWKS (no amplification)', async (t) => {
  const k1 = await key('a', 'RS256');
  const { state, url } = await jwksServer(t, [k1.jwk]);
  const v = new OidcVerifier({ issuer: ISS, audience: AUD, jwksUri: url, jwksCooldownMs: 60_000 });
  await v.verify(await sign(k1));
  const stranger = await key('zzz', 'RS256');
  for (let i = 0; i < 5; i++) await rejects(v.verify(await sign(stranger)), 'TOKEN_KEY_UNKNOWN');
  assert.equal(state.fetches, 1);
});

test('a provider that does not answer in time yields OIDC_JWKS_UNAVAILABLE (503), not a hang', async (t) => {
  const k = await key('a', 'RS256');
  const { state, url } = await jwksServer(t, [k.jwk]);
  state.hang = true;
  const v = new OidcVerifier({ issuer: ISS, audience: AUD, jwksUri: url, jwksTimeoutMs: 200 });
  await rejects(v.verify(await sign(k)), 'OIDC_JWKS_UNAVAILABLE', 503);
  const refused = new OidcVerifier({ issuer: ISS, audience: AUD, jwksUri: 'http://127.0.0.1:1/jwks' });
  await rejects(refused.verify(await sign(k)), 'OIDC_JWKS_UNAVAILABLE', 503);
});

test('an email principal needs email_verified unless the deployment opts out', async () => {
  const k = await key('a', 'EdDSA');
  const options: OidcVerifierOptions = { issuer: ISS, audience: AUD, jwks: { keys: [k.jwk] }, claimMapping: { principal: 'email' } };
  await rejects(new OidcVerifier(options).verify(await sign(k, { email_verified: false })), 'OIDC_EMAIL_UNVERIFIED');
  assert.equal((await new OidcVerifier({ ...options, requireVerifiedEmail: false }).verify(await sign(k, { email_verified: undefined }))).principalId, 'ann@partner.example');
});

test('configuration that would weaken verification is refused up front', () => {
  const jwks = { keys: [] };
  const bad: Partial<OidcVerifierOptions>[] = [
    { algorithms: ['HS256'] }, { algorithms: ['none'] }, { algorithms: ['RS256', 'HS512'] }, { algorithms: [] },
    { jwksUri: 'http://idp.example.test/jwks', jwks: undefined }, { jwksUri: 'https://idp.example.test/jwks' },
    { issuer: '' }, { audience: [] }, { clockToleranceSec: 3600 }, { claimMapping: { principal: '' } },
  ];
  for (const b of bad) {
    assert.throws(() => new OidcVerifier({ issuer: ISS, audience: AUD, jwks, ...b } as OidcVerifierOptions), { detail: 'IDENTITY_CONFIG_INVALID' }, JSON.stringify(b));
  }
});
