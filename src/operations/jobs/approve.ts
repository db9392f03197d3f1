/**
 * The data owner approves a job's **code hash** for named datasets and one purpose, and names
 * the principal its reads run as (and, for enclave runs, the enclave measurements whose
 * evidence may receive the datasets' keys). The approval is keyed by the hash, so a bundle
 * with one changed byte is a new hash with no approval. Nobody approves their own job.
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { jobsContext, requireOwner } from './context.ts';

export interface ApproveBody {
  readonly jobId: string;
  /** The code hash the owner reviewed: must equal the job's, so a swapped bundle is never approved blind. */
  readonly codeHash: string;
  readonly datasets: readonly string[];
  readonly purpose: string;
  readonly principal: string;
  readonly measurements?: readonly string[];
}

export async function approveJob(rt: Runtime, meta: RequestMeta, body: ApproveBody) {
  return (await audited(rt, meta, 'job.approve', { purpose: body.purpose ?? null }, async ({ auth, entry, state }) => {
    requireOwner(rt, auth.principal, 'approving a job');
    const ctx = jobsContext(rt);
    const job = await ctx.jobs.job(body.jobId);
    if (!job) throw new GatehouseError('NOT_FOUND', 'no such job', { hint: 'list jobs with `gatehouse job status`' });
    if (job.submitter === auth.principal.id) throw new GatehouseError('POLICY_DENIED', 'nobody approves their own job', { detail: 'JOB_SELF_APPROVAL', reasons: ['a second person must approve'] });
    if (body.codeHash !== job.codeHash) throw new GatehouseError('CONFLICT', 'the code hash you approved is not this job\'s code hash', { detail: 'JOB_HASH_MISMATCH', hint: 'review the bundle again (`gatehouse job status <id>`) and approve the hash it shows' });
    const m = job.bundle.manifest;
    if (body.purpose !== m.purpose) throw new GatehouseError('REQUEST_INVALID', 'the approval must be for the purpose the manifest declares');
    if (!Array.isArray(body.datasets) || body.datasets.length === 0 || !body.datasets.every((d) => m.datasets.includes(d))) throw new GatehouseError('REQUEST_INVALID', 'approve datasets the manifest declares');
    for (const d of body.datasets) if (!state.loaded.workspace.datasets.has(d)) throw new GatehouseError('NOT_FOUND', `no dataset "${d}"`);
    if (!state.loaded.workspace.principals.has(body.principal)) throw new GatehouseError('REQUEST_INVALID', `no principal "${body.principal}" in the workspace to run the job as`);
    const measurements = (body.measurements ?? []).map((x) => x.toLowerCase());
    if (!measurements.every((x) => /^[0-9a-f]{64,128}$/.test(x))) throw new GatehouseError('REQUEST_INVALID', 'measurements must be hex PCR0 values');
    const at = rt.now().toISOString();
    for (const d of body.datasets) await ctx.jobs.approve({ codeHash: job.codeHash, dataset: d, purpose: body.purpose, principal: body.principal, approver: auth.principal.id, approvedAt: at, measurements });
    const approved = new Set((await ctx.jobs.approvals(job.codeHash)).filter((a) => a.purpose === m.purpose).map((a) => a.dataset));
    const complete = m.datasets.every((d) => approved.has(d));
    if (complete && job.status === 'submitted') await ctx.jobs.setStatus(job.id, 'approved');
    entry.purpose = body.purpose;
    entry.datasets = [...body.datasets];
    entry.reasons = [`code hash ${job.codeHash} approved for ${body.datasets.join(', ')} (${body.purpose}), runs as ${body.principal}`];
    return { jobId: job.id, codeHash: job.codeHash, status: complete ? 'approved' as const : 'submitted' as const, approvedDatasets: [...approved] };
  })).value;
}
