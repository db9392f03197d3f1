/**
 * The contractor-governance tables (src/governance/*), declared once for both backends; the
 * dialect (src/sql/driver.ts) supplies what differs. On PostgreSQL they are part of migration
 * 4 (src/sql/migrations.ts); embedded, GovernanceStore.open (src/governance/store.ts) applies
 * them idempotently to governance.db.
 *
 *   vendor     gov_orgs, gov_certifications, gov_audit_reports, gov_incidents      (vendors.ts)
 *   agreement  gov_agreements and their datasets and purposes                       (agreements.ts)
 *   grant      gov_access_requests, gov_grants                                      (grants.ts)
 *   ack        gov_documents (versioned, hashed), gov_signatures                    (acknowledgements.ts)
 *   training   gov_training                                                         (training.ts)
 *   retention  gov_retention_rules, gov_legal_holds                                 (retention.ts)
 *   finding    gov_findings and their notes                                         (findings.ts)
 *   classify   gov_classification_proposals                                         (classification.ts)
 *   gate       gov_settings                                                         (gate.ts)
 *
 * Every text column is `textC`: ISO times and ids compare and sort bytewise, as SQLite
 * compares them. The embedded tables were created without STRICT (four of them WITHOUT
 * ROWID) and a file's tables are never rebuilt, so on sqlite these declarations produce the
 * very DDL governance.db files were created with (test/state-tables-compat compares it with the
 * frozen text of schema version 4). Notes are read in insertion order: sqlite's implicit rowid,
 * PostgreSQL's `rowid` identity column (`dialect.rowidColumn`).
 */
import type { Dialect } from '../driver.ts';

/** Partner organisations and their vendor-risk records. */
function vendorTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  return `
CREATE TABLE ${X}${T('gov_orgs')} (
  name ${C} PRIMARY KEY,
  display_name ${C} NOT NULL,
  registered_at ${C} NOT NULL,
  registered_by ${C} NOT NULL
);
CREATE TABLE ${X}${T('gov_certifications')} (
  id ${C} PRIMARY KEY,
  org ${C} NOT NULL REFERENCES ${T('gov_orgs')}(name),
  name ${C} NOT NULL,
  issuer ${C} NOT NULL,
  valid_until ${C} NOT NULL,
  recorded_at ${C} NOT NULL
);
CREATE INDEX ${X}${d.bare('gov_certifications')}_org ON ${T('gov_certifications')} (org);
CREATE TABLE ${X}${T('gov_audit_reports')} (
  id ${C} PRIMARY KEY,
  org ${C} NOT NULL REFERENCES ${T('gov_orgs')}(name),
  title ${C} NOT NULL,
  date ${C} NOT NULL,
  outcome ${C} NOT NULL CHECK (outcome IN ('pass', 'pass-with-findings', 'fail')),
  recorded_at ${C} NOT NULL
);
CREATE INDEX ${X}${d.bare('gov_audit_reports')}_org ON ${T('gov_audit_reports')} (org, date);
CREATE TABLE ${X}${T('gov_incidents')} (
  id ${C} PRIMARY KEY,
  org ${C} NOT NULL REFERENCES ${T('gov_orgs')}(name),
  date ${C} NOT NULL,
  severity ${C} NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  summary ${C} NOT NULL,
  resolved_at ${C},
  CHECK (resolved_at IS NULL OR resolved_at >= date)
);
CREATE INDEX ${X}${d.bare('gov_incidents')}_org ON ${T('gov_incidents')} (org);
`;
}

/** Agreements (NDA, DPA, SLA, MSA) with a partner, and the datasets and purposes each covers. */
function agreementTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  const I = d.int;
  return `
CREATE TABLE ${X}${T('gov_agreements')} (
  id ${C} PRIMARY KEY,
  kind ${C} NOT NULL CHECK (kind IN ('NDA', 'DPA', 'SLA', 'MSA')),
  title ${C} NOT NULL,
  our_org ${C} NOT NULL,
  partner_org ${C} NOT NULL REFERENCES ${T('gov_orgs')}(name),
  effective_from ${C} NOT NULL,
  ends_on ${C},
  ip_clause ${C},
  destruction_required ${I} NOT NULL CHECK (destruction_required IN (0, 1)),
  destruction_within_days ${I},
  result_retention_days ${I} CHECK (result_retention_days IS NULL OR result_retention_days >= 0),
  created_at ${C} NOT NULL,
  created_by ${C} NOT NULL,
  terminated_at ${C},
  terminated_by ${C},
  termination_reason ${C},
  closed_out_at ${C},
  CHECK (our_org <> partner_org),
  CHECK (ends_on IS NULL OR ends_on > effective_from),
  CHECK ((destruction_required = 0 AND destruction_within_days IS NULL) OR (destruction_required = 1 AND destruction_within_days >= 0))
);
CREATE INDEX ${X}${d.bare('gov_agreements')}_partner ON ${T('gov_agreements')} (partner_org, kind);
CREATE TABLE ${X}${T('gov_agreement_datasets')} (
  agreement_id ${C} NOT NULL REFERENCES ${T('gov_agreements')}(id),
  dataset ${C} NOT NULL,
  PRIMARY KEY (agreement_id, dataset)
)${d.withoutRowid};
CREATE TABLE ${X}${T('gov_agreement_purposes')} (
  agreement_id ${C} NOT NULL REFERENCES ${T('gov_agreements')}(id),
  purpose ${C} NOT NULL,
  PRIMARY KEY (agreement_id, purpose)
)${d.withoutRowid};
`;
}

/** Access requests (approved by someone else) and the grants they, or an owner, create. */
function grantTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  return `
CREATE TABLE ${X}${T('gov_access_requests')} (
  id ${C} PRIMARY KEY,
  principal_id ${C} NOT NULL,
  org ${C} NOT NULL,
  dataset ${C} NOT NULL,
  purpose ${C} NOT NULL,
  days ${d.int} NOT NULL CHECK (days > 0),
  justification ${C} NOT NULL,
  requested_at ${C} NOT NULL,
  status ${C} NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
  decided_by ${C},
  decided_at ${C},
  decision_reason ${C},
  CHECK (decided_by IS NULL OR decided_by <> principal_id)
);
CREATE INDEX ${X}${d.bare('gov_access_requests')}_status ON ${T('gov_access_requests')} (status, requested_at);
CREATE TABLE ${X}${T('gov_grants')} (
  id ${C} PRIMARY KEY,
  grantee_kind ${C} NOT NULL CHECK (grantee_kind IN ('principal', 'org')),
  principal_id ${C},
  org ${C} NOT NULL,
  dataset ${C} NOT NULL,
  purpose ${C} NOT NULL,
  agreement_id ${C} NOT NULL REFERENCES ${T('gov_agreements')}(id),
  valid_from ${C} NOT NULL,
  valid_until ${C} NOT NULL,
  created_at ${C} NOT NULL,
  created_by ${C} NOT NULL,
  request_id ${C} UNIQUE REFERENCES ${T('gov_access_requests')}(id),
  revoked_at ${C},
  revoked_by ${C},
  revoke_reason ${C},
  CHECK (valid_until > valid_from),
  CHECK ((grantee_kind = 'principal') = (principal_id IS NOT NULL))
);
CREATE INDEX ${X}${d.bare('gov_grants')}_lookup ON ${T('gov_grants')} (dataset, purpose, org);
CREATE INDEX ${X}${d.bare('gov_grants')}_agreement ON ${T('gov_grants')} (agreement_id);
`;
}

/** Published documents (each version hashed) and who acknowledged which version. */
function acknowledgementTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  const I = d.int;
  return `
CREATE TABLE ${X}${T('gov_documents')} (
  name ${C} NOT NULL,
  version ${I} NOT NULL CHECK (version >= 1),
  sha256 ${C} NOT NULL,
  text ${C} NOT NULL,
  published_at ${C} NOT NULL,
  published_by ${C} NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE ${X}${T('gov_signatures')} (
  principal_id ${C} NOT NULL,
  document ${C} NOT NULL,
  version ${I} NOT NULL,
  sha256 ${C} NOT NULL,
  signed_at ${C} NOT NULL,
  PRIMARY KEY (principal_id, document, version),
  FOREIGN KEY (document, version) REFERENCES ${T('gov_documents')}(name, version)
);
`;
}

/** Completed training, each with its expiry. */
function trainingTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  return `
CREATE TABLE ${X}${T('gov_training')} (
  id ${C} PRIMARY KEY,
  principal_id ${C} NOT NULL,
  course ${C} NOT NULL,
  completed_at ${C} NOT NULL,
  expires_at ${C} NOT NULL,
  recorded_at ${C} NOT NULL,
  recorded_by ${C} NOT NULL,
  CHECK (expires_at > completed_at)
);
CREATE INDEX ${X}${d.bare('gov_training')}_principal ON ${T('gov_training')} (principal_id, course, expires_at);
`;
}

/** Retention rules per kind and scope, and legal holds that suspend them. */
function retentionTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  return `
CREATE TABLE ${X}${T('gov_retention_rules')} (
  kind ${C} NOT NULL CHECK (kind IN ('dataset', 'grant', 'result', 'export')),
  scope ${C} NOT NULL,
  days ${d.int} NOT NULL CHECK (days >= 0),
  set_at ${C} NOT NULL,
  set_by ${C} NOT NULL,
  PRIMARY KEY (kind, scope)
)${d.withoutRowid};
CREATE TABLE ${X}${T('gov_legal_holds')} (
  id ${C} PRIMARY KEY,
  subject_kind ${C} NOT NULL CHECK (subject_kind IN ('dataset', 'agreement', 'principal', 'artefact')),
  subject ${C} NOT NULL,
  reason ${C} NOT NULL,
  placed_by ${C} NOT NULL,
  placed_at ${C} NOT NULL,
  released_at ${C},
  released_by ${C}
);
CREATE INDEX ${X}${d.bare('gov_legal_holds')}_subject ON ${T('gov_legal_holds')} (subject_kind, subject);
`;
}

/** Audit findings and their notes (read in insertion order). */
function findingTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  return `
CREATE TABLE ${X}${T('gov_findings')} (
  id ${C} PRIMARY KEY,
  title ${C} NOT NULL,
  severity ${C} NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  owner ${C} NOT NULL,
  due_date ${C} NOT NULL,
  status ${C} NOT NULL CHECK (status IN ('open', 'in-progress', 'closed')),
  created_at ${C} NOT NULL,
  created_by ${C} NOT NULL,
  closed_at ${C},
  CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE TABLE ${X}${T('gov_finding_notes')} (
  ${d.rowidColumn}
  finding_id ${C} NOT NULL REFERENCES ${T('gov_findings')}(id),
  at ${C} NOT NULL,
  by ${C} NOT NULL,
  text ${C} NOT NULL
);
CREATE INDEX ${X}${d.bare('gov_finding_notes')}_finding ON ${T('gov_finding_notes')} (finding_id);
`;
}

/** Classification proposals (a classifier's or a person's) and the decision on each. */
function classificationTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  return `
CREATE TABLE ${X}${T('gov_classification_proposals')} (
  id ${C} PRIMARY KEY,
  dataset ${C} NOT NULL,
  column_name ${C} NOT NULL,
  level ${C} NOT NULL CHECK (level IN ('public', 'internal', 'confidential', 'regulated')),
  tags ${C} NOT NULL,
  evidence ${C} NOT NULL,
  confidence ${d.real} NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
  proposed_by ${C} NOT NULL,
  proposed_at ${C} NOT NULL,
  status ${C} NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected')),
  decided_by ${C},
  decided_at ${C},
  decision_reason ${C},
  decision_seq ${d.int} UNIQUE,
  CHECK ((status = 'pending') = (decided_by IS NULL))
);
CREATE INDEX ${X}gov_classification_target ON ${T('gov_classification_proposals')} (dataset, column_name, status);
`;
}

/** The gate's settings (one row per key). */
function gateTables(d: Dialect, X: string, T: (n: string) => string, C: string): string {
  return `
CREATE TABLE ${X}${T('gov_settings')} (
  key ${C} PRIMARY KEY,
  value ${C} NOT NULL,
  set_at ${C} NOT NULL,
  set_by ${C} NOT NULL
)${d.withoutRowid};
`;
}

/** Every governance table, in dependency order (references point backwards). */
export function governanceTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), C = d.textC;
  return [vendorTables, agreementTables, grantTables, acknowledgementTables, trainingTables, retentionTables, findingTables, classificationTables, gateTables]
    .map((f) => f(d, X, T, C)).join('');
}
