/**
 * Expiring partner workspaces (issue 23; the seed asks for "controlled workspaces with
 * built-in segmentation and content expiration").
 *
 * A partner organisation's workspace is what Gatehouse keeps for it: saved results, job
 * outputs, clean-room results and models, each an artefact sealed under its own data key
 * (src/keys/artefacts.ts) and labelled `org=<partner>`. The workspace is not a second store:
 * it is the set of artefacts carrying that label, so segmentation is one rule applied at
 * every read (`inWorkspace`) and the key store's crypto-shredding is the expiry mechanism.
 *
 * When each item expires is derived, never stored, so a termination or an amended end date
 * reaches every item at once:
 *
 *   item labelled with an agreement   the agreement's end or termination, whichever is first
 *                                      (an agreement the store no longer knows: now, fail closed)
 *   item without an agreement         the workspace's expiry: the last end among the partner's
 *                                      agreements (open-ended while one in force has no end)
 *   either                            no later than the artefact's own retainUntil (the
 *                                      agreement's result-retention clause)
 *
 * A partner with no agreement at all has no agreement-derived expiry; retention rules still
 * apply to its items (src/governance/retention.ts).
 */
import type { ArtefactMeta } from '../../keys/artefacts.ts';
import type { Agreement } from '../agreements.ts';

/** What a partner keeps in its workspace; saved query results carry no `item` label. */
export const WORKSPACE_ITEM_KINDS = ['result', 'job-output', 'room-result', 'model'] as const;
export type WorkspaceItemKind = (typeof WORKSPACE_ITEM_KINDS)[number];

export interface WorkspaceItem {
  readonly id: string;
  readonly item: WorkspaceItemKind;
  readonly name: string | null;
  readonly owner: string;
  readonly datasets: readonly string[];
  readonly agreement: string | null;
  /** The most restrictive classification of its sources, set when it was deposited (null: a saved result). */
  readonly classification: string | null;
  /** Where it came from: `airlock:<request>`, `cleanroom:<collaboration>/<query>`, `fl:<job>/<model>` (null: saved or placed by hand). */
  readonly source: string | null;
  readonly createdAt: string;
  readonly bytes: number;
  /** When its content is crypto-shredded; null: no agreement or retention limit applies. */
  readonly expiresAt: string | null;
  /** Why it expires then, in words. */
  readonly basis: string;
  readonly legalHold: boolean;
  readonly destroyedAt: string | null;
}

export interface PartnerWorkspace {
  readonly org: string;
  /** The workspace's own expiry (items without an agreement of their own expire then). */
  readonly expiresAt: string | null;
  readonly agreements: readonly { readonly id: string; readonly status: string; readonly endsAt: string | null }[];
  /** Live items first, soonest to expire first. */
  readonly items: readonly WorkspaceItem[];
}

/** The one segmentation rule: an artefact belongs to exactly the workspace its `org` label names. */
export function inWorkspace(a: ArtefactMeta, org: string): boolean {
  return a.labels.org === org;
}

/** The instant an agreement stops being in force: its termination or its end, whichever is first. */
export function agreementEnd(a: Agreement): string | null {
  const ends = [a.termination?.at ?? null, a.endsOn].filter((x): x is string => x !== null).sort();
  return ends[0] ?? null;
}

/** The partner's workspace expiry from its agreements (see the header). */
export function workspaceExpiry(agreements: readonly Agreement[]): string | null {
  if (agreements.length === 0) return null;
  const ends = agreements.map(agreementEnd);
  if (ends.some((e, i) => e === null && agreements[i]!.status !== 'terminated')) return null;
  return ends.filter((e): e is string => e !== null).sort().at(-1) ?? null;
}

function itemKind(a: ArtefactMeta): WorkspaceItemKind {
  const k = a.labels.item;
  return (WORKSPACE_ITEM_KINDS as readonly string[]).includes(k ?? '') ? k as WorkspaceItemKind : 'result';
}

export function itemOf(a: ArtefactMeta, agreements: ReadonlyMap<string, Agreement>, workspaceEnd: string | null, now: Date): WorkspaceItem {
  const limits: { at: string; why: string }[] = [];
  const agreementId = a.labels.agreement ?? null;
  if (agreementId !== null) {
    const ag = agreements.get(agreementId);
    const end = ag ? agreementEnd(ag) : now.toISOString();
    if (end !== null) limits.push({ at: end, why: ag ? `agreement ${agreementId} ${ag.termination && ag.termination.at === end ? 'terminated' : 'ends'}` : `agreement ${agreementId} is unknown` });
  } else if (workspaceEnd !== null) {
    limits.push({ at: workspaceEnd, why: 'the partner\'s last agreement ends' });
  }
  if (a.retainUntil !== null) limits.push({ at: a.retainUntil, why: 'the result-retention clause' });
  limits.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
  const first = limits[0] ?? null;
  return {
    id: a.id, item: itemKind(a), name: a.labels.name ?? null, owner: a.owner,
    datasets: (a.labels.datasets ?? a.labels.dataset ?? '').split(',').filter(Boolean), agreement: agreementId,
    classification: a.labels.classification ?? null, source: a.labels.source ?? null,
    createdAt: a.createdAt, bytes: a.bytes, expiresAt: first?.at ?? null, basis: first?.why ?? 'no agreement or retention limit',
    legalHold: a.legalHold !== null, destroyedAt: a.destroyedAt,
  };
}

/** The workspace of `org` as its members see it (artefacts of every other organisation are never in it). */
export function partnerWorkspace(org: string, artefacts: readonly ArtefactMeta[], agreements: readonly Agreement[], now: Date): PartnerWorkspace {
  const own = agreements.filter((a) => a.parties.partner === org);
  const byId = new Map(own.map((a) => [a.id, a]));
  const end = workspaceExpiry(own);
  const items = artefacts.filter((a) => inWorkspace(a, org)).map((a) => itemOf(a, byId, end, now));
  items.sort((x, y) => (x.destroyedAt !== null) !== (y.destroyedAt !== null) ? (x.destroyedAt === null ? -1 : 1)
    : (x.expiresAt ?? '\uffff') < (y.expiresAt ?? '\uffff') ? -1 : (x.expiresAt ?? '\uffff') > (y.expiresAt ?? '\uffff') ? 1 : x.id < y.id ? -1 : 1);
  return { org, expiresAt: end, agreements: own.map((a) => ({ id: a.id, status: a.status, endsAt: agreementEnd(a) })), items };
}

/** Live items whose date has come (crypto-shredded by `workspace.expire`). */
export function expiredItems(ws: PartnerWorkspace, now: Date): WorkspaceItem[] {
  const t = now.toISOString();
  return ws.items.filter((i) => i.destroyedAt === null && i.expiresAt !== null && i.expiresAt <= t);
}
