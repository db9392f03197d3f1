/**
 * The privacy-budget ledger as the pipeline sees it: BudgetStore (src/privacy/accounting/
 * budget-store.ts), written once on the state SQL driver, embedded (node:sqlite) or shared
 * by several nodes (PostgreSQL). Kept as an interface so callers can be given a ledger.
 */
import type {
  BudgetDefinition, BudgetStatus, ChargeOutcome, ChargeRecord, ChargeRequest, HistoryQuery, LedgerEntry, RefundOutcome,
} from '../privacy/accounting/budget-store.ts';

export interface BudgetLedger {
  defineBudget(def: BudgetDefinition): Promise<BudgetStatus>;
  status(subject: string, dataset: string, at?: Date): Promise<BudgetStatus | null>;
  charge(req: ChargeRequest): Promise<ChargeOutcome>;
  chargeAll(reqs: readonly ChargeRequest[]): Promise<ChargeOutcome[]>;
  markReleased(chargeId: string, at?: Date): Promise<ChargeRecord>;
  refund(chargeId: string, reason: string, at?: Date): Promise<RefundOutcome>;
  getCharge(chargeId: string): Promise<ChargeRecord>;
  /** Charges neither released nor refunded (reconciliation after a crash). */
  unreleasedCharges(limit?: number): Promise<ChargeRecord[]>;
  history(query?: HistoryQuery): Promise<LedgerEntry[]>;
  close(): Promise<void>;
}
