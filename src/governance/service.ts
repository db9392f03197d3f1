/**
 * Governance operations: one table that the HTTP routes (src/server/governance-routes.ts),
 * the CLI (src/cli/governance.ts) and the OpenAPI document are all derived from. Each op
 * runs inside `Gatehouse.governanceOp`, which authenticates the caller, enforces `who`,
 * and writes one audit entry (plus one per destruction certificate) — so every
 * governance change is on the one path and in the one log.
 */
import type { CellValue } from '../model/result.ts';
import type { StoredAuditEntry } from '../audit/log.ts';
import { GatehouseError } from '../errors.ts';
import type { ArtefactMeta, DestructionCertificate } from '../keys/artefacts.ts';
import type { Vault } from './vault.ts';
import type { PrincipalDef, Workspace } from '../model/types.ts';
import type { AgreementEnd } from './agreements.ts';
import type { ClassificationProposal } from './classification.ts';
import { proposeClassifications, samplingPlan } from './classifier.ts';
import { buildFlowMap, renderFlowSvg, summariseDerivations, type FlowMap } from './flows.ts';
import type { Grantee } from './grants.ts';
import { buildReport, renderReportCsv, renderReportHtml } from './report.ts';
import type { RetentionCandidate } from './retention.ts';
import type { GovernanceStore } from './store.ts';
import { lineage } from './lineage.ts';
import { FRAMEWORK_IDS, FRAMEWORKS } from './controls/catalog.ts';
import { gatherEvidence } from './controls/evidence.ts';
import { controlsReport, renderControlsHtml } from './controls/report.ts';
import { workspaceOps } from './workspaces/ops.ts';
import { erasureList } from './erasure/ops.ts';
import type { ErasureRow } from '../sql/tables/erasure.ts';
import {
  AGREEMENT_KINDS, AUDIT_OUTCOMES, CLASSIFICATIONS, FINDING_STATUSES, GovernanceError, HOLD_SUBJECT_KINDS, RETENTION_KINDS, SEVERITIES,
  type AgreementKind, type AuditOutcome, type Classification, type FindingStatus, type GovernanceEvent, type HoldSubjectKind, type RetentionKind, type RiskTier, type Severity,
} from './types.ts';

/** Read access to the audit log for flows and reports (principals mapped back from pseudonyms). */
export interface AuditReader {
  entries(filter: { from?: string; to?: string }): AsyncIterable<StoredAuditEntry>;
  /** The principal id behind a pseudonym as stored in the log, when it is a workspace principal. */
  principalOf(pseudonym: string): string | null;
}

export interface OpContext {
  readonly caller: PrincipalDef;
  /** The caller is in identity.adminGroups. */
  readonly isAdmin: boolean;
  readonly workspace: Workspace;
  readonly store: GovernanceStore;
  vault(): Promise<Vault>;
  readonly now: Date;
  readonly audit: AuditReader | null;
  /** Data owners: members of a group named like the dataset's `owner` org's owners, or admins (see Gatehouse). */
  isOwner(principalId: string, dataset: string): boolean;
  /** Privacy budgets in use (from the ledger), in ε at each budget's δ, for reports. */
  budgetUse(): Promise<readonly { subject: string; dataset: string; spentEpsilon: number; capEpsilon: number }[]>;
  /** Up to `limit` raw values per column, read inside Gatehouse for the classifier; never returned to the caller. */
  sample(dataset: string, columns: readonly string[], limit: number): Promise<ReadonlyMap<string, readonly CellValue[]>>;
  /** The recorded erasures and opt-outs (src/governance/erasure/registry.ts); absent where the node keeps none. */
  erasures?(): Promise<readonly ErasureRow[]>;
}

export interface OpResult<T = unknown> {
  readonly result: T;
  /** Audited as reasons of the op's entry. */
  readonly events?: readonly GovernanceEvent[];
  /** Each one is written to the audit log as its own `governance.destruction` entry. */
  readonly certificates?: readonly DestructionCertificate[];
}

export type JsonSchema = Readonly<Record<string, unknown>>;

export interface GovernanceOp<A = any, T = unknown> {
  /** e.g. 'agreement.terminate'; audited as `governance.<name>`. */
  readonly name: string;
  /** admin: identity.adminGroups only; any: every authenticated principal (the op checks ownership itself). */
  readonly who: 'admin' | 'any';
  readonly summary: string;
  readonly http: { readonly method: 'GET' | 'POST'; readonly path: string };
  /** JSON Schema of the arguments (the POST body, or the GET query string). */
  readonly args?: JsonSchema;
  run(ctx: OpContext, args: A): Promise<OpResult<T>> | OpResult<T>;
}

const str = { type: 'string', maxLength: 200 } as const;

// ───────────────────────────── helpers ─────────────────────────────

const text = (max = 1000) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
const isoTime = { type: 'string', minLength: 4, maxLength: 40, description: 'ISO 8601 date (2026-03-01) or date-time with a zone' } as const;
const obj = (required: readonly string[], properties: Record<string, unknown>): JsonSchema => ({ type: 'object', additionalProperties: false, required: [...required], properties });
const strList = { type: 'array', maxItems: 200, items: str } as const;

function forbidden(message: string, hint: string): never {
  throw new GatehouseError('POLICY_DENIED', message, { hint });
}

function orgOfPrincipal(p: PrincipalDef | undefined | null): string | null {
  const o = p?.attributes.org;
  return typeof o === 'string' && o !== '' ? o : null;
}

/** Administrators and auditors read compliance data (flows, reports, findings). */
function requireAdminOrAuditor(ctx: OpContext, what: string): void {
  if (!ctx.isAdmin && !ctx.caller.groups.includes('auditors')) forbidden(`${what} is for administrators and auditors`, 'ask an administrator or an auditor');
}

/** Partners may read their own organisation's records; administrators read all. */
function requireOwnOrg(ctx: OpContext, org: string, what: string): void {
  if (ctx.isAdmin) return;
  if (orgOfPrincipal(ctx.caller) !== org) forbidden(`you may only see ${what} of your own organisation`, 'ask an administrator');
}

/** Key-store refusals (unknown artefact, legal hold) as governance refusals; anything else propagates. */
function keyRefusal(err: unknown): never {
  const e = err as { detail?: string | null; message?: string; hint?: string | null };
  if (e.detail === 'ARTEFACT_NOT_FOUND') throw new GovernanceError('GOV_NOT_FOUND', e.message ?? 'no such artefact', 'list saved results with: gatehouse results list');
  if (e.detail === 'LEGAL_HOLD_ACTIVE') throw new GovernanceError('GOV_LEGAL_HOLD', e.message ?? 'under legal hold; nothing was destroyed', e.hint ?? 'release the hold first: gatehouse retention release ID');
  if (e.detail === 'ARTEFACT_DESTROYED') throw new GovernanceError('GOV_INVALID', e.message ?? 'the artefact was destroyed', 'nothing to do');
  throw err;
}

function candidateOf(a: ArtefactMeta): RetentionCandidate {
  const labels: { dataset?: string; agreement?: string; principal?: string; org?: string } = { principal: a.owner };
  if (a.labels.dataset) labels.dataset = a.labels.dataset;
  if (a.labels.agreement) labels.agreement = a.labels.agreement;
  if (a.labels.org) labels.org = a.labels.org;
  return { subject: a.id, kind: a.kind, createdAt: a.createdAt, labels };
}

interface Shredded {
  readonly certificates: DestructionCertificate[];
  readonly events: GovernanceEvent[];
  readonly destroyed: string[];
  readonly held: { readonly artefact: string; readonly holds: readonly string[] }[];
}

/**
 * Crypto-shreds `artefacts` after each one passed `retention.authorizeDestruction` (legal
 * holds in the store) and is not held in the artefact store either; held ones are reported
 * and kept. One certificate for the lot (audited by governanceOp as its own entry).
 */
async function shred(ctx: OpContext, artefacts: readonly ArtefactMeta[], reason: string): Promise<Shredded> {
  const events: GovernanceEvent[] = [];
  const held: { artefact: string; holds: string[] }[] = [];
  const ok: string[] = [];
  for (const a of artefacts) {
    if (a.destroyedAt !== null) continue;
    if (a.legalHold !== null) { held.push({ artefact: a.id, holds: [a.legalHold] }); continue; }
    try {
      events.push((await ctx.store.retention.authorizeDestruction(candidateOf(a), { by: ctx.caller.id, reason })).event);
      ok.push(a.id);
    } catch (err) {
      if (err instanceof GovernanceError && err.detail === 'GOV_LEGAL_HOLD') {
        if (err.event) events.push(err.event);
        held.push({ artefact: a.id, holds: (await ctx.store.retention.holdsFor(candidateOf(a))).map((h) => h.id) });
      } else throw err;
    }
  }
  const certificates: DestructionCertificate[] = [];
  if (ok.length > 0) {
    const { artefacts: store } = await ctx.vault();
    try { certificates.push(await store.destroy(ok, reason)); } catch (err) { keyRefusal(err); }
  }
  return { certificates, events, destroyed: ok, held };
}

/** What an ended agreement shared: artefacts labelled with it, or the partner's unlabelled ones on its datasets. */
async function shredAgreement(ctx: OpContext, end: AgreementEnd, why: string): Promise<Shredded> {
  if (!end.destruction.required) return { certificates: [], events: [], destroyed: [], held: [] };
  const { artefacts } = await ctx.vault();
  const m = end.destruction.match;
  const inScope = (await artefacts.list()).filter((a) => a.labels.agreement === m.agreement
    || (a.labels.agreement === undefined && a.labels.org === m.org && a.labels.dataset !== undefined && m.datasets.includes(a.labels.dataset)));
  return shred(ctx, inScope, `agreement ${end.agreement.id} ${why}`.slice(0, 1000));
}

function summaryOfCertificates(c: readonly DestructionCertificate[]): { certificateId: string; count: number; digest: string; artefacts: string[] }[] {
  return c.map((x) => ({ certificateId: x.certificateId, count: x.count, digest: x.digest, artefacts: x.artefacts.map((a) => a.id) }));
}

function parsePeriod(ctx: OpContext, args: { from?: string; to?: string }): { from: string; to: string } {
  const to = args.to ? new Date(args.to) : ctx.now;
  const from = args.from ? new Date(args.from) : new Date(to.getTime() - 30 * 86_400_000);
  if (Number.isNaN(to.getTime()) || Number.isNaN(from.getTime())) throw new GovernanceError('GOV_INVALID', 'from and to must be ISO 8601 dates or date-times', 'e.g. --from 2026-03-01 --to 2026-04-01');
  if (from.getTime() >= to.getTime()) throw new GovernanceError('GOV_INVALID', `the period is empty: from (${from.toISOString()}) is not before to (${to.toISOString()})`, 'from is inclusive, to exclusive');
  return { from: from.toISOString(), to: to.toISOString() };
}

function requireAudit(ctx: OpContext): AuditReader {
  if (!ctx.audit) throw new GovernanceError('GOV_INVALID', 'this Gatehouse cannot read its audit log, so flows and reports are unavailable here', 'run it where the log lives (gatehouse serve, or --workspace with the log directory)');
  return ctx.audit;
}

/** principal pseudonym (as stored in the log) → the principal's org attribute. */
function orgOfPseudonym(ctx: OpContext, audit: AuditReader): (pseudonym: string) => string | null {
  const cache = new Map<string, string | null>();
  return (ps) => {
    if (!cache.has(ps)) {
      const id = audit.principalOf(ps);
      cache.set(ps, id ? orgOfPrincipal(ctx.workspace.principals.get(id)) ?? id : null);
    }
    return cache.get(ps)!;
  };
}

async function auditEntries(audit: AuditReader, period: { from: string; to: string }): Promise<StoredAuditEntry[]> {
  const out: StoredAuditEntry[] = [];
  for await (const e of audit.entries(period)) out.push(e);
  return out;
}

// ───────────────────────────── vendors ─────────────────────────────

const vendorRegister: GovernanceOp<{ name: string; displayName?: string }> = {
  name: 'vendor.register', who: 'admin',
  summary: 'Register a partner organisation: from now on every request of its principals is gated',
  http: { method: 'POST', path: '/v1/governance/vendors' },
  args: obj(['name'], { name: str, displayName: str }),
  async run(ctx, a) {
    const { org, event } = await ctx.store.vendors.register({ name: a.name, ...(a.displayName !== undefined ? { displayName: a.displayName } : {}), by: ctx.caller.id });
    return { result: { org }, events: [event] };
  },
};

const vendorCertify: GovernanceOp<{ org: string; name: string; issuer: string; validUntil: string }> = {
  name: 'vendor.certify', who: 'admin',
  summary: 'Record a certification of a partner (e.g. ISO 27001) with its expiry',
  http: { method: 'POST', path: '/v1/governance/vendors/certifications' },
  args: obj(['org', 'name', 'issuer', 'validUntil'], { org: str, name: str, issuer: str, validUntil: isoTime }),
  async run(ctx, a) {
    const { certification, event } = await ctx.store.vendors.addCertification({ ...a, by: ctx.caller.id });
    return { result: { certification, risk: await ctx.store.vendors.risk(a.org, ctx.now) }, events: [event] };
  },
};

const vendorAuditReport: GovernanceOp<{ org: string; title: string; date: string; outcome: string }> = {
  name: 'vendor.audit-report', who: 'admin',
  summary: 'Record an audit report of a partner (pass, pass-with-findings, fail)',
  http: { method: 'POST', path: '/v1/governance/vendors/audit-reports' },
  args: obj(['org', 'title', 'date', 'outcome'], { org: str, title: str, date: isoTime, outcome: { type: 'string', enum: [...AUDIT_OUTCOMES] } }),
  async run(ctx, a) {
    const { report, event } = await ctx.store.vendors.addAuditReport({ org: a.org, title: a.title, date: a.date, outcome: a.outcome as AuditOutcome, by: ctx.caller.id });
    return { result: { report, risk: await ctx.store.vendors.risk(a.org, ctx.now) }, events: [event] };
  },
};

const vendorIncident: GovernanceOp<{ org: string; date: string; severity: string; summary: string; resolvedAt?: string | null }> = {
  name: 'vendor.incident', who: 'admin',
  summary: 'Record a security incident at a partner (an open high or critical incident raises its risk tier)',
  http: { method: 'POST', path: '/v1/governance/vendors/incidents' },
  args: obj(['org', 'date', 'severity', 'summary'], { org: str, date: isoTime, severity: { type: 'string', enum: [...SEVERITIES] }, summary: text(1000), resolvedAt: { type: ['string', 'null'], maxLength: 40 } }),
  async run(ctx, a) {
    const { incident, event } = await ctx.store.vendors.addIncident({ org: a.org, date: a.date, severity: a.severity as Severity, summary: a.summary, resolvedAt: a.resolvedAt ?? null, by: ctx.caller.id });
    return { result: { incident, risk: await ctx.store.vendors.risk(a.org, ctx.now) }, events: [event] };
  },
};

const vendorResolveIncident: GovernanceOp<{ id: string }> = {
  name: 'vendor.resolve-incident', who: 'admin',
  summary: 'Mark a partner incident resolved',
  http: { method: 'POST', path: '/v1/governance/vendors/incidents/resolve' },
  args: obj(['id'], { id: str }),
  async run(ctx, a) {
    const { incident, event } = await ctx.store.vendors.resolveIncident(a.id, ctx.caller.id);
    return { result: { incident, risk: await ctx.store.vendors.risk(incident.org, ctx.now) }, events: [event] };
  },
};

const vendorShow: GovernanceOp<{ org: string }> = {
  name: 'vendor.show', who: 'any',
  summary: 'A partner organisation: risk tier with its factors, certifications, audit reports, incidents (partners see their own)',
  http: { method: 'GET', path: '/v1/governance/vendors/show' },
  args: obj(['org'], { org: str }),
  async run(ctx, a) {
    requireOwnOrg(ctx, a.org, 'the vendor record');
    const org = await ctx.store.vendors.get(a.org);
    if (!org) throw new GovernanceError('GOV_UNKNOWN_ORG', `"${a.org.slice(0, 64)}" is not a registered partner`, 'register it with: gatehouse vendor register --name ORG');
    const v = ctx.store.vendors;
    return { result: { org, risk: await v.risk(a.org, ctx.now), certifications: await v.certifications(a.org), auditReports: await v.auditReports(a.org), incidents: await v.incidents(a.org) } };
  },
};

const vendorList: GovernanceOp<Record<string, never>> = {
  name: 'vendor.list', who: 'admin',
  summary: 'Registered partner organisations with their risk tiers',
  http: { method: 'GET', path: '/v1/governance/vendors' },
  args: obj([], {}),
  async run(ctx) {
    const vendors = [];
    for (const org of await ctx.store.vendors.list()) vendors.push({ ...org, risk: await ctx.store.vendors.risk(org.name, ctx.now) });
    return { result: { vendors } };
  },
};

// ───────────────────────────── agreements ─────────────────────────────

interface AgreementCreateArgs {
  kind: string; title: string; partner: string; ours?: string; effectiveFrom: string; endsOn?: string | null;
  datasets: string[]; purposes: string[]; ip?: string | null; destruction?: 'required' | 'not-required'; destroyWithinDays?: number; resultRetentionDays?: number | null;
}

const agreementCreate: GovernanceOp<AgreementCreateArgs> = {
  name: 'agreement.create', who: 'admin',
  summary: 'Record an agreement (NDA, DPA, SLA, MSA) with a registered partner: datasets, purposes, dates, IP, termination and retention clauses',
  http: { method: 'POST', path: '/v1/governance/agreements' },
  args: obj(['kind', 'title', 'partner', 'effectiveFrom', 'datasets', 'purposes'], {
    kind: { type: 'string', enum: [...AGREEMENT_KINDS] }, title: text(200), partner: str, ours: { ...str, description: 'our organisation (default: yours)' },
    effectiveFrom: isoTime, endsOn: { type: ['string', 'null'], maxLength: 40, description: 'inclusive end date; null or absent: open-ended' },
    datasets: strList, purposes: strList, ip: { type: ['string', 'null'], maxLength: 4000 },
    destruction: { type: 'string', enum: ['required', 'not-required'], description: 'destroy what was shared when it ends (default: required)' },
    destroyWithinDays: { type: 'integer', minimum: 0, maximum: 3650 }, resultRetentionDays: { type: ['integer', 'null'], minimum: 1, maximum: 36600 },
  }),
  async run(ctx, a) {
    const ours = a.ours ?? orgOfPrincipal(ctx.caller);
    if (!ours) throw new GovernanceError('GOV_INVALID', 'give our organisation (ours): your principal has no org attribute', 'pass --ours ORG');
    const termination = (a.destruction ?? 'required') === 'required' ? { destruction: 'required' as const, withinDays: a.destroyWithinDays ?? 30 } : { destruction: 'not-required' as const };
    const { agreement, event } = await ctx.store.agreements.create({
      kind: a.kind as AgreementKind, title: a.title, parties: { ours, partner: a.partner }, effectiveFrom: a.effectiveFrom, endsOn: a.endsOn ?? null,
      datasets: a.datasets, purposes: a.purposes, clauses: { ip: a.ip ?? null, termination, resultRetentionDays: a.resultRetentionDays ?? null }, by: ctx.caller.id,
    }, { knownDatasets: new Set(ctx.workspace.datasets.keys()) });
    return { result: { agreement }, events: [event] };
  },
};

const agreementShow: GovernanceOp<{ id: string }> = {
  name: 'agreement.show', who: 'any',
  summary: 'One agreement with its status and the grants citing it (partners see their own)',
  http: { method: 'GET', path: '/v1/governance/agreements/show' },
  args: obj(['id'], { id: str }),
  async run(ctx, a) {
    const agreement = await ctx.store.agreements.get(a.id, ctx.now);
    if (!agreement || (!ctx.isAdmin && orgOfPrincipal(ctx.caller) !== agreement.parties.partner)) {
      throw new GovernanceError('GOV_NOT_FOUND', `no agreement "${a.id.slice(0, 64)}" that you may see`, 'list agreements with: gatehouse agreement list');
    }
    const grants = (await ctx.store.grants.list({ org: agreement.parties.partner, all: true }, ctx.now)).filter((g) => g.agreementId === agreement.id);
    return { result: { agreement, grants } };
  },
};

const agreementCloseOut: GovernanceOp<Record<string, never>> = {
  name: 'agreement.close-out', who: 'admin',
  summary: 'Close out agreements that reached their end: revoke their grants and crypto-shred what was shared (the scheduler runs this)',
  http: { method: 'POST', path: '/v1/governance/agreements/close-out' },
  args: obj([], {}),
  async run(ctx) {
    const ended = await ctx.store.agreements.closeOutEnded(ctx.caller.id, ctx.now);
    const certificates: DestructionCertificate[] = [];
    const events: GovernanceEvent[] = [];
    const closed = [];
    for (const end of ended) {
      const s = await shredAgreement(ctx, end, 'ended');
      certificates.push(...s.certificates);
      events.push(...end.events, ...s.events);
      closed.push({ agreement: end.agreement.id, partner: end.agreement.parties.partner, revokedGrants: end.revokedGrants, destruction: end.destruction, destroyed: s.destroyed, held: s.held });
    }
    return { result: { closed, certificates: summaryOfCertificates(certificates) }, events, certificates };
  },
};

// ───────────────────────────── grants ─────────────────────────────

const grantRequest: GovernanceOp<{ dataset: string; purpose: string; days: number; justification: string }> = {
  name: 'grant.request', who: 'any',
  summary: 'Ask for time-boxed access to a dataset for a purpose (for yourself); a dataset owner decides',
  http: { method: 'POST', path: '/v1/governance/grants/requests' },
  args: obj(['dataset', 'purpose', 'days', 'justification'], { dataset: str, purpose: str, days: { type: 'integer', minimum: 1, maximum: 366 }, justification: text(2000) }),
  async run(ctx, a) {
    const org = orgOfPrincipal(ctx.caller);
    if (!org) throw new GovernanceError('GOV_INVALID', 'your principal has no organisation (org attribute), so there is no agreement to grant under', 'ask an administrator');
    const { request, event } = await ctx.store.grants.request({ principalId: ctx.caller.id, org, dataset: a.dataset, purpose: a.purpose, days: a.days, justification: a.justification, knownDatasets: new Set(ctx.workspace.datasets.keys()) });
    return { result: { request }, events: [event] };
  },
};

const grantApprove: GovernanceOp<{ id: string; agreementId?: string }> = {
  name: 'grant.approve', who: 'any',
  summary: 'Approve an access request (dataset owners; never your own): a grant under the active agreement',
  http: { method: 'POST', path: '/v1/governance/grants/requests/approve' },
  args: obj(['id'], { id: str, agreementId: str }),
  async run(ctx, a) {
    const { request, grant, events } = await ctx.store.grants.approve(a.id, { approverId: ctx.caller.id, isOwner: (p, d) => ctx.isOwner(p, d), ...(a.agreementId ? { agreementId: a.agreementId } : {}) });
    return { result: { request, grant }, events };
  },
};

const grantDeny: GovernanceOp<{ id: string; reason: string }> = {
  name: 'grant.deny', who: 'any',
  summary: 'Deny an access request (dataset owners; never your own)',
  http: { method: 'POST', path: '/v1/governance/grants/requests/deny' },
  args: obj(['id', 'reason'], { id: str, reason: text(1000) }),
  async run(ctx, a) {
    const { request, event } = await ctx.store.grants.deny(a.id, { approverId: ctx.caller.id, isOwner: (p, d) => ctx.isOwner(p, d), reason: a.reason });
    return { result: { request }, events: [event] };
  },
};

const grantList: GovernanceOp<{ org?: string; principal?: string; dataset?: string; all?: boolean }> = {
  name: 'grant.list', who: 'any',
  summary: 'Grants in force (all: true for revoked and expired too); partners see their own',
  http: { method: 'GET', path: '/v1/governance/grants' },
  args: obj([], { org: str, principal: str, dataset: str, all: { type: 'boolean' } }),
  async run(ctx, a) {
    if (ctx.isAdmin) {
      return { result: { grants: await ctx.store.grants.list({ ...(a.org ? { org: a.org } : {}), ...(a.principal ? { principalId: a.principal } : {}), ...(a.dataset ? { dataset: a.dataset } : {}), ...(a.all ? { all: true } : {}) }, ctx.now) } };
    }
    const org = orgOfPrincipal(ctx.caller);
    if (!org) return { result: { grants: [] } };
    const mine = (await ctx.store.grants.list({ org, ...(a.dataset ? { dataset: a.dataset } : {}), ...(a.all ? { all: true } : {}) }, ctx.now))
      .filter((g) => g.grantee.kind === 'org' || g.grantee.id === ctx.caller.id);
    return { result: { grants: mine } };
  },
};

const grantRequests: GovernanceOp<{ dataset?: string }> = {
  name: 'grant.requests', who: 'any',
  summary: 'Pending access requests: those you may decide (owners, administrators) and your own',
  http: { method: 'GET', path: '/v1/governance/grants/requests' },
  args: obj([], { dataset: str }),
  async run(ctx, a) {
    const pending = await ctx.store.grants.pendingRequests(a.dataset ? { dataset: a.dataset } : {});
    const visible = pending.filter((r) => ctx.isAdmin || r.principalId === ctx.caller.id || ctx.isOwner(ctx.caller.id, r.dataset));
    return { result: { requests: visible.map((r) => ({ ...r, canDecide: r.principalId !== ctx.caller.id && ctx.isOwner(ctx.caller.id, r.dataset) })) } };
  },
};

const grantRevoke: GovernanceOp<{ id: string; reason: string }> = {
  name: 'grant.revoke', who: 'admin',
  summary: 'Revoke a grant; the next request under it is denied',
  http: { method: 'POST', path: '/v1/governance/grants/revoke' },
  args: obj(['id', 'reason'], { id: str, reason: text(1000) }),
  async run(ctx, a) {
    const { grant, event } = await ctx.store.grants.revoke(a.id, { by: ctx.caller.id, reason: a.reason });
    return { result: { grant }, events: [event] };
  },
};

const grantCreate: GovernanceOp<{ principal?: string; org?: string; dataset: string; purpose: string; agreementId: string; from?: string; until: string }> = {
  name: 'grant.create', who: 'admin',
  summary: 'Grant a principal (or every principal of a partner org) a dataset for a purpose, citing an active agreement',
  http: { method: 'POST', path: '/v1/governance/grants' },
  args: obj(['dataset', 'purpose', 'agreementId', 'until'], { principal: str, org: str, dataset: str, purpose: str, agreementId: str, from: isoTime, until: isoTime }),
  async run(ctx, a) {
    if ((a.principal === undefined) === (a.org === undefined)) throw new GovernanceError('GOV_INVALID', 'give exactly one grantee: principal or org', 'e.g. --principal rhea, or --org northwind-research');
    let grantee: Grantee;
    if (a.principal !== undefined) {
      const p = ctx.workspace.principals.get(a.principal);
      const org = orgOfPrincipal(p);
      if (!p || !org) throw new GovernanceError('GOV_INVALID', `"${a.principal.slice(0, 64)}" is not a workspace principal with an org attribute`, 'grant to a principal of a registered partner');
      grantee = { kind: 'principal', id: p.id, org };
    } else grantee = { kind: 'org', org: a.org! };
    const { grant, event } = await ctx.store.grants.create({ grantee, dataset: a.dataset, purpose: a.purpose, agreementId: a.agreementId, ...(a.from ? { from: a.from } : {}), until: a.until, by: ctx.caller.id });
    return { result: { grant }, events: [event] };
  },
};

// ───────────────────────────── acknowledgements, training, gate ─────────────────────────────

const ackPublish: GovernanceOp<{ name: string; text: string }> = {
  name: 'acknowledge.publish', who: 'admin',
  summary: 'Publish a document to acknowledge (a new version when the text changed: earlier signatures become stale)',
  http: { method: 'POST', path: '/v1/governance/acknowledgements' },
  args: obj(['name', 'text'], { name: str, text: text(100_000) }),
  async run(ctx, a) {
    const { document, changed, event } = await ctx.store.acknowledgements.publish({ name: a.name, text: a.text, by: ctx.caller.id });
    return { result: { document, changed }, events: event ? [event] : [] };
  },
};

const ackShow: GovernanceOp<{ name: string }> = {
  name: 'acknowledge.show', who: 'any',
  summary: 'The current text of a document, its SHA-256 (what you sign) and whether you have signed it',
  http: { method: 'GET', path: '/v1/governance/acknowledgements' },
  args: obj(['name'], { name: str }),
  async run(ctx, a) {
    const document = await ctx.store.acknowledgements.current(a.name);
    if (!document) throw new GovernanceError('GOV_NOT_FOUND', `no published document "${a.name.slice(0, 64)}"`, 'an administrator publishes it: gatehouse acknowledge publish');
    return { result: { document, yours: await ctx.store.acknowledgements.state(ctx.caller.id, a.name) } };
  },
};

const ackSign: GovernanceOp<{ name: string; sha256: string }> = {
  name: 'acknowledge.sign', who: 'any',
  summary: 'Sign the current version of a document: give the SHA-256 of the text you read',
  http: { method: 'POST', path: '/v1/governance/acknowledgements/sign' },
  args: obj(['name', 'sha256'], { name: str, sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' } }),
  async run(ctx, a) {
    const { signature, event } = await ctx.store.acknowledgements.sign({ principalId: ctx.caller.id, document: a.name, sha256: a.sha256.toLowerCase() });
    return { result: { signature }, events: [event] };
  },
};

const trainingRecord: GovernanceOp<{ principal: string; course: string; completedAt: string; expiresAt: string }> = {
  name: 'training.record', who: 'admin',
  summary: 'Record a completed training course with its expiry',
  http: { method: 'POST', path: '/v1/governance/training' },
  args: obj(['principal', 'course', 'completedAt', 'expiresAt'], { principal: str, course: str, completedAt: isoTime, expiresAt: isoTime }),
  async run(ctx, a) {
    if (!ctx.workspace.principals.has(a.principal)) throw new GovernanceError('GOV_INVALID', `"${a.principal.slice(0, 64)}" is not a workspace principal`, 'check the principal id');
    const { record, event } = await ctx.store.training.record({ principalId: a.principal, course: a.course, completedAt: a.completedAt, expiresAt: a.expiresAt, by: ctx.caller.id });
    return { result: { record }, events: [event] };
  },
};

const trainingShow: GovernanceOp<{ principal?: string }> = {
  name: 'training.show', who: 'any',
  summary: 'Training records of a principal (yours unless you are an administrator) and the courses the gate requires',
  http: { method: 'GET', path: '/v1/governance/training' },
  args: obj([], { principal: str }),
  async run(ctx, a) {
    const who = a.principal ?? ctx.caller.id;
    if (who !== ctx.caller.id && !ctx.isAdmin) forbidden('you may only see your own training records', 'ask an administrator');
    const courses: string[] = [];
    for (const c of CLASSIFICATIONS) courses.push(...(await ctx.store.gate.requirements(c)).courses);
    const required = [];
    for (const course of new Set(courses)) required.push({ course, ...(await ctx.store.training.state(who, course, ctx.now)) });
    return { result: { principal: who, records: await ctx.store.training.records(who), required } };
  },
};

const gateShow: GovernanceOp<Record<string, never>> = {
  name: 'gate.show', who: 'any',
  summary: 'What the gate requires per classification: maximum vendor tier, courses, documents',
  http: { method: 'GET', path: '/v1/governance/gate' },
  args: obj([], {}),
  async run(ctx) {
    const requirements: Record<string, unknown> = {};
    for (const c of CLASSIFICATIONS) requirements[c] = await ctx.store.gate.requirements(c);
    return { result: { requirements } };
  },
};

const gateSet: GovernanceOp<{ classification: string; maxVendorTier: number; courses?: string[]; documents?: string[] }> = {
  name: 'gate.set', who: 'admin',
  summary: 'Set what the gate requires for a classification',
  http: { method: 'POST', path: '/v1/governance/gate' },
  args: obj(['classification', 'maxVendorTier'], { classification: { type: 'string', enum: [...CLASSIFICATIONS] }, maxVendorTier: { type: 'integer', minimum: 1, maximum: 4 }, courses: strList, documents: strList }),
  async run(ctx, a) {
    const { requirements, event } = await ctx.store.gate.setRequirements(a.classification as Classification, { maxVendorTier: a.maxVendorTier as RiskTier, courses: a.courses ?? [], documents: a.documents ?? [], by: ctx.caller.id });
    return { result: { classification: a.classification, requirements }, events: [event] };
  },
};

// ───────────────────────────── keys ─────────────────────────────

const keysStatus: GovernanceOp<Record<string, never>> = {
  name: 'keys.status', who: 'admin',
  summary: 'Key-encryption key versions and data keys per version and kind',
  http: { method: 'GET', path: '/v1/governance/keys' },
  args: obj([], {}),
  async run(ctx) {
    const { keyring, dataKeys } = await ctx.vault();
    return { result: { activeVersion: keyring.activeVersion(), versions: keyring.versions(), dataKeys: await dataKeys.status() } };
  },
};

const keysRotate: GovernanceOp<Record<string, never>> = {
  name: 'keys.rotate', who: 'admin',
  summary: 'Rotate the key-encryption key and re-wrap every data key under it (no downtime: data is not re-encrypted), then retire the old versions',
  http: { method: 'POST', path: '/v1/governance/keys/rotate' },
  args: obj([], {}),
  async run(ctx) {
    const { keyring, dataKeys } = await ctx.vault();
    const previous = keyring.activeVersion();
    const activeVersion = await keyring.rotate();
    const rewrap = await dataKeys.rewrapAll({ retire: true });
    const detail = `key-encryption key rotated from ${previous} to ${activeVersion}; ${rewrap.rewrapped} data key(s) re-wrapped, ${rewrap.retired.length} version(s) retired`;
    return {
      result: { previousVersion: previous, activeVersion, rewrap, status: await dataKeys.status() },
      events: [{ action: 'keys.rotate', actor: ctx.caller.id, time: ctx.now.toISOString(), subject: null, outcome: 'updated', refs: { kekVersion: activeVersion }, detail }],
    };
  },
};

/** Crypto-shreds an encrypted dataset: every data key of `dataset:<name>` is destroyed, so every copy of its file is unreadable. */
const keysShredDataset: GovernanceOp<{ dataset: string; reason: string }> = {
  name: 'keys.shred-dataset', who: 'admin',
  summary: 'Crypto-shred an encrypted dataset (gatehouse ingest): its data keys are destroyed, so every copy of the file becomes unreadable; refused under a legal hold',
  http: { method: 'POST', path: '/v1/governance/keys/shred-dataset' },
  args: obj(['dataset', 'reason'], { dataset: str, reason: { type: 'string', minLength: 1, maxLength: 1000 } }),
  async run(ctx, a) {
    const holds = await ctx.store.retention.holdsOn([{ kind: 'dataset', id: a.dataset }], ctx.now);
    if (holds.length > 0) throw new GovernanceError('GOV_LEGAL_HOLD', `dataset "${a.dataset}" is under legal hold ${holds.map((h) => h.id).join(', ')}: nothing was destroyed`, 'release the hold first (gatehouse retention release HOLD_ID), if the matter allows');
    const { dataKeys } = await ctx.vault();
    const keys = await dataKeys.list({ kind: 'dataset', subject: `dataset:${a.dataset}` });
    if (keys.length === 0) throw new GovernanceError('GOV_NOT_FOUND', `no live data key for dataset "${a.dataset}"`, 'only datasets ingested with gatehouse ingest are encrypted under a data key');
    const records = [];
    for (const k of keys) records.push(await dataKeys.destroy(k.keyId, a.reason));
    const detail = `dataset "${a.dataset}" crypto-shredded: ${records.length} data key(s) destroyed (${records.map((r) => `${r.keyId} wrapped-key sha256 ${r.wrappedKeyDigest}`).join('; ')}); reason: ${a.reason}`;
    return {
      result: { dataset: a.dataset, destroyed: records, next: 'remove the dataset from gatehouse.yaml: its file can no longer be decrypted' },
      events: [{ action: 'keys.shred-dataset', actor: ctx.caller.id, time: ctx.now.toISOString(), subject: `dataset:${a.dataset}`, outcome: 'revoked', refs: { dataset: a.dataset }, detail }],
    };
  },
};

// ───────────────────────────── retention ─────────────────────────────

const retentionRules: GovernanceOp<Record<string, never>> = {
  name: 'retention.rules', who: 'admin',
  summary: 'Retention rules and active legal holds',
  http: { method: 'GET', path: '/v1/governance/retention' },
  args: obj([], {}),
  async run(ctx) {
    return { result: { rules: await ctx.store.retention.rules(), holds: await ctx.store.retention.activeHolds(ctx.now) } };
  },
};

const retentionSetRule: GovernanceOp<{ kind: string; scope: string; days: number }> = {
  name: 'retention.set-rule', who: 'admin',
  summary: 'Set how many days results, exports, grants or datasets are kept (scope: a dataset, or * for all)',
  http: { method: 'POST', path: '/v1/governance/retention/rules' },
  args: obj(['kind', 'scope', 'days'], { kind: { type: 'string', enum: [...RETENTION_KINDS] }, scope: str, days: { type: 'integer', minimum: 0, maximum: 36600 } }),
  async run(ctx, a) {
    const { rule, event } = await ctx.store.retention.setRule({ kind: a.kind as RetentionKind, scope: a.scope, days: a.days, by: ctx.caller.id });
    return { result: { rule }, events: [event] };
  },
};

const retentionHold: GovernanceOp<{ kind: string; subject: string; reason: string }> = {
  name: 'retention.hold', who: 'admin',
  summary: 'Place a legal hold on a dataset, agreement, principal or artefact: nothing it covers is destroyed until released',
  http: { method: 'POST', path: '/v1/governance/retention/holds' },
  args: obj(['kind', 'subject', 'reason'], { kind: { type: 'string', enum: [...HOLD_SUBJECT_KINDS] }, subject: str, reason: text(1000) }),
  async run(ctx, a) {
    const artefacts = a.kind === 'artefact' ? (await ctx.vault()).artefacts : null;
    if (artefacts) { try { await artefacts.meta(a.subject); } catch (err) { keyRefusal(err); } }
    const { hold, event } = await ctx.store.retention.placeHold({ subject: { kind: a.kind as HoldSubjectKind, id: a.subject }, reason: a.reason, placedBy: ctx.caller.id });
    if (artefacts) { try { await artefacts.setLegalHold(a.subject, hold.id); } catch (err) { await ctx.store.retention.releaseHold(hold.id, ctx.caller.id); keyRefusal(err); } }
    return { result: { hold }, events: [event] };
  },
};

const retentionRelease: GovernanceOp<{ id: string }> = {
  name: 'retention.release', who: 'admin',
  summary: 'Release a legal hold',
  http: { method: 'POST', path: '/v1/governance/retention/holds/release' },
  args: obj(['id'], { id: str }),
  async run(ctx, a) {
    const { hold, event } = await ctx.store.retention.releaseHold(a.id, ctx.caller.id);
    if (hold.subject.kind === 'artefact') {
      const still = (await ctx.store.retention.holdsOn([{ kind: 'artefact', id: hold.subject.id }])).filter((h) => h.id !== hold.id);
      const { artefacts } = await ctx.vault();
      try {
        const meta = await artefacts.meta(hold.subject.id);
        if (meta.destroyedAt === null && meta.legalHold === hold.id) await artefacts.setLegalHold(hold.subject.id, still[0]?.id ?? null);
      } catch { /* the artefact is gone: nothing held any more */ }
    }
    return { result: { hold }, events: [event] };
  },
};

const retentionRun: GovernanceOp<{ dryRun?: boolean }> = {
  name: 'retention.run', who: 'admin',
  summary: 'Enforce retention: close out ended agreements, crypto-shred artefacts past their retention (never those under legal hold) with a certificate',
  http: { method: 'POST', path: '/v1/governance/retention/run' },
  args: obj([], { dryRun: { type: 'boolean' } }),
  async run(ctx, a) {
    const { artefacts } = await ctx.vault();
    const live = await artefacts.list();
    const plan = await ctx.store.retention.plan(ctx.now, live.map(candidateOf));
    const expired = new Set((await artefacts.expired(ctx.now)).map((x) => x.id));
    const due = new Set([...plan.destroy.map((d) => d.subject), ...expired]);
    for (const h of plan.held) due.delete(h.subject);
    const heldReport = plan.held.map((h) => ({ artefact: h.subject, dueAt: h.dueAt, holds: h.holds.map((x) => x.id) }));
    if (a.dryRun) {
      const would = live.filter((x) => due.has(x.id));
      return { result: { dryRun: true, destroy: would.map((x) => ({ artefact: x.id, held: x.legalHold })), held: heldReport, keep: plan.keep.length } };
    }
    const events: GovernanceEvent[] = [];
    const certificates: DestructionCertificate[] = [];
    const closed = [];
    for (const end of await ctx.store.agreements.closeOutEnded(ctx.caller.id, ctx.now)) {
      const s = await shredAgreement(ctx, end, 'ended');
      certificates.push(...s.certificates);
      events.push(...end.events, ...s.events);
      closed.push({ agreement: end.agreement.id, revokedGrants: end.revokedGrants.length, destroyed: s.destroyed, held: s.held });
    }
    const fresh = (await artefacts.list()).filter((x) => due.has(x.id));
    const s = await shred(ctx, fresh, 'retention period ended');
    certificates.push(...s.certificates);
    events.push(...s.events);
    const held = [...heldReport, ...s.held.map((h) => ({ artefact: h.artefact, dueAt: null, holds: h.holds }))];
    return { result: { destroyed: s.destroyed, held, keep: plan.keep.length, closedAgreements: closed, certificates: summaryOfCertificates(certificates) }, events, certificates };
  },
};

// ───────────────────────────── classification ─────────────────────────────

const classifyRun: GovernanceOp<{ dataset: string }> = {
  name: 'classify.run', who: 'admin',
  summary: 'Propose classifications for a dataset\'s columns from their names and a sample of values (values are never returned or stored); an administrator confirms or rejects each',
  http: { method: 'POST', path: '/v1/governance/classify/run' },
  args: obj(['dataset'], { dataset: str }),
  async run(ctx, a) {
    const ds = ctx.workspace.datasets.get(a.dataset);
    if (!ds) throw new GovernanceError('GOV_UNKNOWN_DATASET', `no dataset "${a.dataset.slice(0, 64)}" in the workspace`, 'list datasets with: gatehouse datasets');
    const plan = samplingPlan(ds);
    const samples = await ctx.sample(ds.name, plan.columns, plan.limit);
    const proposals = proposeClassifications(ds, samples, { now: ctx.now });
    const events: GovernanceEvent[] = [];
    const stored = [];
    for (const p of proposals) {
      const r = await ctx.store.classification.propose({ dataset: p.dataset, column: p.column, level: p.level, tags: p.tags, evidence: p.evidence, confidence: p.confidence, proposedBy: 'classifier' });
      if (r.event) events.push(r.event);
      stored.push({ ...r.proposal, declared: p.declared, created: r.created });
    }
    return { result: { dataset: ds.name, sampling: plan.description, proposals: stored }, events };
  },
};

const classifyList: GovernanceOp<{ dataset?: string; status?: string }> = {
  name: 'classify.list', who: 'admin',
  summary: 'Classification proposals (pending by default)',
  http: { method: 'GET', path: '/v1/governance/classify' },
  args: obj([], { dataset: str, status: { type: 'string', enum: ['pending', 'confirmed', 'rejected', 'all'] } }),
  async run(ctx, a) {
    const status = a.status ?? 'pending';
    return { result: { proposals: await ctx.store.classification.list({ ...(a.dataset ? { dataset: a.dataset } : {}), ...(status !== 'all' ? { status: status as ClassificationProposal['status'] } : {}) }) } };
  },
};

const classifyConfirm: GovernanceOp<{ id: string }> = {
  name: 'classify.confirm', who: 'admin',
  summary: 'Confirm a classification proposal (it can only make a column stricter than declared)',
  http: { method: 'POST', path: '/v1/governance/classify/confirm' },
  args: obj(['id'], { id: str }),
  async run(ctx, a) {
    const { proposal, event } = await ctx.store.classification.confirm(a.id, ctx.caller.id);
    return { result: { proposal }, events: [event] };
  },
};

const classifyReject: GovernanceOp<{ id: string; reason: string }> = {
  name: 'classify.reject', who: 'admin',
  summary: 'Reject a classification proposal',
  http: { method: 'POST', path: '/v1/governance/classify/reject' },
  args: obj(['id', 'reason'], { id: str, reason: text(1000) }),
  async run(ctx, a) {
    const { proposal, event } = await ctx.store.classification.reject(a.id, ctx.caller.id, a.reason);
    return { result: { proposal }, events: [event] };
  },
};

// ───────────────────────────── flows and reports ─────────────────────────────

const periodArgs = { from: isoTime, to: isoTime } as const;

async function flowMap(ctx: OpContext, a: { from?: string; to?: string }): Promise<FlowMap> {
  requireAdminOrAuditor(ctx, 'the data-flow map');
  const audit = requireAudit(ctx);
  const period = parsePeriod(ctx, a);
  const map = buildFlowMap(await auditEntries(audit, period), { ...period, orgOf: orgOfPseudonym(ctx, audit), generatedAt: ctx.now.toISOString() });
  const { artefacts } = await ctx.vault();
  const { derivatives } = lineage(ctx.workspace, await artefacts.list(), await ctx.store.retention.rules());
  return { ...map, derivations: summariseDerivations(derivatives) };
}

const flowsMap: GovernanceOp<{ from?: string; to?: string }> = {
  name: 'flows.map', who: 'any',
  summary: 'The data-flow map for a period (default: the last 30 days): datasets → interfaces → partners with volumes, from the audit log (administrators, auditors)',
  http: { method: 'GET', path: '/v1/governance/flows' },
  args: obj([], periodArgs),
  async run(ctx, a) {
    return { result: await flowMap(ctx, a) };
  },
};

const lineageList: GovernanceOp<{ destroyed?: boolean }> = {
  name: 'lineage.list', who: 'any',
  summary: 'Derivatives (saved results, exports) with their sources and what they inherit: the strictest classification, the shortest retention, the agreement (administrators, auditors)',
  http: { method: 'GET', path: '/v1/governance/lineage' },
  args: obj([], { destroyed: { type: 'boolean', description: 'include crypto-shredded derivatives' } }),
  async run(ctx, a) {
    requireAdminOrAuditor(ctx, 'the lineage of derivatives');
    const { artefacts } = await ctx.vault();
    const all = await artefacts.list();
    const l = lineage(ctx.workspace, a.destroyed ? all : all.filter((x) => x.destroyedAt === null), await ctx.store.retention.rules());
    return { result: l };
  },
};

const flowsSvg: GovernanceOp<{ from?: string; to?: string }> = {
  name: 'flows.svg', who: 'any',
  summary: 'The data-flow map rendered as SVG ({ svg }; ?format=svg serves image/svg+xml)',
  http: { method: 'GET', path: '/v1/governance/flows/svg' },
  args: obj([], { ...periodArgs, format: { type: 'string', enum: ['json', 'svg'] } }),
  async run(ctx, a) {
    return { result: { svg: renderFlowSvg(await flowMap(ctx, a)) } };
  },
};

const MEDIA = { html: 'text/html; charset=utf-8', csv: 'text/csv; charset=utf-8', json: 'application/json' } as const;

const reportBuild: GovernanceOp<{ from?: string; to?: string; format?: 'html' | 'csv' | 'json'; section?: string; controls?: string }> = {
  name: 'report.build', who: 'any',
  summary: 'The compliance report for a period (default: the last 30 days) as html, csv or json: { mediaType, body } (administrators, auditors); with controls, the evidence mapped to a framework\'s controls (docs/controls.md)',
  http: { method: 'GET', path: '/v1/governance/report' },
  args: obj([], { ...periodArgs, format: { type: 'string', enum: ['html', 'csv', 'json'] }, section: str, controls: { type: 'string', enum: [...FRAMEWORK_IDS], description: 'map the evidence to the controls of nist-800-171, hipaa-security or iso27001' } }),
  async run(ctx, a) {
    requireAdminOrAuditor(ctx, 'the compliance report');
    const audit = requireAudit(ctx);
    const period = parsePeriod(ctx, a);
    const entries = await auditEntries(audit, period);
    if (a.controls !== undefined) {
      const framework = FRAMEWORKS[a.controls];
      if (!framework) throw new GovernanceError('GOV_INVALID', `no control framework "${String(a.controls).slice(0, 40)}"`, `use one of ${FRAMEWORK_IDS.join(', ')}`);
      if (a.format === 'csv') throw new GovernanceError('GOV_INVALID', 'the controls report is html or json', 'use --format html (printable) or json');
      const evidence = await gatherEvidence({ workspace: ctx.workspace, store: ctx.store, entries, period, now: ctx.now });
      const r = controlsReport(framework, evidence, { workspace: ctx.workspace.name, period, generatedAt: ctx.now.toISOString() });
      return { result: a.format === 'html' ? { mediaType: MEDIA.html, body: renderControlsHtml(r) } : { mediaType: MEDIA.json, body: r } };
    }
    const s = ctx.store;
    const destructions = entries.filter((e) => e.action === 'governance.destruction' && e.decision === 'allow').map((e) => {
      let cert: { certificateId?: string; artefacts?: { id: string }[] } = {};
      try { cert = JSON.parse(e.reasons[1] ?? '{}') as typeof cert; } catch { /* an older entry */ }
      const reason = /; reason: (.*)$/s.exec(e.reasons[0] ?? '')?.[1] ?? (e.reasons[0] ?? '');
      const ids = (cert.artefacts ?? []).map((x) => x.id);
      return { at: e.time, subject: `certificate ${cert.certificateId ?? '?'}${ids.length ? ` for ${ids.slice(0, 3).join(', ')}${ids.length > 3 ? ` and ${ids.length - 3} more` : ''}` : ''}`, artefacts: ids, reason };
    });
    const soon = ctx.now.getTime() + 60 * 86_400_000;
    const report = buildReport({
      period, generatedAt: ctx.now.toISOString(), workspace: ctx.workspace.name, entries, orgOf: orgOfPseudonym(ctx, audit),
      findings: (await s.findings.list({ includeClosed: false }, ctx.now)).map((f) => ({ id: f.id, title: f.title, severity: f.severity, owner: f.owner, dueDate: f.dueDate, status: f.overdue ? `${f.status} (overdue)` : f.status })),
      agreements: (await s.agreements.list({}, ctx.now)).map((x) => ({ id: x.id, kind: x.kind, partner: x.parties.partner, status: x.status, effectiveFrom: x.effectiveFrom, endsOn: x.endsOn })),
      grants: (await s.grants.list({ all: true }, ctx.now)).map((g) => ({
        id: g.id, principal: g.grantee.kind === 'principal' ? g.grantee.id : null, org: g.grantee.org, dataset: g.dataset, purpose: g.purpose, until: g.until,
        status: g.revoked ? 'revoked' : g.until <= ctx.now.toISOString() ? 'expired' : g.from > ctx.now.toISOString() ? 'not yet valid' : 'active',
      })),
      vendors: await Promise.all((await s.vendors.list()).map(async (v) => {
        const risk = await s.vendors.risk(v.name, ctx.now);
        return { org: v.name, tier: `${risk.tier}${risk.factors.length ? ` (${risk.factors.join('; ')})` : ''}`, expiringCertificates: (await s.vendors.certifications(v.name)).filter((c) => Date.parse(c.validUntil) <= soon).map((c) => ({ name: c.name, validUntil: c.validUntil })) };
      })),
      destructions,
      budgets: await ctx.budgetUse(),
    });
    const format = a.format ?? 'json';
    const body = format === 'html' ? renderReportHtml(report) : format === 'csv' ? renderReportCsv(report, a.section ? { section: a.section } : {}) : report;
    return { result: { mediaType: MEDIA[format], body } };
  },
};

// ───────────────────────────── findings ─────────────────────────────

const findingCreate: GovernanceOp<{ title: string; severity: string; owner: string; dueDate: string; notes?: string }> = {
  name: 'finding.create', who: 'admin',
  summary: 'Open a finding (remediation tracking) with an owner and a due date; reports list it until closed',
  http: { method: 'POST', path: '/v1/governance/findings' },
  args: obj(['title', 'severity', 'owner', 'dueDate'], { title: text(300), severity: { type: 'string', enum: [...SEVERITIES] }, owner: str, dueDate: isoTime, notes: text(4000) }),
  async run(ctx, a) {
    const { finding, event } = await ctx.store.findings.create({ title: a.title, severity: a.severity as Severity, owner: a.owner, dueDate: a.dueDate, ...(a.notes ? { notes: a.notes } : {}), by: ctx.caller.id });
    return { result: { finding }, events: [event] };
  },
};

const findingList: GovernanceOp<{ status?: string; overdue?: boolean; owner?: string; all?: boolean }> = {
  name: 'finding.list', who: 'any',
  summary: 'Findings: open and in progress by default (administrators, auditors)',
  http: { method: 'GET', path: '/v1/governance/findings' },
  args: obj([], { status: { type: 'string', enum: [...FINDING_STATUSES] }, overdue: { type: 'boolean' }, owner: str, all: { type: 'boolean' } }),
  async run(ctx, a) {
    requireAdminOrAuditor(ctx, 'the findings list');
    return { result: { findings: await ctx.store.findings.list({ ...(a.status ? { status: a.status as FindingStatus } : {}), ...(a.overdue ? { overdue: true } : {}), ...(a.owner ? { owner: a.owner } : {}), ...(a.all || a.status === 'closed' ? { includeClosed: true } : {}) }, ctx.now) } };
  },
};

const findingUpdate: GovernanceOp<{ id: string; status?: string; note?: string }> = {
  name: 'finding.update', who: 'admin',
  summary: 'Move a finding (open ⇄ in-progress → closed) and/or add a note',
  http: { method: 'POST', path: '/v1/governance/findings/update' },
  args: obj(['id'], { id: str, status: { type: 'string', enum: [...FINDING_STATUSES] }, note: text(4000) }),
  async run(ctx, a) {
    if (a.status === undefined && a.note === undefined) throw new GovernanceError('GOV_INVALID', 'give a new status, a note, or both', 'e.g. --status in-progress --note "vendor contacted"');
    const events: GovernanceEvent[] = [];
    let finding = await ctx.store.findings.get(a.id, ctx.now);
    if (!finding) throw new GovernanceError('GOV_NOT_FOUND', `no finding "${a.id.slice(0, 64)}"`, 'list findings with: gatehouse finding list');
    if (a.status !== undefined) {
      const r = await ctx.store.findings.setStatus(a.id, { status: a.status as FindingStatus, by: ctx.caller.id, ...(a.note !== undefined ? { note: a.note } : {}) });
      finding = r.finding;
      events.push(r.event);
    } else {
      finding = await ctx.store.findings.addNote(a.id, { by: ctx.caller.id, text: a.note! });
      events.push({ action: 'finding.note', actor: ctx.caller.id, time: ctx.now.toISOString(), subject: a.id, outcome: 'updated', refs: { findingId: a.id }, detail: `note added to finding ${a.id}` });
    }
    return { result: { finding }, events };
  },
};

const findingClose: GovernanceOp<{ id: string; note: string }> = {
  name: 'finding.close', who: 'admin',
  summary: 'Close a finding with a note saying how it was remediated',
  http: { method: 'POST', path: '/v1/governance/findings/close' },
  args: obj(['id', 'note'], { id: str, note: text(4000) }),
  async run(ctx, a) {
    const { finding, event } = await ctx.store.findings.setStatus(a.id, { status: 'closed', by: ctx.caller.id, note: a.note });
    return { result: { finding }, events: [event] };
  },
};

/** Terminating an agreement revokes its grants at once and crypto-shreds what was shared. */
const agreementTerminate: GovernanceOp<{ id: string; reason: string }> = {
  name: 'agreement.terminate',
  who: 'admin',
  summary: 'Terminate an agreement: its grants are revoked at once and the partner\'s saved results are crypto-shredded (certificate in the audit log)',
  http: { method: 'POST', path: '/v1/governance/agreements/terminate' },
  args: { type: 'object', additionalProperties: false, required: ['id', 'reason'], properties: { id: str, reason: { type: 'string', minLength: 1, maxLength: 1000 } } },
  async run(ctx, args) {
    const end = await ctx.store.agreements.terminate(args.id, { by: ctx.caller.id, reason: args.reason });
    const s = await shredAgreement(ctx, end, `terminated: ${args.reason}`);
    return {
      result: { agreement: end.agreement, revokedGrants: end.revokedGrants, destruction: end.destruction, destroyed: s.destroyed, held: s.held, certificates: summaryOfCertificates(s.certificates) },
      events: [...end.events, ...s.events],
      certificates: s.certificates,
    };
  },
};

const agreementList: GovernanceOp<{ partner?: string }> = {
  name: 'agreement.list',
  who: 'any',
  summary: 'List agreements with their current status (partners see their own)',
  http: { method: 'GET', path: '/v1/governance/agreements' },
  args: { type: 'object', additionalProperties: false, properties: { partner: str } },
  async run(ctx, args) {
    if (!ctx.isAdmin) {
      const org = orgOfPrincipal(ctx.caller);
      if (args.partner && args.partner !== org) forbidden('you may only see the agreements of your own organisation', 'ask an administrator');
      return { result: { agreements: org ? await ctx.store.agreements.list({ partner: org }, ctx.now) : [] } };
    }
    return { result: { agreements: await ctx.store.agreements.list(args.partner ? { partner: args.partner } : {}, ctx.now) } };
  },
};

export const GOVERNANCE_OPS: readonly GovernanceOp[] = [
  vendorRegister, vendorCertify, vendorAuditReport, vendorIncident, vendorResolveIncident, vendorShow, vendorList,
  agreementCreate, agreementList, agreementShow, agreementTerminate, agreementCloseOut,
  grantRequest, grantApprove, grantDeny, grantList, grantRequests, grantRevoke, grantCreate,
  ackPublish, ackShow, ackSign, trainingRecord, trainingShow, gateShow, gateSet,
  keysStatus, keysRotate, keysShredDataset,
  retentionRules, retentionSetRule, retentionHold, retentionRelease, retentionRun,
  classifyRun, classifyList, classifyConfirm, classifyReject,
  flowsMap, flowsSvg, reportBuild, lineageList,
  findingCreate, findingList, findingUpdate, findingClose,
  ...workspaceOps({ shred }), erasureList,
];

export function governanceOp(name: string): GovernanceOp | undefined {
  return GOVERNANCE_OPS.find((o) => o.name === name);
}
