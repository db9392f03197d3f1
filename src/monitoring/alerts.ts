/**
 * Alerts and their life cycle: open → acknowledged → resolved (and open → resolved). One
 * open alert per rule and principal: a detection that repeats while its alert is open adds
 * an occurrence and its audit ids to that alert instead of paging again.
 *
 * Escalation (PagerDuty-style escalation policy): an alert notifies the rule's contact (or
 * the first contact); if nobody acknowledges it within `escalateAfterMinutes`, the next
 * contact in `monitoring.contacts` is notified, and so on down the list. `tick(now)` drives
 * escalation from the caller's clock, so tests inject time instead of sleeping.
 *
 * Every change is published to listeners (the SSE stream, the webhooks, the metrics).
 */
import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../errors.ts';
import type { Contact, MonitoringConfig, ResponseKind, RuleName, Severity } from './config.ts';
import type { Detection } from './rules.ts';

export type AlertState = 'open' | 'acknowledged' | 'resolved';

export interface AlertResponse {
  readonly kind: ResponseKind;
  readonly at: string;
  state: 'applied' | 'reversed';
  reversedBy: string | null;
  reversedAt: string | null;
}

export interface Alert {
  readonly id: string;
  readonly rule: RuleName;
  readonly severity: Severity;
  readonly principal: string;
  readonly org: string | null;
  readonly dataset: string | null;
  summary: string;
  reasons: readonly string[];
  auditIds: string[];
  occurrences: number;
  state: AlertState;
  readonly openedAt: string;
  updatedAt: string;
  acknowledged: { readonly by: string; readonly at: string } | null;
  resolved: { readonly by: string; readonly at: string; readonly note: string | null } | null;
  /** Contacts notified, in order (the escalation trail). */
  readonly notified: { readonly contact: string; readonly at: string }[];
  readonly responses: AlertResponse[];
  /** Confirmed by an administrator as a real incident (issue 21: an incident opens). */
  confirmed: { readonly by: string; readonly at: string } | null;
}

export type AlertChange =
  | { readonly type: 'alert.opened' | 'alert.repeated' | 'alert.acknowledged' | 'alert.resolved' | 'alert.confirmed' | 'alert.response'; readonly alert: Alert }
  | { readonly type: 'alert.notify'; readonly alert: Alert; readonly contact: Contact; readonly escalation: boolean };

const MAX_AUDIT_IDS = 50;
const MAX_CLOSED = 1000;

export class AlertBook {
  readonly #alerts = new Map<string, Alert>();
  readonly #openByKey = new Map<string, string>();
  readonly #listeners = new Set<(c: AlertChange) => void>();
  #config: MonitoringConfig;

  constructor(config: MonitoringConfig) { this.#config = config; }

  reconfigure(config: MonitoringConfig): void { this.#config = config; }

  on(listener: (c: AlertChange) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  #emit(c: AlertChange): void {
    for (const l of this.#listeners) { try { l(c); } catch { /* a listener never breaks alerting */ } }
  }

  /** Opens an alert for a detection, or adds it to the open alert of the same rule and principal. */
  raise(d: Detection, org: string | null, now: Date): Alert {
    const key = `${d.rule}\u0000${d.principal}`;
    const at = now.toISOString();
    const openId = this.#openByKey.get(key);
    const existing = openId ? this.#alerts.get(openId) : undefined;
    if (existing && existing.state !== 'resolved') {
      existing.occurrences++;
      existing.summary = d.summary;
      existing.reasons = d.reasons;
      for (const id of d.auditIds) if (!existing.auditIds.includes(id)) existing.auditIds.push(id);
      if (existing.auditIds.length > MAX_AUDIT_IDS) existing.auditIds.splice(0, existing.auditIds.length - MAX_AUDIT_IDS);
      existing.updatedAt = at;
      this.#emit({ type: 'alert.repeated', alert: existing });
      return existing;
    }
    const rule = this.#config.rules[d.rule];
    const alert: Alert = {
      id: `alrt_${randomUUID()}`, rule: d.rule, severity: rule.severity, principal: d.principal, org, dataset: d.dataset,
      summary: d.summary, reasons: d.reasons, auditIds: [...d.auditIds].slice(-MAX_AUDIT_IDS), occurrences: 1, state: 'open',
      openedAt: at, updatedAt: at, acknowledged: null, resolved: null, notified: [], responses: [], confirmed: null,
    };
    this.#alerts.set(alert.id, alert);
    this.#openByKey.set(key, alert.id);
    this.#forget();
    this.#emit({ type: 'alert.opened', alert });
    const first = this.#firstContact(d.rule);
    if (first !== null) this.#notify(alert, first, now, false);
    return alert;
  }

  #firstContact(rule: RuleName): number | null {
    const contacts = this.#config.contacts;
    if (contacts.length === 0) return null;
    const named = this.#config.rules[rule].contact;
    const i = named === null ? 0 : contacts.findIndex((c) => c.name === named);
    return i < 0 ? 0 : i;
  }

  #notify(alert: Alert, index: number, now: Date, escalation: boolean): void {
    const contact = this.#config.contacts[index]!;
    alert.notified.push({ contact: contact.name, at: now.toISOString() });
    this.#emit({ type: 'alert.notify', alert, contact, escalation });
  }

  /** Escalates every open, unacknowledged alert whose last notification is older than escalateAfterMinutes. */
  tick(now: Date): number {
    const after = this.#config.escalateAfterMinutes * 60_000;
    let escalated = 0;
    for (const a of this.#alerts.values()) {
      if (a.state !== 'open' || a.notified.length === 0) continue;
      const last = a.notified[a.notified.length - 1]!;
      if (now.getTime() - Date.parse(last.at) < after) continue;
      const i = this.#config.contacts.findIndex((c) => c.name === last.contact);
      if (i < 0 || i + 1 >= this.#config.contacts.length) continue;
      this.#notify(a, i + 1, now, true);
      escalated++;
    }
    return escalated;
  }

  get(id: string): Alert {
    const a = this.#alerts.get(id);
    if (!a) throw new GatehouseError('NOT_FOUND', `no alert ${id.slice(0, 80)}`, { hint: 'list alerts with GET /v1/alerts or gatehouse activity --json' });
    return a;
  }

  acknowledge(id: string, by: string, now: Date): Alert {
    const a = this.get(id);
    if (a.state !== 'open') throw new GatehouseError('CONFLICT', `alert ${id} is ${a.state}, not open`, { hint: 'only an open alert can be acknowledged' });
    a.state = 'acknowledged';
    a.acknowledged = { by, at: now.toISOString() };
    a.updatedAt = a.acknowledged.at;
    this.#emit({ type: 'alert.acknowledged', alert: a });
    return a;
  }

  resolve(id: string, by: string, note: string | null, now: Date): Alert {
    const a = this.get(id);
    if (a.state === 'resolved') throw new GatehouseError('CONFLICT', `alert ${id} is already resolved`, { hint: 'a new detection opens a new alert' });
    a.state = 'resolved';
    a.resolved = { by, at: now.toISOString(), note };
    a.updatedAt = a.resolved.at;
    this.#openByKey.delete(`${a.rule}\u0000${a.principal}`);
    this.#emit({ type: 'alert.resolved', alert: a });
    return a;
  }

  confirm(id: string, by: string, now: Date): Alert {
    const a = this.get(id);
    if (a.confirmed) throw new GatehouseError('CONFLICT', `alert ${id} is already confirmed`, { hint: 'its incident is already open' });
    a.confirmed = { by, at: now.toISOString() };
    a.updatedAt = a.confirmed.at;
    this.#emit({ type: 'alert.confirmed', alert: a });
    return a;
  }

  recordResponse(a: Alert, kind: ResponseKind, now: Date): AlertResponse {
    const r: AlertResponse = { kind, at: now.toISOString(), state: 'applied', reversedBy: null, reversedAt: null };
    a.responses.push(r);
    a.updatedAt = r.at;
    this.#emit({ type: 'alert.response', alert: a });
    return r;
  }

  reverseResponses(principal: string, by: string, now: Date): Alert[] {
    const changed: Alert[] = [];
    for (const a of this.#alerts.values()) {
      if (a.principal !== principal) continue;
      let any = false;
      for (const r of a.responses) if (r.state === 'applied') { r.state = 'reversed'; r.reversedBy = by; r.reversedAt = now.toISOString(); any = true; }
      if (any) { a.updatedAt = now.toISOString(); changed.push(a); this.#emit({ type: 'alert.response', alert: a }); }
    }
    return changed;
  }

  /** Alerts from a snapshot (start-up): open ones take their place again for de-duplication and escalation. */
  restore(alerts: readonly Alert[]): void {
    for (const a of alerts) {
      this.#alerts.set(a.id, a);
      if (a.state !== 'resolved') this.#openByKey.set(`${a.rule}\u0000${a.principal}`, a.id);
    }
  }

  list(filter: { state?: AlertState; principal?: string } = {}): Alert[] {
    return [...this.#alerts.values()]
      .filter((a) => (filter.state === undefined || a.state === filter.state) && (filter.principal === undefined || a.principal === filter.principal))
      .sort((a, b) => (a.openedAt < b.openedAt ? 1 : -1));
  }

  counts(): Record<AlertState, number> {
    const c: Record<AlertState, number> = { open: 0, acknowledged: 0, resolved: 0 };
    for (const a of this.#alerts.values()) c[a.state]++;
    return c;
  }

  /** Keeps memory bounded: the oldest resolved alerts are forgotten first (they are in the audit log). */
  #forget(): void {
    if (this.#alerts.size <= MAX_CLOSED) return;
    for (const [id, a] of this.#alerts) {
      if (this.#alerts.size <= MAX_CLOSED) break;
      if (a.state === 'resolved') this.#alerts.delete(id);
    }
  }
}
