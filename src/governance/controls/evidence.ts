/**
 * The evidence Gatehouse holds, gathered once per controls report and judged per kind:
 * `met` (the evidence covers the requirement), `partly` (some of it), `unmet` (no
 * evidence). Each item says why in one line and links to where an auditor checks it (audit
 * search URLs by action and period, the log's checkpoint, governance API listings).
 *
 * The judgements are deliberately mechanical: coverage fractions over declared principals,
 * partner organisations and datasets, and presence of audited events in the period. They
 * are evidence for an assessor, not an assessment.
 */
import type { StoredAuditEntry } from '../../audit/log.ts';
import type { Workspace } from '../../model/types.ts';
import type { GovernanceStore } from '../store.ts';

export type Status = 'met' | 'partly' | 'unmet';

export interface Evidence {
  readonly kind: EvidenceKind;
  readonly status: Status;
  readonly detail: string;
  readonly links: readonly string[];
}

export const EVIDENCE_KINDS = [
  'audit-log', 'log-integrity', 'access-control', 'least-privilege', 'mfa', 'encryption-at-rest', 'access-review',
  'agreements', 'training', 'acknowledgements', 'findings', 'destruction', 'anomaly-alerts', 'classification', 'privacy-protection', 'erasure',
] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

export interface EvidenceInput {
  readonly workspace: Workspace;
  readonly store: GovernanceStore;
  readonly entries: readonly StoredAuditEntry[];
  readonly period: { readonly from: string; readonly to: string };
  readonly now: Date;
}

const search = (p: EvidenceInput['period'], action: string): string => `/v1/audit/entries?action=${encodeURIComponent(action)}&from=${encodeURIComponent(p.from)}&to=${encodeURIComponent(p.to)}`;

function coverage(covered: number, total: number): Status {
  return total === 0 || covered === 0 ? 'unmet' : covered === total ? 'met' : 'partly';
}

/** Every evidence kind, judged. */
export async function gatherEvidence(x: EvidenceInput): Promise<ReadonlyMap<EvidenceKind, Evidence>> {
  const ws = x.workspace;
  const out = new Map<EvidenceKind, Evidence>();
  const put = (kind: EvidenceKind, status: Status, detail: string, links: string[] = []): void => { out.set(kind, { kind, status, detail, links }); };
  const count = (pred: (e: StoredAuditEntry) => boolean): number => x.entries.filter(pred).length;
  const users = [...ws.principals.values()].filter((p) => p.kind === 'user');
  const owners = new Set([...ws.datasets.values()].map((d) => d.owner).filter((o): o is string => o !== null));
  const partnerOrgs = [...new Set([...ws.principals.values()].map((p) => p.attributes.org).filter((o): o is string => typeof o === 'string' && !owners.has(o)))].sort();

  const n = x.entries.length;
  put('audit-log', n > 0 ? 'met' : 'unmet', `${n} audit entries recorded in the period, one per request (allowed, denied or failed)`, [search(x.period, '')]);
  put('log-integrity', n > 0 ? 'met' : 'unmet', 'entries are leaves of an RFC 6962 Merkle tree with signed checkpoints; inclusion and consistency proofs are served', ['/v1/audit/checkpoint', '/v1/audit/keys']);

  const denied = count((e) => e.action === 'query' && e.decision === 'deny');
  const queries = count((e) => e.action === 'query');
  const policies = [...ws.policyFiles.values()].join('\n');
  put('access-control', policies.includes('permit') ? (denied > 0 ? 'met' : 'partly') : 'unmet',
    `default-deny Cedar policies decide every request; ${queries} queries in the period, ${denied} denied${denied === 0 ? ' (enforcement not observed in the period)' : ''}`, [search(x.period, 'query')]);

  const regulated = [...ws.datasets.values()].flatMap((d) => d.columns.filter((c) => c.classification === 'regulated').map((c) => ({ d, c })));
  const protectedCols = regulated.filter(({ c }) => c.mask !== null);
  put('least-privilege', coverage(protectedCols.length, regulated.length), `${protectedCols.length} of ${regulated.length} regulated columns carry a mask by default (obligations may lift it for named roles)`, ['/v1/datasets']);

  const mfaGroups = ws.identity?.mfaRequiredForGroups ?? [];
  const withMfa = users.filter((p) => p.groups.some((g) => mfaGroups.includes(g)));
  const without = users.filter((p) => !withMfa.includes(p)).map((p) => p.id);
  put('mfa', coverage(withMfa.length, users.length), `${withMfa.length} of ${users.length} user principals must use multi-factor authentication${without.length ? `; not required for: ${without.join(', ')}` : ''}`, []);

  const datasets = [...ws.datasets.values()];
  const encrypted = datasets.filter((d) => d.source.kind === 'encrypted');
  put('encryption-at-rest', encrypted.length === datasets.length && datasets.length > 0 ? 'met' : 'partly',
    `Gatehouse's own state (saved results, exports, keys) is encrypted under per-artefact data keys; ${encrypted.length} of ${datasets.length} datasets are held encrypted by Gatehouse (the others stay in their owners' stores, whose encryption is the owner's evidence)`, ['/v1/governance/keys']);

  const grants = await x.store.grants.list({ all: true }, x.now);
  const bounded = grants.filter((g) => g.until !== null);
  const reviews = count((e) => e.action.startsWith('governance.grant.') || e.action === 'access.review');
  put('access-review', grants.length === 0 ? (reviews > 0 ? 'partly' : 'unmet') : coverage(bounded.length, grants.length),
    `${grants.length} grants, ${bounded.length} with an end date; ${reviews} grant decisions audited in the period`, ['/v1/governance/grants', search(x.period, 'governance.grant.approve')]);

  const agreements = await x.store.agreements.list({}, x.now);
  const covered = partnerOrgs.filter((o) => agreements.some((a) => a.parties.partner === o && a.status === 'active'));
  put('agreements', coverage(covered.length, partnerOrgs.length), `${covered.length} of ${partnerOrgs.length} partner organisations have an active agreement${partnerOrgs.length > covered.length ? ` (none for: ${partnerOrgs.filter((o) => !covered.includes(o)).join(', ')})` : ''}`, ['/v1/governance/agreements']);

  let trained = 0;
  for (const p of users) if ((await x.store.training.records(p.id)).some((r) => r.expiresAt > x.now.toISOString())) trained++;
  put('training', coverage(trained, users.length), `${trained} of ${users.length} user principals have current training on record`, []);

  const docs = await x.store.acknowledgements.documents();
  let signed = 0;
  for (const p of users) {
    let all = docs.length > 0;
    for (const d of docs) if ((await x.store.acknowledgements.state(p.id, d.name)).state !== 'current') all = false;
    if (all) signed++;
  }
  put('acknowledgements', docs.length === 0 ? 'unmet' : coverage(signed, users.length), `${docs.length} documents published; ${signed} of ${users.length} user principals signed the current version of each`, []);

  const findings = await x.store.findings.list({ includeClosed: true }, x.now);
  const overdue = findings.filter((f) => f.overdue && f.status !== 'closed');
  put('findings', findings.length === 0 ? 'unmet' : overdue.length === 0 ? 'met' : 'partly', `${findings.length} findings tracked with owners and due dates; ${overdue.length} overdue`, ['/v1/governance/findings']);

  const destructions = count((e) => e.action === 'governance.destruction' && e.decision === 'allow');
  put('destruction', destructions > 0 ? 'met' : 'unmet', `${destructions} destruction certificates (crypto-shredding) recorded in the period`, [search(x.period, 'governance.destruction')]);

  const alerts = count((e) => e.action.startsWith('monitor.'));
  put('anomaly-alerts', alerts > 0 ? 'met' : 'unmet', `${alerts} anomaly alerts recorded in the period${alerts === 0 ? ' (no anomaly monitor reports to the log yet)' : ''}`, [search(x.period, 'monitor.alert')]);

  const columns = datasets.flatMap((d) => d.columns);
  const confirmed = (await x.store.classification.list({ status: 'confirmed' })).length;
  put('classification', columns.length > 0 ? 'met' : 'unmet', `${columns.length} columns classified in the catalog (public / internal / confidential / regulated); ${confirmed} classifier proposals confirmed by an administrator`, ['/v1/datasets']);

  const obligations = [...ws.obligations.values()];
  const dp = obligations.filter((o) => o.differentialPrivacy).length;
  const agg = obligations.filter((o) => o.aggregationOnly).length;
  const dlp = obligations.filter((o) => o.dlp).length;
  put('privacy-protection', dp + agg + dlp > 0 ? 'met' : protectedCols.length > 0 ? 'partly' : 'unmet', `${dp} differential-privacy, ${agg} aggregation-only and ${dlp} DLP obligations, plus default masks on regulated columns`, ['/v1/datasets']);

  const erasures = count((e) => e.action === 'erasure.record' && e.decision === 'allow');
  put('erasure', erasures > 0 ? 'met' : 'partly', `${erasures} erasures or consent withdrawals recorded in the period, each with a verifiable receipt${erasures === 0 ? ' (the mechanism is in place; none was requested)' : ''}`, [search(x.period, 'erasure.record')]);
  return out;
}
