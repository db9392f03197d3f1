/**
 * Retention rules and legal holds.
 *
 * A rule keeps things of one kind (dataset | grant | result | export) for N days, for one
 * dataset (`scope` = dataset name) or for all (`scope` = "*"); the dataset-specific rule wins.
 * Results derived under an agreement with a `resultRetentionDays` clause are kept no longer
 * than the clause says (the shorter of rule and clause).
 *
 * A legal hold suspends destruction of everything it names — a dataset (and everything
 * labelled with it), an agreement, a principal, or one artefact — until it is released.
 * `plan(now, candidates)` sorts candidates into destroy / held / keep; `authorizeDestruction`
 * refuses anything under hold with the hold named. The store destroys nothing itself: the
 * caller crypto-shreds what is authorised and writes the certificate.
 */
import {
  DAY_MS, HOLD_SUBJECT_KINDS, RETENTION_KINDS, event, invalid, iso, newId, parseInstant, parseList, parseName, parseOneOf, parseText, parseWhole,
  requireObject, GovernanceError, type Core, type GovernanceEvent, type HoldSubjectKind, type RetentionKind, type Row,
} from './types.ts';

export interface RetentionRule {
  readonly kind: RetentionKind;
  /** A dataset name, or "*" for every dataset. */
  readonly scope: string;
  readonly days: number;
  readonly setAt: string;
  readonly setBy: string;
}

export interface LegalHold {
  readonly id: string;
  readonly subject: { readonly kind: HoldSubjectKind; readonly id: string };
  readonly reason: string;
  readonly placedBy: string;
  readonly placedAt: string;
  readonly released: { readonly at: string; readonly by: string } | null;
}

/** Something that may be destroyed: an artefact id (or dataset name, grant id), its kind, when it was made, what it derives from. */
export interface RetentionCandidate {
  readonly subject: string;
  readonly kind: RetentionKind;
  readonly createdAt: string | Date;
  readonly labels: { readonly dataset?: string; readonly agreement?: string; readonly principal?: string; readonly org?: string };
}

export interface RetentionPlan {
  /** Past retention and not held: destroy (crypto-shred) and certify. */
  readonly destroy: readonly { readonly subject: string; readonly kind: RetentionKind; readonly dueAt: string; readonly because: string }[];
  /** Past retention (or explicitly asked) but under a legal hold: keep, and name the hold. */
  readonly held: readonly { readonly subject: string; readonly kind: RetentionKind; readonly dueAt: string; readonly holds: readonly LegalHold[] }[];
  /** Not yet due, or no rule applies (dueAt null). */
  readonly keep: readonly { readonly subject: string; readonly kind: RetentionKind; readonly dueAt: string | null }[];
}

const toRule = (r: Row): RetentionRule => ({ kind: r.kind as RetentionKind, scope: r.scope as string, days: r.days as number, setAt: r.set_at as string, setBy: r.set_by as string });
const toHold = (r: Row): LegalHold => ({
  id: r.id as string, subject: { kind: r.subject_kind as HoldSubjectKind, id: r.subject as string }, reason: r.reason as string,
  placedBy: r.placed_by as string, placedAt: r.placed_at as string, released: r.released_at === null ? null : { at: r.released_at as string, by: r.released_by as string },
});

export class Retention {
  readonly #core: Core;
  constructor(core: Core) {
    this.#core = core;
  }

  /** Sets (or replaces) the rule for (kind, scope). */
  async setRule(input: { kind: RetentionKind; scope: string; days: number; by: string }, at: Date = this.#core.now()): Promise<{ rule: RetentionRule; event: GovernanceEvent }> {
    const o = requireObject(input, 'retention rule');
    const kind = parseOneOf(o.kind, RETENTION_KINDS, 'kind');
    const scope = o.scope === '*' ? '*' : parseName(o.scope, 'scope');
    const days = parseWhole(o.days, 'days', 0, 36_600);
    const by = parseName(o.by, 'by');
    await this.#core.stmt(`INSERT INTO gov_retention_rules (kind, scope, days, set_at, set_by) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (kind, scope) DO UPDATE SET days = excluded.days, set_at = excluded.set_at, set_by = excluded.set_by`).run(kind, scope, days, iso(at), by);
    const rule = toRule(await this.#core.stmt('SELECT * FROM gov_retention_rules WHERE kind = ? AND scope = ?').get(kind, scope) as Row);
    return { rule, event: event({ action: 'retention.rule', actor: by, time: iso(at), subject: `${kind}:${scope}`, outcome: 'updated', refs: {}, detail: `${by} set retention of ${kind} (${scope === '*' ? 'all datasets' : scope}) to ${days} day(s)` }) };
  }

  async rules(): Promise<RetentionRule[]> {
    return (await this.#core.stmt('SELECT * FROM gov_retention_rules ORDER BY kind, scope').all() as Row[]).map(toRule);
  }

  async placeHold(input: { subject: { kind: HoldSubjectKind; id: string }; reason: string; placedBy: string }, at: Date = this.#core.now()): Promise<{ hold: LegalHold; event: GovernanceEvent }> {
    const o = requireObject(input, 'legal hold');
    const s = requireObject(o.subject, 'subject');
    const kind = parseOneOf(s.kind, HOLD_SUBJECT_KINDS, 'subject.kind');
    const subject = parseName(s.id, 'subject.id');
    const reason = parseText(o.reason, 'reason', 1000);
    const by = parseName(o.placedBy, 'placedBy');
    const id = newId('hld');
    await this.#core.stmt('INSERT INTO gov_legal_holds (id, subject_kind, subject, reason, placed_by, placed_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, kind, subject, reason, by, iso(at));
    return { hold: (await this.hold(id))!, event: event({ action: 'retention.hold', actor: by, time: iso(at), subject: `${kind}:${subject}`, outcome: 'placed', refs: { holdId: id }, detail: `${by} placed legal hold ${id} on ${kind} ${subject}` }) };
  }

  async releaseHold(id: string, by: string, at: Date = this.#core.now()): Promise<{ hold: LegalHold; event: GovernanceEvent }> {
    const actor = parseName(by, 'by');
    return this.#core.tx(async () => {
      const h = await this.hold(id);
      if (!h) throw new GovernanceError('GOV_NOT_FOUND', `no legal hold "${String(id).slice(0, 64)}"`, 'list holds with: gatehouse retention holds');
      const changed = await this.#core.stmt('UPDATE gov_legal_holds SET released_at = ?, released_by = ? WHERE id = ? AND released_at IS NULL').run(iso(at), actor, h.id);
      if (changed.changes !== 1) throw new GovernanceError('GOV_HOLD_ALREADY_RELEASED', `legal hold ${h.id} was already released`, 'nothing to do');
      return { hold: (await this.hold(h.id))!, event: event({ action: 'retention.release', actor, time: iso(at), subject: `${h.subject.kind}:${h.subject.id}`, outcome: 'released', refs: { holdId: h.id }, detail: `${actor} released legal hold ${h.id} on ${h.subject.kind} ${h.subject.id}` }) };
    });
  }

  async hold(id: string): Promise<LegalHold | null> {
    const r = await this.#core.stmt('SELECT * FROM gov_legal_holds WHERE id = ?').get(String(id)) as Row | undefined;
    return r ? toHold(r) : null;
  }

  /** Holds in force (placed, not released) at `at`. */
  async activeHolds(at: Date = this.#core.now()): Promise<LegalHold[]> {
    const t = iso(at);
    return (await this.#core.stmt('SELECT * FROM gov_legal_holds WHERE placed_at <= ?1 AND (released_at IS NULL OR released_at > ?1) ORDER BY placed_at, id').all(t) as Row[]).map(toHold);
  }

  /** Active holds on any of the given subjects. */
  async holdsOn(subjects: readonly { kind: HoldSubjectKind; id: string }[], at: Date = this.#core.now()): Promise<LegalHold[]> {
    const t = iso(at);
    const out: LegalHold[] = [];
    const seen = new Set<string>();
    for (const s of subjects) {
      for (const r of await this.#core.stmt('SELECT * FROM gov_legal_holds WHERE subject_kind = ? AND subject = ? AND placed_at <= ? AND (released_at IS NULL OR released_at > ?) ORDER BY placed_at, id').all(s.kind, s.id, t, t) as Row[]) {
        if (!seen.has(r.id as string)) {
          seen.add(r.id as string);
          out.push(toHold(r));
        }
      }
    }
    return out;
  }

  /** Holds that cover this candidate: on it, its dataset, its agreement or its principal. */
  async holdsFor(c: RetentionCandidate, at: Date = this.#core.now()): Promise<LegalHold[]> {
    const subjects: { kind: HoldSubjectKind; id: string }[] = [{ kind: 'artefact', id: c.subject }];
    if (c.kind === 'dataset') subjects.push({ kind: 'dataset', id: c.subject });
    if (c.labels.dataset) subjects.push({ kind: 'dataset', id: c.labels.dataset });
    if (c.labels.agreement) subjects.push({ kind: 'agreement', id: c.labels.agreement });
    if (c.labels.principal) subjects.push({ kind: 'principal', id: c.labels.principal });
    return await this.holdsOn(subjects, at);
  }

  /** Sorts candidates into destroy / held / keep at `now`. Reads only; changes nothing. */
  async plan(now: Date, candidates: readonly RetentionCandidate[]): Promise<RetentionPlan> {
    const list = parseList(candidates, 'candidates', parseCandidate, { max: 100_000 });
    const destroy: RetentionPlan['destroy'][number][] = [];
    const held: RetentionPlan['held'][number][] = [];
    const keep: RetentionPlan['keep'][number][] = [];
    for (const c of list) {
      const due = await this.#dueAt(c);
      if (due === null || due.at > iso(now)) {
        keep.push({ subject: c.subject, kind: c.kind, dueAt: due?.at ?? null });
        continue;
      }
      const holds = await this.holdsFor(c, now);
      if (holds.length > 0) held.push({ subject: c.subject, kind: c.kind, dueAt: due.at, holds });
      else destroy.push({ subject: c.subject, kind: c.kind, dueAt: due.at, because: due.because });
    }
    return { destroy, held, keep };
  }

  /**
   * An explicit destruction request (retention, termination, an administrator): refused with
   * `GOV_LEGAL_HOLD` naming the hold(s) when anything covers the candidate; otherwise the
   * returned event authorises the caller to destroy it.
   */
  async authorizeDestruction(candidate: RetentionCandidate, input: { by: string; reason: string }, at: Date = this.#core.now()): Promise<{ event: GovernanceEvent }> {
    const c = parseCandidate(candidate, 'candidate');
    const o = requireObject(input, 'destruction');
    const by = parseName(o.by, 'by');
    const reason = parseText(o.reason, 'reason', 1000);
    const holds = await this.holdsFor(c, at);
    if (holds.length > 0) {
      throw new GovernanceError('GOV_LEGAL_HOLD', `${c.kind} ${c.subject} is under legal hold ${holds.map((h) => `${h.id} (on ${h.subject.kind} ${h.subject.id}, placed by ${h.placedBy})`).join(', ')}; nothing was destroyed`,
        `it can be destroyed once the hold is released by counsel: gatehouse retention release ${holds[0]!.id}`,
        event({ action: 'retention.destroy', actor: by, time: iso(at), subject: c.subject, outcome: 'refused', refs: { holdId: holds[0]!.id }, detail: `destruction of ${c.kind} ${c.subject} refused: legal hold` }));
    }
    return { event: event({ action: 'retention.destroy', actor: by, time: iso(at), subject: c.subject, outcome: 'approved', refs: c.labels.agreement ? { agreementId: c.labels.agreement } : {}, detail: `${by} authorised destruction of ${c.kind} ${c.subject}: ${reason.slice(0, 200)}` }) };
  }

  async #dueAt(c: RetentionCandidate & { createdAt: string }): Promise<{ at: string; because: string } | null> {
    const scope = c.kind === 'dataset' ? c.subject : c.labels.dataset ?? null;
    const rule = (scope !== null ? await this.#core.stmt('SELECT days FROM gov_retention_rules WHERE kind = ? AND scope = ?').get(c.kind, scope) as Row | undefined : undefined)
      ?? await this.#core.stmt(`SELECT days FROM gov_retention_rules WHERE kind = ? AND scope = '*'`).get(c.kind) as Row | undefined;
    let days = rule ? (rule.days as number) : null;
    let because = rule ? `${c.kind} retention of ${days} day(s)${scope && rule ? '' : ''}` : '';
    if (c.kind === 'result' && c.labels.agreement) {
      const a = await this.#core.stmt('SELECT result_retention_days AS d FROM gov_agreements WHERE id = ?').get(c.labels.agreement) as Row | undefined;
      if (a && a.d !== null && (days === null || (a.d as number) < days)) {
        days = a.d as number;
        because = `agreement ${c.labels.agreement} keeps results ${days} day(s)`;
      }
    }
    if (days === null) return null;
    return { at: iso(new Date(Date.parse(c.createdAt) + days * DAY_MS)), because };
  }
}

function parseCandidate(v: unknown, field: string): RetentionCandidate & { createdAt: string } {
  const o = requireObject(v, field);
  const subject = parseName(o.subject, `${field}.subject`);
  const kind = parseOneOf(o.kind, RETENTION_KINDS, `${field}.kind`);
  const createdAt = iso(parseInstant(o.createdAt, `${field}.createdAt`));
  const l = o.labels === undefined ? {} : requireObject(o.labels, `${field}.labels`);
  const labels: Record<string, string> = {};
  for (const k of ['dataset', 'agreement', 'principal', 'org'] as const) if (l[k] !== undefined) labels[k] = parseName(l[k], `${field}.labels.${k}`);
  for (const k of Object.keys(l)) if (!['dataset', 'agreement', 'principal', 'org'].includes(k)) invalid(`${field}.labels.${k} is not a known label (dataset, agreement, principal, org)`);
  return { subject, kind, createdAt, labels };
}
