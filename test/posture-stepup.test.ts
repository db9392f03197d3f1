/**
 * Zero-trust attributes on the one path: a signed device-posture token and the network
 * zone reach Cedar's context (a forbid policy can demand a compliant device), and the MFA
 * age does too; step-up refreshes a session's MFA time with a fresh code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { codeOf, demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';

let fx: Fixture;
let agentKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
const meta = (posture?: string) => ({ credential: KEYS.ivan, source: '127.0.0.1', channel: 'test', ...(posture ? { posture } : {}) });

async function postureToken(sub: string, checks: Record<string, boolean>, iatOffsetSec = 0): Promise<string> {
  return new SignJWT({ device_id: 'laptop-042', ...checks })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'posture+jwt', kid: 'agent-1' })
    .setIssuer('https://mdm.example.test').setSubject(sub).setAudience('gatehouse')
    .setIssuedAt(Math.floor(Date.now() / 1000) + iatOffsetSec).setExpirationTime('15m')
    .sign(agentKey);
}

before(async () => {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  agentKey = privateKey;
  const jwk = await exportJWK(publicKey);
  fx = await demoFixture({
    patients: 300,
    edit: (ws) => {
      // The schema exposes the zero-trust context; insurers need a compliant device.
      const schema = join(ws, 'schema.cedarschema');
      writeFileSync(schema, readFileSync(schema, 'utf8').replace('    hour: Long,', '    hour: Long,\n    mfa: Bool,\n    mfaAgeSeconds: Long,\n    deviceCompliant: Bool,\n    networkZone: String,'));
      writeFileSync(join(ws, 'policies', 'zero-trust.cedar'), '@id("insurers-need-compliant-devices")\n@reason("insurers must use a compliant, managed device")\nforbid (principal in Group::"insurers", action, resource) unless { context.deviceCompliant };\n');
      appendFileSync(join(ws, 'gatehouse.yaml'), `\nidentity:\n  posture:\n    issuers:\n      - issuer: https://mdm.example.test\n        keys:\n          - kid: agent-1\n            jwk: ${JSON.stringify(jwk)}\n    audience: gatehouse\n    maxAgeSec: 600\n    zones:\n      - { name: loopback, cidrs: [127.0.0.0/8] }\n`);
    },
  });
});
after(async () => { await fx.close(); });

describe('device posture in the decision', () => {
  it('denies the insurer without a posture token, with the policy\'s reason', async () => {
    await assert.rejects(fx.gh.query({ ...meta(), sql: 'SELECT count(*) FROM claims', purpose: 'claims-processing' }), (e: { code?: string; reasons?: string[] }) => {
      assert.equal(e.code, 'POLICY_DENIED');
      assert.deepEqual(e.reasons, ['insurers must use a compliant, managed device']);
      return true;
    });
  });

  it('allows it with a fresh token from the trusted agent whose checks all pass', async () => {
    const t = await postureToken('ivan', { disk_encrypted: true, os_patched: true, edr_running: true, screen_lock: true, managed: true });
    const r = await fx.gh.query({ ...meta(t), sql: 'SELECT count(*) FROM claims', purpose: 'claims-processing' });
    assert.equal(r.rows.length, 1);
  });

  it('treats a failed check, a stale token, another principal\'s token or a forged one as non-compliant', async () => {
    const ok = { disk_encrypted: true, os_patched: true, edr_running: true, screen_lock: true, managed: true };
    const q = (t: string) => fx.gh.query({ ...meta(t), sql: 'SELECT count(*) FROM claims', purpose: 'claims-processing' });
    assert.equal(await codeOf(q(await postureToken('ivan', { ...ok, disk_encrypted: false }))), 'POLICY_DENIED');
    assert.equal(await codeOf(q(await postureToken('ivan', ok, -3600))), 'POLICY_DENIED');
    assert.equal(await codeOf(q(await postureToken('rhea', ok))), 'POLICY_DENIED');
    const good = await postureToken('ivan', ok);
    const forged = `${good.split('.').slice(0, 2).join('.')}.${Buffer.alloc(64, 1).toString('base64url')}`;
    assert.equal(await codeOf(q(forged)), 'POLICY_DENIED');
  });

  it('leaves principals the policy does not name alone', async () => {
    await fx.gh.query({ credential: KEYS.ada, source: '127.0.0.1', channel: 'test', sql: 'SELECT count(*) FROM claims', purpose: 'operations' });
  });
});
