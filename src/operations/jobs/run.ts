/**
 * `gatehouse job run`: runs an approved job.
 *
 *  1. The job's code hash must be approved for every dataset of its manifest, for its
 *     purpose, all to run as one principal (src/operations/jobs/approve.ts).
 *  2. A service key for that principal, scoped to those datasets and alive for the run only,
 *     is minted, and each input query goes through the governed query path with it (the
 *     façade's `query`): decided by Cedar, masked, capped, protected and audited as the job's
 *     own principal, one audit entry per input. The key is revoked when the run ends.
 *  3. The released rows go to the sandbox (src/jobs/sandbox/) through the row bridge.
 *  4. A limit, a throw or an output that does not match the manifest fails the run: the run
 *     is recorded failed, nothing is kept, nothing is released.
 *  5. Outputs that match the manifest are kept, pinned by SHA-256, for the airlock. They are
 *     never returned here: they leave only through an airlock release.
 *
 * The run's own audit entry (`job.run`) records the code hash, the run id and the outputs'
 * hash. Logs are kept with the run and shown to data owners only: a job could log a value.
 */
import { createHash, randomUUID } from 'node:crypto';
import { canonicalize } from '../../audit/canonical.ts';
import { GatehouseError } from '../../errors.ts';
import { checkOutputs } from '../../jobs/outputs.ts';
import type { SandboxInput } from '../../jobs/sandbox/worker-process.ts';
import { checkParams, sandboxOptions } from '../../jobs/sandbox-options.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { query } from '../query/query.ts';
import { isOwnerOrReviewer, jobsContext } from './context.ts';

export type Progress =
  | { readonly phase: 'input'; readonly input: string; readonly rows: number }
  | { readonly phase: 'sandbox'; readonly input: string | null; readonly rows: number; readonly fraction: number | null };

export interface RunBody {
  readonly jobId: string;
  readonly params?: Record<string, unknown>;
}

export async function runJob(rt: Runtime, meta: RequestMeta, body: RunBody, onProgress?: (p: Progress) => void) {
  const ctx = jobsContext(rt);
  return (await audited(rt, meta, 'job.run', {}, async ({ auth, entry }) => {
    const job = await ctx.jobs.job(body.jobId);
    if (!job || (job.submitter !== auth.principal.id && !isOwnerOrReviewer(rt, auth.principal))) throw new GatehouseError('NOT_FOUND', 'no such job that you may run');
    const m = job.bundle.manifest;
    entry.purpose = m.purpose;
    entry.datasets = [...m.datasets];
    const approvals = (await ctx.jobs.approvals(job.codeHash)).filter((a) => a.purpose === m.purpose);
    const missing = m.datasets.filter((d) => !approvals.some((a) => a.dataset === d));
    if (missing.length > 0) {
      throw new GatehouseError('POLICY_DENIED', `the job's code hash is not approved for ${missing.join(', ')} (purpose ${m.purpose})`, { detail: 'JOB_NOT_APPROVED', reasons: [`code hash ${job.codeHash} has no approval for ${missing.join(', ')}`], hint: 'ask the data owner to approve this exact code hash (`gatehouse job approve`)' });
    }
    const principals = [...new Set(approvals.map((a) => a.principal))];
    if (principals.length !== 1) throw new GatehouseError('CONFLICT', 'the approvals of this job name different principals to run as', { hint: 'approve every dataset for the same principal' });
    const runId = `run_${randomUUID()}`;
    const params = body.params ?? {};
    checkParams(m, params);
    await ctx.jobs.startRun(runId, job.id, rt.now().toISOString());
    await ctx.jobs.setStatus(job.id, 'running');
    const fail = async (status: 'failed', error: string, limit: string | null, logs: readonly string[], cpuMs: number | null, rowsRead: number | null) => {
      await ctx.jobs.endRun(runId, { status, error, limit, logs, outputs: null, outputsSha256: null, cpuMs, rowsRead }, rt.now().toISOString());
      await ctx.jobs.setStatus(job.id, 'failed');
    };

    try {
      const ids = await rt.identity();
      const key = await ids.apiKeys.create({ principalId: principals[0]!, scopes: { datasets: [...m.datasets], actions: ['query'] }, expiresAt: new Date(rt.now().getTime() + 15 * 60_000) });
      const inputs: Record<string, SandboxInput> = {};
      try {
        for (const [name, spec] of Object.entries(m.inputs)) {
          let res;
          try {
            res = await query(rt, { credential: key.key, sql: spec.sql, purpose: m.purpose, source: meta.source, channel: 'job' });
          } catch (err) {
            const e = err instanceof GatehouseError ? err : null;
            await fail('failed', `input "${name}" was refused: ${e?.code ?? 'INTERNAL'}`, null, [], null, null);
            throw new GatehouseError('JOB_FAILED', `input "${name}" was refused by the governed query path (${e?.code ?? 'INTERNAL'}): ${e?.message ?? 'unexpected failure'}`, { detail: 'JOB_INPUT_REFUSED', reasons: e ? [...e.reasons] : [], hint: 'the job principal\'s policies decide what the job may read; ask the data owner' });
          }
          // Rows stay as the governed path returned them; the sandbox host turns each batch into
          // row objects as it streams it to the worker (src/jobs/sandbox/feed.ts).
          inputs[name] = { columns: res.columns.map((c) => c.name), rows: res.rows as readonly (readonly unknown[])[] };
          onProgress?.({ phase: 'input', input: name, rows: res.rows.length });
        }
      } finally {
        await ids.apiKeys.revoke(key.id).catch(() => undefined);
      }

      const worker = await ctx.worker();
      const outcome = await worker.run({ ...sandboxOptions(m, job.bundle.code, inputs, params), onProgress: (p) => onProgress?.({ phase: 'sandbox', ...p }) });
      if (!outcome.ok) {
        await fail('failed', outcome.error, outcome.limit, outcome.logs, outcome.cpuMs, outcome.rowsRead);
        entry.reasons = [`run ${runId} of code hash ${job.codeHash} stopped${outcome.limit ? ` at its ${outcome.limit} limit` : ''}; nothing released`];
        const detail = outcome.limit ? `JOB_LIMIT_${outcome.limit.toUpperCase()}` : 'JOB_THREW';
        throw new GatehouseError(outcome.limit ? 'JOB_LIMIT_EXCEEDED' : 'JOB_FAILED', outcome.error, { detail, reasons: [detail, `run ${runId}`] });
      }
      let checked;
      try {
        checked = checkOutputs(m, outcome.output);
      } catch (err) {
        await fail('failed', (err as Error).message, null, outcome.logs, outcome.cpuMs, outcome.rowsRead);
        throw err;
      }
      const pinned = canonicalize(checked);
      const sha = createHash('sha256').update(pinned).digest('hex');
      await ctx.jobs.endRun(runId, { status: 'completed', error: null, limit: null, logs: outcome.logs, outputs: pinned, outputsSha256: sha, cpuMs: outcome.cpuMs, rowsRead: outcome.rowsRead }, rt.now().toISOString());
      await ctx.jobs.setStatus(job.id, 'completed');
      entry.resultDigest = sha;
      entry.reasons = [`run ${runId} of code hash ${job.codeHash} as ${principals[0]} completed; outputs ${sha} held for the airlock`];
      return {
        jobId: job.id, runId, codeHash: job.codeHash, outputsSha256: sha, cpuMs: outcome.cpuMs, rowsRead: outcome.rowsRead,
        outputs: checked.map((o) => ({ name: o.name, kind: o.kind, rows: o.rows.length })),
      };
    } catch (err) {
      // Whatever failed, the run ends failed and keeps nothing (a limit or refusal above already said so).
      if ((await ctx.jobs.run(runId).catch(() => null))?.status === 'running') await fail('failed', 'the run failed unexpectedly; nothing was released', null, [], null, null);
      throw err;
    }
  })).value;
}
