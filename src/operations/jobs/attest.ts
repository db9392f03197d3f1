/**
 * Key release to an attested job (Trustee KBS shape, src/attestation/key-broker.ts), as two
 * audited requests: `attest.challenge` hands out a single-use nonce; `attest.release`
 * verifies the evidence, appraises it with Cedar and, only if accepted, returns the dataset's
 * data key as a JWE to the enclave's key. Every refusal — forged, replayed, wrong nonce,
 * debug, stale, unbound, unapproved, sample TEE in production — is a denied audit entry
 * with the refusal's detailed code.
 *
 * Called by the enclave-side runner with the credential of the job's principal or of the
 * operator running it; the job must exist and its code hash is what the evidence binds.
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import type { TeeFormat } from '../../attestation/types.ts';
import { jobsContext } from './context.ts';

export async function attestChallenge(rt: Runtime, meta: RequestMeta, body: { jobId: string; format: TeeFormat }) {
  return (await audited(rt, meta, 'attest.challenge', {}, async ({ entry }) => {
    const ctx = jobsContext(rt);
    const job = await ctx.jobs.job(body.jobId);
    if (!job) throw new GatehouseError('NOT_FOUND', 'no such job');
    const c = await ctx.broker.challenge(job.id, body.format);
    entry.reasons = [`challenge ${c.challengeId} for job ${job.id} (${body.format})`];
    return c;
  })).value;
}

export async function attestRelease(rt: Runtime, meta: RequestMeta, body: { challengeId: string; jobId: string; dataset: string; evidence: string }) {
  return (await audited(rt, meta, 'attest.release', {}, async ({ entry }) => {
    const ctx = jobsContext(rt);
    const job = await ctx.jobs.job(body.jobId);
    if (!job) throw new GatehouseError('NOT_FOUND', 'no such job');
    entry.datasets = [body.dataset];
    entry.purpose = job.bundle.manifest.purpose;
    if (typeof body.evidence !== 'string' || body.evidence.length > 200_000) throw new GatehouseError('REQUEST_INVALID', 'evidence must be base64 of at most 150 kB');
    // A refusal's own code (ATTESTATION_WRONG_NONCE, ATTESTATION_DEBUG_MODE …) is its first reason, so the entry names it.
    const r = await ctx.broker.release({ challengeId: body.challengeId, jobId: job.id, codeHash: job.codeHash, dataset: body.dataset, evidence: new Uint8Array(Buffer.from(body.evidence, 'base64')) });
    entry.reasons = [`data key of ${body.dataset} released to job ${job.id} (${r.format}, measurement ${r.measurement.slice(0, 16)}…, evidence ${Math.round(r.ageSeconds)} s old)`];
    return { jwe: r.jwe, format: r.format, measurement: r.measurement };
  })).value;
}
