/**
 * A member's check of the compute node's attestation, before it seals its columns to it
 * (collaboration setting compute.requireAttestation, attestation-requirement.ts).
 *
 * It is the code-to-data key release (src/attestation/key-broker.ts, shaped like Trustee's
 * KBS), with the clean-room analysis in the job's place:
 *
 *   1. `challenge`: the member chooses a single-use nonce for one query (job id
 *      "cleanroom:<collaboration>:<query id>");
 *   2. `release`: the broker consumes the challenge, verifies the evidence with the project's
 *      one verifier for its format (Nitro or the sample TEE), checks the nonce, refuses a
 *      replayed document, and Cedar appraises it (debug mode, freshness, the collaboration's
 *      accepted measurements, the analysis the member itself re-checked as the "code hash",
 *      the binding of user_data and public_key). Only then does it release a fresh column
 *      key, wrapped as a JWE to the key the evidence names;
 *   3. here, after the broker: that key must be the sealing key the compute node published
 *      in the collaboration (`ATTESTATION_WRONG_KEY`), and every PCR the setting names must
 *      match (`ATTESTATION_UNAPPROVED_PCR`). Otherwise the wrapped key is dropped unsent.
 *
 * The member then seals its columns under the released key (sealed-columns.ts), so only the
 * attested holder of the sealing key can open them. Every refusal is an AttestationRefused or
 * AttestationInvalid (ATTESTATION_REFUSED, 403), which the member's release entry records.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { MemoryChallengeStore, type ChallengeStore } from '../attestation/challenge-store.ts';
import { sameBytes } from '../attestation/binding.ts';
import { AttestationRefused } from '../attestation/errors.ts';
import { KeyBroker } from '../attestation/key-broker.ts';
import { NitroVerifier } from '../attestation/nitro.ts';
import { SampleVerifier } from '../attestation/sample.ts';
import type { AttestationMode, TeeFormat, Verifier } from '../attestation/types.ts';
import type { AttestationRequirement } from './attestation-requirement.ts';

export interface MemberAttestationOptions {
  /** `test` admits the local sandbox attester (the sample TEE); `production` refuses it. */
  readonly mode: AttestationMode;
  /** The sample TEE's platform key (test mode only). */
  readonly samplePlatformKey?: KeyObject;
  readonly now: () => Date;
  /** Where challenges and seen evidence live (default: this process). */
  readonly challenges?: ChallengeStore;
}

export interface AttestedKey {
  /** The column key: 32 random bytes, A256GCM, for this query only. */
  readonly key: Uint8Array;
  /** The same key as a compact JWE (ECDH-ES, A256GCM) to the attested sealing key. */
  readonly wrapped: string;
  readonly format: TeeFormat;
  readonly measurement: string;
  readonly ageSeconds: number;
}

export class MemberAttestation {
  readonly #o: MemberAttestationOptions;
  readonly #verifiers: readonly Verifier[];
  readonly #challenges: ChallengeStore;

  constructor(options: MemberAttestationOptions) {
    this.#o = options;
    this.#verifiers = [new NitroVerifier(), ...(options.samplePlatformKey ? [new SampleVerifier(options.samplePlatformKey)] : [])];
    this.#challenges = options.challenges ?? new MemoryChallengeStore();
  }

  #broker(req: AttestationRequirement, codeHash: string, key: Uint8Array): KeyBroker {
    return new KeyBroker({
      verifiers: this.#verifiers, mode: this.#o.mode, now: this.#o.now, maxAgeSeconds: req.maxAgeSeconds, challenges: this.#challenges,
      approvedMeasurements: () => req.measurements, approvedCodeHashes: () => [codeHash], dataKey: async () => key,
    });
  }

  /** A single-use nonce for one query's evidence. */
  async challenge(req: AttestationRequirement, jobId: string): Promise<{ challengeId: string; nonce: string; expiresAt: string }> {
    const c = await this.#broker(req, '', new Uint8Array(0)).challenge(jobId, req.format);
    return { challengeId: c.challengeId, nonce: c.nonce, expiresAt: c.expiresAt };
  }

  /**
   * Appraises the evidence for this query and analysis; returns the column key only if the
   * evidence passes and names `sealingKeySpki` as its key. `codeHash` is the member's own
   * hash of the analysis it re-checked, never the compute node's word.
   */
  async release(req: AttestationRequirement, input: { challengeId: string; jobId: string; codeHash: string; tables: readonly string[]; evidence: Uint8Array; sealingKeySpki: Uint8Array }): Promise<AttestedKey> {
    const key = new Uint8Array(randomBytes(32));
    try {
      const r = await this.#broker(req, input.codeHash, key).release({ challengeId: input.challengeId, jobId: input.jobId, codeHash: input.codeHash, dataset: input.tables.join(','), evidence: input.evidence });
      if (!sameBytes(r.claims.publicKey, input.sealingKeySpki)) {
        throw new AttestationRefused('the evidence names another key than the sealing key the compute node published in the collaboration', 'ATTESTATION_WRONG_KEY', ['columns are sealed only to the attested key the collaboration lists']);
      }
      for (const [index, value] of Object.entries(req.pcrs)) {
        if (r.claims.pcrs[index] !== value) throw new AttestationRefused(`the evidence reports PCR${index} other than the collaboration accepts`, 'ATTESTATION_UNAPPROVED_PCR', [`PCR${index} is not the accepted value`]);
      }
      return { key, wrapped: r.jwe, format: r.format, measurement: r.measurement, ageSeconds: r.ageSeconds };
    } catch (err) {
      key.fill(0);
      throw err;
    }
  }
}
