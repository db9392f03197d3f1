/**
 * `gatehouse job status|logs`: what a job is and how its runs went. The submitter and the
 * data owners see status; only data owners see a real run's logs, because a job could write
 * a data value into its log (a partner sees logs of mock runs, which hold no real data).
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { isOwnerOrReviewer, jobsContext, requireOwner } from './context.ts';

export async function jobStatus(rt: Runtime, meta: RequestMeta, jobId: string | null) {
  return (await audited(rt, meta, 'job.status', {}, async ({ auth }) => {
    const ctx = jobsContext(rt);
    const owner = isOwnerOrReviewer(rt, auth.principal);
    if (jobId === null) return { jobs: (await ctx.jobs.jobs()).filter((j) => owner || j.submitter === auth.principal.id) };
    const job = await ctx.jobs.job(jobId);
    if (!job || (!owner && job.submitter !== auth.principal.id)) throw new GatehouseError('NOT_FOUND', 'no such job that you may see');
    const m = job.bundle.manifest;
    return {
      job: {
        id: job.id, name: m.name, version: m.version, purpose: m.purpose, datasets: m.datasets, codeHash: job.codeHash,
        submitter: job.submitter, submittedAt: job.submittedAt, status: job.status, signer: job.bundle.signer,
        inputs: m.inputs, outputs: m.outputs, parameters: m.parameters, limits: m.limits ?? {}, grants: m.grants ?? {},
        ...(owner ? { code: job.bundle.code } : {}),
      },
      approvals: await ctx.jobs.approvals(job.codeHash),
      runs: (await ctx.jobs.runs(job.id)).map((r) => ({ id: r.id, status: r.status, startedAt: r.startedAt, endedAt: r.endedAt, error: r.error, limit: r.limit, cpuMs: r.cpuMs, rowsRead: r.rowsRead, outputsSha256: r.outputsSha256 })),
    };
  })).value;
}

export async function jobLogs(rt: Runtime, meta: RequestMeta, runId: string) {
  return (await audited(rt, meta, 'job.logs', {}, async ({ auth }) => {
    requireOwner(rt, auth.principal, 'reading the logs of a run on real data');
    const run = await jobsContext(rt).jobs.run(runId);
    if (!run) throw new GatehouseError('NOT_FOUND', 'no such run');
    return { runId: run.id, jobId: run.jobId, status: run.status, logs: run.logs };
  })).value;
}
