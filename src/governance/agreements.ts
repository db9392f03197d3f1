/**
 * Agreements (NDA, DPA, SLA, MSA) between us and a partner organisation.
 *
 * An agreement covers datasets and purposes for a period `[effectiveFrom, endsOn)` and
 * carries clauses: intellectual property, what happens on termination (destruction of what
 * was shared, within N days) and how long derived results may be kept. Its status is
 * derived from the dates and a termination at the time asked, never stored:
 *
 *   terminated  a termination took effect at or before that time
 *   pending     before effectiveFrom
 *   expired     at or after endsOn
 *   active      otherwise
 *
 * Creating one refuses inverted dates, unknown datasets, an unregistered partner and an
 * overlap: another agreement of the same kind with the same partner, in force during any
 * part of the same period, covering a dataset in common. `terminate` is one transaction:
 * the agreement ends, every grant citing it is revoked, and the caller is told what must
 * be destroyed and by when (the caller shreds and writes the destruction certificate).
 */
import {
  AGREEMENT_KINDS, DAY_MS, event, invalid, iso, newId, parseEnd, parseInstant, parseList, parseName, parseOneOf, parsePurpose, parseText, parseWhole,
  requireObject, GovernanceError, type AgreementKind, type AgreementStatus, type Core, type GovernanceEvent, type Row,
} from './types.ts';

/** What happens to shared data when the agreement ends: destroyed within N days, or not. */
export type TerminationTerms = { readonly destruction: 'required'; readonly withinDays: number } | { readonly destruction: 'not-required' };

export interface AgreementClauses {
  /** Intellectual-property clause, as text (who owns derived results, publication rights). */
  readonly ip: string | null;
  readonly termination: TerminationTerms;
  /** How long results derived under this agreement may be kept; null: the retention rules decide. */
  readonly resultRetentionDays: number | null;
}

export interface Agreement {
  readonly id: string;
  readonly kind: AgreementKind;
  readonly title: string;
  readonly parties: { readonly ours: string; readonly partner: string };
  readonly effectiveFrom: string;
  /** Exclusive end (a date-only input means the end of that day); null: open-ended. */
  readonly endsOn: string | null;
  readonly datasets: readonly string[];
  readonly purposes: readonly string[];
  readonly clauses: AgreementClauses;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly termination: { readonly at: string; readonly by: string; readonly reason: string } | null;
  /** At the time the record was read (see `statusAt`). */
  readonly status: AgreementStatus;
}

export interface AgreementInput {
  readonly kind: AgreementKind;
  readonly title: string;
  readonly parties: { readonly ours: string; readonly partner: string };
  readonly effectiveFrom: string | Date;
  readonly endsOn: string | Date | null;
  readonly datasets: readonly string[];
  readonly purposes: readonly string[];
  readonly clauses?: {
    readonly ip?: string | null;
    readonly termination?: TerminationTerms;
    readonly resultRetentionDays?: number | null;
  };
  readonly by: string;
}

/** Who/what must be destroyed after an agreement ends; the caller shreds and certifies. */
export interface DestructionPlan {
  readonly agreementId: string;
  readonly required: boolean;
  /** Deadline (termination/end + withinDays); null when not required. */
  readonly dueBy: string | null;
  readonly partnerOrg: string;
  readonly datasets: readonly string[];
  /** Principals who ever held a grant under the agreement (their artefacts are in scope). */
  readonly principals: readonly string[];
  /** Legal holds that suspend destruction of some of it (on the agreement, a covered dataset, a grantee). */
  readonly holds: readonly { readonly id: string; readonly subjectKind: string; readonly subject: string; readonly reason: string }[];
  /** Labels an artefact carries when it is in scope: match any of them (see retention.ts). */
  readonly match: { readonly agreement: string; readonly org: string; readonly datasets: readonly string[] };
}

export interface RevokedGrantSummary {
  readonly id: string;
  readonly grantee: string;
  readonly dataset: string;
  readonly purpose: string;
}

export interface AgreementEnd {
  readonly agreement: Agreement;
  readonly revokedGrants: readonly RevokedGrantSummary[];
  readonly destruction: DestructionPlan;
  /** agreement.terminate (or agreement.close-out), then one grant.revoke per grant. */
  readonly events: readonly GovernanceEvent[];
}

/** What the agreements part needs from the rest of the store (wired by store.ts). */
export interface AgreementDeps {
  /** Revokes every unrevoked grant citing the agreement, inside the caller's transaction. */
  revokeGrantsOf(agreementId: string, by: string, at: Date, reason: string): Promise<RevokedGrantSummary[]>;
  /** Principals who ever held a grant under the agreement. */
  granteesOf(agreementId: string): Promise<string[]>;
  /** Active legal holds on any of these subjects. */
  holdsOn(subjects: readonly { kind: 'dataset' | 'agreement' | 'principal'; id: string }[], at: Date): Promise<DestructionPlan['holds']>;
}

/** Status at time `t` (ISO), from the stored fields. Exported for the gate's hot path. */
export function statusAt(from: string, endsOn: string | null, terminatedAt: string | null, t: string): AgreementStatus {
  if (terminatedAt !== null && terminatedAt <= t) return 'terminated';
  if (t < from) return 'pending';
  if (endsOn !== null && endsOn <= t) return 'expired';
  return 'active';
}

/** The instant the agreement stops being in force (end or termination, whichever first); null: open. */
function effectiveEnd(endsOn: string | null, terminatedAt: string | null): string | null {
  if (endsOn === null) return terminatedAt;
  if (terminatedAt === null) return endsOn;
  return terminatedAt < endsOn ? terminatedAt : endsOn;
}

const MAX_DAYS = 36_600;

export class Agreements {
  readonly #core: Core;
  readonly #deps: AgreementDeps;
  constructor(core: Core, deps: AgreementDeps) {
    this.#core = core;
    this.#deps = deps;
  }

  /**
   * Records an agreement. `knownDatasets`: the workspace's datasets (an agreement may not
   * cover a dataset that does not exist). Refusals change nothing.
   */
  async create(input: AgreementInput, opts: { knownDatasets: ReadonlySet<string> | readonly string[] }, at: Date = this.#core.now()): Promise<{ agreement: Agreement; event: GovernanceEvent }> {
    const o = requireObject(input, 'agreement');
    const kind = parseOneOf(o.kind, AGREEMENT_KINDS, 'kind');
    const title = parseText(o.title, 'title', 200);
    const parties = requireObject(o.parties, 'parties');
    const ours = parseName(parties.ours, 'parties.ours');
    const partner = parseName(parties.partner, 'parties.partner');
    if (ours === partner) invalid('an agreement needs two different parties (parties.ours and parties.partner are the same)');
    const from = parseInstant(o.effectiveFrom, 'effectiveFrom');
    const ends = o.endsOn === null || o.endsOn === undefined ? null : parseEnd(o.endsOn, 'endsOn');
    if (o.endsOn === undefined) invalid('endsOn is required (null for an open-ended agreement)');
    if (ends !== null && ends.getTime() <= from.getTime()) {
      throw new GovernanceError('GOV_AGREEMENT_DATES', `endsOn (${iso(ends)}) is not after effectiveFrom (${iso(from)})`, 'an agreement must end after it starts; check the two dates are not swapped');
    }
    const datasets = parseList(o.datasets, 'datasets', parseName, { max: 500 });
    const purposes = parseList(o.purposes, 'purposes', (v, f) => parsePurpose(v, f), { max: 100 });
    const known = opts?.knownDatasets instanceof Set ? opts.knownDatasets : new Set(Array.isArray(opts?.knownDatasets) ? opts.knownDatasets : []);
    const unknown = datasets.filter((d) => !known.has(d));
    if (unknown.length > 0) {
      throw new GovernanceError('GOV_UNKNOWN_DATASET', `unknown dataset${unknown.length > 1 ? 's' : ''}: ${unknown.map((d) => `"${d}"`).join(', ')}`, 'name datasets of the workspace (gatehouse datasets lists them)');
    }
    const c = o.clauses === undefined ? {} : requireObject(o.clauses, 'clauses');
    const ip = c.ip === undefined || c.ip === null ? null : parseText(c.ip, 'clauses.ip', 4000);
    const termination = parseTermination(c.termination);
    const resultRetentionDays = c.resultRetentionDays === undefined || c.resultRetentionDays === null ? null : parseWhole(c.resultRetentionDays, 'clauses.resultRetentionDays', 0, MAX_DAYS);
    const by = parseName(o.by, 'by');

    return this.#core.tx(async () => {
      if (!await this.#core.stmt('SELECT 1 AS x FROM gov_orgs WHERE name = ?').get(partner)) {
        throw new GovernanceError('GOV_UNKNOWN_ORG', `partner organisation "${partner}" is not registered`, `register it first: gatehouse vendor register ${partner}`);
      }
      const start = iso(from);
      const end = ends === null ? null : iso(ends);
      const candidates = await this.#core.stmt('SELECT id, effective_from, ends_on, terminated_at FROM gov_agreements WHERE partner_org = ? AND kind = ?').all(partner, kind) as Row[];
      for (const other of candidates) {
        const otherEnd = effectiveEnd(other.ends_on as string | null, other.terminated_at as string | null);
        const overlaps = (end === null || (other.effective_from as string) < end) && (otherEnd === null || start < otherEnd);
        if (!overlaps) continue;
        const otherDatasets = await this.#datasetsOf(other.id as string);
        const shared = datasets.filter((d) => otherDatasets.includes(d));
        if (shared.length > 0 || (datasets.length === 0 && otherDatasets.length === 0)) {
          throw new GovernanceError('GOV_AGREEMENT_OVERLAP',
            `a ${kind} with ${partner} (${other.id}) is already in force during this period${shared.length ? ` for ${shared.map((d) => `"${d}"`).join(', ')}` : ''}`,
            `amend the dates so they do not overlap, or terminate ${other.id} first (gatehouse agreement terminate ${other.id} --reason …)`);
        }
      }
      const id = newId('agr');
      await this.#core.stmt(`INSERT INTO gov_agreements (id, kind, title, our_org, partner_org, effective_from, ends_on, ip_clause, destruction_required, destruction_within_days, result_retention_days, created_at, created_by)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(id, kind, title, ours, partner, start, end, ip,
        termination.destruction === 'required' ? 1 : 0, termination.destruction === 'required' ? termination.withinDays : null, resultRetentionDays, iso(at), by);
      for (const d of datasets) await this.#core.stmt('INSERT INTO gov_agreement_datasets (agreement_id, dataset) VALUES (?, ?)').run(id, d);
      for (const p of purposes) await this.#core.stmt('INSERT INTO gov_agreement_purposes (agreement_id, purpose) VALUES (?, ?)').run(id, p);
      const agreement = (await this.get(id, at))!;
      return {
        agreement,
        event: event({ action: 'agreement.create', actor: by, time: iso(at), subject: `org:${partner}`, outcome: 'created', refs: { agreementId: id, org: partner },
          detail: `${by} recorded ${kind} ${id} with ${partner} from ${start}${end ? ` to ${end}` : ' (open-ended)'} covering ${datasets.join(', ') || 'no datasets'} for ${purposes.join(', ') || 'no purposes'}` }),
      };
    });
  }

  async #datasetsOf(id: string): Promise<string[]> {
    return (await this.#core.stmt('SELECT dataset FROM gov_agreement_datasets WHERE agreement_id = ? ORDER BY dataset').all(id) as Row[]).map((r) => r.dataset as string);
  }

  async #purposesOf(id: string): Promise<string[]> {
    return (await this.#core.stmt('SELECT purpose FROM gov_agreement_purposes WHERE agreement_id = ? ORDER BY purpose').all(id) as Row[]).map((r) => r.purpose as string);
  }

  async #toAgreement(r: Row, at: Date): Promise<Agreement> {
    const id = r.id as string;
    return {
      id, kind: r.kind as AgreementKind, title: r.title as string,
      parties: { ours: r.our_org as string, partner: r.partner_org as string },
      effectiveFrom: r.effective_from as string, endsOn: r.ends_on as string | null,
      datasets: await this.#datasetsOf(id), purposes: await this.#purposesOf(id),
      clauses: {
        ip: r.ip_clause as string | null,
        termination: r.destruction_required === 1 ? { destruction: 'required', withinDays: r.destruction_within_days as number } : { destruction: 'not-required' },
        resultRetentionDays: r.result_retention_days as number | null,
      },
      createdAt: r.created_at as string, createdBy: r.created_by as string,
      termination: r.terminated_at === null ? null : { at: r.terminated_at as string, by: r.terminated_by as string, reason: r.termination_reason as string },
      status: statusAt(r.effective_from as string, r.ends_on as string | null, r.terminated_at as string | null, iso(at)),
    };
  }

  /** The agreement with its status at `at`; null if there is none with that id. */
  async get(id: string, at: Date = this.#core.now()): Promise<Agreement | null> {
    const r = await this.#core.stmt('SELECT * FROM gov_agreements WHERE id = ?').get(String(id)) as Row | undefined;
    return r ? await this.#toAgreement(r, at) : null;
  }

  async list(filter: { partner?: string; status?: AgreementStatus } = {}, at: Date = this.#core.now()): Promise<Agreement[]> {
    const rows = (filter.partner === undefined
      ? await this.#core.stmt('SELECT * FROM gov_agreements ORDER BY effective_from, id').all()
      : await this.#core.stmt('SELECT * FROM gov_agreements WHERE partner_org = ? ORDER BY effective_from, id').all(filter.partner)) as Row[];
    const all: Agreement[] = [];
    for (const r of rows) all.push(await this.#toAgreement(r, at));
    return all.filter((a) => filter.status === undefined || a.status === filter.status);
  }

  /** Active agreements with `partner` that cover dataset and purpose at `at`, longest-running first. */
  async activeCovering(partner: string, dataset: string, purpose: string, at: Date = this.#core.now()): Promise<Agreement[]> {
    const t = iso(at);
    const rows = await this.#core.stmt(`SELECT a.* FROM gov_agreements a
      WHERE a.partner_org = ? AND a.effective_from <= ? AND (a.ends_on IS NULL OR a.ends_on > ?) AND (a.terminated_at IS NULL OR a.terminated_at > ?)
        AND EXISTS (SELECT 1 FROM gov_agreement_datasets d WHERE d.agreement_id = a.id AND d.dataset = ?)
        AND EXISTS (SELECT 1 FROM gov_agreement_purposes p WHERE p.agreement_id = a.id AND p.purpose = ?)
      ORDER BY a.ends_on IS NULL DESC, a.ends_on DESC, a.id`).all(partner, t, t, t, dataset, purpose) as Row[];
    const out: Agreement[] = [];
    for (const r of rows) out.push(await this.#toAgreement(r, at));
    return out;
  }

  /**
   * Ends the agreement at `at` (default now; not in the future) in one transaction: it is
   * terminated, every grant citing it is revoked, and the destruction plan says what must
   * be destroyed by when. Refused for an agreement that has already ended.
   */
  async terminate(id: string, input: { by: string; reason: string; at?: Date | string }): Promise<AgreementEnd> {
    const o = requireObject(input, 'termination');
    const by = parseName(o.by, 'by');
    const reason = parseText(o.reason, 'reason', 1000);
    const now = this.#core.now();
    const at = o.at === undefined ? now : parseInstant(o.at, 'at');
    if (at.getTime() > now.getTime() + 1000) invalid('a termination cannot be dated in the future', 'terminate on the day it takes effect; until then the agreement stays in force');
    return this.#core.tx(async () => {
      const r = await this.#core.stmt('SELECT * FROM gov_agreements WHERE id = ?').get(String(id)) as Row | undefined;
      if (!r) throw new GovernanceError('GOV_NOT_FOUND', `no agreement "${String(id).slice(0, 64)}"`, 'list agreements with: gatehouse agreement list');
      if (r.terminated_at !== null) throw new GovernanceError('GOV_AGREEMENT_ALREADY_ENDED', `agreement ${r.id} was already terminated at ${r.terminated_at}`, 'nothing to do; its grants were revoked then');
      if (r.ends_on !== null && (r.ends_on as string) <= iso(at)) {
        throw new GovernanceError('GOV_AGREEMENT_ALREADY_ENDED', `agreement ${r.id} already expired at ${r.ends_on}`, 'close out expired agreements with: gatehouse agreement close-out');
      }
      // Conditional update: a concurrent termination finds nothing to change.
      const changed = await this.#core.stmt('UPDATE gov_agreements SET terminated_at = ?, terminated_by = ?, termination_reason = ?, closed_out_at = ? WHERE id = ? AND terminated_at IS NULL')
        .run(iso(at), by, reason, iso(now), r.id as string);
      if (changed.changes !== 1) throw new GovernanceError('GOV_AGREEMENT_ALREADY_ENDED', `agreement ${r.id} was already terminated`, 'nothing to do');
      return await this.#end(r.id as string, by, at, 'terminated', `agreement ${r.id} terminated`);
    });
  }

  /**
   * For the scheduler: every agreement that reached its end date (or was terminated) and
   * has not been closed out yet gets its grants revoked and a destruction plan. Idempotent.
   */
  async closeOutEnded(by: string, at: Date = this.#core.now()): Promise<AgreementEnd[]> {
    const actor = parseName(by, 'by');
    return this.#core.tx(async () => {
      const t = iso(at);
      const due = await this.#core.stmt('SELECT id FROM gov_agreements WHERE closed_out_at IS NULL AND ((ends_on IS NOT NULL AND ends_on <= ?) OR (terminated_at IS NOT NULL AND terminated_at <= ?)) ORDER BY id').all(t, t) as Row[];
      const ends: AgreementEnd[] = [];
      for (const d of due) {
        await this.#core.stmt('UPDATE gov_agreements SET closed_out_at = ? WHERE id = ?').run(t, d.id as string);
        ends.push(await this.#end(d.id as string, actor, at, 'closed', `agreement ${d.id} reached its end`));
      }
      return ends;
    });
  }

  async #end(id: string, by: string, at: Date, how: 'terminated' | 'closed', why: string): Promise<AgreementEnd> {
    const agreement = (await this.get(id, at))!;
    const revokedGrants = await this.#deps.revokeGrantsOf(id, by, at, why);
    const endAt = agreement.termination?.at ?? agreement.endsOn ?? iso(at);
    const t = agreement.clauses.termination;
    const principals = await this.#deps.granteesOf(id);
    const holds = await this.#deps.holdsOn([
      { kind: 'agreement', id }, ...agreement.datasets.map((d) => ({ kind: 'dataset' as const, id: d })), ...principals.map((p) => ({ kind: 'principal' as const, id: p })),
    ], at);
    const destruction: DestructionPlan = {
      agreementId: id, required: t.destruction === 'required',
      dueBy: t.destruction === 'required' ? iso(new Date(Date.parse(endAt) + t.withinDays * DAY_MS)) : null,
      partnerOrg: agreement.parties.partner, datasets: agreement.datasets, principals, holds,
      match: { agreement: id, org: agreement.parties.partner, datasets: agreement.datasets },
    };
    const partner = agreement.parties.partner;
    const events: GovernanceEvent[] = [
      event({
        action: how === 'terminated' ? 'agreement.terminate' : 'agreement.close-out', actor: by, time: iso(at), subject: `org:${partner}`, outcome: 'terminated', refs: { agreementId: id, org: partner },
        detail: `${why}: ${revokedGrants.length} grant(s) revoked; ${destruction.required ? `destruction of shared data required by ${destruction.dueBy}${holds.length ? ` (${holds.length} legal hold(s) apply)` : ''}` : 'no destruction required by its terms'}`,
      }),
      ...revokedGrants.map((g) => event({ action: 'grant.revoke', actor: by, time: iso(at), subject: g.grantee, outcome: 'revoked', refs: { grantId: g.id, agreementId: id }, detail: `grant ${g.id} on "${g.dataset}" for "${g.purpose}" revoked: ${why}` })),
    ];
    return { agreement, revokedGrants, destruction, events };
  }
}

function parseTermination(v: unknown): TerminationTerms {
  if (v === undefined) return { destruction: 'not-required' };
  const t = requireObject(v, 'clauses.termination');
  const d = parseOneOf(t.destruction, ['required', 'not-required'] as const, 'clauses.termination.destruction');
  if (d === 'not-required') {
    if (t.withinDays !== undefined) invalid('clauses.termination.withinDays only applies when destruction is required');
    return { destruction: 'not-required' };
  }
  return { destruction: 'required', withinDays: parseWhole(t.withinDays, 'clauses.termination.withinDays', 0, 3650) };
}
