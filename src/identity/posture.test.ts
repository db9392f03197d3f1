import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { evaluatePosture, networkZone, parsePostureConfig, peerCertificateFromPem, PostureConfigInvalid, postureContext, subjectAltNames, type PostureConfig } from './posture.ts';

const ISSUER = 'https://mdm.example.com';
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const nowSec = Math.floor(NOW.getTime() / 1000);

let agentKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let proxyKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let config: PostureConfig;
let dir: string;
const pem: Record<string, string> = {};

const HEALTHY = { disk_encrypted: true, os_patched: true, edr_running: true, screen_lock: true, managed: true };

async function token(claims: Record<string, unknown> = {}, opts: { key?: CryptoKey; alg?: string; kid?: string; typ?: string; iat?: number; exp?: number } = {}): Promise<string> {
  const iat = opts.iat ?? nowSec - 60;
  return new SignJWT({ device_id: 'laptop-042', ...HEALTHY, ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'EdDSA', typ: opts.typ ?? 'posture+jwt', ...(opts.kid ? { kid: opts.kid } : {}) })
    .setIssuer(typeof claims.iss === 'string' ? claims.iss : ISSUER)
    .setSubject(typeof claims.sub === 'string' ? claims.sub : 'rhea')
    .setAudience('gatehouse')
    .setIssuedAt(iat)
    .setExpirationTime(opts.exp ?? iat + 3600)
    .sign(opts.key ?? agentKey.privateKey);
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '3650', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  pem[name] = readFileSync(join(dir, `${name}.crt`), 'utf8');
}

function makeLeaf(name: string, ca: string, cn: string, san: string): void {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=clientAuth,serverAuth\n`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '30', '-extfile', `${name}.ext`);
  pem[name] = readFileSync(join(dir, `${name}.crt`), 'utf8');
  pem[`${name}.key`] = readFileSync(join(dir, `${name}.key`), 'utf8');
}

before(async () => {
  agentKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  proxyKey = await generateKeyPair('ES256');
  dir = mkdtempSync(join(tmpdir(), 'gh-posture-'));
  makeCa('device-ca');
  makeCa('rogue-ca');
  makeLeaf('laptop', 'device-ca', 'laptop-042', 'DNS:laptop-042.corp.example, URI:spiffe://corp.example/device/laptop-042');
  makeLeaf('rogue', 'rogue-ca', 'laptop-042', 'DNS:laptop-042.corp.example');
  makeLeaf('server', 'device-ca', 'localhost', 'DNS:localhost, IP:127.0.0.1');
  const fp = (p: string): string => new X509Certificate(p).fingerprint256;
  config = parsePostureConfig({
    issuers: [
      { issuer: ISSUER, keys: [{ kid: 'agent-1', jwk: await exportJWK(agentKey.publicKey) }] },
      { issuer: 'https://proxy.example.com', keys: [{ pem: await exportSPKI(proxyKey.publicKey) }] },
    ],
    audience: 'gatehouse',
    clientCertificates: {
      trustedIssuers: [fp(pem['device-ca']!)],
      identities: [{ subject: 'URI:spiffe://corp.example/device/laptop-042', deviceId: 'laptop-042' }],
    },
    requiredChecks: ['disk_encrypted', 'os_patched', 'edr_running', 'screen_lock', 'managed'],
    zones: [
      { name: 'corp', cidrs: ['10.0.0.0/8', 'fd00:10::/32'] },
      { name: 'vpn', cidrs: ['100.64.0.0/10', '2001:db8:a::/48'] },
    ],
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('signed posture tokens', () => {
  it('a fresh token from a trusted agent with every check passing is compliant and names its device', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token(), sourceIp: '10.1.2.3', now: NOW }, config);
    assert.equal(r.compliant, true, r.reason ?? '');
    assert.equal(r.deviceId, 'laptop-042');
    assert.equal(r.zone, 'corp');
    assert.equal(r.source, 'token');
    assert.equal(r.checks.tokenVerified, true);
    assert.equal(r.attestedAt, new Date((nowSec - 60) * 1000).toISOString());
    assert.deepEqual(postureContext(r), { deviceCompliant: true, networkZone: 'corp', deviceManaged: true, deviceId: 'laptop-042' });
  });

  it('an ES256 token from a trusted proxy configured with a PEM key is accepted', async () => {
    const t = await token({ iss: 'https://proxy.example.com' }, { key: proxyKey.privateKey, alg: 'ES256' });
    const r = await evaluatePosture({ principalId: 'rhea', token: t, sourceIp: '203.0.113.9', now: NOW }, config);
    assert.equal(r.compliant, true, r.reason ?? '');
    assert.equal(r.zone, 'internet');
  });

  it('a token signed by an unknown key is non-compliant, never thrown', async () => {
    const stranger = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({}, { key: stranger.privateKey }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_SIGNATURE_INVALID');
    assert.equal(r.deviceId, null);
  });

  it('a token naming a key id the issuer does not have is refused as an unknown key', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({}, { kid: 'agent-9' }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_UNKNOWN_KEY');
  });

  it('a token from an issuer that is not trusted is refused', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({ iss: 'https://evil.example' }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_UNKNOWN_ISSUER');
  });

  it('an expired token is non-compliant', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({}, { iat: nowSec - 600, exp: nowSec - 120 }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_EXPIRED');
  });

  it('a token whose attestation is older than maxAgeSec is stale even though it has not expired', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({}, { iat: nowSec - 16 * 60, exp: nowSec + 3600 }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_STALE');
    assert.equal(r.checks.tokenVerified, false);
  });

  it('a token issued in the future is refused', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({}, { iat: nowSec + 600 }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_CLAIMS_INVALID');
  });

  it('an unsigned token (alg: none) is refused', async () => {
    const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${enc({ alg: 'none', typ: 'posture+jwt' })}.${enc({ iss: ISSUER, sub: 'rhea', aud: 'gatehouse', device_id: 'laptop-042', iat: nowSec, exp: nowSec + 60, ...HEALTHY })}.`;
    const r = await evaluatePosture({ principalId: 'rhea', token: unsigned, sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_ALG_NOT_ALLOWED');
  });

  it('an HS256 token keyed with the issuer\'s public key (algorithm confusion) is refused', async () => {
    const jwk = await exportJWK(agentKey.publicKey);
    const secret = new TextEncoder().encode(JSON.stringify(jwk));
    const forged = await new SignJWT({ device_id: 'laptop-042', ...HEALTHY }).setProtectedHeader({ alg: 'HS256', typ: 'posture+jwt' })
      .setIssuer(ISSUER).setSubject('rhea').setAudience('gatehouse').setIssuedAt(nowSec).setExpirationTime(nowSec + 60).sign(secret);
    const r = await evaluatePosture({ principalId: 'rhea', token: forged, sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_ALG_NOT_ALLOWED');
  });

  it('a token issued for another principal (wrong sub) is refused', async () => {
    const r = await evaluatePosture({ principalId: 'ivan', token: await token({ sub: 'rhea' }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_SUBJECT_MISMATCH');
  });

  it('a token whose sub is a device is accepted only for that device\'s configured owners', async () => {
    const owned = parsePostureConfig({ issuers: [{ issuer: ISSUER, keys: [{ jwk: await exportJWK(agentKey.publicKey) }] }], deviceOwners: { 'laptop-042': ['rhea'] } });
    const t = await token({ sub: 'laptop-042' });
    assert.equal((await evaluatePosture({ principalId: 'rhea', token: t, sourceIp: '10.0.0.1', now: NOW }, owned)).compliant, true);
    assert.equal((await evaluatePosture({ principalId: 'ivan', token: t, sourceIp: '10.0.0.1', now: NOW }, owned)).reasonCode, 'POSTURE_SUBJECT_MISMATCH');
  });

  it('a token of another type (a session JWT signed by the same key) is not posture', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({}, { typ: 'JWT' }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_CLAIMS_INVALID');
  });

  it('a token with a tampered payload fails its signature', async () => {
    const [h, p, s] = (await token({ disk_encrypted: false })).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    claims.disk_encrypted = true;
    const r = await evaluatePosture({ principalId: 'rhea', token: `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`, sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.reasonCode, 'POSTURE_TOKEN_SIGNATURE_INVALID');
  });

  it('a valid token attesting an unencrypted disk is non-compliant and says which check failed', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({ disk_encrypted: false, edr_running: 'yes' }), sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_CHECK_FAILED');
    assert.match(r.reason!, /disk_encrypted, edr_running/);
    assert.equal(r.checks.tokenVerified, true);
  });

  it('garbage and oversized tokens are non-compliant values', async () => {
    for (const t of ['not-a-jwt', 'a.b.c', 'x'.repeat(9000), '..']) {
      const r = await evaluatePosture({ principalId: 'rhea', token: t, sourceIp: '10.0.0.1', now: NOW }, config);
      assert.equal(r.compliant, false);
      assert.ok(r.reasonCode?.startsWith('POSTURE_TOKEN'), r.reasonCode ?? '');
    }
  });

  it('no posture at all is non-compliant (unknown posture fails closed)', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', sourceIp: '10.0.0.1', now: NOW }, config);
    assert.deepEqual([r.compliant, r.reasonCode, r.source, r.zone], [false, 'POSTURE_MISSING', 'none', 'corp']);
  });
});

describe('TLS client certificate posture', () => {
  const certOnly = (): PostureConfig => ({ ...config, requiredChecks: ['managed'] });

  it('a certificate from the pinned device CA maps its SAN to a managed device', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', peerCertificate: peerCertificateFromPem(pem.laptop!, pem['device-ca']), peerAuthorized: true, sourceIp: '10.0.0.1', now: NOW }, certOnly());
    assert.equal(r.compliant, true, r.reason ?? '');
    assert.equal(r.deviceId, 'laptop-042');
    assert.equal(r.checks.managed, true);
    assert.equal(r.checks.disk_encrypted, false);
  });

  it('a certificate alone does not attest disk encryption when the configuration requires it', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', peerCertificate: peerCertificateFromPem(pem.laptop!, pem['device-ca']), peerAuthorized: true, sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.reasonCode, 'POSTURE_CHECK_FAILED');
  });

  it('a certificate from an untrusted issuer is refused even when the TLS layer accepted it', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', peerCertificate: peerCertificateFromPem(pem.rogue!, pem['rogue-ca']), peerAuthorized: true, sourceIp: '10.0.0.1', now: NOW }, certOnly());
    assert.equal(r.compliant, false);
    assert.equal(r.reasonCode, 'POSTURE_CERT_UNTRUSTED_ISSUER');
  });

  it('a certificate the TLS layer did not authorize is refused', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', peerCertificate: peerCertificateFromPem(pem.laptop!, pem['device-ca']), peerAuthorized: false, sourceIp: '10.0.0.1', now: NOW }, certOnly());
    assert.equal(r.reasonCode, 'POSTURE_CERT_UNAUTHORIZED');
  });

  it('a certificate outside its validity period is refused', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', peerCertificate: peerCertificateFromPem(pem.laptop!, pem['device-ca']), peerAuthorized: true, sourceIp: '10.0.0.1', now: new Date(Date.now() + 60 * 86_400_000) }, certOnly());
    assert.equal(r.reasonCode, 'POSTURE_CERT_EXPIRED');
  });

  it('a token and a certificate naming different devices are refused', async () => {
    const r = await evaluatePosture({ principalId: 'rhea', token: await token({ device_id: 'desktop-7' }), peerCertificate: peerCertificateFromPem(pem.laptop!, pem['device-ca']), peerAuthorized: true, sourceIp: '10.0.0.1', now: NOW }, config);
    assert.equal(r.reasonCode, 'POSTURE_DEVICE_MISMATCH');
  });

  it('a certificate mapped to one principal is refused for another', async () => {
    const c = { ...certOnly(), clientCertificates: { ...config.clientCertificates!, identities: [{ subject: 'CN=laptop-042', deviceId: 'laptop-042', principalId: 'ada' }] } };
    const r = await evaluatePosture({ principalId: 'rhea', peerCertificate: peerCertificateFromPem(pem.laptop!, pem['device-ca']), peerAuthorized: true, sourceIp: '10.0.0.1', now: NOW }, c);
    assert.equal(r.reasonCode, 'POSTURE_SUBJECT_MISMATCH');
  });

  it('works with the certificate of a live mTLS connection', async () => {
    const server = createServer({ key: pem['server.key'], cert: pem.server, ca: [pem['device-ca']!, pem['rogue-ca']!], requestCert: true, rejectUnauthorized: false });
    const seen = new Promise<{ authorized: boolean; cert: ReturnType<TLSSocket['getPeerCertificate']> }>((resolve) => {
      server.on('secureConnection', (s) => { resolve({ authorized: s.authorized, cert: s.getPeerCertificate(true) }); s.end(); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = connect({ host: '127.0.0.1', port, key: pem['laptop.key'], cert: pem.laptop, ca: pem['device-ca'], servername: 'localhost' });
    client.on('error', () => {});
    const { authorized, cert } = await seen;
    client.destroy();
    server.close();
    const r = await evaluatePosture({ principalId: 'rhea', peerCertificate: cert, peerAuthorized: authorized, sourceIp: '127.0.0.1', now: new Date() }, certOnly());
    assert.equal(r.compliant, true, r.reason ?? '');
    assert.equal(r.deviceId, 'laptop-042');
  });

  it('parses subject alternative names, including quoted values with commas', () => {
    assert.deepEqual(subjectAltNames('DNS:a.example, URI:spiffe://x/y, DNS:"b,c.example"'), ['DNS:a.example', 'URI:spiffe://x/y', 'DNS:b,c.example']);
  });
});

describe('network zones', () => {
  it('classifies IPv4, IPv4-mapped IPv6 and IPv6 sources by the first matching range', () => {
    assert.equal(networkZone('10.20.30.40', config), 'corp');
    assert.equal(networkZone('::ffff:10.20.30.40', config), 'corp');
    assert.equal(networkZone('fd00:10::1', config), 'corp');
    assert.equal(networkZone('100.64.1.1', config), 'vpn');
    assert.equal(networkZone('2001:db8:a::5', config), 'vpn');
    assert.equal(networkZone('8.8.8.8', config), 'internet');
    assert.equal(networkZone('not an ip', config), 'unknown');
  });
});

describe('posture configuration', () => {
  it('lists every problem with its path', () => {
    try {
      parsePostureConfig({
        issuers: [{ issuer: '', keys: [{ jwk: { kty: 'oct', k: 'c2VjcmV0' } }, { pem: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----' }] }],
        algorithms: ['EdDSA', 'HS256', 'none'],
        zones: [{ name: 'Corp', cidrs: ['10.0.0.0/33', 'banana'] }],
        clientCertificates: { trustedIssuers: ['xyz'] },
        maxAgeSec: -5,
        colour: 'blue',
      });
      assert.fail('expected PostureConfigInvalid');
    } catch (err) {
      assert.ok(err instanceof PostureConfigInvalid);
      assert.equal(err.detail, 'POSTURE_CONFIG_INVALID');
      const text = err.problems.join('\n');
      for (const want of ['posture.colour', 'algorithms[1]', 'algorithms[2]', 'issuers[0].issuer', 'issuers[0].keys[0]', 'issuers[0].keys[1].pem: this is a private key', 'zones[0].name', 'zones[0].cidrs[0]', 'zones[0].cidrs[1]', 'trustedIssuers[0]', 'maxAgeSec']) {
        assert.ok(text.includes(want), `missing problem ${want} in:\n${text}`);
      }
    }
  });

  it('refuses a key whose declared alg does not match its type', async () => {
    assert.throws(() => parsePostureConfig({ issuers: [{ issuer: ISSUER, keys: [{ alg: 'ES256', jwk: { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' } }] }] }), /does not match the key/);
  });

  it('defaults to a 15-minute maximum age, all checks required, EdDSA and ES256', () => {
    const c = parsePostureConfig({});
    assert.deepEqual([c.maxAgeSec, c.requiredChecks.length, c.algorithms, c.defaultZone], [900, 5, ['EdDSA', 'ES256'], 'internet']);
  });
});
