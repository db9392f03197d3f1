/**
 * What-if simulation for data owners: how would the policy answer this SQL from that
 * principal for that purpose? The decision, its reasons and policies, the obligations, and
 * the SQL the engine would receive after every rewrite (masks, row filters, caps) — through
 * the same `plan` (decide → bind → govern) that `query` and `estimate` use, so the
 * simulation cannot drift from enforcement. Nothing runs, no budget is charged.
 *
 * Reserved to the administrator groups (it reveals how another principal's requests are
 * shaped) and audited as `policy.simulate` under the caller, with the simulated principal in
 * the reasons. MFA and device posture are assumed satisfied for the simulated principal:
 * the question is what the policy allows, not whether the person signed in well.
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { renderSelect } from '../../query/render/sql.ts';
import { plan } from '../query/plan.ts';

export interface SimulateRequest { readonly principal: string; readonly purpose: string; readonly sql: string }

export interface SimulatedDecision {
  readonly decision: 'allow' | 'deny' | 'error';
  readonly code: string | null;
  readonly reasons: readonly string[];
  readonly policies: readonly string[];
  readonly datasets: readonly string[];
  readonly obligationsApplied: readonly string[];
  /** The SQL the engine would run (its dialect), or null when the request would not run. */
  readonly rewrittenSql: string | null;
  readonly differentialPrivacy: boolean;
  readonly policyVersion: string;
  readonly auditId: string;
}

export async function simulateRequest(rt: Runtime, meta: RequestMeta, req: SimulateRequest): Promise<SimulatedDecision> {
  const { value, auditId } = await audited(rt, meta, 'policy.simulate', { purpose: null }, async (env) => {
    if (!rt.isAdmin(env.auth.principal)) {
      throw new GatehouseError('POLICY_DENIED', 'the what-if simulator is reserved to the administrator groups', { reasons: [`not a member of ${rt.adminGroups().join(', ')}`] });
    }
    const ws = env.state.loaded.workspace;
    const target = ws.principals.get(req.principal);
    if (!target) throw new GatehouseError('NOT_FOUND', 'no principal of that name in the workspace', { hint: 'use a principal id from gatehouse.yaml' });
    env.entry.reasons = [`what-if as ${target.id} for purpose ${req.purpose}`];
    // The simulated request: the target's identity with a fresh MFA event, and a scratch
    // audit entry, so the caller's entry records only the simulation itself.
    const scratch = { ...env.entry };
    const simulated = { ...env, entry: scratch, auth: { principal: target, mfaAt: Math.floor(rt.now().getTime() / 1000) } };
    const base = { policyVersion: ws.policyVersion };
    try {
      const p = await plan(rt, simulated, { ...meta, sql: req.sql, purpose: req.purpose });
      env.entry.datasets = p.bound.datasets;
      const engine = env.state.engines.engineOf(p.bound.datasets[0]!);
      return {
        ...base, decision: 'allow' as const, code: null, reasons: p.decisions.flatMap((d) => d.reasons), policies: p.decisions.flatMap((d) => d.policies),
        datasets: p.bound.datasets, obligationsApplied: p.governed.obligationsApplied, rewrittenSql: renderSelect(p.governed.query, engine.dialect),
        differentialPrivacy: p.governed.dp !== null,
      };
    } catch (err) {
      if (!(err instanceof GatehouseError) || err.code === 'INTERNAL' || err.code === 'AUDIT_UNAVAILABLE' || err.code === 'UNAVAILABLE') throw err;
      return {
        ...base, decision: err.status === 403 ? 'deny' as const : 'error' as const, code: err.code, reasons: [err.message, ...err.reasons],
        policies: [], datasets: scratch.datasets, obligationsApplied: [], rewrittenSql: null, differentialPrivacy: false,
      };
    }
  });
  return { ...value, auditId };
}
