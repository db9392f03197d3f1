/**
 * Incidents and their SLA clocks in the compliance report (issue 21: "the compliance report
 * lists incidents and SLA breaches").
 *
 * The report is built from the audit log of the period, so incidents are too: each step of an
 * incident's life (opened from a confirmed alert, responded to, remediated, a deadline missed)
 * is an audit entry whose reasons carry one structured line, `incident-event {json}`, written
 * by src/operations/monitoring/ with `incidentReason`. Reading them back here needs no second
 * source of truth and no access to the running monitor: a report rebuilt later from the same
 * log lists the same incidents, and an auditor can check each row against its entry.
 *
 * The JSON holds identifiers and times only (incident, alert rule, principal, organisation,
 * agreement, deadlines, finding): no data value (invariant 9).
 */
import type { ReportAuditEntry, ReportRow } from './report.ts';

export const INCIDENT_REASON = 'incident-event ';

export type IncidentEvent =
  | { readonly kind: 'opened'; readonly incident: string; readonly alert: string; readonly rule: string; readonly principal: string; readonly org: string | null; readonly agreement: string | null; readonly respondBy: string | null; readonly remediateBy: string | null }
  | { readonly kind: 'responded' | 'remediated'; readonly incident: string }
  | { readonly kind: 'breach'; readonly incident: string; readonly milestone: 'response' | 'remediation'; readonly deadline: string; readonly finding: string; readonly owner: string };

/** The structured reason line an incident's audit entry carries. */
export function incidentReason(e: IncidentEvent): string {
  return `${INCIDENT_REASON}${JSON.stringify(e)}`;
}

function parse(reason: string): IncidentEvent | null {
  if (!reason.startsWith(INCIDENT_REASON)) return null;
  try {
    const e = JSON.parse(reason.slice(INCIDENT_REASON.length)) as IncidentEvent;
    return typeof e === 'object' && e !== null && typeof e.incident === 'string' && typeof e.kind === 'string' ? e : null;
  } catch { return null; }
}

interface Row {
  incident: string; rule: string; who: string; opened: string | null; agreement: string | null;
  respondBy: string | null; responded: string | null; remediateBy: string | null; remediated: string | null;
  breaches: { milestone: string; finding: string; owner: string }[];
}

export interface IncidentSummary { readonly rows: ReportRow[]; readonly incidents: number; readonly breaches: number; readonly open: number }

/**
 * One row per incident with any step in the period (entries in time order). A deadline that
 * has passed without its milestone by `nowMs` is shown as overdue even before the monitor's
 * timer has filed its finding. Rows with a breach are flagged `alert`, late ones `warning`.
 */
export function incidentSummary(entries: readonly ReportAuditEntry[], nowMs: number): IncidentSummary {
  const byId = new Map<string, Row>();
  const row = (id: string): Row => {
    let r = byId.get(id);
    if (!r) { r = { incident: id, rule: '', who: '', opened: null, agreement: null, respondBy: null, responded: null, remediateBy: null, remediated: null, breaches: [] }; byId.set(id, r); }
    return r;
  };
  for (const entry of entries) {
    if (entry.decision !== 'allow' || !entry.action.startsWith('monitoring.')) continue;
    for (const reason of entry.reasons) {
      const e = parse(reason);
      if (!e) continue;
      const r = row(e.incident);
      if (e.kind === 'opened') {
        Object.assign(r, { rule: e.rule, who: e.org ?? e.principal, opened: entry.time, agreement: e.agreement, respondBy: e.respondBy, remediateBy: e.remediateBy });
      } else if (e.kind === 'responded') r.responded = entry.time;
      else if (e.kind === 'remediated') r.remediated = entry.time;
      else if (e.kind === 'breach' && !r.breaches.some((b) => b.milestone === e.milestone)) r.breaches.push({ milestone: e.milestone, finding: e.finding, owner: e.owner });
    }
  }
  let breaches = 0, open = 0;
  const late = (by: string | null, done: string | null): boolean => by !== null && (done === null ? nowMs > Date.parse(by) : Date.parse(done) > Date.parse(by));
  const rows = [...byId.values()].sort((a, b) => (a.opened ?? '').localeCompare(b.opened ?? '') || a.incident.localeCompare(b.incident)).map((r): ReportRow => {
    breaches += r.breaches.length;
    if (r.remediated === null) open++;
    const overdue = late(r.respondBy, r.responded) || late(r.remediateBy, r.remediated);
    const status = r.remediated !== null ? 'remediated' : r.responded !== null ? 'responded, not remediated' : 'open';
    const breachText = r.breaches.map((b) => `${b.milestone} deadline missed: finding ${b.finding} (${b.owner})`).join('; ');
    const flag = r.breaches.length > 0 ? { flag: 'alert' as const } : overdue ? { flag: 'warning' as const } : {};
    return {
      cells: [r.incident, r.rule || null, r.who || null, r.opened, r.agreement ?? (r.opened ? 'no SLA in force' : null), r.respondBy, r.responded, r.remediateBy, r.remediated, status, breachText || (overdue ? 'overdue' : null)],
      ...flag,
    };
  });
  return { rows, incidents: rows.length, breaches, open };
}

/** The section's columns, in the shape report.ts's `section` takes. */
export const INCIDENT_COLUMNS: [string, string, 'text' | 'time'][] = [
  ['incident', 'Incident', 'text'], ['rule', 'Detected by', 'text'], ['partner', 'Partner', 'text'], ['opened', 'Opened', 'time'],
  ['agreement', 'SLA agreement', 'text'], ['respondBy', 'Respond by', 'time'], ['responded', 'Responded', 'time'],
  ['remediateBy', 'Remediate by', 'time'], ['remediated', 'Remediated', 'time'], ['status', 'Status', 'text'], ['breaches', 'SLA breaches', 'text'],
];
