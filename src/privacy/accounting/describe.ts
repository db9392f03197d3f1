/**
 * Plain-data descriptions of budget outcomes for the caller to record and show.
 *
 * The budget store never writes the audit log; the pipeline puts these strings in the
 * AuditRecord's `reasons` (src/audit/types.ts) of the request that charged, was denied
 * or was refunded, so every charge is auditable. They carry ids, ρ and times — never
 * data values, and never a principal id (the record's `principal` field holds that,
 * possibly pseudonymised); organisation subjects are named because they are not people.
 */
import type { ChargeDenied, ChargeOutcome, ChargeRecord, RefundOutcome } from './budget-store.ts';
import { epsilonForDelta } from './zcdp.ts';

/** δ at which budgets are displayed as (ε, δ) unless a dataset says otherwise. */
export const DEFAULT_DISPLAY_DELTA = 1e-9;

const num = (x: number): string => String(Number(x.toPrecision(12)));

function subjectLabel(subject: string): string {
  return subject.startsWith('org:') ? subject : 'principal';
}

/** One line per outcome, `key=value` pairs, stable for log parsers. */
export function budgetAuditReasons(o: ChargeOutcome | RefundOutcome): string[] {
  const where = `subject=${subjectLabel(o.subject)} dataset=${JSON.stringify(o.dataset)} query=${JSON.stringify(o.queryId)}`;
  const tail = `rho=${num(o.rho)} spent=${num(o.spentRho)} cap=${num(o.capRho)} remaining=${num(o.remainingRho)} window=${o.windowStart ?? 'none'} resets=${o.resetsAt ?? 'never'}`;
  if ('refundedAt' in o) {
    return [`dp-budget refund charge=${o.chargeId} ${where} ${tail} refunded=${o.refundedAt} repeat=${o.alreadyRefunded} reason=${JSON.stringify(o.reason)}`];
  }
  if (o.ok) return [`dp-budget charge charge=${o.chargeId} ${where} ${tail} replayed=${o.replayed}`];
  return [`dp-budget denied reason=${o.reason} ${where} ${tail}`];
}

/**
 * The charge a request's audit entry names, read back from its `dp-budget charge` line
 * (the line `budgetAuditReasons` writes for an accepted charge), or null for any other line.
 * Reconciliation after a crash uses it: a charge some entry names was audited.
 */
export function auditedChargeId(reason: string): string | null {
  const m = /^dp-budget charge charge=(\S+) /.exec(reason);
  return m ? m[1]! : null;
}

/** The line a reconciliation entry keeps for a charge it refunds (no principal id, like the others). */
export function reconcileAuditReason(c: ChargeRecord, reason: string): string {
  return `dp-budget reconcile-refund charge=${c.chargeId} subject=${subjectLabel(c.subject)} dataset=${JSON.stringify(c.dataset)} query=${JSON.stringify(c.queryId)} rho=${num(c.rho)} charged=${c.at} reason=${JSON.stringify(reason)}`;
}

/** The message a user sees when a charge is denied: what it needed, what is left, when it resets. */
export function describeDenial(d: ChargeDenied, displayDelta = DEFAULT_DISPLAY_DELTA): string {
  const ds = JSON.stringify(d.dataset);
  if (d.reason === 'no-budget') return `no privacy budget is defined for dataset ${ds}; differentially private queries on it are refused`;
  const when0 = d.resetsAt === null ? 'this budget does not reset' : `the budget resets to the full cap at ${d.resetsAt}`;
  if (d.tight) {
    // Tight accounting: the composition of the window's releases with this one would exceed (ε, δ).
    const t = d.tight;
    return `privacy budget for dataset ${ds} is insufficient${d.reason === 'batch-denied' ? ' (another budget charged with it is exhausted)' : ''}: the releases so far have spent ε=${num(Number(t.spentEpsilon.toPrecision(4)))} of ε=${num(t.epsilon)} at δ=${num(t.delta)}, and with this query their composition would exceed it; ${when0}`;
  }
  const eps = (rho: number): string => (rho > 0 ? num(Number(epsilonForDelta(rho, displayDelta).toPrecision(3))) : '0');
  const need = `this query needs ρ=${num(d.rho)} (ε≈${eps(d.rho)} at δ=${displayDelta})`;
  const left = `ρ=${num(d.remainingRho)} of ${num(d.capRho)} remains (ε≈${eps(d.remainingRho)})`;
  const when = when0;
  const which = d.reason === 'batch-denied' ? ' (another budget charged with it is exhausted)' : '';
  return `privacy budget for dataset ${ds} is insufficient${which}: ${need}; ${left}; ${when}`;
}
