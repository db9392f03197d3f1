/**
 * The airlock operations: every output of a job leaves only through one of these requests,
 * and every transition is its own audited request (src/kernel/audited.ts):
 *
 *   airlock.submit   draft → submitted → (automatic checks) → in_review | blocked
 *   airlock.review   in_review: approve (twice, by distinct reviewers) → approved; reject → rejected
 *   airlock.release  approved → released, handing out the outputs after re-hashing them and
 *                    placing them in the partner's workspace (deposit-release.ts)
 *   airlock.list     requests the caller may see
 *
 * Outputs are copied from the run and pinned by SHA-256 at submission; the release refuses
 * (and blocks the request) if what it would hand out no longer has that hash, or no longer
 * matches the run's own pinned hash. Reviewers are data owners, output checkers or
 * administrators; the requester and the job's author never review their own request, and a
 * reviewer counts once.
 */
import { createHash, randomUUID } from 'node:crypto';
import { runChecks, type OutputRules } from '../../airlock/checks.ts';
import { REQUIRED_APPROVALS, transition, type AirlockState } from '../../airlock/states.ts';
import type { AirlockRequest, AirlockTx } from '../../airlock/store.ts';
import { GatehouseError } from '../../errors.ts';
import type { CheckedOutput } from '../../jobs/outputs.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { isOwnerOrReviewer, jobsContext, requireOwner, sha256 } from '../jobs/context.ts';
import { depositReleasedOutputs } from './deposit-release.ts';

function view(r: AirlockRequest, reviews: { reviewer: string; decision: string; reason: string; at: string }[]) {
  return { id: r.id, jobId: r.jobId, runId: r.runId, requester: r.requester, state: r.state, outputsSha256: r.outputsSha256, checks: r.checks ? JSON.parse(r.checks) as unknown : null, reviews, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

async function moveOrConflict(rt: Runtime, id: string, from: AirlockState, to: AirlockState, checks?: string, tx?: AirlockTx): Promise<void> {
  if (!(await (tx ?? jobsContext(rt).airlock).move(id, from, to, rt.now().toISOString(), checks))) {
    throw new GatehouseError('CONFLICT', 'the airlock request changed state meanwhile', { detail: 'AIRLOCK_RACE', hint: 'read it again (`gatehouse airlock list`) and decide again' });
  }
}

/** Creates the request (draft), pins the run's outputs, submits it and runs the automatic checks. */
export async function airlockSubmit(rt: Runtime, meta: RequestMeta, body: { runId: string }) {
  return (await audited(rt, meta, 'airlock.submit', {}, async ({ auth, entry, state }) => {
    const ctx = jobsContext(rt);
    const run = await ctx.jobs.run(body.runId);
    const job = run ? await ctx.jobs.job(run.jobId) : null;
    if (!run || !job || (job.submitter !== auth.principal.id && !isOwnerOrReviewer(rt, auth.principal))) throw new GatehouseError('NOT_FOUND', 'no such run that you may submit');
    if (run.status !== 'completed' || run.outputs === null || run.outputsSha256 === null) throw new GatehouseError('CONFLICT', 'only a completed run has outputs to submit', { detail: 'AIRLOCK_NO_OUTPUTS' });
    if (sha256(run.outputs) !== run.outputsSha256) throw new GatehouseError('CONFLICT', 'the run\'s outputs no longer match the hash pinned when it ended; they cannot be submitted', { detail: 'AIRLOCK_OUTPUT_CHANGED' });
    const m = job.bundle.manifest;
    entry.purpose = m.purpose;
    entry.datasets = [...m.datasets];
    const id = `air_${randomUUID()}`;
    const at = rt.now().toISOString();
    await ctx.airlock.create({ id, jobId: job.id, runId: run.id, requester: auth.principal.id, author: job.submitter, outputs: run.outputs, outputsSha256: run.outputsSha256, createdAt: at });
    await moveOrConflict(rt, id, 'draft', transition('draft', 'submit'));
    const rules: Record<string, OutputRules> = Object.fromEntries(Object.entries(m.outputs).map(([k, o]) => [k, { ...(o.countColumn ? { countColumn: o.countColumn } : {}), ...(o.dominance ? { dominance: o.dominance } : {}) }]));
    const report = runChecks(JSON.parse(run.outputs) as CheckedOutput[], rules, { dlp: state.loaded.workspace.dlp ?? null });
    const next = transition('submitted', report.passed ? 'checks-passed' : 'checks-failed');
    await moveOrConflict(rt, id, 'submitted', next, JSON.stringify(report));
    entry.resultDigest = run.outputsSha256;
    entry.reasons = [`airlock request ${id} for run ${run.id}: draft → submitted → ${next}`, ...report.findings.slice(0, 20).map((f) => `${f.output}: ${f.check} (${f.detail})`)];
    return { id, state: next, outputsSha256: run.outputsSha256, checks: report };
  })).value;
}

export async function airlockReview(rt: Runtime, meta: RequestMeta, body: { id: string; decision: 'approve' | 'reject'; reason: string }) {
  return (await audited(rt, meta, 'airlock.review', {}, async ({ auth, entry }) => {
    requireOwner(rt, auth.principal, 'reviewing airlock requests');
    if (body.decision !== 'approve' && body.decision !== 'reject') throw new GatehouseError('REQUEST_INVALID', 'decision must be approve or reject');
    if (typeof body.reason !== 'string' || body.reason.trim().length === 0 || body.reason.length > 2_000) throw new GatehouseError('REQUEST_INVALID', 'a review needs a reason (up to 2,000 characters)');
    const store = jobsContext(rt).airlock;
    const r = await store.get(body.id);
    if (!r) throw new GatehouseError('NOT_FOUND', 'no such airlock request');
    const me = auth.principal.id;
    if (me === r.requester || me === r.author) throw new GatehouseError('POLICY_DENIED', 'nobody reviews their own airlock request or outputs of their own job', { detail: 'AIRLOCK_SELF_REVIEW', reasons: ['two other people must review'] });
    const to = transition(r.state, body.decision);
    const next = await store.transaction(r.id, async (tx) => {
      if ((await tx.reviews(r.id)).some((x) => x.reviewer === me)) throw new GatehouseError('CONFLICT', 'you already reviewed this request; a second, distinct reviewer is needed', { detail: 'AIRLOCK_SAME_REVIEWER' });
      await tx.addReview({ requestId: r.id, reviewer: me, decision: body.decision, reason: body.reason, at: rt.now().toISOString() });
      const approvals = new Set((await tx.reviews(r.id)).filter((x) => x.decision === 'approve').map((x) => x.reviewer));
      const target: AirlockState = to === 'rejected' ? 'rejected' : approvals.size >= REQUIRED_APPROVALS ? 'approved' : 'in_review';
      if (target !== r.state) await moveOrConflict(rt, r.id, r.state, target, undefined, tx);
      return target;
    });
    entry.resultDigest = r.outputsSha256;
    entry.reasons = [`airlock request ${r.id}: ${body.decision} by ${me}; ${r.state} → ${next}`];
    return { id: r.id, state: next };
  })).value;
}

export async function airlockRelease(rt: Runtime, meta: RequestMeta, body: { id: string }) {
  return (await audited(rt, meta, 'airlock.release', {}, async ({ auth, entry, state }) => {
    const ctx = jobsContext(rt);
    const r = await ctx.airlock.get(body.id);
    if (!r || (r.requester !== auth.principal.id && !isOwnerOrReviewer(rt, auth.principal))) throw new GatehouseError('NOT_FOUND', 'no such airlock request that you may release');
    const to = transition(r.state, 'release');
    const run = await ctx.jobs.run(r.runId);
    const actual = createHash('sha256').update(r.outputs).digest('hex');
    if (actual !== r.outputsSha256 || run?.outputsSha256 !== r.outputsSha256) {
      await moveOrConflict(rt, r.id, r.state, transition(r.state, 'tamper-detected'));
      throw new GatehouseError('CONFLICT', 'the outputs changed after they were submitted; the request is blocked and nothing was released', { detail: 'AIRLOCK_OUTPUT_CHANGED', hint: 'run the job again and submit the new outputs' });
    }
    // Released outputs go into the partner's workspace (issue 23); a refused deposit releases nothing.
    const job = await ctx.jobs.job(r.jobId);
    if (!job) throw new GatehouseError('NOT_FOUND', 'no such airlock request that you may release');
    const deposit = await depositReleasedOutputs(rt, state, r, job, auth.principal.id);
    try { await moveOrConflict(rt, r.id, r.state, to); } catch (err) { await deposit.withdraw(`airlock request ${r.id}: release lost a race, deposit withdrawn`); throw err; }
    await deposit.forget();
    entry.resultDigest = r.outputsSha256;
    entry.reasons = [`airlock request ${r.id} released (outputs ${r.outputsSha256})`, ...deposit.reasons];
    return { id: r.id, state: to, outputsSha256: r.outputsSha256, outputs: JSON.parse(r.outputs) as CheckedOutput[], workspace: deposit.placed };
  })).value;
}

export async function airlockList(rt: Runtime, meta: RequestMeta) {
  return (await audited(rt, meta, 'airlock.list', {}, async ({ auth }) => {
    const store = jobsContext(rt).airlock;
    const owner = isOwnerOrReviewer(rt, auth.principal);
    const mine = (await store.list()).filter((r) => owner || r.requester === auth.principal.id || r.author === auth.principal.id);
    return { requests: await Promise.all(mine.map(async (r) => view(r, await store.reviews(r.id)))) };
  })).value;
}
