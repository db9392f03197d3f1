/**
 * Partner organisations and vendor risk.
 *
 * An organisation is registered by the `org` attribute its principals carry; a registered
 * organisation is a *partner* and every request of its principals goes through the gate
 * (gate.ts). Its security posture — certifications with expiry, audit reports, incidents —
 * yields a risk tier 1 (low) … 4 (critical), computed at a given time:
 *
 *   start at 1
 *   +1  a certification has expired (its latest validity for that name ended)
 *   +1  no certification is currently valid at all
 *   +1  the latest audit report failed
 *   +1  an incident of severity high is open
 *   = 4 an incident of severity critical is open
 *   capped at 4
 *
 * So an expired ISO 27001 certificate moves a tier-1 vendor to tier 3, and the gate's
 * per-classification maximum (regulated ≤ 2 by default) narrows its access at once.
 */
import {
  AUDIT_OUTCOMES, SEVERITIES, event, iso, newId, parseInstant, parseName, parseOneOf, parseText, requireObject,
  GovernanceError, type AuditOutcome, type Core, type GovernanceEvent, type RiskTier, type Row, type Severity,
} from './types.ts';

export interface Organisation {
  readonly name: string;
  readonly displayName: string;
  readonly registeredAt: string;
  readonly registeredBy: string;
}

export interface Certification {
  readonly id: string;
  readonly org: string;
  readonly name: string;
  readonly issuer: string;
  readonly validUntil: string;
}

export interface AuditReport {
  readonly id: string;
  readonly org: string;
  readonly title: string;
  readonly date: string;
  readonly outcome: AuditOutcome;
}

export interface Incident {
  readonly id: string;
  readonly org: string;
  readonly date: string;
  readonly severity: Severity;
  readonly summary: string;
  readonly resolvedAt: string | null;
}

export interface RiskAssessment {
  readonly org: string;
  readonly at: string;
  readonly tier: RiskTier;
  /** Why the tier is above 1, one sentence per factor (empty for tier 1). */
  readonly factors: readonly string[];
}

const toOrg = (r: Row): Organisation => ({ name: r.name as string, displayName: r.display_name as string, registeredAt: r.registered_at as string, registeredBy: r.registered_by as string });
const toCert = (r: Row): Certification => ({ id: r.id as string, org: r.org as string, name: r.name as string, issuer: r.issuer as string, validUntil: r.valid_until as string });
const toReport = (r: Row): AuditReport => ({ id: r.id as string, org: r.org as string, title: r.title as string, date: r.date as string, outcome: r.outcome as AuditOutcome });
const toIncident = (r: Row): Incident => ({
  id: r.id as string, org: r.org as string, date: r.date as string, severity: r.severity as Severity, summary: r.summary as string, resolvedAt: r.resolved_at as string | null,
});

export class Vendors {
  readonly #core: Core;
  constructor(core: Core) {
    this.#core = core;
  }

  /** Registers a partner organisation; its principals are gated from now on. */
  async register(input: { name: string; displayName?: string; by: string }, at: Date = this.#core.now()): Promise<{ org: Organisation; event: GovernanceEvent }> {
    const o = requireObject(input, 'organisation');
    const name = parseName(o.name, 'organisation name');
    const displayName = o.displayName === undefined ? name : parseText(o.displayName, 'displayName', 200);
    const by = parseName(o.by, 'by');
    return this.#core.tx(async () => {
      if (await this.get(name)) throw new GovernanceError('GOV_DUPLICATE', `organisation "${name}" is already registered`, `see it with: gatehouse vendor show ${name}`);
      await this.#core.stmt('INSERT INTO gov_orgs (name, display_name, registered_at, registered_by) VALUES (?, ?, ?, ?)').run(name, displayName, iso(at), by);
      return { org: (await this.get(name))!, event: event({ action: 'vendor.register', actor: by, time: iso(at), subject: `org:${name}`, outcome: 'created', refs: { org: name }, detail: `${by} registered partner organisation ${name}` }) };
    });
  }

  async get(name: string): Promise<Organisation | null> {
    const r = await this.#core.stmt('SELECT * FROM gov_orgs WHERE name = ?').get(String(name)) as Row | undefined;
    return r ? toOrg(r) : null;
  }

  /** Whether principals of this org are partners (gated). Hot path: one indexed lookup. */
  async isPartner(org: string): Promise<boolean> {
    return await this.#core.stmt('SELECT 1 AS x FROM gov_orgs WHERE name = ?').get(org) !== undefined;
  }

  async list(): Promise<Organisation[]> {
    return (await this.#core.stmt('SELECT * FROM gov_orgs ORDER BY name').all() as Row[]).map(toOrg);
  }

  async #requireOrg(org: unknown): Promise<string> {
    const name = parseName(org, 'org');
    if (!await this.isPartner(name)) throw new GovernanceError('GOV_UNKNOWN_ORG', `organisation "${name}" is not registered`, `register it first: gatehouse vendor register ${name}`);
    return name;
  }

  async addCertification(input: { org: string; name: string; issuer: string; validUntil: string | Date; by: string }, at: Date = this.#core.now()): Promise<{ certification: Certification; event: GovernanceEvent }> {
    const o = requireObject(input, 'certification');
    const org = await this.#requireOrg(o.org);
    const name = parseText(o.name, 'certification name', 200);
    const issuer = parseText(o.issuer, 'issuer', 200);
    const validUntil = parseInstant(o.validUntil, 'validUntil');
    const by = parseName(o.by, 'by');
    const id = newId('crt');
    await this.#core.stmt('INSERT INTO gov_certifications (id, org, name, issuer, valid_until, recorded_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, org, name, issuer, iso(validUntil), iso(at));
    const certification = toCert(await this.#core.stmt('SELECT * FROM gov_certifications WHERE id = ?').get(id) as Row);
    return { certification, event: event({ action: 'vendor.certification', actor: by, time: iso(at), subject: `org:${org}`, outcome: 'created', refs: { org, certificationId: id }, detail: `${by} recorded certification "${name}" for ${org}, valid until ${certification.validUntil}` }) };
  }

  async addAuditReport(input: { org: string; title: string; date: string | Date; outcome: AuditOutcome; by: string }, at: Date = this.#core.now()): Promise<{ report: AuditReport; event: GovernanceEvent }> {
    const o = requireObject(input, 'audit report');
    const org = await this.#requireOrg(o.org);
    const title = parseText(o.title, 'title', 200);
    const date = parseInstant(o.date, 'date');
    if (date.getTime() > at.getTime()) throw new GovernanceError('GOV_INVALID', 'an audit report cannot be dated in the future', 'use the date the report was issued');
    const outcome = parseOneOf(o.outcome, AUDIT_OUTCOMES, 'outcome');
    const by = parseName(o.by, 'by');
    const id = newId('aud');
    await this.#core.stmt('INSERT INTO gov_audit_reports (id, org, title, date, outcome, recorded_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, org, title, iso(date), outcome, iso(at));
    return {
      report: toReport(await this.#core.stmt('SELECT * FROM gov_audit_reports WHERE id = ?').get(id) as Row),
      event: event({ action: 'vendor.audit-report', actor: by, time: iso(at), subject: `org:${org}`, outcome: 'created', refs: { org, reportId: id }, detail: `${by} recorded an audit report for ${org}: ${outcome}` }),
    };
  }

  async addIncident(input: { org: string; date: string | Date; severity: Severity; summary: string; resolvedAt?: string | Date | null; by: string }, at: Date = this.#core.now()): Promise<{ incident: Incident; event: GovernanceEvent }> {
    const o = requireObject(input, 'incident');
    const org = await this.#requireOrg(o.org);
    const date = parseInstant(o.date, 'date');
    if (date.getTime() > at.getTime()) throw new GovernanceError('GOV_INVALID', 'an incident cannot be dated in the future', 'use the date the incident happened');
    const severity = parseOneOf(o.severity, SEVERITIES, 'severity');
    const summary = parseText(o.summary, 'summary', 1000);
    const resolvedAt = o.resolvedAt === undefined || o.resolvedAt === null ? null : parseInstant(o.resolvedAt, 'resolvedAt');
    if (resolvedAt && resolvedAt.getTime() < date.getTime()) throw new GovernanceError('GOV_INVALID', 'resolvedAt is before the incident date', 'an incident is resolved after it happens');
    const by = parseName(o.by, 'by');
    const id = newId('inc');
    await this.#core.stmt('INSERT INTO gov_incidents (id, org, date, severity, summary, resolved_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, org, iso(date), severity, summary, resolvedAt ? iso(resolvedAt) : null);
    return {
      incident: toIncident(await this.#core.stmt('SELECT * FROM gov_incidents WHERE id = ?').get(id) as Row),
      event: event({ action: 'vendor.incident', actor: by, time: iso(at), subject: `org:${org}`, outcome: 'created', refs: { org, incidentId: id }, detail: `${by} recorded a ${severity} incident for ${org}${resolvedAt ? ' (resolved)' : ' (open)'}` }),
    };
  }

  async resolveIncident(id: string, by: string, at: Date = this.#core.now()): Promise<{ incident: Incident; event: GovernanceEvent }> {
    const actor = parseName(by, 'by');
    return this.#core.tx(async () => {
      const r = await this.#core.stmt('SELECT * FROM gov_incidents WHERE id = ?').get(String(id)) as Row | undefined;
      if (!r) throw new GovernanceError('GOV_NOT_FOUND', `no incident "${String(id).slice(0, 64)}"`, 'list incidents with: gatehouse vendor show <org>');
      if (r.resolved_at !== null) throw new GovernanceError('GOV_BAD_TRANSITION', 'this incident is already resolved', 'nothing to do');
      if (iso(at) < (r.date as string)) throw new GovernanceError('GOV_INVALID', 'an incident cannot be resolved before it happened', 'check the time');
      await this.#core.stmt('UPDATE gov_incidents SET resolved_at = ? WHERE id = ?').run(iso(at), id);
      const incident = toIncident(await this.#core.stmt('SELECT * FROM gov_incidents WHERE id = ?').get(id) as Row);
      return { incident, event: event({ action: 'vendor.incident-resolve', actor, time: iso(at), subject: `org:${incident.org}`, outcome: 'updated', refs: { org: incident.org, incidentId: id }, detail: `${actor} resolved a ${incident.severity} incident of ${incident.org}` }) };
    });
  }

  async certifications(org: string): Promise<Certification[]> {
    return (await this.#core.stmt('SELECT * FROM gov_certifications WHERE org = ? ORDER BY name, valid_until').all(org) as Row[]).map(toCert);
  }

  async auditReports(org: string): Promise<AuditReport[]> {
    return (await this.#core.stmt('SELECT * FROM gov_audit_reports WHERE org = ? ORDER BY date').all(org) as Row[]).map(toReport);
  }

  async incidents(org: string): Promise<Incident[]> {
    return (await this.#core.stmt('SELECT * FROM gov_incidents WHERE org = ? ORDER BY date').all(org) as Row[]).map(toIncident);
  }

  /**
   * The risk tier at `at` (documented at the top of this file). Three aggregate queries, so
   * the gate can afford it on every request.
   */
  async risk(org: string, at: Date = this.#core.now()): Promise<RiskAssessment> {
    const t = iso(at);
    const factors: string[] = [];
    let tier = 1;
    // Per certification name, its latest validity: expired names and whether any is current.
    // The three reads are independent: issued together (on PostgreSQL, on separate connections).
    const [certs, last, open] = await Promise.all([
      this.#core.stmt('SELECT name, MAX(valid_until) AS until FROM gov_certifications WHERE org = ? GROUP BY name ORDER BY name').all(org),
      this.#core.stmt('SELECT outcome FROM gov_audit_reports WHERE org = ? AND date <= ? ORDER BY date DESC, recorded_at DESC LIMIT 1').get(org, t),
      this.#core.stmt(`SELECT severity, COUNT(*) AS n FROM gov_incidents WHERE org = ? AND date <= ? AND (resolved_at IS NULL OR resolved_at > ?)
      AND severity IN ('high', 'critical') GROUP BY severity`).all(org, t, t),
    ]);
    const expired = certs.filter((c) => (c.until as string) <= t).map((c) => c.name as string);
    if (expired.length > 0) {
      tier += 1;
      factors.push(`certification expired: ${expired.join(', ')}`);
    }
    if (expired.length === certs.length) {
      tier += 1;
      factors.push('no currently valid security certification');
    }
    if (last?.outcome === 'fail') {
      tier += 1;
      factors.push('the latest audit report failed');
    }
    const openOf = (s: string): number => Number(open.find((r) => r.severity === s)?.n ?? 0);
    if (openOf('high') > 0) {
      tier += 1;
      factors.push(`${openOf('high')} open high-severity incident(s)`);
    }
    if (openOf('critical') > 0) {
      tier = 4;
      factors.push(`${openOf('critical')} open critical incident(s)`);
    }
    return { org, at: t, tier: Math.min(4, tier) as RiskTier, factors };
  }
}
