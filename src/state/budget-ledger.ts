/**
 * The privacy-budget ledger as the pipeline sees it: satisfied by the embedded default
 * (BudgetStore, node:sqlite) and by PgBudgetStore (PostgreSQL, shared by several nodes).
 * Same methods, same semantics, same typed errors (src/privacy/accounting/errors.ts).
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
  history(query?: HistoryQuery): Promise<LedgerEntry[]>;
  close(): Promise<void>;
}
