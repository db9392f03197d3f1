/**
 * COSE_Sign1 (RFC 9052 §4.2 and §4.4), the envelope of an AWS Nitro Enclaves attestation
 * document:
 *
 *   COSE_Sign1 = [ protected : bstr .cbor header_map, unprotected : header_map,
 *                  payload : bstr / nil, signature : bstr ]       (optionally tag 18)
 *   Sig_structure = [ "Signature1", body_protected : bstr, external_aad : bstr, payload : bstr ]
 *
 * The signature is checked over the Sig_structure built from the *received* protected and
 * payload byte strings (never re-encoded), as RFC 9052 §4.4 requires. Only ES384
 * (alg -35, RFC 9053 §2.1: ECDSA P-384 with SHA-384, signature r‖s of 2×48 bytes) is
 * accepted: it is what the Nitro Secure Module signs with, and accepting any other
 * algorithm would only widen what an attacker can choose.
 */
import { verify, type KeyObject } from 'node:crypto';
import { decode, encode, Tag } from 'cbor2';
import { AttestationInvalid } from './errors.ts';

export const ALG_ES384 = -35;

export interface CoseSign1 {
  readonly protectedBytes: Uint8Array;
  readonly alg: number;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

const DECODE = { rejectDuplicateKeys: true, maxDepth: 16 } as const;

export function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    return decode(bytes, DECODE);
  } catch {
    throw new AttestationInvalid(`${what} is not well-formed CBOR`);
  }
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/** Parses the four-element COSE_Sign1 array (tag 18 allowed) and its protected header. */
export function parseCoseSign1(bytes: Uint8Array): CoseSign1 {
  let top = decodeCbor(bytes, 'the attestation document');
  if (top instanceof Tag) {
    if (Number(top.tag) !== 18) throw new AttestationInvalid('the attestation document carries a CBOR tag other than COSE_Sign1 (18)');
    top = top.contents;
  }
  if (!Array.isArray(top) || top.length !== 4) throw new AttestationInvalid('the attestation document is not a COSE_Sign1 array of four items');
  const [prot, unprot, payload, signature] = top as unknown[];
  if (!isBytes(prot) || !isBytes(payload) || !isBytes(signature)) throw new AttestationInvalid('COSE_Sign1 protected header, payload and signature must be byte strings');
  if (typeof unprot !== 'object' || unprot === null || Array.isArray(unprot)) throw new AttestationInvalid('the COSE_Sign1 unprotected header must be a map');
  const header = decodeCbor(prot, 'the COSE_Sign1 protected header');
  const alg = header instanceof Map ? header.get(1) : undefined;
  if (alg !== ALG_ES384) throw new AttestationInvalid('the COSE_Sign1 protected header must name ES384 (alg -35)');
  return { protectedBytes: prot, alg, payload, signature };
}

/** The bytes that were signed: Sig_structure for COSE_Sign1 with empty external AAD. */
export function sigStructure(cose: CoseSign1): Uint8Array {
  // Plain Uint8Array views: cbor2 encodes a Node Buffer as an object, not a byte string.
  return encode(['Signature1', plain(cose.protectedBytes), new Uint8Array(0), plain(cose.payload)]);
}

function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** ES384 over the Sig_structure with the given P-384 public key; false on any mismatch. */
export function verifyCoseSign1(cose: CoseSign1, key: KeyObject): boolean {
  if (cose.signature.length !== 96) return false;
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') return false;
  try {
    return verify('sha384', sigStructure(cose), { key, dsaEncoding: 'ieee-p1363' }, cose.signature);
  } catch {
    return false;
  }
}
