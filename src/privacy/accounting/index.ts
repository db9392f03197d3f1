/**
 * Privacy-budget accounting: zCDP arithmetic (zcdp.ts), the durable budget ledger
 * (budget-store.ts) and the descriptions callers audit and show (describe.ts).
 * See docs/privacy-budgets.md.
 */
export * from './zcdp.ts';
export * from './budget-store.ts';
export * from './describe.ts';
export * from './errors.ts';
