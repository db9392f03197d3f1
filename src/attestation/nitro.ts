/**
 * AWS Nitro Enclaves attestation documents, verified as aws/aws-nitro-enclaves-nsm-api
 * `docs/attestation_process.md` describes:
 *
 *  1. the document is a COSE_Sign1 (RFC 9052) signed with ES384 (cose-sign1.ts);
 *  2. its payload is a CBOR map with `module_id`, `digest` ("SHA384"), `timestamp` (ms),
 *     `pcrs` (index → 32/48/64-byte bstr), `certificate`, `cabundle`, and optional
 *     `public_key`, `user_data`, `nonce` (CBOR null is treated as absent: real documents
 *     carry it, see test/fixtures/nitro/README.md);
 *  3. `cabundle[0]` is the pinned AWS Nitro Enclaves Root-G1, and root → cabundle[1..] →
 *     certificate validates at the verification time (x509-chain.ts);
 *  4. the COSE signature verifies with the leaf certificate's P-384 key.
 *
 * Debug mode: an enclave started with `--debug-mode` reports PCR0, PCR1 and PCR2 as all
 * zeros (AWS Nitro Enclaves User Guide, "Attestation: debug mode"); the claims say so and
 * appraisal refuses it. The payload decoder accepts indefinite-length maps (2025+ documents).
 */
import { AttestationInvalid } from './errors.ts';
import { decodeCbor, parseCoseSign1, verifyCoseSign1 } from './cose-sign1.ts';
import type { Claims, Verifier, VerifyOptions } from './types.ts';
import { validateChain } from './x509-chain.ts';

/** SHA-256 of the DER of AWS Nitro Enclaves Root-G1, as AWS publishes it. */
export const NITRO_ROOT_G1_SHA256 = '641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b';

const MAX_DOCUMENT_BYTES = 64 * 1024;

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function optionalBytes(payload: Record<string, unknown>, key: string, max: number): Uint8Array | null {
  const v = payload[key];
  if (v === undefined || v === null) return null;
  if (!(v instanceof Uint8Array) || v.length > max) throw new AttestationInvalid(`the attestation document's ${key} must be at most ${max} bytes`);
  return v;
}

export class NitroVerifier implements Verifier {
  readonly format = 'aws-nitro' as const;
  readonly #rootSha256: string;

  constructor(options: { rootSha256?: string } = {}) {
    this.#rootSha256 = (options.rootSha256 ?? NITRO_ROOT_G1_SHA256).replaceAll(':', '').toLowerCase();
  }

  verify(document: Uint8Array, options: VerifyOptions): Claims {
    if (!(document instanceof Uint8Array) || document.length === 0 || document.length > MAX_DOCUMENT_BYTES) {
      throw new AttestationInvalid(`the attestation document must be 1 to ${MAX_DOCUMENT_BYTES} bytes`);
    }
    const cose = parseCoseSign1(document);
    const decoded = decodeCbor(cose.payload, 'the attestation document payload');
    if (typeof decoded !== 'object' || decoded === null || decoded instanceof Map || Array.isArray(decoded)) {
      throw new AttestationInvalid('the attestation document payload is not a map with text keys');
    }
    const p = decoded as Record<string, unknown>;
    const moduleId = p.module_id;
    if (typeof moduleId !== 'string' || moduleId.length === 0) throw new AttestationInvalid('the attestation document has no module_id');
    if (p.digest !== 'SHA384') throw new AttestationInvalid('the attestation document digest must be SHA384');
    const ts = typeof p.timestamp === 'bigint' ? Number(p.timestamp) : p.timestamp;
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts <= 0) throw new AttestationInvalid('the attestation document timestamp must be milliseconds since the epoch');
    const pcrs = this.#pcrs(p.pcrs);
    const certificate = p.certificate;
    const cabundle = p.cabundle;
    if (!(certificate instanceof Uint8Array)) throw new AttestationInvalid('the attestation document has no certificate');
    if (!Array.isArray(cabundle) || cabundle.length === 0 || !cabundle.every((c) => c instanceof Uint8Array)) {
      throw new AttestationInvalid('the attestation document cabundle must be a non-empty list of certificates');
    }
    const leaf = validateChain([...(cabundle as Uint8Array[]), certificate], { rootSha256: this.#rootSha256, at: options.at });
    if (!verifyCoseSign1(cose, leaf.publicKey)) {
      throw new AttestationInvalid('the attestation document signature does not verify with its certificate', 'ATTESTATION_BAD_SIGNATURE');
    }
    const zero = (i: number) => /^0+$/.test(pcrs[String(i)] ?? '');
    return {
      format: 'aws-nitro',
      measurement: pcrs['0'] ?? '',
      pcrs,
      debug: zero(0) && zero(1) && zero(2),
      issuedAt: new Date(ts),
      nonce: optionalBytes(p, 'nonce', 1024),
      publicKey: optionalBytes(p, 'public_key', 1024),
      userData: optionalBytes(p, 'user_data', 1024),
      moduleId,
    };
  }

  #pcrs(value: unknown): Record<string, string> {
    if (!(value instanceof Map) || value.size < 1 || value.size > 32) throw new AttestationInvalid('the attestation document must carry 1 to 32 PCRs');
    const out: Record<string, string> = {};
    for (const [k, v] of value) {
      const i = typeof k === 'bigint' ? Number(k) : k;
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i > 31) throw new AttestationInvalid('a PCR index must be 0 to 31');
      if (!(v instanceof Uint8Array) || ![32, 48, 64].includes(v.length)) throw new AttestationInvalid('a PCR value must be 32, 48 or 64 bytes');
      out[String(i)] = hex(v);
    }
    if (out['0'] === undefined) throw new AttestationInvalid('the attestation document has no PCR0');
    return out;
  }
}
