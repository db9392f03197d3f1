/**
 * Grants and the access-request workflow.
 *
 * A grant lets a principal (or every principal of a partner organisation) use one dataset
 * for one purpose during `[from, until)`, citing an agreement that is active and covers
 * the dataset and the purpose; `until` never passes the agreement's end. A grant does not
 * copy the agreement's state: every evaluation (gate.ts) joins the agreement and checks its
 * status at that moment, so an agreement's end or termination revokes access at once.
 *
 *   request (principal, dataset, purpose, days, justification)
 *     → approve by an owner of the dataset (never the requester) → time-boxed grant
 *     → deny by an owner, with a reason
 *
 * Every transition returns a `GovernanceEvent` for the audit log; refused workflow steps
 * throw a `GovernanceError` whose `event` describes the refused attempt. An approval is a
 * conditional update plus a UNIQUE request id on the grant, so it cannot grant twice.
 */
import type { Agreements, RevokedGrantSummary } from './agreements.ts';
import {
  DAY_MS, event, invalid, iso, newId, parseInstant, parseName, parsePurpose, parseText, parseWhole, requireObject,
  GovernanceError, type Core, type GovernanceEvent, type Row,
} from './types.ts';

/** A principal of a partner org, or the whole org. */
export type Grantee = { readonly kind: 'principal'; readonly id: string; readonly org: string } | { readonly kind: 'org'; readonly org: string };

export interface Grant {
  readonly id: string;
  readonly grantee: Grantee;
  readonly dataset: string;
  readonly purpose: string;
  readonly agreementId: string;
  readonly from: string;
  readonly until: string;
  readonly createdAt: string;
  readonly createdBy: string;
  /** The access request it came from, if any. */
  readonly requestId: string | null;
  readonly revoked: { readonly at: string; readonly by: string; readonly reason: string } | null;
}

export interface AccessRequest {
  readonly id: string;
  readonly principalId: string;
  readonly org: string;
  readonly dataset: string;
  readonly purpose: string;
  readonly days: number;
  readonly justification: string;
  readonly requestedAt: string;
  readonly status: 'pending' | 'approved' | 'denied';
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
  readonly decisionReason: string | null;
}

export const MAX_GRANT_DAYS = 366;

export function granteeLabel(g: Grantee): string {
  return g.kind === 'principal' ? g.id : `org:${g.org}`;
}

function toGrant(r: Row): Grant {
  return {
    id: r.id as string,
    grantee: r.grantee_kind === 'principal' ? { kind: 'principal', id: r.principal_id as string, org: r.org as string } : { kind: 'org', org: r.org as string },
    dataset: r.dataset as string, purpose: r.purpose as string, agreementId: r.agreement_id as string,
    from: r.valid_from as string, until: r.valid_until as string, createdAt: r.created_at as string, createdBy: r.created_by as string,
    requestId: r.request_id as string | null,
    revoked: r.revoked_at === null ? null : { at: r.revoked_at as string, by: r.revoked_by as string, reason: r.revoke_reason as string },
  };
}

function toRequest(r: Row): AccessRequest {
  return {
    id: r.id as string, principalId: r.principal_id as string, org: r.org as string, dataset: r.dataset as string, purpose: r.purpose as string,
    days: r.days as number, justification: r.justification as string, requestedAt: r.requested_at as string,
    status: r.status as AccessRequest['status'], decidedBy: r.decided_by as string | null, decidedAt: r.decided_at as string | null, decisionReason: r.decision_reason as string | null,
  };
}

/** Whether `approverId` owns (may grant access to) `dataset`. */
export type IsOwner = (approverId: string, dataset: string) => boolean;

export class Grants {
  readonly #core: Core;
  readonly #agreements: Agreements;
  constructor(core: Core, agreements: Agreements) {
    this.#core = core;
    this.#agreements = agreements;
  }

  /**
   * Grants directly (an administrator acting on a signed agreement). The agreement must be
   * active at `at`, be with the grantee's org and cover dataset and purpose; `until` must not
   * pass the agreement's end.
   */
  async create(input: { grantee: Grantee; dataset: string; purpose: string; agreementId: string; from?: string | Date; until: string | Date; by: string }, at: Date = this.#core.now()): Promise<{ grant: Grant; event: GovernanceEvent }> {
    const o = requireObject(input, 'grant');
    const grantee = parseGrantee(o.grantee);
    const dataset = parseName(o.dataset, 'dataset');
    const purpose = parsePurpose(o.purpose);
    const from = o.from === undefined ? at : parseInstant(o.from, 'from');
    const until = parseInstant(o.until, 'until');
    const by = parseName(o.by, 'by');
    if (until.getTime() <= from.getTime()) invalid(`until (${iso(until)}) must be after from (${iso(from)})`);
    if (grantee.kind === 'principal' && grantee.id === by) {
      throw new GovernanceError('GOV_SELF_APPROVAL', 'a principal cannot grant access to itself', 'ask an owner of the dataset to approve an access request (gatehouse grant request …)');
    }
    return this.#core.tx(async () => {
      const grant = await this.#insert({ grantee, dataset, purpose, agreementId: parseName(o.agreementId, 'agreementId'), from, until, by, requestId: null }, at);
      return { grant, event: event({ action: 'grant.create', actor: by, time: iso(at), subject: granteeLabel(grantee), outcome: 'created', refs: { grantId: grant.id, agreementId: grant.agreementId }, detail: `${by} granted ${granteeLabel(grantee)} "${dataset}" for "${purpose}" until ${grant.until} under ${grant.agreementId}` }) };
    });
  }

  async #insert(g: { grantee: Grantee; dataset: string; purpose: string; agreementId: string; from: Date; until: Date; by: string; requestId: string | null }, at: Date): Promise<Grant> {
    const agreement = await this.#agreements.get(g.agreementId, at);
    if (!agreement) throw new GovernanceError('GOV_NOT_FOUND', `no agreement "${g.agreementId.slice(0, 64)}"`, 'cite an agreement id from: gatehouse agreement list');
    if (agreement.status !== 'active') {
      throw new GovernanceError('GOV_AGREEMENT_NOT_ACTIVE', `agreement ${agreement.id} is ${agreement.status}; a grant must cite an active agreement`,
        agreement.status === 'pending' ? `wait until it takes effect (${agreement.effectiveFrom})` : `record a new agreement with ${agreement.parties.partner} first (gatehouse agreement create …)`);
    }
    if (agreement.parties.partner !== g.grantee.org) {
      throw new GovernanceError('GOV_AGREEMENT_NOT_COVERING', `agreement ${agreement.id} is with ${agreement.parties.partner}, not with ${g.grantee.org}`, `cite an agreement with ${g.grantee.org}`);
    }
    const missing = [!agreement.datasets.includes(g.dataset) ? `dataset "${g.dataset}"` : null, !agreement.purposes.includes(g.purpose) ? `purpose "${g.purpose}"` : null].filter(Boolean);
    if (missing.length > 0) {
      throw new GovernanceError('GOV_AGREEMENT_NOT_COVERING', `agreement ${agreement.id} does not cover ${missing.join(' or ')}`, `cite an agreement that covers them, or record one (gatehouse agreement create --dataset ${g.dataset} --purpose ${g.purpose} …)`);
    }
    if (g.from.getTime() < Date.parse(agreement.effectiveFrom)) invalid(`from (${iso(g.from)}) is before the agreement takes effect (${agreement.effectiveFrom})`);
    if (agreement.endsOn !== null && iso(g.until) > agreement.endsOn) {
      throw new GovernanceError('GOV_GRANT_BEYOND_AGREEMENT', `until (${iso(g.until)}) is after agreement ${agreement.id} ends (${agreement.endsOn})`, `choose an end on or before ${agreement.endsOn}`);
    }
    const id = newId('grt');
    await this.#core.stmt(`INSERT INTO gov_grants (id, grantee_kind, principal_id, org, dataset, purpose, agreement_id, valid_from, valid_until, created_at, created_by, request_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(id, g.grantee.kind, g.grantee.kind === 'principal' ? g.grantee.id : null, g.grantee.org, g.dataset, g.purpose, agreement.id,
      iso(g.from), iso(g.until), iso(at), g.by, g.requestId);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<Grant | null> {
    const r = await this.#core.stmt('SELECT * FROM gov_grants WHERE id = ?').get(String(id)) as Row | undefined;
    return r ? toGrant(r) : null;
  }

  /** Grants in force at `at` (started, not expired, not revoked, agreement active), or all with `all: true`. */
  async list(filter: { org?: string; principalId?: string; dataset?: string; all?: boolean } = {}, at: Date = this.#core.now()): Promise<Grant[]> {
    const t = iso(at);
    const rows = await this.#core.stmt(`SELECT g.* FROM gov_grants g JOIN gov_agreements a ON a.id = g.agreement_id
      WHERE (CAST(?1 AS TEXT) IS NULL OR g.org = ?1) AND (CAST(?2 AS TEXT) IS NULL OR g.principal_id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR g.dataset = ?3)
        AND (?4 = 1 OR (g.revoked_at IS NULL AND g.valid_from <= ?5 AND g.valid_until > ?5
             AND a.effective_from <= ?5 AND (a.ends_on IS NULL OR a.ends_on > ?5) AND (a.terminated_at IS NULL OR a.terminated_at > ?5)))
      ORDER BY g.created_at, g.id`).all(filter.org ?? null, filter.principalId ?? null, filter.dataset ?? null, filter.all ? 1 : 0, t) as Row[];
    return rows.map(toGrant);
  }

  async revoke(id: string, input: { by: string; reason: string }, at: Date = this.#core.now()): Promise<{ grant: Grant; event: GovernanceEvent }> {
    const o = requireObject(input, 'revocation');
    const by = parseName(o.by, 'by');
    const reason = parseText(o.reason, 'reason', 1000);
    return this.#core.tx(async () => {
      const g = await this.get(id);
      if (!g) throw new GovernanceError('GOV_NOT_FOUND', `no grant "${String(id).slice(0, 64)}"`, 'list grants with: gatehouse grant list');
      const changed = await this.#core.stmt('UPDATE gov_grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL').run(iso(at), by, reason, g.id);
      if (changed.changes !== 1) throw new GovernanceError('GOV_GRANT_ALREADY_REVOKED', `grant ${g.id} was already revoked`, 'nothing to do');
      const grant = (await this.get(g.id))!;
      return { grant, event: event({ action: 'grant.revoke', actor: by, time: iso(at), subject: granteeLabel(grant.grantee), outcome: 'revoked', refs: { grantId: grant.id, agreementId: grant.agreementId }, detail: `${by} revoked grant ${grant.id} on "${grant.dataset}" for "${grant.purpose}"` }) };
    });
  }

  /** Used by agreement termination, inside its transaction. */
  async revokeAllOf(agreementId: string, by: string, at: Date, reason: string): Promise<RevokedGrantSummary[]> {
    const rows = await this.#core.stmt('SELECT * FROM gov_grants WHERE agreement_id = ? AND revoked_at IS NULL ORDER BY id').all(agreementId) as Row[];
    await this.#core.stmt('UPDATE gov_grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE agreement_id = ? AND revoked_at IS NULL').run(iso(at), by, reason, agreementId);
    return rows.map(toGrant).map((g) => ({ id: g.id, grantee: granteeLabel(g.grantee), dataset: g.dataset, purpose: g.purpose }));
  }

  async granteesOf(agreementId: string): Promise<string[]> {
    return (await this.#core.stmt(`SELECT DISTINCT principal_id FROM gov_grants WHERE agreement_id = ? AND principal_id IS NOT NULL ORDER BY principal_id`).all(agreementId) as Row[]).map((r) => r.principal_id as string);
  }

  // ───────────── access requests ─────────────

  /** A partner principal asks for `days` of access to a dataset for a purpose. */
  async request(input: { principalId: string; org: string; dataset: string; purpose: string; days: number; justification: string; knownDatasets?: ReadonlySet<string> }, at: Date = this.#core.now()): Promise<{ request: AccessRequest; event: GovernanceEvent }> {
    const o = requireObject(input, 'access request');
    const principalId = parseName(o.principalId, 'principalId');
    const org = parseName(o.org, 'org');
    const dataset = parseName(o.dataset, 'dataset');
    const purpose = parsePurpose(o.purpose);
    const days = parseWhole(o.days, 'days', 1, MAX_GRANT_DAYS);
    const justification = parseText(o.justification, 'justification', 4000);
    if (o.knownDatasets instanceof Set && !o.knownDatasets.has(dataset)) throw new GovernanceError('GOV_UNKNOWN_DATASET', `unknown dataset "${dataset}"`, 'gatehouse datasets lists the datasets');
    if (!await this.#core.stmt('SELECT 1 AS x FROM gov_orgs WHERE name = ?').get(org)) {
      throw new GovernanceError('GOV_UNKNOWN_ORG', `organisation "${org}" is not a registered partner`, 'principals of unregistered organisations are not gated by grants; their access is decided by policy alone');
    }
    const id = newId('req');
    await this.#core.tx(async () => {
      await this.#core.stmt(`INSERT INTO gov_access_requests (id, principal_id, org, dataset, purpose, days, justification, requested_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')`)
        .run(id, principalId, org, dataset, purpose, days, justification, iso(at));
    });
    const request = (await this.getRequest(id))!;
    return { request, event: event({ action: 'grant.request', actor: principalId, time: iso(at), subject: principalId, outcome: 'requested', refs: { requestId: id }, detail: `${principalId} (${org}) requested ${days} day(s) of "${dataset}" for "${purpose}"; awaiting an owner's approval` }) };
  }

  async getRequest(id: string): Promise<AccessRequest | null> {
    const r = await this.#core.stmt('SELECT * FROM gov_access_requests WHERE id = ?').get(String(id)) as Row | undefined;
    return r ? toRequest(r) : null;
  }

  async pendingRequests(filter: { dataset?: string } = {}): Promise<AccessRequest[]> {
    return (await this.#core.stmt(`SELECT * FROM gov_access_requests WHERE status = 'pending' AND (CAST(?1 AS TEXT) IS NULL OR dataset = ?1) ORDER BY requested_at, id`).all(filter.dataset ?? null) as Row[]).map(toRequest);
  }

  /**
   * An owner of the dataset (never the requester) approves: the grant runs from `at` for
   * the requested days, cut at the cited agreement's end. Without `agreementId` the active
   * agreement with the requester's org covering dataset and purpose that runs longest is cited.
   */
  async approve(requestId: string, input: { approverId: string; isOwner: IsOwner; agreementId?: string }, at: Date = this.#core.now()): Promise<{ request: AccessRequest; grant: Grant; events: GovernanceEvent[] }> {
    return this.#core.tx(async () => {
      const { row, approverId, refuse } = await this.#decidable(requestId, input, 'grant.approve', at);
      const agreementId = input.agreementId === undefined ? (await this.#agreements.activeCovering(row.org, row.dataset, row.purpose, at))[0]?.id : input.agreementId;
      if (agreementId === undefined) {
        refuse('GOV_AGREEMENT_NOT_ACTIVE', `no active agreement with ${row.org} covers "${row.dataset}" for "${row.purpose}"`, `record one first (gatehouse agreement create --partner ${row.org} --dataset ${row.dataset} --purpose ${row.purpose} …), then approve again`);
      }
      const agreement = await this.#agreements.get(agreementId!, at);
      let until = new Date(at.getTime() + row.days * DAY_MS);
      if (agreement?.endsOn && iso(until) > agreement.endsOn) until = new Date(agreement.endsOn);
      // The conditional UPDATE is the guard against a second approval (UNIQUE request_id is the backstop).
      const changed = await this.#core.stmt(`UPDATE gov_access_requests SET status = 'approved', decided_by = ?, decided_at = ? WHERE id = ? AND status = 'pending'`).run(approverId, iso(at), row.id);
      if (changed.changes !== 1) refuse('GOV_ALREADY_DECIDED', 'this request has already been decided', 'nothing to do; see it with: gatehouse grant requests');
      let grant: Grant;
      try {
        grant = await this.#insert({ grantee: { kind: 'principal', id: row.principalId, org: row.org }, dataset: row.dataset, purpose: row.purpose, agreementId: agreementId!, from: at, until, by: approverId, requestId: row.id }, at);
      } catch (err) {
        if (err instanceof GovernanceError) refuse(err.detail, err.message, err.hint);
        throw err;
      }
      const request = (await this.getRequest(row.id))!;
      return {
        request, grant,
        events: [event({ action: 'grant.approve', actor: approverId, time: iso(at), subject: row.principalId, outcome: 'approved', refs: { requestId: row.id, grantId: grant.id, agreementId: grant.agreementId }, detail: `${approverId} approved "${row.dataset}" for "${row.purpose}" for ${row.principalId} until ${grant.until} under ${grant.agreementId}` })],
      };
    });
  }

  async deny(requestId: string, input: { approverId: string; isOwner: IsOwner; reason: string }, at: Date = this.#core.now()): Promise<{ request: AccessRequest; event: GovernanceEvent }> {
    return this.#core.tx(async () => {
      const { row, approverId, refuse } = await this.#decidable(requestId, input, 'grant.deny', at);
      if (typeof input.reason !== 'string' || input.reason.trim() === '') refuse('GOV_INVALID', 'a denial needs a reason the requester can read', 'say why, e.g. --reason "purpose not covered by the DPA"');
      const changed = await this.#core.stmt(`UPDATE gov_access_requests SET status = 'denied', decided_by = ?, decided_at = ?, decision_reason = ? WHERE id = ? AND status = 'pending'`)
        .run(approverId, iso(at), input.reason.trim().slice(0, 1000), row.id);
      if (changed.changes !== 1) refuse('GOV_ALREADY_DECIDED', 'this request has already been decided', 'nothing to do');
      return { request: (await this.getRequest(row.id))!, event: event({ action: 'grant.deny', actor: approverId, time: iso(at), subject: row.principalId, outcome: 'denied', refs: { requestId: row.id }, detail: `${approverId} denied "${row.dataset}" for "${row.purpose}" to ${row.principalId}` }) };
    });
  }

  async #decidable(requestId: string, input: { approverId: string; isOwner: IsOwner }, action: string, at: Date): Promise<{ row: AccessRequest; approverId: string; refuse: (code: GovernanceError['detail'], m: string, hint: string) => never }> {
    const o = requireObject(input, 'decision');
    const approverId = parseName(o.approverId, 'approverId');
    if (typeof o.isOwner !== 'function') invalid('isOwner must be a function (approverId, dataset) => boolean');
    const base = { action, actor: approverId, time: iso(at), outcome: 'refused' as const };
    const row = await this.getRequest(requestId);
    if (!row) throw new GovernanceError('GOV_NOT_FOUND', `no access request "${String(requestId).slice(0, 64)}"`, 'list pending requests with: gatehouse grant requests', event({ ...base, subject: null, refs: {}, detail: `${approverId} tried to decide an unknown access request` }));
    const refuse = (code: GovernanceError['detail'], m: string, hint: string): never => {
      throw new GovernanceError(code, m, hint, event({ ...base, subject: row.principalId, refs: { requestId: row.id }, detail: `refused: ${m}` }));
    };
    if (approverId === row.principalId) refuse('GOV_SELF_APPROVAL', 'an access request must be decided by someone other than the requester', `ask an owner of "${row.dataset}" to decide it: gatehouse grant approve ${row.id}`);
    if (!(o.isOwner as IsOwner)(approverId, row.dataset)) refuse('GOV_NOT_OWNER', `${approverId} is not an owner of "${row.dataset}"`, `ask an owner of "${row.dataset}" to decide: gatehouse grant approve ${row.id}`);
    if (row.status !== 'pending') refuse('GOV_ALREADY_DECIDED', `this request has already been ${row.status}`, 'nothing to do; a new request is needed for more access');
    return { row, approverId, refuse };
  }
}

function parseGrantee(v: unknown): Grantee {
  const g = requireObject(v, 'grantee');
  if (g.kind === 'principal') return { kind: 'principal', id: parseName(g.id, 'grantee.id'), org: parseName(g.org, 'grantee.org') };
  if (g.kind === 'org') return { kind: 'org', org: parseName(g.org, 'grantee.org') };
  return invalid('grantee.kind must be "principal" (with id and org) or "org" (with org)');
}
