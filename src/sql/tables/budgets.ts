/**
 * The privacy-budget tables (src/privacy/accounting/budget-store.ts), declared once for both
 * backends; the dialect (src/sql/driver.ts) supplies what differs. Files written before
 * the names were unified call the last three `windows`, `charges` and `ledger`
 * (BUDGET_SQLITE_NAMES), and they keep those names.
 *
 * Amounts are integer nano-ρ, times integer epoch milliseconds: exact on both engines.
 */
import type { Dialect } from '../driver.ts';

/** The real names in an embedded budgets file (budgets.sqlite). */
export const BUDGET_SQLITE_NAMES: Readonly<Record<string, string>> = { budget_windows: 'windows', budget_charges: 'charges', budget_ledger: 'ledger' };

export function budgetTables(d: Dialect): string {
  const X = d.ifNotExists;
  const T = d.table.bind(d);
  const I = d.int, B = d.bigint, S = d.text;
  return `
CREATE TABLE ${X}${T('budgets')} (
  subject      ${S} NOT NULL,
  dataset      ${S} NOT NULL,
  cap_nano     ${B} NOT NULL CHECK (cap_nano > 0),
  window_kind  ${S} NOT NULL CHECK (window_kind IN ('none', 'calendar-month', 'rolling-days')),
  window_days  ${I} CHECK ((window_kind = 'rolling-days') = (window_days IS NOT NULL)),
  anchor_ms    ${B} NOT NULL,
  updated_ms   ${B} NOT NULL,
  PRIMARY KEY (subject, dataset)
)${d.tableSuffix};
CREATE TABLE ${X}${T('budget_windows')} (
  subject      ${S} NOT NULL,
  dataset      ${S} NOT NULL,
  start_ms     ${B} NOT NULL,
  end_ms       ${B},
  spent_nano   ${B} NOT NULL DEFAULT 0 CHECK (spent_nano >= 0),
  PRIMARY KEY (subject, dataset, start_ms)
)${d.tableSuffix};
CREATE TABLE ${X}${T('budget_charges')} (
  charge_id      ${S} PRIMARY KEY,
  subject        ${S} NOT NULL,
  dataset        ${S} NOT NULL,
  query_id       ${S} NOT NULL,
  nano           ${B} NOT NULL CHECK (nano > 0),
  at_ms          ${B} NOT NULL,
  window_start   ${B} NOT NULL,
  state          ${S} NOT NULL CHECK (state IN ('charged', 'released', 'refunded')),
  released_ms    ${B},
  refunded_ms    ${B},
  refund_reason  ${S},
  UNIQUE (subject, dataset, query_id)
)${d.tableSuffix};
CREATE TABLE ${X}${T('budget_ledger')} (
  seq          ${d.serialKey},
  kind         ${S} NOT NULL CHECK (kind IN ('charge', 'refund')),
  charge_id    ${S} NOT NULL REFERENCES ${T('budget_charges')} (charge_id),
  subject      ${S} NOT NULL,
  dataset      ${S} NOT NULL,
  query_id     ${S} NOT NULL,
  nano         ${B} NOT NULL CHECK (nano > 0),
  at_ms        ${B} NOT NULL,
  window_start ${B} NOT NULL,
  reason       ${S},
  UNIQUE (charge_id, kind)
)${d.tableSuffix};
CREATE INDEX ${X}${d.bare('budget_ledger')}_by_budget ON ${T('budget_ledger')} (subject, dataset, seq);
CREATE INDEX ${X}${d.bare('budget_ledger')}_by_time ON ${T('budget_ledger')} (at_ms);
-- The ledger is append-only: rows are evidence for audits and reports.
${d.appendOnly('budget_ledger')}
`;
}

/**
 * Tight accounting (src/privacy/accounting/pld.ts), added by migration 6: a budget may carry
 * an (ε, δ) target, and a charge the privacy loss it spends (JSON of a PrivacyLoss). When both
 * are present the charge is checked by composing every live charge of the window under the
 * budget row's lock, instead of by `spent + ρ ≤ cap`. ε and δ are stored as the shortest
 * decimal of the double (exact round trip); the loss as JSON (numbers round-trip exactly).
 */
export function budgetLossTables(d: Dialect): string {
  const X = d.ifNotExists;
  const T = d.table.bind(d);
  const S = d.text;
  return `
CREATE TABLE ${X}${T('budget_targets')} (
  subject      ${S} NOT NULL,
  dataset      ${S} NOT NULL,
  epsilon      ${S} NOT NULL,
  delta        ${S} NOT NULL,
  PRIMARY KEY (subject, dataset)
)${d.tableSuffix};
CREATE TABLE ${X}${T('budget_losses')} (
  charge_id    ${S} PRIMARY KEY REFERENCES ${T('budget_charges')} (charge_id),
  loss         ${S} NOT NULL
)${d.tableSuffix};
`;
}
