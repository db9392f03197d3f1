/**
 * Working alerts on the one path, each act audited: auditors and administrators list every
 * alert (anyone else only alerts about themselves), acknowledge and resolve them; only an
 * administrator lifts an automatic response (the reversal the issue asks for), and lifting
 * is recorded with who lifted what.
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import type { Alert, AlertState } from '../../monitoring/alerts.ts';
import type { Delivery } from '../../monitoring/webhooks.ts';
import { inScope, scopeOf } from './activity.ts';
import { monitorOf } from './attach.ts';
import { openIncident } from './incidents.ts';
import { incidentReason } from '../../governance/report-incidents.ts';

function mustWatchAll(rt: Runtime, p: Parameters<typeof scopeOf>[1], what: string): void {
  if (!scopeOf(rt, p).all) {
    throw new GatehouseError('POLICY_DENIED', `${what} is reserved to auditors and administrators`, { hint: 'ask your security team', reasons: ['not a member of group "auditors" or an admin group'] });
  }
}

/** GET /v1/alerts */
export async function listAlerts(rt: Runtime, meta: RequestMeta, filter: { state?: AlertState } = {}): Promise<{ alerts: Alert[] }> {
  return (await audited(rt, meta, 'monitoring.alerts.list', {}, async ({ auth }) => {
    const visible = inScope(scopeOf(rt, auth.principal));
    return { alerts: monitorOf(rt).alerts.list(filter).filter((a) => visible(a.principal)) };
  })).value;
}

/** POST /v1/alerts/:id/{acknowledge,resolve,confirm} */
export async function changeAlert(rt: Runtime, meta: RequestMeta, id: string, change: 'acknowledge' | 'resolve' | 'confirm', note: string | null = null): Promise<Alert> {
  return (await audited(rt, meta, `monitoring.alert.${change}`, {}, async ({ auth, entry }) => {
    mustWatchAll(rt, auth.principal, 'working alerts');
    const book = monitorOf(rt).alerts;
    const now = rt.now();
    if (change === 'confirm') {
      const a = book.get(id);
      const incident = await openIncident(rt, a, auth.principal.id);
      book.confirm(id, auth.principal.id, now);
      entry.reasons = [
        `alert ${a.id} (${a.rule}, ${a.principal}) confirmed: incident ${incident.id}${incident.agreementId ? ` under SLA agreement ${incident.agreementId}, respond by ${incident.respondBy}, remediate by ${incident.remediateBy}` : ' (no SLA agreement in force)'}`,
        incidentReason({ kind: 'opened', incident: incident.id, alert: a.id, rule: a.rule, principal: a.principal, org: a.org, agreement: incident.agreementId, respondBy: incident.respondBy, remediateBy: incident.remediateBy }),
      ];
      return a;
    }
    const a = change === 'acknowledge' ? book.acknowledge(id, auth.principal.id, now) : book.resolve(id, auth.principal.id, note, now);
    entry.reasons = [`alert ${a.id} (${a.rule}, ${a.principal}) ${a.state}`];
    return a;
  })).value;
}

/** POST /v1/monitoring/holds/:principal/lift — an administrator reverses the automatic responses. */
export async function liftHold(rt: Runtime, meta: RequestMeta, principal: string): Promise<{ principal: string; lifted: string | null; alerts: string[] }> {
  return (await audited(rt, meta, 'monitoring.response.lift', {}, async ({ auth, entry }) => {
    if (!rt.isAdmin(auth.principal)) {
      throw new GatehouseError('POLICY_DENIED', 'lifting an automatic response is reserved to administrators', { hint: 'ask an administrator (identity.adminGroups)', reasons: ['not in an admin group'] });
    }
    const r = monitorOf(rt).lift(principal, auth.principal.id);
    if (!r.lifted && r.alerts.length === 0) throw new GatehouseError('NOT_FOUND', `no automatic response is in force for ${principal.slice(0, 80)}`, { hint: 'gatehouse activity lists the holds in force' });
    entry.reasons = [`lifted ${r.lifted?.kind ?? 'responses'} on ${principal}${r.lifted ? ` (alert ${r.lifted.alertId})` : ''}`];
    return { principal, lifted: r.lifted?.kind ?? null, alerts: r.alerts.map((a) => a.id) };
  })).value;
}

/** GET /v1/alerts/dead-letters — webhook deliveries that exhausted their retries (no secrets, bodies are alerts). */
export async function deadLetters(rt: Runtime, meta: RequestMeta): Promise<{ deadLetters: Pick<Delivery, 'id' | 'url' | 'event' | 'attempts' | 'lastError'>[]; pending: number }> {
  return (await audited(rt, meta, 'monitoring.webhooks.dead-letters', {}, async ({ auth }) => {
    mustWatchAll(rt, auth.principal, 'reading webhook deliveries');
    const w = monitorOf(rt).webhooks;
    return { deadLetters: w.deadLetters.map((d) => ({ id: d.id, url: d.url, event: d.event, attempts: d.attempts, lastError: d.lastError })), pending: w.pending.length };
  })).value;
}
