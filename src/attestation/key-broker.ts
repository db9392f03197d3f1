/**
 * A key broker shaped like Trustee's KBS (confidential-containers/trustee, `kbs/`): the
 * enclave asks for a challenge (KBS `auth`), answers with evidence that carries the nonce
 * and its ephemeral public key (KBS `attest`), and receives the resource — here a dataset's
 * data key — encrypted to that key as a JWE (KBS returns resources as JWE to the TEE key).
 * Gatehouse merges `attest` and `resource` into one call bound to one challenge: the key
 * leaves only in the answer to the evidence that earned it.
 *
 * Order of checks: the challenge exists, is unexpired and unused (consumed now, whatever
 * follows: evidence is single-use); the format's verifier checks signature and chain at the
 * broker's clock; the nonce in the evidence equals the challenge's; the evidence digest was
 * never seen before (replay); then Cedar appraises (appraisal-policy.ts). Every refusal
 * throws an AttestationRefused/AttestationInvalid, which the operation records as a denied
 * audit entry (src/operations/jobs/attest.ts).
 *
 * Challenges and seen-evidence digests live in a ChallengeStore (challenge-store.ts): on a
 * node, the state's SQL driver, so every node of a cluster shares them (a challenge issued by
 * one node is single-use on all of them, and a replay is seen wherever it is sent).
 */
import { createHash, createPublicKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { CompactEncrypt } from 'jose';
import { appraise, type AppraisalDecision } from './appraisal-policy.ts';
import { jobBinding, sameBytes } from './binding.ts';
import { MemoryChallengeStore, type ChallengeStore } from './challenge-store.ts';
import { AttestationRefused } from './errors.ts';
import type { AttestationMode, Claims, TeeFormat, Verifier } from './types.ts';

export interface KeyBrokerOptions {
  readonly verifiers: readonly Verifier[];
  readonly mode: AttestationMode;
  readonly now: () => Date;
  /** Oldest evidence accepted (seconds between its timestamp and now). */
  readonly maxAgeSeconds?: number;
  readonly challengeTtlSeconds?: number;
  /** Where challenges and seen-evidence digests live (default: this process only). */
  readonly challenges?: ChallengeStore;
  /** Enclave image measurements the data owner approved for a dataset. */
  approvedMeasurements(dataset: string): readonly string[] | Promise<readonly string[]>;
  /** Job code hashes the data owner approved for a dataset (src/jobs/store.ts). */
  approvedCodeHashes(dataset: string): readonly string[] | Promise<readonly string[]>;
  /** The dataset's data key (the node's keyring holds it). */
  dataKey(dataset: string): Promise<Uint8Array>;
}

export interface Challenge {
  readonly challengeId: string;
  readonly jobId: string;
  readonly format: TeeFormat;
  /** base64url of 32 random bytes: put it in the evidence's nonce. */
  readonly nonce: string;
  readonly expiresAt: string;
}

export interface ReleaseRequest {
  readonly challengeId: string;
  readonly jobId: string;
  readonly codeHash: string;
  readonly dataset: string;
  readonly evidence: Uint8Array;
}

export interface Release {
  /** The data key as a compact JWE (ECDH-ES, A256GCM) to the enclave's key. */
  readonly jwe: string;
  readonly measurement: string;
  readonly format: TeeFormat;
  readonly ageSeconds: number;
}

/** Seen-evidence digests are kept a day: far past any evidence the stale check would still accept. */
const SEEN_FOR_MS = 24 * 3600_000;

export class KeyBroker {
  readonly #o: KeyBrokerOptions;
  readonly #challenges: ChallengeStore;

  constructor(options: KeyBrokerOptions) {
    this.#o = options;
    this.#challenges = options.challenges ?? new MemoryChallengeStore();
  }

  async challenge(jobId: string, format: TeeFormat): Promise<Challenge> {
    if (!this.#o.verifiers.some((v) => v.format === format)) throw new AttestationRefused(`no verifier for the TEE format "${format}" is configured`, 'ATTESTATION_UNKNOWN_FORMAT');
    const now = this.#o.now().getTime();
    const nonce = randomBytes(32);
    const challengeId = randomUUID();
    const expires = now + (this.#o.challengeTtlSeconds ?? 120) * 1000;
    await this.#challenges.put({ id: challengeId, jobId, format, nonce: new Uint8Array(nonce), expiresMs: expires }, now);
    return { challengeId, jobId, format, nonce: nonce.toString('base64url'), expiresAt: new Date(expires).toISOString() };
  }

  async release(req: ReleaseRequest): Promise<Release & { appraisal: AppraisalDecision; claims: Claims }> {
    const c = await this.#challenges.take(req.challengeId);
    if (!c) throw new AttestationRefused('the challenge is unknown or was already used (evidence is single-use)', 'ATTESTATION_REPLAYED');
    const now = this.#o.now();
    if (c.expiresMs < now.getTime()) throw new AttestationRefused('the challenge expired', 'ATTESTATION_STALE');
    if (c.jobId !== req.jobId) throw new AttestationRefused('the challenge was issued for another job', 'ATTESTATION_WRONG_JOB');
    const verifier = this.#o.verifiers.find((v) => v.format === c.format)!;
    const claims = verifier.verify(req.evidence, { at: now, mode: this.#o.mode });
    if (!sameBytes(claims.nonce, c.nonce)) throw new AttestationRefused('the evidence does not carry this challenge\'s nonce', 'ATTESTATION_WRONG_NONCE');
    const digest = createHash('sha256').update(req.evidence).digest('hex');
    if (!(await this.#challenges.firstSeen(digest, now.getTime(), now.getTime() - SEEN_FOR_MS))) throw new AttestationRefused('this evidence was presented before (replay)', 'ATTESTATION_REPLAYED');

    let enclaveKey: KeyObject | null = null;
    try {
      if (claims.publicKey && claims.publicKey.length > 0) enclaveKey = createPublicKey({ key: Buffer.from(claims.publicKey), format: 'der', type: 'spki' });
    } catch {
      enclaveKey = null;
    }
    const ageSeconds = (now.getTime() - claims.issuedAt.getTime()) / 1000;
    const appraisal = appraise({
      jobId: req.jobId, dataset: req.dataset, format: claims.format, testMode: this.#o.mode === 'test', debug: claims.debug,
      ageSeconds, maxAgeSeconds: this.#o.maxAgeSeconds ?? 300, measurement: claims.measurement, codeHash: req.codeHash,
      bindingValid: enclaveKey !== null && sameBytes(claims.userData, jobBinding(req.jobId, req.codeHash)),
      approvedMeasurements: await this.#o.approvedMeasurements(req.dataset), approvedCodeHashes: await this.#o.approvedCodeHashes(req.dataset),
    });
    if (!appraisal.allowed) {
      throw new AttestationRefused(`the appraisal refused to release the key of dataset "${req.dataset}": ${appraisal.reasons.join('; ')}`, `ATTESTATION_${(appraisal.refusedBy[0] ?? 'refused').toUpperCase().replaceAll('-', '_')}`, appraisal.reasons);
    }
    const key = await this.#o.dataKey(req.dataset);
    const jwe = await new CompactEncrypt(key).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', kid: req.jobId }).encrypt(enclaveKey!);
    return { jwe, measurement: claims.measurement, format: claims.format, ageSeconds, appraisal, claims };
  }
}

