/**
 * The compute node's side of attested column release (docs/cleanrooms.md#attested-compute-node):
 * for each contributing member it asks for a challenge, then presents evidence from its TEE
 * that carries
 *
 *   nonce      = the member's challenge nonce (the member chose it: freshness, RFC 9334 §10.2),
 *   public_key = the SPKI of the X25519 sealing key this node published in the collaboration
 *                (the key the member's column key is wrapped to),
 *   user_data  = jobBinding(jobId, codeHash) of src/attestation/binding.ts, with
 *                jobId = "cleanroom:<collaboration>:<query id>" and codeHash = SHA-256 of the
 *                analysis (its SQL and parameters),
 *
 * the same layout the key broker checks for code-to-data jobs, so the member appraises it with
 * the project's one verifier and key broker (attested-release.ts), not a second one.
 *
 * Where the evidence comes from is a `ComputeAttester`. In an AWS Nitro enclave it is the NSM's
 * attestation document (`aws-nitro`). On one machine it is the local sandbox attester: the
 * software `sample` TEE (src/attestation/sample.ts), whose measurement is the sandbox
 * measurement below, accepted by members in test mode only.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import { canonicalize } from '../audit/canonical.ts';
import { jobBinding } from '../attestation/binding.ts';
import type { SampleTee } from '../attestation/sample.ts';
import type { TeeFormat } from '../attestation/types.ts';

export interface EvidenceFields {
  readonly nonce: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly userData: Uint8Array;
}

export interface ComputeAttester {
  readonly format: TeeFormat;
  /** Evidence from this node's TEE over exactly these fields. */
  attest(fields: EvidenceFields): Uint8Array | Promise<Uint8Array>;
}

/** The job id a clean-room analysis is attested under: one per query. */
export function analysisJobId(collaborationId: string, queryId: string): string {
  return `cleanroom:${collaborationId}:${queryId}`;
}

/** SHA-256 (hex) of the analysis both sides check: the SQL as run and its parameters. */
export function analysisCodeHash(sql: string, params: readonly string[] | null): string {
  return createHash('sha256').update(canonicalize({ sql, params: params ?? [] })).digest('hex');
}

/** What the evidence's user_data must be for this analysis. */
export function analysisBinding(collaborationId: string, queryId: string, sql: string, params: readonly string[] | null): Uint8Array {
  return jobBinding(analysisJobId(collaborationId, queryId), analysisCodeHash(sql, params));
}

/** The SPKI DER of a published X25519 sealing key (what the evidence's public_key carries). */
export function sealingKeySpki(jwk: Pick<JWK, 'kty' | 'crv' | 'x'>): Uint8Array {
  const key = createPublicKey({ key: { kty: String(jwk.kty), crv: String(jwk.crv), x: String(jwk.x) }, format: 'jwk' });
  return new Uint8Array(key.export({ format: 'der', type: 'spki' }));
}

/**
 * The modules that hold a member's columns on the compute node: opening them, the locked-down
 * engine and the one executor. Their source is what the local sandbox attester measures.
 */
const SANDBOX_MODULES = ['compute.ts', 'sealed-columns.ts', 'rules/govern-analysis.ts', 'rules/dp-analysis.ts', '../engine/duckdb.ts', '../kernel/execute.ts'];

/** SHA-384 (hex, the width of a Nitro PCR) over the compute path's source, module by module. */
export function sandboxMeasurement(): string {
  const h = createHash('sha384').update('gatehouse.cleanroom-sandbox.v1');
  for (const m of SANDBOX_MODULES) h.update('\0').update(m).update('\0').update(readFileSync(new URL(m, import.meta.url)));
  return h.digest('hex');
}

/** The local sandbox attester: the software sample TEE, measuring the compute path. */
export function sandboxAttester(tee: SampleTee, now: () => Date = () => new Date()): ComputeAttester {
  return {
    format: 'sample',
    attest: (f) => tee.attest({ nonce: f.nonce, publicKey: f.publicKey, userData: f.userData, issuedAt: now() }),
  };
}
