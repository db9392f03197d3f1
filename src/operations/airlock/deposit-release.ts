/**
 * The airlock's release places a job's outputs in the partner's workspace (issue 23), inside
 * the release's own audited envelope (one entry, whose reasons name every item placed).
 *
 * The partner is the organisation whose registered key signed the job's code bundle: the
 * owner registered that key against that organisation (`job signer add`), so it is the one
 * fact about the job the partner cannot choose. Each declared output becomes one item
 * (`job-output`, named `<job>.<output>`) derived from the manifest's datasets, and inherits
 * their lineage (src/governance/workspaces/derivative.ts).
 *
 * Order, so that a failure leaves nothing behind:
 *   1. deposit every output (no agreement in force covering the data: refused, nothing is
 *      stored, the request stays approved);
 *   2. the caller moves the request to released; if that loses a race, `withdraw` crypto-shreds
 *      what step 1 placed;
 *   3. `forget` drops the run's and the request's copies of the outputs. What the owner's own
 *      store keeps is their SHA-256, the checks report and the reviews: the evidence of what
 *      was reviewed and released, with no value in it.
 */
import { GatehouseError } from '../../errors.ts';
import type { AirlockRequest } from '../../airlock/store.ts';
import { depositDerivative, withdrawDeposits, type DepositedDerivative } from '../../governance/workspaces/derivative.ts';
import type { CheckedOutput } from '../../jobs/outputs.ts';
import type { JobRecord } from '../../jobs/store.ts';
import type { Runtime, WorkspaceState } from '../../kernel/runtime.ts';
import { jobsContext } from '../jobs/context.ts';

export interface PlacedOutput {
  readonly output: string;
  readonly item: string;
  readonly org: string;
  readonly agreementId: string;
  readonly classification: string;
  readonly retainUntil: string | null;
}

export interface ReleaseDeposit {
  readonly placed: readonly PlacedOutput[];
  readonly reasons: readonly string[];
  /** Crypto-shreds what was placed (the release failed after the deposit). */
  withdraw(reason: string): Promise<void>;
  /** Drops the run's and the request's copies once the request is released. */
  forget(): Promise<void>;
}

/** The content kept for one output: a table as {columns, rows}, a value as itself. */
function contentOf(o: CheckedOutput): Buffer {
  return Buffer.from(JSON.stringify(o.kind === 'table' ? { columns: o.columns, rows: o.rows } : o.value ?? null));
}

export async function depositReleasedOutputs(rt: Runtime, state: WorkspaceState, r: AirlockRequest, job: JobRecord, by: string): Promise<ReleaseDeposit> {
  const ctx = jobsContext(rt);
  const signer = await ctx.jobs.signer(job.bundle.signer);
  if (!signer) {
    throw new GatehouseError('CONFLICT', 'the key that signed this job is no longer registered, so there is no partner workspace to release its outputs into; nothing was released', {
      detail: 'AIRLOCK_NO_PARTNER', hint: 'register the partner\'s signing key again (gatehouse job signer add) and release again',
    });
  }
  const m = job.bundle.manifest;
  const { artefacts } = await rt.governance.vault();
  const deps = { artefacts, agreements: rt.governance.store.agreements, catalog: state.loaded.workspace, retentionRules: await rt.governance.store.retention.rules(), now: rt.now() };
  const placed: { output: string; d: DepositedDerivative }[] = [];
  try {
    for (const o of JSON.parse(r.outputs) as CheckedOutput[]) {
      const d = await depositDerivative(deps, {
        org: signer.org, item: 'job-output', name: `${m.name}.${o.name}`, datasets: m.datasets, content: contentOf(o), mediaType: 'application/json', by, source: `airlock:${r.id}`,
      });
      placed.push({ output: o.name, d });
    }
  } catch (err) {
    await withdrawDeposits(artefacts, placed.map((p) => p.d.id), `airlock request ${r.id}: release refused, partial deposit withdrawn`);
    throw err;
  }
  return {
    placed: placed.map(({ output, d }) => ({ output, item: d.id, org: signer.org, agreementId: d.agreementId, classification: d.classification, retainUntil: d.retainUntil })),
    reasons: placed.map(({ d }) => d.event.detail),
    async withdraw(reason) { await withdrawDeposits(artefacts, placed.map((p) => p.d.id), reason); },
    async forget() {
      await ctx.airlock.forgetOutputs(r.id);
      await ctx.jobs.forgetOutputs(r.runId);
    },
  };
}
