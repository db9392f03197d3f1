/**
 * Certificate path validation for attestation chains (RFC 5280 §6.1, the parts a pinned,
 * CRL-free vendor chain needs): the first certificate must be the pinned root (compared by
 * the SHA-256 of its DER), each next certificate must be signed by the one before it, every
 * certificate must be valid at the verification time, intermediates must be CAs with
 * keyCertSign whose pathLen constraint holds, and the leaf must not be a CA and must carry
 * digitalSignature.
 *
 * Authority/Subject Key Identifiers are deliberately not required: the leaf of every real
 * Nitro document has no AKI, and older instance intermediates have neither (see
 * test/fixtures/nitro/README.md). The path is the order of the bundle, not a search.
 *
 * node:crypto's X509Certificate checks signatures and validity dates; @peculiar/x509 reads the
 * basicConstraints pathLen and keyUsage bits node:crypto does not expose.
 */
import { createHash, X509Certificate } from 'node:crypto';
import 'reflect-metadata';
import * as px509 from '@peculiar/x509';
import { AttestationInvalid } from './errors.ts';

export interface ChainOptions {
  /** SHA-256 of the root's DER, lowercase hex without separators. */
  readonly rootSha256: string;
  /** The time the chain must be valid at. */
  readonly at: Date;
}

export function sha256Hex(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

function parse(der: Uint8Array, what: string): { node: X509Certificate; ext: px509.X509Certificate } {
  try {
    return { node: new X509Certificate(der), ext: new px509.X509Certificate(der) };
  } catch {
    throw new AttestationInvalid(`${what} is not a DER X.509 certificate`);
  }
}

function validAt(cert: X509Certificate, at: Date): boolean {
  return new Date(cert.validFrom).getTime() <= at.getTime() && at.getTime() <= new Date(cert.validTo).getTime();
}

/**
 * Validates root → … → leaf and returns the leaf. `chain[0]` must be the pinned root; the
 * last element is the leaf.
 */
export function validateChain(chain: readonly Uint8Array[], options: ChainOptions): X509Certificate {
  if (chain.length < 2) throw new AttestationInvalid('the certificate chain needs the root and a leaf');
  if (chain.length > 8) throw new AttestationInvalid('the certificate chain is longer than any vendor chain (8)');
  if (sha256Hex(chain[0]!) !== options.rootSha256.toLowerCase()) {
    throw new AttestationInvalid('the certificate chain does not start at the pinned vendor root', 'ATTESTATION_WRONG_ROOT');
  }
  const certs = chain.map((der, i) => parse(der, i === 0 ? 'the root' : i === chain.length - 1 ? 'the leaf certificate' : `CA certificate ${i}`));
  for (let i = 0; i < certs.length; i++) {
    const { node, ext } = certs[i]!;
    const leaf = i === certs.length - 1;
    const name = i === 0 ? 'the root' : leaf ? 'the leaf certificate' : `CA certificate ${i}`;
    if (!validAt(node, options.at)) {
      throw new AttestationInvalid(`${name} is not valid at ${options.at.toISOString()} (outside notBefore..notAfter)`, 'ATTESTATION_EXPIRED');
    }
    const issuer = i === 0 ? node : certs[i - 1]!.node;
    if (!node.verify(issuer.publicKey)) throw new AttestationInvalid(`${name} is not signed by its issuer in the chain`, 'ATTESTATION_BAD_CHAIN');
    const bc = ext.getExtension(px509.BasicConstraintsExtension);
    const ku = ext.getExtension(px509.KeyUsagesExtension);
    if (leaf) {
      if (bc?.ca) throw new AttestationInvalid('the leaf certificate must not be a CA', 'ATTESTATION_BAD_CHAIN');
      if (ku && (ku.usages & px509.KeyUsageFlags.digitalSignature) === 0) throw new AttestationInvalid('the leaf certificate may not sign (no digitalSignature key usage)', 'ATTESTATION_BAD_CHAIN');
    } else {
      if (!bc?.ca) throw new AttestationInvalid(`${name} is not a CA`, 'ATTESTATION_BAD_CHAIN');
      if (!ku || (ku.usages & px509.KeyUsageFlags.keyCertSign) === 0) throw new AttestationInvalid(`${name} may not sign certificates (no keyCertSign)`, 'ATTESTATION_BAD_CHAIN');
      // pathLen: at most this many non-self-issued CA certificates may follow before the leaf.
      const below = certs.length - 2 - i;
      if (bc.pathLength !== undefined && below > bc.pathLength) throw new AttestationInvalid(`${name}'s path length constraint is exceeded`, 'ATTESTATION_BAD_CHAIN');
    }
  }
  return certs[certs.length - 1]!.node;
}
