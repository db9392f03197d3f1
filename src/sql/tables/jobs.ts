/**
 * Code-to-data state (issue 18; docs/code-to-data.md), declared once for both backends; the
 * dialect (src/sql/driver.ts) supplies what differs. On PostgreSQL the tables come from one
 * migration (src/sql/migrations.ts), so every node of a cluster sees the same jobs, approvals,
 * runs, airlock requests and key-broker challenges; an embedded node keeps them in
 * `state/code-to-data.sqlite`, applied idempotently when the stores open it.
 *
 *   job_signers             partner signing keys registered by data owners
 *   jobs                    submitted bundles (by code hash) and their status
 *   job_approvals           code hash × dataset × purpose → the principal the job reads as, PCR0s
 *   job_runs                runs with logs and outputs pinned by SHA-256 (for the airlock only)
 *   airlock_requests        output requests, their pinned copy and state (compare-and-set moves)
 *   airlock_reviews         one review per (request, reviewer)
 *   attestation_challenges  single-use broker nonces: consumed by one DELETE … RETURNING, so two
 *                           nodes can never both accept evidence for the same challenge
 *   attestation_evidence    digests of evidence already presented (replay), primary key = digest
 *
 * Times a store compares (expiry, pruning) are epoch milliseconds; others are ISO text as the
 * operations report them.
 */
import type { Dialect } from '../driver.ts';

export function jobTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), C = d.textC, S = d.text, B = d.bigint, x = d.tableSuffix;
  return `
CREATE TABLE ${X}${T('job_signers')} (
  key_id ${C} PRIMARY KEY,
  org ${C} NOT NULL,
  public_key_pem ${S} NOT NULL,
  added_by ${S} NOT NULL,
  added_at ${C} NOT NULL
)${x};
CREATE TABLE ${X}${T('jobs')} (
  id ${C} PRIMARY KEY,
  code_hash ${C} NOT NULL,
  bundle ${S} NOT NULL,
  submitter ${C} NOT NULL,
  submitted_at ${C} NOT NULL,
  status ${C} NOT NULL CHECK (status IN ('submitted', 'approved', 'running', 'completed', 'failed'))
)${x};
CREATE TABLE ${X}${T('job_approvals')} (
  code_hash ${C} NOT NULL,
  dataset ${C} NOT NULL,
  purpose ${C} NOT NULL,
  principal ${S} NOT NULL,
  approver ${S} NOT NULL,
  approved_at ${C} NOT NULL,
  measurements ${S} NOT NULL,
  PRIMARY KEY (code_hash, dataset, purpose)
)${x};
CREATE INDEX ${X}${d.bare('job_approvals')}_dataset ON ${T('job_approvals')} (dataset);
CREATE TABLE ${X}${T('job_runs')} (
  id ${C} PRIMARY KEY,
  job_id ${C} NOT NULL,
  started_at ${C} NOT NULL,
  ended_at ${C},
  status ${C} NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
  error ${S},
  limit_kind ${S},
  logs ${S} NOT NULL,
  outputs ${S},
  outputs_sha256 ${S},
  cpu_ms ${d.real},
  rows_read ${B}
)${x};
CREATE INDEX ${X}${d.bare('job_runs')}_job ON ${T('job_runs')} (job_id);
CREATE TABLE ${X}${T('airlock_requests')} (
  id ${C} PRIMARY KEY,
  job_id ${C} NOT NULL,
  run_id ${C} NOT NULL,
  requester ${C} NOT NULL,
  author ${C} NOT NULL,
  state ${C} NOT NULL,
  outputs ${S} NOT NULL,
  outputs_sha256 ${S} NOT NULL,
  checks ${S},
  created_at ${C} NOT NULL,
  updated_at ${C} NOT NULL
)${x};
CREATE TABLE ${X}${T('airlock_reviews')} (
  request_id ${C} NOT NULL,
  reviewer ${C} NOT NULL,
  decision ${C} NOT NULL CHECK (decision IN ('approve', 'reject')),
  reason ${S} NOT NULL,
  at ${C} NOT NULL,
  PRIMARY KEY (request_id, reviewer)
)${x};
CREATE TABLE ${X}${T('attestation_challenges')} (
  id ${C} PRIMARY KEY,
  job_id ${C} NOT NULL,
  format ${C} NOT NULL,
  nonce ${d.blob} NOT NULL,
  expires_ms ${B} NOT NULL
)${x};
CREATE INDEX ${X}${d.bare('attestation_challenges')}_expires ON ${T('attestation_challenges')} (expires_ms);
CREATE TABLE ${X}${T('attestation_evidence')} (
  digest ${C} PRIMARY KEY,
  seen_ms ${B} NOT NULL
)${x};
CREATE INDEX ${X}${d.bare('attestation_evidence')}_seen ON ${T('attestation_evidence')} (seen_ms);
`;
}
