/**
 * Charging a training round to each participant's privacy budget, through the project's
 * ledger (src/privacy/accounting/budget-store.ts, via the BudgetLedger interface): one
 * budget per (subject, participant dataset), the round's ρ charged all-or-nothing with
 * `chargeAll` before the participant releases its masked input, keyed by the session id so
 * a retried round is not charged twice. The charge is marked released once the round's
 * audit entry is written, refunded if the round fails before anything was released.
 * An exhausted budget stops training with FL_BUDGET_EXHAUSTED and the ledger's own words.
 */
import { describeDenial, type ChargeAccepted, type ChargeRequest } from '../../privacy/accounting/index.ts';
import type { BudgetLedger } from '../../state/budget-ledger.ts';
import { FlError } from '../errors.ts';

export type RoundLedger = Pick<BudgetLedger, 'chargeAll' | 'markReleased' | 'refund'>;

export async function chargeRound(ledger: RoundLedger, subject: string, datasets: readonly string[], rho: number, session: string, at?: Date): Promise<ChargeAccepted[]> {
  const reqs: ChargeRequest[] = datasets.map((dataset) => ({ subject, dataset, rho, queryId: `fl:${session}`, ...(at ? { at } : {}) }));
  const outcomes = await ledger.chargeAll(reqs);
  const denied = outcomes.find((o) => !o.ok && o.reason !== 'batch-denied') ?? outcomes.find((o) => !o.ok);
  if (denied && !denied.ok) throw new FlError('FL_BUDGET_EXHAUSTED', `training stopped: ${describeDenial(denied)}`, 'the model trained so far is kept; ask the data owner for more budget or train with more noise');
  return outcomes as ChargeAccepted[];
}
