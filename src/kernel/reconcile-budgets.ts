/**
 * Privacy-budget charges stranded by a crash, settled when the node starts.
 *
 * A differentially private query is charged before it runs, marked released just before
 * its result leaves, and refunded if it fails (src/kernel/protections/dp-budget.ts). A
 * process killed between the charge and the end of the request leaves the charge in state
 * "charged" for ever: budget spent on an answer nobody received (after kill -9 in a burst of
 * 50, 26–46 charges stayed so, issue 13).
 *
 * The audit entry is the witness. Every accepted charge writes a `dp-budget charge
 * charge=<id>` line into the entry of its request, and a response is sent only after that
 * entry is recorded (src/kernel/audited.ts). So a charge no entry names was never answered:
 * it is refunded, with a ledger reason. A charge an entry names stays as it is (its request
 * was audited; what it did is on the record). Released charges are never touched.
 *
 * The refunds are audited first, as one `privacy.reconcile` entry listing each charge: if
 * the log cannot record it, nothing is refunded and the node does not start (fail closed);
 * if the process dies between the entry and the refunds, the next start finds the same
 * charges still unnamed by any request and refunds them then (a refund is idempotent).
 *
 * With state shared by several nodes (PostgreSQL), a charge of a query still running on
 * another node is also unnamed: refunding it is safe, because a refunded charge can never
 * be released (`markReleased` refuses it), so that query fails instead of answering.
 */
import { auditedChargeId, reconcileAuditReason } from '../privacy/accounting/describe.ts';
import type { ChargeRecord } from '../privacy/accounting/budget-store.ts';
import { draftEntry, record } from './audited.ts';
import type { Runtime } from './runtime.ts';

/** The ledger's refund reason for a stranded charge. */
export const RECONCILE_REASON = 'reconciled at start: the node stopped before this query was audited, so no answer was released';

/** On shared (PostgreSQL) state, how much older than the longest query a charge must be to be another node's no longer. */
const SHARED_GRACE_MS = 60_000;

/** How far before the oldest open charge the log is read (its entry was drafted before the charge). */
const SCAN_MARGIN_MS = 3_600_000;

export interface Reconciliation {
  /** Charges refunded now. */
  readonly refunded: readonly string[];
  /** Open charges an audit entry names: left as they are. */
  readonly audited: readonly string[];
  /** The `privacy.reconcile` entry, or null when there was nothing to refund. */
  readonly auditId: string | null;
}

export async function reconcileBudgets(rt: Runtime): Promise<Reconciliation> {
  const reader = rt.options.auditReader;
  // Without read access to the log there is no witness: leave every charge as it is.
  if (!reader) return { refunded: [], audited: [], auditId: null };
  // On shared state another node may be answering one of these right now: only a charge older
  // than any query can run (twice the statement timeout, plus a margin) is certainly stranded.
  // Younger ones stay charged (counted, never overspent) until a later start.
  const cutoff = rt.backend.kind === 'postgres' ? rt.now().getTime() - (2 * rt.state.loaded.workspace.defaults.statementTimeoutMs + SHARED_GRACE_MS) : Number.POSITIVE_INFINITY;
  const open = (await rt.budgets.unreleasedCharges()).filter((c) => Date.parse(c.at) < cutoff);
  if (open.length === 0) return { refunded: [], audited: [], auditId: null };
  const audited = await chargesNamedInLog(reader, open);
  const stranded = open.filter((c) => !audited.has(c.chargeId));
  if (stranded.length === 0) return { refunded: [], audited: [...audited], auditId: null };

  const entry = draftEntry(rt, rt.state, { source: 'node', channel: 'system' }, 'privacy.reconcile');
  entry.decision = 'allow';
  entry.datasets = [...new Set(stranded.map((c) => c.dataset))].sort();
  entry.reasons = [
    `refunding ${stranded.length} privacy-budget charge(s) that no audit entry names: the node stopped before those queries were answered`,
    ...stranded.map((c) => reconcileAuditReason(c, RECONCILE_REASON)),
  ];
  const { auditId } = await record(rt, entry);
  for (const c of stranded) await rt.budgets.refund(c.chargeId, RECONCILE_REASON);
  return { refunded: stranded.map((c) => c.chargeId), audited: [...audited], auditId };
}

/** The ids among `open` that some audit entry's `dp-budget charge` line names. */
async function chargesNamedInLog(reader: NonNullable<Runtime['options']['auditReader']>, open: readonly ChargeRecord[]): Promise<Set<string>> {
  const wanted = new Set(open.map((c) => c.chargeId));
  const from = new Date(Math.min(...open.map((c) => Date.parse(c.at))) - SCAN_MARGIN_MS).toISOString();
  const named = new Set<string>();
  for await (const { leaf } of reader.scan({ from })) {
    for (const r of leaf.entry.reasons) {
      const id = auditedChargeId(r);
      if (id !== null && wanted.has(id)) named.add(id);
    }
  }
  return named;
}
