/**
 * The audit entries of federated learning, inside the one audited envelope (issue 19).
 *
 *   fl.release  on a participant: its masked (and, under DP, noised) update leaves the node.
 *               Before it leaves, the round's ρ is charged to the participant dataset's
 *               budget all-or-nothing (rt.budgets.chargeAll); the charge is marked released
 *               once this entry is durable and refunded if it cannot be written. An exhausted
 *               budget refuses the release (BUDGET_EXHAUSTED) and training stops.
 *   fl.round    on the coordinator: one round's outcome (participants, dropouts, loss,
 *               accuracy, ε), with the session id every participant's entry carries.
 *   fl.model    on the coordinator: the trained model stored as an encrypted artefact
 *               labelled with the collaboration's agreement (terminating it shreds the model).
 *
 * Each entry authenticates its own principal on its own node: a participant's admin who
 * joined the job, the coordinator's operator who started it. The features themselves are
 * read by the ordinary `query` operation (its own entry, purpose `model-training`).
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { describeDenial, rhoForEpsilonDelta, type ChargeAccepted } from '../../privacy/accounting/index.ts';

export const FL_PURPOSE = 'model-training';
/** Only members of this group may join, start or read federated jobs on a node (default deny). */
export const FL_OPERATORS = 'fl-operators';

function requireOperator(groups: readonly string[]): void {
  if (!groups.includes(FL_OPERATORS)) throw new GatehouseError('POLICY_DENIED', `federated learning is run by members of group ${FL_OPERATORS} on this node`, { hint: 'ask this node\'s admin to add you to the group', reasons: [`not a member of ${FL_OPERATORS}`] });
}

export interface FlReleaseStep<T> {
  readonly job: string;
  readonly round: number;
  readonly session: string;
  readonly coordinator: string;
  readonly dataset: string;
  /** ρ this round costs the dataset (null without DP). */
  readonly rho: number | null;
  /** The budget subject (`org:<consortium>` or a principal id). */
  readonly budgetSubject: string | null;
  /** How the update leaves: masked for secure aggregation, or in the clear to a coordinator this node's operator chose to trust. */
  readonly mode?: 'secure-aggregation' | 'plain-to-trusted-coordinator' | 'ckks-to-key-authority';
  readonly run: () => Promise<T>;
}

export async function flRelease<T>(rt: Runtime, meta: RequestMeta, step: FlReleaseStep<T>): Promise<{ value: T; auditId: string }> {
  return audited(rt, meta, 'fl.release', { purpose: FL_PURPOSE }, async (env) => {
    env.entry.datasets = [step.dataset];
    env.keep(`federated job ${step.job} round ${step.round} session ${step.session} coordinator ${step.coordinator}`);
    if (step.rho !== null) {
      const subject = step.budgetSubject ?? env.auth.principal.id;
      const outcomes = await rt.budgets.chargeAll([{ subject, dataset: step.dataset, rho: step.rho, queryId: `fl:${step.session}`, at: rt.now() }]);
      const denied = outcomes.find((o) => !o.ok);
      if (denied && !denied.ok) {
        throw new GatehouseError('BUDGET_EXHAUSTED', `this node's privacy budget for ${step.dataset} cannot pay for federated round ${step.round}: ${describeDenial(denied)}`, { hint: 'the data owner may raise the budget (gatehouse fl join --epsilon) or the job may train with more noise', reasons: [describeDenial(denied)] });
      }
      const charges = outcomes as ChargeAccepted[];
      for (const c of charges) {
        env.keep(`dp-budget charge=${c.chargeId} dataset=${JSON.stringify(c.dataset)} rho=${c.rho} remaining=${c.remainingRho}`);
        env.onRecord({ recorded: async () => { await rt.budgets.markReleased(c.chargeId); }, unrecorded: async () => { await rt.budgets.refund(c.chargeId, 'the release was not recorded'); } });
      }
      env.entry.obligations = ['distributed-discrete-gaussian', 'secure-aggregation'];
    } else env.entry.obligations = [step.mode ?? 'secure-aggregation'];
    return step.run();
  });
}

export interface FlRoundOutcome {
  readonly job: string;
  readonly round: number;
  readonly session: string;
  readonly participants: readonly string[];
  readonly dropouts: readonly string[];
  readonly reasons: readonly string[];
}

export async function flRound<T>(rt: Runtime, meta: RequestMeta, job: string, round: number, run: () => Promise<{ value: T; outcome: FlRoundOutcome }>): Promise<{ value: T; auditId: string }> {
  return audited(rt, meta, 'fl.round', { purpose: FL_PURPOSE }, async (env) => {
    requireOperator(env.auth.principal.groups);
    env.keep(`federated job ${job} round ${round}`);
    const { value, outcome } = await run();
    env.entry.reasons = [`session ${outcome.session}`, `participants ${outcome.participants.join(',') || 'none'}`, `dropouts ${outcome.dropouts.join(',') || 'none'}`, ...outcome.reasons];
    return value;
  });
}

export interface FlModelExport {
  readonly job: string;
  readonly agreement: string;
  readonly content: Buffer;
}

/** Stores the trained model (weights + model card) as an encrypted artefact labelled with the agreement. */
export async function flStoreModel(rt: Runtime, meta: RequestMeta, m: FlModelExport): Promise<{ value: { artefactId: string; sha256: string }; auditId: string }> {
  return audited(rt, meta, 'fl.model', { purpose: FL_PURPOSE }, async (env) => {
    requireOperator(env.auth.principal.groups);
    const { artefacts } = await rt.governance.vault();
    const put = await artefacts.put({
      kind: 'export', owner: env.auth.principal.id, mediaType: 'application/vnd.gatehouse.fl-model+json', content: m.content, retainUntil: null,
      labels: { agreement: m.agreement, purpose: FL_PURPOSE, job: m.job },
    });
    env.keep(`model of federated job ${m.job} stored as artefact ${put.id} under agreement ${m.agreement}`);
    env.entry.resultDigest = put.sha256;
    return { artefactId: put.id, sha256: put.sha256 };
  });
}

/** Reads a stored model back (audited); a shredded model is GONE. */
export async function flReadModel(rt: Runtime, meta: RequestMeta, artefactId: string): Promise<{ value: Buffer; auditId: string }> {
  return audited(rt, meta, 'fl.model.read', { purpose: FL_PURPOSE }, async (env) => {
    const { artefacts } = await rt.governance.vault();
    const { meta: m, content } = await artefacts.get(artefactId);
    if (m.owner !== env.auth.principal.id || m.labels.purpose !== FL_PURPOSE) throw new GatehouseError('NOT_FOUND', 'no such model that you may read', { hint: 'list the jobs you started: gatehouse fl status' });
    env.keep(`model artefact ${artefactId} of federated job ${m.labels.job ?? '?'}`);
    return content;
  });
}

export interface FlJoinRequest {
  readonly job: string;
  readonly coordinator: string;
  /** null: the node joins as the job's CKKS key authority, not as a data holder. */
  readonly dataset: string | null;
  /** The participant dataset's lifetime privacy budget for this collaboration (null: no DP). */
  readonly budget: { readonly epsilon: number; readonly delta: number } | null;
  /** The operator lets this job's updates go in the clear to its coordinator (robust aggregation). */
  readonly trustCoordinator?: boolean;
}

/**
 * A participant's admin joins a job on its own node: audited `fl.join`. The budget of the
 * participant dataset (subject `org:<the admin's org>`, or the admin when it has none) is
 * defined here, by the data owner, as a lifetime cap (window null): DP guarantees compose.
 */
export async function flJoin(rt: Runtime, meta: RequestMeta, req: FlJoinRequest): Promise<{ value: { subject: string; capRho: number | null }; auditId: string }> {
  return audited(rt, meta, 'fl.join', { purpose: FL_PURPOSE }, async (env) => {
    requireOperator(env.auth.principal.groups);
    env.entry.datasets = req.dataset ? [req.dataset] : [];
    env.keep(req.dataset ? `joined federated job ${req.job} coordinated by node ${req.coordinator}` : `designated CKKS key authority of federated job ${req.job} coordinated by node ${req.coordinator}`);
    if (req.trustCoordinator) env.keep(`updates of job ${req.job} may go in the clear to node ${req.coordinator} (robust aggregation, no masking)`);
    const org = env.auth.principal.attributes.org;
    const subject = typeof org === 'string' && org.length > 0 ? `org:${org}` : env.auth.principal.id;
    if (!req.budget || !req.dataset) return { subject, capRho: null };
    const capRho = rhoForEpsilonDelta(req.budget.epsilon, req.budget.delta);
    await rt.budgets.defineBudget({ subject, dataset: req.dataset, capRho, window: null });
    env.keep(`privacy budget for ${req.dataset}: ε=${req.budget.epsilon} δ=${req.budget.delta} (ρ=${capRho}) for ${subject}, lifetime`);
    return { subject, capRho };
  });
}

/** Any other FL control step (start, status): authenticated and audited like the rest. */
export type FlControlAction = 'fl.start' | 'fl.status' | 'fl.decrypt';

export async function flControl<T>(rt: Runtime, meta: RequestMeta, action: FlControlAction, why: string, run: (principal: string) => Promise<T>): Promise<{ value: T; auditId: string }> {
  return audited(rt, meta, action, { purpose: FL_PURPOSE }, async (env) => {
    requireOperator(env.auth.principal.groups);
    env.keep(why);
    return run(env.auth.principal.id);
  });
}
