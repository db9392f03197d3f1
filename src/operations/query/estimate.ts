/**
 * What a query would cost and how accurate it would be — decided and planned exactly as
 * `query` would, but nothing runs and no budget is spent. Audited as query.estimate.
 */
import { describeNoise as noiseView, planNoise } from '../../privacy/release.ts';
import { audited } from '../../kernel/audited.ts';
import { budgetSubject, budgetView, defineBudget, fitsRemaining } from '../../kernel/protections/dp-budget.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { QueryEstimate, QueryRequest } from '../../kernel/types.ts';
import { plan } from './plan.ts';
import { auditedQueryOptions } from './query.ts';

export async function estimate(rt: Runtime, req: QueryRequest): Promise<QueryEstimate> {
  const { value, auditId } = await audited(rt, req, 'query.estimate', auditedQueryOptions(req), async (env) => {
    const { principal, bound, governed } = await plan(rt, env, req);
    let privacy: QueryEstimate['privacy'] = null;
    if (governed.dp) {
      const noise = planNoise(governed.dp);
      const subject = budgetSubject(principal, governed.dp.def);
      await defineBudget(rt.budgets, subject, governed.dp);
      const status = await rt.budgets.status(subject, governed.dp.dataset);
      const budget = status ? budgetView(status, governed.dp) : null;
      privacy = { ...noiseView(noise), budget, affordable: status !== null && fitsRemaining(status, noise) };
    }
    return { policyVersion: env.state.loaded.workspace.policyVersion, datasets: bound.datasets, obligationsApplied: governed.obligationsApplied, privacy };
  });
  return { ...value, auditId };
}
