/**
 * Incidents under the partner's service-level agreement (issue 21). An administrator
 * confirms an alert; that opens an incident. When the partner has an SLA agreement in force
 * and the workspace gives its terms (monitoring.incidents.terms), the incident runs against
 * two deadlines counted from the moment it opened — respond by, remediate by — the usual
 * shape of incident-response SLAs (e.g. NIST SP 800-61r2 §3.2.7 on response time objectives).
 *
 * `due(now)` returns each deadline that has just passed without its milestone; the caller
 * turns each into a governance finding with an owner (src/governance/findings.ts), which the
 * compliance report lists until it is closed. A deadline is reported once.
 */
import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../errors.ts';
import type { SlaTerms } from './config.ts';

export type Milestone = 'response' | 'remediation';

export interface Incident {
  readonly id: string;
  readonly alertId: string;
  readonly rule: string;
  readonly principal: string;
  readonly org: string | null;
  readonly summary: string;
  readonly openedAt: string;
  readonly openedBy: string;
  /** The SLA agreement the clock runs under, or null (no clock). */
  readonly agreementId: string | null;
  readonly sla: SlaTerms | null;
  readonly respondBy: string | null;
  readonly remediateBy: string | null;
  responded: { readonly by: string; readonly at: string } | null;
  remediated: { readonly by: string; readonly at: string; readonly note: string | null } | null;
  readonly breaches: { readonly milestone: Milestone; readonly at: string; findingId: string | null }[];
}

export class IncidentBook {
  readonly #incidents = new Map<string, Incident>();
  readonly #listeners = new Set<() => void>();

  onChange(listener: () => void): void { this.#listeners.add(listener); }
  #changed(): void { for (const l of this.#listeners) { try { l(); } catch { /* never breaks the book */ } } }

  restore(incidents: readonly Incident[]): void { for (const i of incidents) this.#incidents.set(i.id, i); }

  open(input: { alertId: string; rule: string; principal: string; org: string | null; summary: string; by: string; agreementId: string | null; sla: SlaTerms | null }, now: Date): Incident {
    for (const i of this.#incidents.values()) {
      if (i.alertId === input.alertId) throw new GatehouseError('CONFLICT', `alert ${input.alertId} already has incident ${i.id}`, { hint: 'work the existing incident' });
    }
    const clock = input.sla !== null && input.agreementId !== null;
    const at = now.getTime();
    const incident: Incident = {
      id: `inc_${randomUUID()}`, alertId: input.alertId, rule: input.rule, principal: input.principal, org: input.org, summary: input.summary,
      openedAt: now.toISOString(), openedBy: input.by, agreementId: clock ? input.agreementId : null, sla: clock ? input.sla : null,
      respondBy: clock ? new Date(at + input.sla!.responseMinutes * 60_000).toISOString() : null,
      remediateBy: clock ? new Date(at + input.sla!.remediationMinutes * 60_000).toISOString() : null,
      responded: null, remediated: null, breaches: [],
    };
    this.#incidents.set(incident.id, incident);
    this.#changed();
    return incident;
  }

  get(id: string): Incident {
    const i = this.#incidents.get(id);
    if (!i) throw new GatehouseError('NOT_FOUND', `no incident ${id.slice(0, 80)}`, { hint: 'list incidents with GET /v1/incidents' });
    return i;
  }

  respond(id: string, by: string, now: Date): Incident {
    const i = this.get(id);
    if (i.responded) throw new GatehouseError('CONFLICT', `incident ${id} was already responded to`, { hint: 'remediate it next' });
    i.responded = { by, at: now.toISOString() };
    this.#changed();
    return i;
  }

  remediate(id: string, by: string, note: string | null, now: Date): Incident {
    const i = this.get(id);
    if (i.remediated) throw new GatehouseError('CONFLICT', `incident ${id} is already remediated`, { hint: 'a new alert opens a new incident' });
    i.responded ??= { by, at: now.toISOString() };
    i.remediated = { by, at: now.toISOString(), note };
    this.#changed();
    return i;
  }

  /** Deadlines passed without their milestone, each returned once (and recorded as a breach). */
  due(now: Date): { incident: Incident; milestone: Milestone; deadline: string }[] {
    const out: { incident: Incident; milestone: Milestone; deadline: string }[] = [];
    const t = now.getTime();
    for (const i of this.#incidents.values()) {
      const check = (milestone: Milestone, deadline: string | null, done: unknown): void => {
        if (deadline === null || done || t < Date.parse(deadline) || i.breaches.some((b) => b.milestone === milestone)) return;
        i.breaches.push({ milestone, at: now.toISOString(), findingId: null });
        out.push({ incident: i, milestone, deadline });
      };
      check('response', i.respondBy, i.responded);
      check('remediation', i.remediateBy, i.remediated);
    }
    if (out.length > 0) this.#changed();
    return out;
  }

  list(filter: (i: Incident) => boolean = () => true): Incident[] {
    return [...this.#incidents.values()].filter(filter).sort((a, b) => (a.openedAt < b.openedAt ? 1 : -1));
  }
}
