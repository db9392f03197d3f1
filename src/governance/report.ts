/**
 * Compliance reports: `buildReport` turns plain data (audit entries, findings, agreements,
 * grants, vendors, budget use, destruction certificates) into a `Report` — a summary
 * paragraph, key figures and tables with typed columns — and the renderers turn a Report
 * into HTML for people (`report-html.ts`) and CSV for spreadsheets (`report-csv.ts`).
 *
 * Pure: no clock (the caller passes generatedAt), no I/O, deterministic output for the
 * same input. Every string in the input is treated as hostile by the renderers.
 * Sections and their rules are described in docs/reports.md.
 */
import { createHash } from 'node:crypto';
import type { StoredAuditEntry } from '../audit/log.ts';
import { INCIDENT_COLUMNS, incidentSummary } from './report-incidents.ts';
import { buildFlowMap, formatCount, inPeriod, partnerOf, UNKNOWN_DATASET, type FlowMap } from './flows.ts';

export { renderReportHtml } from './report-html.ts';
export { renderReportCsv, csvCell } from './report-csv.ts';

// ---------------------------------------------------------------------------------------
// Input

/** The fields of an audit entry a report reads (`source` optional). */
export type ReportAuditEntry = Pick<StoredAuditEntry, 'time' | 'principal' | 'channel' | 'action' | 'datasets' | 'decision' | 'rowsReturned' | 'errorCode' | 'reasons' | 'policyVersion'> & { readonly source?: string };

export interface ReportFinding { readonly id: string; readonly title: string; readonly severity: string; readonly owner: string; readonly dueDate: string; readonly status: string }
export interface ReportAgreement { readonly id: string; readonly kind: string; readonly partner: string; readonly status: string; readonly effectiveFrom: string; readonly endsOn: string | null }
export interface ReportGrant { readonly id: string; readonly principal?: string | null; readonly org?: string | null; readonly dataset: string; readonly purpose: string; readonly until: string | null; readonly status: string }
export interface ReportVendor { readonly org: string; readonly tier: string; readonly expiringCertificates: readonly { readonly name: string; readonly validUntil: string }[] }
export interface ReportBudgetUse { readonly subject: string; readonly dataset: string; readonly spentEpsilon: number; readonly capEpsilon: number }
export interface ReportDestruction { readonly at: string; readonly subject: string; readonly artefacts: readonly string[] | number; readonly reason: string }

export interface ReportInput {
  /** ISO-8601; `from` inclusive, `to` exclusive (1 November to 1 December = the month of November). */
  readonly period: { readonly from: string; readonly to: string };
  readonly generatedAt: string;
  readonly workspace: string;
  readonly entries: Iterable<ReportAuditEntry>;
  readonly orgOf: (principal: string) => string | null;
  readonly findings?: readonly ReportFinding[];
  readonly agreements?: readonly ReportAgreement[];
  readonly grants?: readonly ReportGrant[];
  readonly vendors?: readonly ReportVendor[];
  readonly budgets?: readonly ReportBudgetUse[];
  readonly destructions?: readonly ReportDestruction[];
  /** Rows per table before the rest is summarised as "and N more". Default 500. */
  readonly maxRowsPerSection?: number;
}

// ---------------------------------------------------------------------------------------
// Output

/** How a column's values are shown: times and dates are ISO strings in the Report. */
export type ColumnKind = 'text' | 'count' | 'number' | 'percent' | 'time' | 'date';
export type Cell = string | number | null;

export interface ReportColumn { readonly key: string; readonly label: string; readonly kind: ColumnKind }
export interface ReportRow { readonly cells: readonly Cell[]; readonly flag?: 'warning' | 'alert' }

export interface ReportSection {
  readonly id: string;
  readonly title: string;
  /** One plain sentence saying what the table shows. */
  readonly caption: string;
  readonly columns: readonly ReportColumn[];
  readonly rows: readonly ReportRow[];
  /** Rows left out (beyond maxRowsPerSection). */
  readonly more: number;
  /** Shown instead of an empty table. */
  readonly empty: string;
}

export interface Report {
  readonly title: string;
  readonly workspace: string;
  readonly period: { readonly from: string; readonly to: string };
  readonly generatedAt: string;
  /** Plain-language paragraph for a non-engineer. */
  readonly summary: string;
  readonly figures: readonly { readonly label: string; readonly value: number }[];
  readonly sections: readonly ReportSection[];
  readonly flows: FlowMap;
  /** Hashes and other technical identifiers live here, referenced from the tables as [n]. */
  readonly footnotes: readonly { readonly id: number; readonly text: string }[];
}

// ---------------------------------------------------------------------------------------
// Vocabulary

const ACCESS_PREFIXES = ['query', 'export', 'cleanroom', 'job', 'training'];
/** Requests that read or released data. */
export function isAccessAction(action: string): boolean {
  return ACCESS_PREFIXES.some((p) => action === p || action.startsWith(`${p}.`));
}

const CHANGE_PREFIXES = ['admin', 'grant', 'agreement', 'identity', 'elevation', 'vendor', 'retention', 'keys', 'key', 'finding', 'purpose', 'acknowledgement', 'classification', 'policy', 'workspace', 'access-request', 'destruction'];
const READ_SUFFIX = /\.(?:list|show|get|status|read|search|export-log)$/;
/** Provisioning, identity-administration, governance and policy actions (reads excluded). */
export function isChangeAction(action: string): boolean {
  return CHANGE_PREFIXES.some((p) => action.startsWith(`${p}.`)) && !READ_SUFFIX.test(action);
}

/** A failed sign-in: an authentication action that did not succeed, or any request refused for its credentials. */
export function isFailedLogin(e: ReportAuditEntry): boolean {
  if (e.decision === 'allow') return false;
  return e.action === 'login' || e.action.startsWith('auth.') || (e.errorCode ?? '').startsWith('AUTH_');
}

const ACTION_LABELS: Readonly<Record<string, string>> = {
  'admin.user.create': 'User account created',
  'admin.user.enable': 'User account re-enabled',
  'admin.user.disable': 'User account disabled',
  'admin.key.create': 'Service key issued',
  'admin.key.revoke': 'Service key revoked',
  'admin.mfa.reset': 'Multi-factor reset',
  'elevation.request': 'Privileged access requested',
  'elevation.approve': 'Privileged access approved',
  'elevation.deny': 'Privileged access request refused',
  'elevation.break-glass': 'Emergency (break-glass) access used',
  'elevation.revoke': 'Privileged access withdrawn',
  'auth.login': 'Sign-in',
  'auth.totp.enrol': 'Multi-factor enrolment',
  'auth.totp.confirm': 'Multi-factor confirmation',
  'auth.step-up': 'Multi-factor re-check',
};

/** "grant.create" → "Grant create" when no label is known. */
export function describeAction(action: string): string {
  const known = ACTION_LABELS[action];
  if (known !== undefined) return known;
  const words = action.replace(/[._-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const CODE_MEANINGS: Readonly<Record<string, string>> = {
  AUTH_REQUIRED: 'No credential was presented',
  AUTH_INVALID: 'The credential was wrong, unknown or revoked',
  MFA_REQUIRED: 'A multi-factor check was required and missing',
  RATE_LIMITED: 'Too many requests or sign-in attempts',
  POLICY_DENIED: 'No policy allows this access (or one forbids it)',
  OBLIGATION_VIOLATION: 'The request broke a condition attached to the access',
  ROW_CAP_EXCEEDED: 'The request tried to page past the row limit',
  BUDGET_EXHAUSTED: 'The privacy budget for this data was used up',
  DLP_BLOCKED: 'The result contained data that may not leave',
  DIFFERENCING_DETECTED: 'Together with earlier queries it would single out individuals',
  REQUEST_INVALID: 'The request was malformed (for example, no purpose declared)',
  AGREEMENT_INACTIVE: 'No active agreement covers this access',
  GRANT_EXPIRED: 'The access grant had expired',
  ACKNOWLEDGEMENT_REQUIRED: 'The current data-use policy was not acknowledged',
  TRAINING_EXPIRED: 'Required training was missing or out of date',
};

const INTERFACE_LABELS: Readonly<Record<string, string>> = { http: 'the web API', pgwire: 'the SQL database connection', cli: 'the command line', web: 'the web console', cleanroom: 'clean rooms' };

/** "http" → "the web API"; unknown channels as they are. */
export function describeInterface(channel: string): string {
  return INTERFACE_LABELS[channel] ?? channel;
}

export function describeCode(code: string | null): string {
  if (code === null || code === '') return 'No reason code recorded';
  const known = CODE_MEANINGS[code];
  if (known !== undefined) return known;
  if (code.startsWith('SQL_')) return 'The query was not valid or not supported';
  return 'Other refusal';
}

// ---------------------------------------------------------------------------------------
// Dates (UTC, locale-independent)

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAY_MS = 86_400_000;

function parts(ms: number): { d: number; m: number; y: number } {
  const t = new Date(ms);
  return { d: t.getUTCDate(), m: t.getUTCMonth(), y: t.getUTCFullYear() };
}

/** "1 and 30 November 2025", "28 October and 3 November 2025", "30 December 2025 and 2 January 2026". */
export function describePeriod(from: string, to: string): string {
  const a = Date.parse(from), b = Date.parse(to);
  if (Number.isNaN(a) || Number.isNaN(b)) return `${from} and ${to}`;
  const s = parts(a), e = parts(Math.max(a, b - 1)); // `to` is exclusive: the last day is the day before
  if (s.y !== e.y) return `${s.d} ${MONTHS[s.m]} ${s.y} and ${e.d} ${MONTHS[e.m]} ${e.y}`;
  if (s.m !== e.m) return `${s.d} ${MONTHS[s.m]} and ${e.d} ${MONTHS[e.m]} ${e.y}`;
  return `${s.d} and ${e.d} ${MONTHS[e.m]} ${e.y}`;
}

/** Whole days from `a` to `b` (negative when b is earlier); dates are compared at day granularity. */
function daysBetween(a: number, b: number): number {
  return Math.round((Math.floor(b / DAY_MS) - Math.floor(a / DAY_MS)));
}

function plural(n: number, one: string, many: string): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** "a", "a and b", "a, b and c". */
function listWords(words: readonly string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------
// Building

const SEVERITY_ORDER: Readonly<Record<string, number>> = { critical: 0, high: 1, medium: 2, moderate: 2, low: 3, info: 4, informational: 4 };

function section(id: string, title: string, caption: string, columns: [string, string, ColumnKind][], rows: ReportRow[], empty: string, max: number): ReportSection {
  return {
    id, title, caption, empty,
    columns: columns.map(([key, label, kind]) => ({ key, label, kind })),
    rows: rows.slice(0, max),
    more: Math.max(0, rows.length - max),
  };
}

function counter<K>(): { map: Map<string, K>; get: (key: unknown[], init: () => K) => K } {
  const map = new Map<string, K>();
  return {
    map,
    get(key, init) {
      const k = JSON.stringify(key);
      let v = map.get(k);
      if (v === undefined) { v = init(); map.set(k, v); }
      return v;
    },
  };
}

export function buildReport(input: ReportInput): Report {
  const { period, generatedAt, orgOf } = input;
  const max = input.maxRowsPerSection ?? 500;
  const nowMs = Date.parse(generatedAt);
  const entries = [...input.entries].filter((e) => inPeriod(e.time, period.from, period.to))
    .sort((a, b) => Date.parse(a.time) - Date.parse(b.time) || compare(a.action, b.action));
  const partner = (p: string | null): string => partnerOf(p, orgOf);
  const footnotes: { id: number; text: string }[] = [];
  const note = (text: string): number => {
    const existing = footnotes.find((f) => f.text === text);
    if (existing !== undefined) return existing.id;
    footnotes.push({ id: footnotes.length + 1, text });
    return footnotes.length;
  };

  // 1. Accesses per partner and dataset.
  const access = counter<{ partner: string; dataset: string; allowed: number; denied: number; failed: number }>();
  let allowedQueries = 0, refused = 0, failed = 0;
  const queryPartners = new Set<string>(), queryDatasets = new Set<string>(), interfaces = new Set<string>();
  for (const e of entries) {
    if (!isAccessAction(e.action)) continue;
    const p = partner(e.principal);
    for (const ds of e.datasets.length > 0 ? [...new Set(e.datasets)] : [UNKNOWN_DATASET]) {
      const c = access.get([p, ds], () => ({ partner: p, dataset: ds, allowed: 0, denied: 0, failed: 0 }));
      if (e.decision === 'allow') c.allowed++; else if (e.decision === 'deny') c.denied++; else c.failed++;
    }
    if (e.action === 'query' && e.decision === 'allow') {
      allowedQueries++;
      queryPartners.add(p);
      for (const ds of e.datasets) queryDatasets.add(ds);
      interfaces.add(e.channel);
    }
  }
  const accessRows = [...access.map.values()].sort((a, b) => compare(a.partner, b.partner) || compare(a.dataset, b.dataset))
    .map((c) => ({ cells: [c.partner, c.dataset, c.allowed, c.denied, c.failed], ...(c.denied > 0 ? { flag: 'warning' as const } : {}) }));

  // 2. Failed sign-ins.
  const logins = counter<{ account: string; org: string; channel: string; n: number; last: string; codes: Set<string> }>();
  let failedLogins = 0;
  for (const e of entries) {
    if (!isFailedLogin(e)) continue;
    failedLogins++;
    const account = e.principal ?? '(unknown account)';
    const org = e.principal === null ? '' : orgOf(e.principal) ?? '';
    const c = logins.get([account, e.channel], () => ({ account, org, channel: e.channel, n: 0, last: e.time, codes: new Set<string>() }));
    c.n++;
    c.last = e.time;
    if (e.errorCode) c.codes.add(e.errorCode);
  }
  const loginRows = [...logins.map.values()].sort((a, b) => b.n - a.n || compare(a.account, b.account) || compare(a.channel, b.channel))
    .map((c) => ({ cells: [c.account, c.org, c.channel, c.n, c.last, [...c.codes].sort().join(', ')], ...(c.n >= 5 ? { flag: 'alert' as const } : {}) }));

  // 3. Volumes leaving (the flow map).
  const flows = buildFlowMap(entries, { from: period.from, to: period.to, orgOf, generatedAt });
  const label = (id: string): string => id.slice(id.indexOf(':') + 1);
  const volumeRows = flows.edges.filter((e) => e.queries > 0)
    .map((e) => ({ cells: [label(e.to), label(e.from), label(e.interface), e.queries, e.rowsReleased] }))
    .sort((a, b) => (b.cells[4] as number) - (a.cells[4] as number) || compare(String(a.cells[0]), String(b.cells[0])) || compare(String(a.cells[1]), String(b.cells[1])) || compare(String(a.cells[2]), String(b.cells[2])));

  // 4. Provisioning and policy changes.
  const changeRows: ReportRow[] = [];
  const versions: string[] = [];
  let previousVersion: string | null = null;
  for (const e of entries) {
    if (e.policyVersion !== null && e.policyVersion !== previousVersion) {
      if (!versions.includes(e.policyVersion)) versions.push(e.policyVersion);
      const n = versions.indexOf(e.policyVersion) + 1;
      const ref = note(`Policy version ${n}: ${e.policyVersion}`);
      if (previousVersion !== null) changeRows.push({ cells: [e.time, '', `Policy version ${n} in force [${ref}]`, 'first request under it'], flag: 'warning' });
      previousVersion = e.policyVersion;
    }
    if (!isChangeAction(e.action)) continue;
    const outcome = e.decision === 'allow' ? 'done' : `${e.decision === 'deny' ? 'refused' : 'failed'}${e.errorCode ? ` (${e.errorCode})` : ''}`;
    changeRows.push({ cells: [e.time, e.principal ?? '', describeAction(e.action), outcome], ...(e.action === 'elevation.break-glass' ? { flag: 'alert' as const } : {}) });
  }
  const policyChanges = changeRows.filter((r) => String(r.cells[2]).startsWith('Policy version')).length;

  // 5. Refused requests by reason code.
  const denials = counter<{ code: string; n: number; partners: Set<string> }>();
  for (const e of entries) {
    if (e.decision !== 'deny') continue;
    refused++;
    const code = e.errorCode ?? '';
    const c = denials.get([code], () => ({ code, n: 0, partners: new Set<string>() }));
    c.n++;
    c.partners.add(partner(e.principal));
  }
  for (const e of entries) if (e.decision === 'error') failed++;
  const denialList = [...denials.map.values()].sort((a, b) => b.n - a.n || compare(a.code, b.code));
  const denialRows = denialList.map((c) => ({ cells: [c.code || '(none)', describeCode(c.code || null), c.n, c.partners.size] }));

  // 6. Privacy budget use.
  const budgetRows = [...(input.budgets ?? [])]
    .sort((a, b) => compare(a.subject, b.subject) || compare(a.dataset, b.dataset))
    .map((b) => {
      const used = b.capEpsilon > 0 ? b.spentEpsilon / b.capEpsilon : null;
      const flag = used === null ? undefined : used >= 1 ? 'alert' as const : used >= 0.8 ? 'warning' as const : undefined;
      return { cells: [b.subject, b.dataset, b.spentEpsilon, b.capEpsilon, used], ...(flag ? { flag } : {}) };
    });

  // 7. Open findings (listed until closed; overdue highlighted).
  const openFindings = (input.findings ?? []).filter((f) => f.status.toLowerCase() !== 'closed');
  let overdue = 0;
  const findingRows = openFindings.map((f) => {
    const due = Date.parse(f.dueDate);
    const late = Number.isNaN(due) ? 0 : Math.max(0, daysBetween(due, nowMs));
    if (late > 0) overdue++;
    return { late, sev: SEVERITY_ORDER[f.severity.toLowerCase()] ?? 5, row: { cells: [f.id, f.title, f.severity, f.owner, f.dueDate, f.status, late > 0 ? late : null], ...(late > 0 ? { flag: 'alert' as const } : {}) } };
  }).sort((a, b) => Number(b.late > 0) - Number(a.late > 0) || a.sev - b.sev || compare(String(a.row.cells[4]), String(b.row.cells[4])) || compare(String(a.row.cells[0]), String(b.row.cells[0])))
    .map((x) => x.row);

  // 8. Agreements ending within 30 days (or past their end while still marked active).
  const endingRows = (input.agreements ?? [])
    .filter((a) => a.endsOn !== null && !/^(?:terminated|expired|ended|closed)$/i.test(a.status))
    .map((a) => ({ a, days: daysBetween(nowMs, Date.parse(a.endsOn!)) }))
    .filter(({ days }) => !Number.isNaN(days) && days <= 30)
    .sort((x, y) => x.days - y.days || compare(x.a.id, y.a.id))
    .map(({ a, days }) => ({ cells: [a.id, a.kind, a.partner, a.status, a.endsOn, days], flag: days < 0 ? 'alert' as const : 'warning' as const }));

  // 9. Grants in force.
  const grantRows = (input.grants ?? [])
    .filter((g) => /^(?:active|approved)$/i.test(g.status))
    .map((g) => ({ g, days: g.until === null ? null : daysBetween(nowMs, Date.parse(g.until)) }))
    .sort((x, y) => (x.days ?? Infinity) - (y.days ?? Infinity) || compare(x.g.id, y.g.id))
    .map(({ g, days }) => ({ cells: [g.id, g.principal ?? g.org ?? '', g.dataset, g.purpose, g.until, g.status], ...(days !== null && days <= 7 ? { flag: days < 0 ? 'alert' as const : 'warning' as const } : {}) }));

  // 10. Vendor tiers.
  const vendorRows = [...(input.vendors ?? [])].sort((a, b) => compare(a.org, b.org)).map((v) => {
    const certs = [...v.expiringCertificates].sort((a, b) => compare(a.validUntil, b.validUntil));
    const expired = certs.filter((c) => Date.parse(c.validUntil) < nowMs);
    const text = certs.map((c) => `${c.name} (${Date.parse(c.validUntil) < nowMs ? 'expired' : 'valid until'} ${c.validUntil.slice(0, 10)})`).join('; ');
    const flag = expired.length > 0 || /high|critical/i.test(v.tier) ? 'alert' as const : certs.length > 0 ? 'warning' as const : undefined;
    return { cells: [v.org, v.tier, text, expired.length], ...(flag ? { flag } : {}) };
  });

  // 11. Destructions.
  const destructionRows = [...(input.destructions ?? [])].sort((a, b) => compare(a.at, b.at)).map((d) => ({
    cells: [d.at, d.subject, typeof d.artefacts === 'number' ? d.artefacts : d.artefacts.length, d.reason],
  }));

  // 12. Incidents under the agreements' SLAs (from their audit entries: report-incidents.ts).
  const incidents = incidentSummary(entries, nowMs);

  const sections: ReportSection[] = [
    section('accesses', 'Access by partner and dataset', 'Every request to read data in the period, by who asked and which dataset: allowed, refused by policy, or failed for a technical reason.',
      [['partner', 'Partner', 'text'], ['dataset', 'Dataset', 'text'], ['allowed', 'Allowed', 'count'], ['refused', 'Refused', 'count'], ['failed', 'Failed', 'count']], accessRows, 'Nobody asked for data in this period.', max),
    section('volumes', 'Data leaving', 'How many rows each partner received from each dataset, and through which interface. A query that combined two datasets counts for both.',
      [['partner', 'Partner', 'text'], ['dataset', 'Dataset', 'text'], ['interface', 'Interface', 'text'], ['queries', 'Queries', 'count'], ['rows', 'Rows released', 'count']], volumeRows, 'No rows left Gatehouse in this period.', max),
    section('denials', 'Refused requests by reason', 'Requests Gatehouse refused, grouped by the reason it gave.',
      [['code', 'Reason code', 'text'], ['meaning', 'What it means', 'text'], ['requests', 'Refused requests', 'count'], ['partners', 'Partners affected', 'count']], denialRows, 'No request was refused.', max),
    section('failed-logins', 'Failed sign-ins', 'Sign-in attempts and requests refused because the credentials were wrong, missing or locked out; five or more from one account are highlighted.',
      [['account', 'Account', 'text'], ['org', 'Organisation', 'text'], ['interface', 'Interface', 'text'], ['attempts', 'Failed attempts', 'count'], ['last', 'Last attempt', 'time'], ['codes', 'Reason codes', 'text']], loginRows, 'There were no failed sign-ins.', max),
    section('changes', 'Provisioning and policy changes', 'Accounts, keys, privileged access, grants and agreements that were changed, and when a new policy version came into force. Emergency access is highlighted.',
      [['time', 'When', 'time'], ['who', 'Who', 'text'], ['change', 'Change', 'text'], ['outcome', 'Outcome', 'text']], changeRows, 'Nothing was provisioned or changed.', max),
    section('budgets', 'Privacy budget use', 'How much of each privacy-loss budget (epsilon) has been spent; at 100% further noisy queries are refused. 80% or more is highlighted.',
      [['subject', 'Who', 'text'], ['dataset', 'Dataset', 'text'], ['spent', 'Spent (ε)', 'number'], ['cap', 'Budget (ε)', 'number'], ['used', 'Used', 'percent']], budgetRows, 'No privacy budget is in use.', max),
    section('findings', 'Open findings', 'Audit and risk findings not yet closed, with who owns the fix and when it is due; overdue ones are highlighted and listed first.',
      [['id', 'Finding', 'text'], ['title', 'Description', 'text'], ['severity', 'Severity', 'text'], ['owner', 'Owner', 'text'], ['due', 'Due', 'date'], ['status', 'Status', 'text'], ['overdue', 'Days overdue', 'count']], findingRows, 'There are no open findings.', max),
    section('agreements', 'Agreements ending soon', 'Agreements that end within 30 days of this report (or have passed their end date but are still marked active); access under them stops when they end.',
      [['id', 'Agreement', 'text'], ['kind', 'Kind', 'text'], ['partner', 'Partner', 'text'], ['status', 'Status', 'text'], ['ends', 'Ends', 'date'], ['days', 'Days left', 'count']], endingRows, 'No agreement ends within the next 30 days.', max),
    section('grants', 'Access grants in force', 'Time-limited grants of access that are active; those ending within 7 days are highlighted.',
      [['id', 'Grant', 'text'], ['to', 'Granted to', 'text'], ['dataset', 'Dataset', 'text'], ['purpose', 'Purpose', 'text'], ['until', 'Until', 'date'], ['status', 'Status', 'text']], grantRows, 'No grants are in force.', max),
    section('vendors', 'Vendor risk', "Each partner organisation's risk tier and security certificates that expire soon or have expired.",
      [['org', 'Organisation', 'text'], ['tier', 'Risk tier', 'text'], ['certificates', 'Certificates expiring', 'text'], ['expired', 'Expired', 'count']], vendorRows, 'No vendors are registered.', max),
    section('destructions', 'Data destroyed', 'Shared data destroyed in the period (by erasing its encryption key), each with a certificate in the audit log.',
      [['at', 'When', 'time'], ['subject', 'Subject', 'text'], ['artefacts', 'Items destroyed', 'count'], ['reason', 'Reason', 'text']], destructionRows, 'Nothing was destroyed in this period.', max),
    section('incidents', 'Incidents and SLA clocks', 'Security incidents opened from confirmed monitoring alerts, with the response and remediation deadlines of the partner\'s SLA agreement; a missed deadline becomes a finding with an owner and is highlighted.',
      INCIDENT_COLUMNS, incidents.rows, 'No incident was opened or worked in this period.', max),
  ];

  // Summary.
  const sentences: string[] = [];
  const between = `Between ${describePeriod(period.from, period.to)}`;
  if (allowedQueries > 0) {
    sentences.push(`${between}, ${plural(queryPartners.size, 'partner', 'partners')} ran ${plural(allowedQueries, 'query', 'queries')} on ${plural(queryDatasets.size, 'dataset', 'datasets')} and received ${plural(flows.totals.rowsReleased, 'row', 'rows')} of data in total, through ${listWords([...interfaces].sort().map(describeInterface))}.`);
  } else {
    sentences.push(`${between}, no partner ran a query.`);
  }
  if (refused > 0) {
    const top = denialList[0]!;
    sentences.push(`${plural(refused, 'request was', 'requests were')} refused${denialList.length > 1 ? `, most often because: ${describeCode(top.code || null).toLowerCase()} (${formatCount(top.n)})` : `: ${describeCode(top.code || null).toLowerCase()}`}.`);
  } else sentences.push('No request was refused.');
  if (failed > 0) sentences.push(`${plural(failed, 'request', 'requests')} failed for technical reasons.`);
  sentences.push(failedLogins > 0 ? `There ${failedLogins === 1 ? 'was' : 'were'} ${plural(failedLogins, 'failed sign-in', 'failed sign-ins')}.` : 'There were no failed sign-ins.');
  if (policyChanges > 0) sentences.push(`The access policy changed ${policyChanges === 1 ? 'once' : `${policyChanges} times`}.`);
  if (openFindings.length > 0) sentences.push(`${plural(openFindings.length, 'finding is', 'findings are')} open${overdue > 0 ? `, ${formatCount(overdue)} of them overdue` : ''}.`);
  const pastEnd = endingRows.filter((r) => r.flag === 'alert').length;
  const endingSoon = endingRows.length - pastEnd;
  if (endingSoon > 0) sentences.push(`${plural(endingSoon, 'agreement ends', 'agreements end')} within the next 30 days.`);
  if (pastEnd > 0) sentences.push(`${plural(pastEnd, 'agreement has', 'agreements have')} passed ${pastEnd === 1 ? 'its' : 'their'} end date but ${pastEnd === 1 ? 'is' : 'are'} still marked active.`);
  const exhausted = budgetRows.filter((r) => r.flag === 'alert').length;
  if (exhausted > 0) sentences.push(`${plural(exhausted, 'privacy budget is', 'privacy budgets are')} used up.`);
  if (incidents.incidents > 0) sentences.push(`${plural(incidents.incidents, 'security incident was', 'security incidents were')} opened or worked${incidents.breaches > 0 ? `; ${plural(incidents.breaches, 'SLA deadline was', 'SLA deadlines were')} missed` : ''}.`);
  if (destructionRows.length > 0) sentences.push(`${plural(destructionRows.length, 'destruction certificate was', 'destruction certificates were')} issued.`);

  const figures = [
    { label: 'Partners who ran queries', value: queryPartners.size },
    { label: 'Queries allowed', value: allowedQueries },
    { label: 'Rows released', value: flows.totals.rowsReleased },
    { label: 'Requests refused', value: refused },
    { label: 'Failed sign-ins', value: failedLogins },
    { label: 'Open findings', value: openFindings.length },
    { label: 'Overdue findings', value: overdue },
    { label: 'Incidents', value: incidents.incidents },
    { label: 'SLA breaches', value: incidents.breaches },
  ];

  const body = { title: `Compliance report — ${input.workspace}`, workspace: input.workspace, period: { from: period.from, to: period.to }, generatedAt, summary: sentences.join(' '), figures, sections, flows };
  const digest = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  note(`Report content digest (SHA-256 over the report data, to check that two copies are the same report): ${digest}`);
  return { ...body, footnotes };
}
