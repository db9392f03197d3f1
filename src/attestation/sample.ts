/**
 * The `sample` software TEE: evidence with the same claims as a hardware format, signed by
 * an Ed25519 "platform" key that the test or demo holds. It proves nothing about hardware,
 * so the verifier refuses it outside test mode before reading a byte, and the appraisal
 * policy forbids it again (two independent checks). Trustee's KBS ships the same idea as its
 * `sample` attester/verifier pair.
 *
 * Document: UTF-8 JSON `{ "format": "sample", "claims": <base64url JSON>, "signature": <base64url> }`.
 */
import { createPrivateKey, createPublicKey, createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { AttestationInvalid, AttestationRefused } from './errors.ts';
import type { Claims, Verifier, VerifyOptions } from './types.ts';

interface SampleClaimsJson {
  measurement: string;
  debug: boolean;
  issuedAt: number;
  nonce: string | null;
  publicKey: string | null;
  userData: string | null;
}

const b64 = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('base64url'));
const unb64 = (s: unknown) => (typeof s === 'string' ? new Uint8Array(Buffer.from(s, 'base64url')) : null);

export class SampleVerifier implements Verifier {
  readonly format = 'sample' as const;
  readonly #platformKey: KeyObject;

  constructor(platformKey: KeyObject) {
    this.#platformKey = platformKey;
  }

  verify(document: Uint8Array, options: VerifyOptions): Claims {
    if (options.mode !== 'test') {
      throw new AttestationRefused('the sample TEE is a software stand-in and is refused outside test mode', 'ATTESTATION_SAMPLE_IN_PRODUCTION', ['sample evidence is accepted in test mode only']);
    }
    let doc: { format?: unknown; claims?: unknown; signature?: unknown };
    try {
      doc = JSON.parse(Buffer.from(document).toString('utf8')) as typeof doc;
    } catch {
      throw new AttestationInvalid('the sample evidence is not JSON');
    }
    if (doc.format !== 'sample' || typeof doc.claims !== 'string' || typeof doc.signature !== 'string') throw new AttestationInvalid('the sample evidence lacks format, claims or signature');
    const claimsBytes = Buffer.from(doc.claims, 'base64url');
    if (!verify(null, claimsBytes, this.#platformKey, Buffer.from(doc.signature, 'base64url'))) {
      throw new AttestationInvalid('the sample evidence signature does not verify', 'ATTESTATION_BAD_SIGNATURE');
    }
    const c = JSON.parse(claimsBytes.toString('utf8')) as SampleClaimsJson;
    if (typeof c.measurement !== 'string' || typeof c.debug !== 'boolean' || typeof c.issuedAt !== 'number') throw new AttestationInvalid('the sample evidence claims are incomplete');
    return {
      format: 'sample', measurement: c.measurement, pcrs: { 0: c.measurement }, debug: c.debug, issuedAt: new Date(c.issuedAt),
      nonce: unb64(c.nonce), publicKey: unb64(c.publicKey), userData: unb64(c.userData), moduleId: 'sample-tee',
    };
  }
}

/** The enclave side of the sample TEE: produces evidence for tests and the demo. */
export class SampleTee {
  readonly #key: KeyObject;
  readonly platformKey: KeyObject;
  readonly measurement: string;
  readonly debug: boolean;

  /** `seed`: 32 bytes for a reproducible platform key (the demo's published one); default a fresh random key. */
  constructor(options: { measurement: string; debug?: boolean; seed?: Uint8Array }) {
    if (options.seed !== undefined && options.seed.length !== 32) throw new TypeError('a sample TEE seed is 32 bytes');
    const privateKey = options.seed
      ? createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, options.seed]), format: 'der', type: 'pkcs8' })
      : generateKeyPairSync('ed25519').privateKey;
    this.#key = privateKey;
    this.platformKey = createPublicKey(privateKey);
    this.measurement = options.measurement;
    this.debug = options.debug ?? false;
  }

  /** Evidence from this platform; `debug` overrides the enclave's mode (an enclave started in debug mode). */
  attest(fields: { nonce: Uint8Array | null; publicKey: Uint8Array | null; userData: Uint8Array | null; issuedAt: Date; debug?: boolean }): Uint8Array {
    const claims: SampleClaimsJson = {
      measurement: this.measurement, debug: fields.debug ?? this.debug, issuedAt: fields.issuedAt.getTime(),
      nonce: b64(fields.nonce), publicKey: b64(fields.publicKey), userData: b64(fields.userData),
    };
    const bytes = Buffer.from(JSON.stringify(claims));
    return new Uint8Array(Buffer.from(JSON.stringify({ format: 'sample', claims: bytes.toString('base64url'), signature: sign(null, bytes, this.#key).toString('base64url') })));
  }
}

/** RFC 8410 PKCS#8 wrapping of a raw 32-byte Ed25519 private key. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The demo's sample TEE platform key, derived from a published label: anyone can produce
 * evidence a demo node accepts, which is the point of a demo and why only a node configured
 * with `attestation: { allowSample: true }` (`serve --demo`, tests) accepts the sample format.
 */
export const DEMO_SAMPLE_SEED: Uint8Array = new Uint8Array(createHash('sha256').update('gatehouse demo sample TEE platform key (published; test mode only)').digest());

/** The demo enclave for a given measurement (its evidence verifies under DEMO_SAMPLE_SEED's key). */
export function demoSampleTee(measurement: string, debug = false): SampleTee {
  return new SampleTee({ measurement, debug, seed: DEMO_SAMPLE_SEED });
}
