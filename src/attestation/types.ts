/**
 * The one verifier interface. A verifier turns a format's evidence into the same claims;
 * appraisal (appraisal-policy.ts) and the key broker (key-broker.ts) never look at a format's
 * bytes. Two formats: `aws-nitro` (real hardware evidence, nitro.ts) and `sample` (a software
 * TEE for tests and demos, sample.ts, refused outside test mode).
 */
export type TeeFormat = 'aws-nitro' | 'sample';

/** Test mode admits the sample TEE; production refuses it before reading a byte. */
export type AttestationMode = 'test' | 'production';

export interface VerifyOptions {
  /** The time the certificate chain must be valid at (the evidence's own time in tests). */
  readonly at: Date;
  readonly mode: AttestationMode;
}

export interface Claims {
  readonly format: TeeFormat;
  /** The enclave image measurement (Nitro: PCR0), lowercase hex. */
  readonly measurement: string;
  /** Every PCR the evidence reports, index → lowercase hex. */
  readonly pcrs: Readonly<Record<string, string>>;
  /** The enclave runs in debug mode (Nitro: PCR0, PCR1 and PCR2 all zero): its memory is readable by the host. */
  readonly debug: boolean;
  /** When the evidence was produced (by the TEE's clock). */
  readonly issuedAt: Date;
  readonly nonce: Uint8Array | null;
  /** The enclave's ephemeral public key (SPKI DER) that released keys are wrapped to. */
  readonly publicKey: Uint8Array | null;
  readonly userData: Uint8Array | null;
  readonly moduleId: string;
}

export interface Verifier {
  readonly format: TeeFormat;
  /** Verifies signature, chain and structure; throws AttestationInvalid. Never appraises. */
  verify(document: Uint8Array, options: VerifyOptions): Claims;
}
