/**
 * Incidents on the one path (src/monitoring/incidents.ts holds the clock). Confirming an
 * alert opens one: the partner's SLA agreement in force (governance: kind "SLA", partner =
 * the principal's organisation) and the workspace's terms for that partner start its
 * deadlines. Responding and remediating are audited acts of auditors or administrators; a
 * missed deadline becomes a governance finding with an owner (listed by the compliance
 * report until closed), itself recorded in the audit log.
 */
import { audited, auditedOpen } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import type { Alert } from '../../monitoring/alerts.ts';
import type { Incident } from '../../monitoring/incidents.ts';
import { GatehouseError } from '../../errors.ts';
import { incidentReason } from '../../governance/report-incidents.ts';
import { inScope, scopeOf } from './activity.ts';
import { MONITOR_META, monitorOf } from './attach.ts';

const FINDING_DAYS = 14;

export async function openIncident(rt: Runtime, alert: Alert, by: string): Promise<Incident> {
  const monitor = monitorOf(rt);
  const now = rt.now();
  const terms = alert.org ? monitor.config.incidents.terms[alert.org] ?? null : null;
  let agreementId: string | null = null;
  if (alert.org) {
    const active = await rt.governance.store.agreements.list({ partner: alert.org, status: 'active' }, now);
    agreementId = active.find((a) => a.kind === 'SLA')?.id ?? null;
  }
  return monitor.incidents.open({ alertId: alert.id, rule: alert.rule, principal: alert.principal, org: alert.org, summary: alert.summary, by, agreementId, sla: terms }, now);
}

/** GET /v1/incidents */
export async function listIncidents(rt: Runtime, meta: RequestMeta): Promise<{ incidents: Incident[] }> {
  return (await audited(rt, meta, 'monitoring.incidents.list', {}, async ({ auth }) => {
    const visible = inScope(scopeOf(rt, auth.principal));
    return { incidents: monitorOf(rt).incidents.list((i) => visible(i.principal)) };
  })).value;
}

/** POST /v1/incidents/:id/{respond,remediate} */
export async function workIncident(rt: Runtime, meta: RequestMeta, id: string, step: 'respond' | 'remediate', note: string | null = null): Promise<Incident> {
  return (await audited(rt, meta, `monitoring.incident.${step}`, {}, async ({ auth, entry }) => {
    if (!scopeOf(rt, auth.principal).all) throw new GatehouseError('POLICY_DENIED', 'working incidents is reserved to auditors and administrators', { hint: 'ask your security team', reasons: ['not a member of group "auditors" or an admin group'] });
    const book = monitorOf(rt).incidents;
    const i = step === 'respond' ? book.respond(id, auth.principal.id, rt.now()) : book.remediate(id, auth.principal.id, note, rt.now());
    entry.reasons = [`incident ${i.id} ${step === 'respond' ? 'responded to' : 'remediated'}`, incidentReason({ kind: step === 'respond' ? 'responded' : 'remediated', incident: i.id })];
    return i;
  })).value;
}

/** Turns each missed SLA deadline into a finding with an owner, audited (run on the monitor's timer). */
export async function checkSlaDeadlines(rt: Runtime, now: Date = rt.now()): Promise<number> {
  const monitor = monitorOf(rt);
  const due = monitor.incidents.due(now);
  for (const d of due) {
    const owner = monitor.config.incidents.owner;
    await auditedOpen(rt, MONITOR_META, 'monitoring.incident.sla-breach', { principal: d.incident.principal }, async (env) => {
      const { finding } = await rt.governance.store.findings.create({
        title: `SLA breach: incident ${d.incident.id} (${d.incident.rule}, ${d.incident.org ?? d.incident.principal}) missed its ${d.milestone} deadline ${d.deadline} under agreement ${d.incident.agreementId}`,
        severity: 'high', owner, dueDate: new Date(now.getTime() + FINDING_DAYS * 86_400_000), notes: `opened automatically by monitoring; alert ${d.incident.alertId}`, by: 'gatehouse-monitor',
      }, now);
      const breach = d.incident.breaches.find((b) => b.milestone === d.milestone);
      if (breach) breach.findingId = finding.id;
      env.keep(`incident ${d.incident.id} missed its ${d.milestone} deadline; finding ${finding.id} opened for ${owner}`);
      env.keep(incidentReason({ kind: 'breach', incident: d.incident.id, milestone: d.milestone, deadline: d.deadline, finding: finding.id, owner }));
    });
  }
  return due.length;
}
