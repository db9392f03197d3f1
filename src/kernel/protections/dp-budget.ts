/**
 * The privacy budget of a differentially private release: charged atomically before the
 * query runs (a denied charge stops it), refunded if nothing is released, and marked
 * released once the audit entry of the release is durable. The charge carries the release's
 * privacy loss and the budget its (ε, δ), so the ledger composes them tightly (accounting/pld.ts). The ledger lines stay in the
 * audit entry.
 */
import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../../errors.ts';
import type { ChargeAccepted } from '../../privacy/accounting/budget-store.ts';
import { budgetAuditReasons, describeDenial } from '../../privacy/accounting/describe.ts';
import { rhoForEpsilonDelta } from '../../privacy/accounting/zcdp.ts';
import { composeLosses, fitsBudget, type PrivacyLoss } from '../../privacy/accounting/pld.ts';
import { describeNoise, spentEpsilon, type NoisePlan, type PrivacyGovernance } from '../../privacy/release.ts';
import type { DpReleasePlan } from '../../query/govern/index.ts';
import type { BudgetLedger } from '../../state/budget-ledger.ts';
import type { DifferentialPrivacyDef, PrincipalDef } from '../../model/types.ts';
import type { Protection } from '../execute.ts';

/** Whose budget a query spends: the principal's, or its organisation's. */
export function budgetSubject(principal: PrincipalDef, def: DifferentialPrivacyDef): string {
  if (def.budget.per === 'org') {
    const org = principal.attributes.org;
    if (typeof org !== 'string' || org.length === 0) throw new GatehouseError('POLICY_DENIED', 'this dataset\'s privacy budget is per organisation, and your identity carries no "org" attribute');
    return `org:${org}`;
  }
  return principal.id;
}

export async function defineBudget(budgets: BudgetLedger, subject: string, plan: DpReleasePlan): Promise<void> {
  const b = plan.def.budget;
  await budgets.defineBudget({ subject, dataset: plan.dataset, capRho: rhoForEpsilonDelta(b.epsilon, b.delta), window: b.window, target: { epsilon: b.epsilon, delta: b.delta } });
}

export function budgetView(o: { subject: string; spentRho: number; remainingRho: number; capRho: number; resetsAt: string | null; tight?: { spentEpsilon: number } | null }, plan: DpReleasePlan): PrivacyGovernance['budget'] {
  const b = plan.def.budget;
  // Tight accounting (PLD) when the ledger has it; the ρ view otherwise.
  const spent = o.tight ? o.tight.spentEpsilon : spentEpsilon(o.spentRho, b.delta);
  return { subject: o.subject, epsilon: b.epsilon, delta: b.delta, spentEpsilon: spent, remainingRho: o.remainingRho, capRho: o.capRho, resetsAt: o.resetsAt };
}

/** Whether a query would fit what remains: by composition when the ledger accounts tightly, by ρ otherwise. */
export function fitsRemaining(status: { remainingRho: number; tight?: { epsilon: number; delta: number; spent: PrivacyLoss } | null }, noise: NoisePlan): boolean {
  if (status.tight) return fitsBudget(composeLosses([status.tight.spent, noise.loss]), status.tight);
  return status.remainingRho >= noise.rho;
}

export function dpBudget(budgets: BudgetLedger, principal: PrincipalDef, plan: DpReleasePlan, noise: NoisePlan): Protection {
  let charge: ChargeAccepted | null = null;
  return {
    name: 'dp-budget',
    async before(ctx) {
      const subject = budgetSubject(principal, plan.def);
      await defineBudget(budgets, subject, plan);
      const outcome = await budgets.charge({ subject, dataset: plan.dataset, rho: noise.rho, loss: noise.loss, queryId: randomUUID() });
      for (const r of budgetAuditReasons(outcome)) ctx.keep(r);
      if (!outcome.ok) {
        throw new GatehouseError('BUDGET_EXHAUSTED', describeDenial(outcome, plan.def.budget.delta), {
          hint: outcome.resetsAt ? `the budget resets at ${outcome.resetsAt}; ask POST /v1/query/estimate what a query costs before running it` : 'ask the data owner for more budget',
          reasons: [describeDenial(outcome, plan.def.budget.delta)],
        });
      }
      charge = outcome;
    },
    after(ctx, r) {
      const c = charge!;
      // Released only once the audit entry is durable (responses follow the entry); if the
      // entry cannot be written nothing reached the caller, and the charge is refunded. A crash
      // in between leaves it charged: reconciled at the next start against the log.
      ctx.onRecord({
        recorded: () => budgets.markReleased(c.chargeId).then(() => undefined),
        unrecorded: async () => { await budgets.refund(c.chargeId, 'the audit entry could not be written, so nothing was released'); },
      });
      return { ...r, privacy: { ...describeNoise(noise), budget: budgetView(c, plan) } };
    },
    async onFailure(ctx) {
      if (!charge) return;
      const refund = await budgets.refund(charge.chargeId, 'the query failed before any result was released');
      for (const r of budgetAuditReasons(refund)) ctx.keep(r);
    },
  };
}
