/**
 * Attestation: real AWS Nitro Enclaves documents (test/fixtures/nitro, provenance in its
 * README) verified at their own time, then attacked: bytes changed, time moved past the
 * chain, a forged chain, another root. Then the key broker: the sample TEE in production,
 * replayed, wrong-nonce, debug, stale, unbound and unapproved evidence, each refused, and
 * the one good release decrypting only with the enclave's key.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decode, encode } from 'cbor2';
import { compactDecrypt } from 'jose';
import 'reflect-metadata';
import * as px509 from '@peculiar/x509';
import { NitroVerifier, NITRO_ROOT_G1_SHA256 } from '../src/attestation/nitro.ts';
import { demoSampleTee, SampleTee, SampleVerifier } from '../src/attestation/sample.ts';
import { KeyBroker } from '../src/attestation/key-broker.ts';
import { jobBinding } from '../src/attestation/binding.ts';
import { sha256Hex } from '../src/attestation/x509-chain.ts';
import { GatehouseError } from '../src/errors.ts';

const DIR = join(import.meta.dirname, 'fixtures', 'nitro');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.cbor')).sort();
const nitro = new NitroVerifier();

function load(file: string): { bytes: Uint8Array; at: Date; payload: Record<string, unknown> } {
  const bytes = new Uint8Array(readFileSync(join(DIR, file)));
  const payload = decode((decode(bytes) as Uint8Array[])[2]!) as Record<string, unknown>;
  return { bytes, at: new Date(Math.floor(Number(payload.timestamp) / 1000) * 1000), payload };
}

function refusedWith(fn: () => unknown, detail?: RegExp): GatehouseError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GatehouseError, String(err));
    assert.equal(err.code, 'ATTESTATION_REFUSED');
    if (detail) assert.match(err.detail ?? '', detail);
    return err;
  }
  assert.fail('the evidence was accepted');
}

describe('AWS Nitro attestation documents', () => {
  test('the pinned root in the fixtures is AWS Nitro Enclaves Root-G1 by its published fingerprint', () => {
    const root = new X509Certificate(readFileSync(join(DIR, 'aws-nitro-enclaves-root-g1.pem')));
    assert.equal(sha256Hex(root.raw), NITRO_ROOT_G1_SHA256);
  });

  test('all ten real documents verify at their own time, with their PCR0 and debug flag', () => {
    assert.equal(FILES.length, 10);
    const pcr0 = (f: string) => Buffer.from(((load(f).payload.pcrs as Map<number, Uint8Array>).get(0))!).toString('hex');
    for (const f of FILES) {
      const { bytes, at } = load(f);
      const claims = nitro.verify(bytes, { at, mode: 'production' });
      assert.equal(claims.debug, f.includes('-debug'), f);
      assert.equal(claims.measurement, pcr0(f), f);
      assert.equal(claims.issuedAt.getTime() - at.getTime() < 1000, true);
    }
    const t26 = nitro.verify(load('turnkey-2026-06-30.cbor').bytes, { at: load('turnkey-2026-06-30.cbor').at, mode: 'production' });
    assert.equal(Object.keys(t26.pcrs).length, 32);
    assert.equal(t26.measurement, 'ea7cec511c07e6c4049819d3627b460fc2ae84e0873f757214355c7dfa86b0ca4712a499656592a3fdfe60b9ad99a96d');
  });

  test('any single changed byte makes a document fail', () => {
    for (const f of ['evervault-2022-10-13.cbor', 'turnkey-2025-09-16-a.cbor']) {
      const { bytes, at } = load(f);
      const positions = Array.from({ length: 60 }, (_, i) => Math.floor((i * (bytes.length - 1)) / 59));
      for (const pos of positions) {
        const copy = new Uint8Array(bytes);
        copy[pos]! ^= 0x01;
        assert.throws(() => nitro.verify(copy, { at, mode: 'production' }), (e: unknown) => e instanceof GatehouseError && e.code === 'ATTESTATION_REFUSED', `${f} byte ${pos}`);
      }
    }
  });

  test('a changed payload field with the original signature fails the signature check', () => {
    const { bytes, at } = load('blocky-2024-09-07.cbor');
    const [prot, unprot, payload, sig] = decode(bytes) as [Uint8Array, unknown, Uint8Array, Uint8Array];
    const p = decode(payload) as Record<string, unknown>;
    (p.pcrs as Map<number, Uint8Array>).set(0, new Uint8Array(48).fill(7));
    const forged = encode([new Uint8Array(prot), unprot, new Uint8Array(encode(p)), new Uint8Array(sig)]);
    refusedWith(() => nitro.verify(forged, { at, mode: 'production' }), /BAD_SIGNATURE/);
  });

  test('after the chain expires, and before it starts, the same document fails', () => {
    for (const f of FILES) {
      const { bytes, at, payload } = load(f);
      nitro.verify(bytes, { at, mode: 'production' });
      const leaf = new X509Certificate(payload.certificate as Uint8Array);
      refusedWith(() => nitro.verify(bytes, { at: new Date(new Date(leaf.validTo).getTime() + 1000), mode: 'production' }), /EXPIRED/);
      refusedWith(() => nitro.verify(bytes, { at: new Date(new Date(leaf.validFrom).getTime() - 1000), mode: 'production' }), /EXPIRED/);
      refusedWith(() => nitro.verify(bytes, { at: new Date(), mode: 'production' }), /EXPIRED/);
    }
  });

  test('a document re-signed by an attacker under a chain that is not AWS\'s is refused', async () => {
    const { bytes, at } = load('turnkey-2024-07-16.cbor');
    const [prot, , payload] = decode(bytes) as [Uint8Array, unknown, Uint8Array];
    const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;
    const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const cert = await px509.X509CertificateGenerator.createSelfSigned({ name: 'CN=aws.nitro-enclaves', keys, signingAlgorithm: alg, notBefore: new Date(at.getTime() - 3_600_000), notAfter: new Date(at.getTime() + 3_600_000), extensions: [new px509.BasicConstraintsExtension(false), new px509.KeyUsagesExtension(px509.KeyUsageFlags.digitalSignature)] });
    const p = decode(payload) as Record<string, unknown>;
    const root = new Uint8Array((p.cabundle as Uint8Array[])[0]!);
    p.certificate = new Uint8Array(cert.rawData);
    const newPayload = new Uint8Array(encode(p));
    const priv = createPrivateKey({ key: Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' });
    const tbs = encode(['Signature1', new Uint8Array(prot), new Uint8Array(0), newPayload]);
    const sig = sign('sha384', tbs, { key: priv, dsaEncoding: 'ieee-p1363' });
    const forged = encode([new Uint8Array(prot), new Map(), newPayload, new Uint8Array(sig)]);
    refusedWith(() => nitro.verify(forged, { at, mode: 'production' }), /BAD_CHAIN/);
    // Presenting the attacker's certificate as the root is refused by the pin.
    p.cabundle = [new Uint8Array(cert.rawData)];
    assert.ok(root.length > 0);
    const pinned = encode([new Uint8Array(prot), new Map(), new Uint8Array(encode(p)), new Uint8Array(sig)]);
    refusedWith(() => nitro.verify(pinned, { at, mode: 'production' }), /WRONG_ROOT|BAD_CHAIN/);
  });

  test('a verifier pinned to another root refuses genuine documents', () => {
    const { bytes, at } = load('evervault-2022-10-13.cbor');
    refusedWith(() => new NitroVerifier({ rootSha256: '00'.repeat(32) }).verify(bytes, { at, mode: 'production' }), /WRONG_ROOT/);
  });

  test('garbage, empty and oversized inputs are refused with a clear error', () => {
    const at = new Date();
    for (const bad of [new Uint8Array(0), new Uint8Array([0x82, 0x01]), new Uint8Array(70_000), new Uint8Array(encode([1, 2, 3, 4]))]) {
      refusedWith(() => nitro.verify(bad, { at, mode: 'production' }));
    }
  });
});

// --- the key broker -------------------------------------------------------------------------

const MEASUREMENT = 'ab'.repeat(48);
const CODE_HASH = 'cd'.repeat(32);
const DATA_KEY = new Uint8Array(32).fill(9);

function setup(options: { mode?: 'test' | 'production'; debug?: boolean; measurement?: string } = {}) {
  let now = new Date('2026-03-01T10:00:00Z');
  const tee = new SampleTee({ measurement: options.measurement ?? MEASUREMENT, debug: options.debug ?? false });
  const broker = new KeyBroker({
    verifiers: [new SampleVerifier(tee.platformKey), nitro],
    mode: options.mode ?? 'test',
    now: () => now,
    approvedMeasurements: () => [MEASUREMENT],
    approvedCodeHashes: (d) => (d === 'telemetry' ? [CODE_HASH] : []),
    dataKey: async () => DATA_KEY,
  });
  const enclave = generateKeyPairSync('x25519');
  const spki = new Uint8Array(enclave.publicKey.export({ format: 'der', type: 'spki' }));
  const evidence = (nonce: string, o: { jobId?: string; codeHash?: string; issuedAt?: Date; key?: Uint8Array } = {}) => tee.attest({
    nonce: new Uint8Array(Buffer.from(nonce, 'base64url')), publicKey: o.key ?? spki,
    userData: jobBinding(o.jobId ?? 'job-1', o.codeHash ?? CODE_HASH), issuedAt: o.issuedAt ?? now,
  });
  return { broker, evidence, enclave: enclave.privateKey as KeyObject, setNow: (d: Date) => { now = d; } };
}

async function refusal(p: Promise<unknown>, detail: RegExp): Promise<GatehouseError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatehouseError, String(err));
    assert.equal(err.code, 'ATTESTATION_REFUSED');
    assert.match(err.detail ?? '', detail);
    return err;
  }
  assert.fail('the key was released');
}

describe('the key broker', () => {
  test('releases the data key wrapped to the enclave key, which only that key opens', async () => {
    const { broker, evidence, enclave } = setup();
    const ch = await broker.challenge('job-1', 'sample');
    const r = await broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: evidence(ch.nonce) });
    const { plaintext, protectedHeader } = await compactDecrypt(r.jwe, enclave);
    assert.deepEqual(new Uint8Array(plaintext), DATA_KEY);
    assert.equal(protectedHeader.alg, 'ECDH-ES');
    await assert.rejects(compactDecrypt(r.jwe, generateKeyPairSync('x25519').privateKey));
  });

  test('refuses the sample TEE in production mode', async () => {
    const { broker, evidence } = setup({ mode: 'production' });
    const ch = await broker.challenge('job-1', 'sample');
    await refusal(broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: evidence(ch.nonce) }), /SAMPLE_IN_PRODUCTION/);
  });

  test('the demo platform key is reproducible, verifies only the demo enclave, and is still refused in production', async () => {
    const demo = demoSampleTee(MEASUREMENT);
    const verifier = new SampleVerifier(demoSampleTee('').platformKey);
    const at = new Date('2026-03-01T10:00:00Z');
    const doc = demo.attest({ nonce: null, publicKey: null, userData: null, issuedAt: at });
    assert.equal(verifier.verify(doc, { at, mode: 'test' }).measurement, MEASUREMENT);
    const other = new SampleTee({ measurement: MEASUREMENT }).attest({ nonce: null, publicKey: null, userData: null, issuedAt: at });
    assert.throws(() => verifier.verify(other, { at, mode: 'test' }), (e: GatehouseError) => e.detail === 'ATTESTATION_BAD_SIGNATURE');
    assert.throws(() => verifier.verify(doc, { at, mode: 'production' }), (e: GatehouseError) => e.detail === 'ATTESTATION_SAMPLE_IN_PRODUCTION');
  });

  test('refuses replayed evidence, on the same challenge and on a new one', async () => {
    const { broker, evidence } = setup();
    const ch = await broker.challenge('job-1', 'sample');
    const ev = evidence(ch.nonce);
    await broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: ev });
    await refusal(broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: ev }), /REPLAYED/);
    const ch2 = await broker.challenge('job-1', 'sample');
    await refusal(broker.release({ challengeId: ch2.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: ev }), /WRONG_NONCE/);
  });

  test('refuses evidence carrying another nonce, and consumes the challenge anyway', async () => {
    const { broker, evidence } = setup();
    const ch = await broker.challenge('job-1', 'sample');
    const other = await broker.challenge('job-1', 'sample');
    await refusal(broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: evidence(other.nonce) }), /WRONG_NONCE/);
    await refusal(broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: evidence(ch.nonce) }), /REPLAYED/);
  });

  test('refuses debug-mode evidence', async () => {
    const { broker, evidence } = setup({ debug: true });
    const ch = await broker.challenge('job-1', 'sample');
    const e = await refusal(broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: evidence(ch.nonce) }), /DEBUG_MODE/);
    assert.ok(e.reasons.some((r) => /debug mode/.test(r)));
  });

  test('refuses an unapproved measurement and an unapproved code hash', async () => {
    const bad = setup({ measurement: 'ef'.repeat(48) });
    const ch = await bad.broker.challenge('job-1', 'sample');
    await refusal(bad.broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: bad.evidence(ch.nonce) }), /UNAPPROVED_MEASUREMENT/);
    const good = setup();
    const ch2 = await good.broker.challenge('job-1', 'sample');
    const other = 'ee'.repeat(32);
    await refusal(good.broker.release({ challengeId: ch2.challengeId, jobId: 'job-1', codeHash: other, dataset: 'telemetry', evidence: good.evidence(ch2.nonce, { codeHash: other }) }), /UNAPPROVED_CODE/);
  });

  test('refuses evidence bound to another job or code, and stale evidence', async () => {
    const s = setup();
    const ch = await s.broker.challenge('job-1', 'sample');
    await refusal(s.broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: s.evidence(ch.nonce, { jobId: 'job-2' }) }), /UNBOUND/);
    const ch2 = await s.broker.challenge('job-1', 'sample');
    await refusal(s.broker.release({ challengeId: ch2.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: s.evidence(ch2.nonce, { issuedAt: new Date('2026-03-01T09:00:00Z') }) }), /STALE/);
  });

  test('refuses a challenge after it expires', async () => {
    const s = setup();
    const ch = await s.broker.challenge('job-1', 'sample');
    const ev = s.evidence(ch.nonce);
    s.setNow(new Date('2026-03-01T10:05:00Z'));
    await refusal(s.broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: ev }), /STALE/);
  });

  test('a genuine Nitro document that answers another verifier\'s nonce is refused', async () => {
    const { bytes, at } = load('blocky-2024-09-07.cbor');
    const s = setup({ mode: 'production' });
    s.setNow(at);
    const ch = await s.broker.challenge('job-1', 'aws-nitro');
    await refusal(s.broker.release({ challengeId: ch.challengeId, jobId: 'job-1', codeHash: CODE_HASH, dataset: 'telemetry', evidence: bytes }), /WRONG_NONCE/);
  });
});
