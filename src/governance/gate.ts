/**
 * The governance gate: runs on every request, before the Cedar decision.
 *
 * For a principal whose `org` attribute names a registered partner organisation, access to
 * a dataset for a purpose needs all of:
 *
 *   1. the purpose is one the dataset permits
 *   2. the partner's vendor risk tier ≤ the maximum for the dataset's classification
 *   3. an active grant (to the principal or its whole org) for dataset + purpose, whose
 *      agreement is active *now* and covers dataset + purpose
 *   4. a signature of the current version of every acknowledgement document required for
 *      the classification
 *   5. current training in every course required for the classification
 *
 * Each unmet condition is one denial with a stable code, a message saying exactly what is
 * missing, and a hint naming who can fix it and the command to run. Principals of other
 * organisations (internal staff) are not gated, but every principal gets the `context`:
 * attributes for Cedar (keys are Cedar identifiers), so policies can also use them.
 *
 * Nothing is cached: every evaluation reads the store (prepared statements, ~10 indexed
 * queries), so a termination, revocation, expired certificate or new document version
 * takes effect on the very next request.
 */
import type { DatasetDef, PrincipalDef } from '../model/types.ts';
import { statusAt } from './agreements.ts';
import type { Acknowledgements } from './acknowledgements.ts';
import type { Training } from './training.ts';
import type { Vendors } from './vendors.ts';
import {
  CLASSIFICATIONS, event, invalid, iso, parseList, parseName, parseWhole, requireObject,
  type Classification, type Core, type GovernanceEvent, type RiskTier, type Row,
} from './types.ts';

/** What a classification demands of partner principals. */
export interface Requirements {
  /** Highest vendor risk tier allowed (1 … 4). */
  readonly maxVendorTier: RiskTier;
  /** Training courses that must be current. */
  readonly courses: readonly string[];
  /** Acknowledgement documents whose current version must be signed. */
  readonly documents: readonly string[];
}

export const DEFAULT_REQUIREMENTS: Readonly<Record<Classification, Requirements>> = {
  public: { maxVendorTier: 4, courses: [], documents: [] },
  internal: { maxVendorTier: 4, courses: [], documents: [] },
  confidential: { maxVendorTier: 3, courses: [], documents: [] },
  regulated: { maxVendorTier: 2, courses: [], documents: [] },
};

export type DenialCode =
  | 'GOV_PURPOSE_NOT_PERMITTED'
  | 'GOV_VENDOR_RISK_TOO_HIGH'
  | 'GOV_VENDOR_CERTIFICATION_EXPIRED'
  | 'GOV_GRANT_MISSING'
  | 'GOV_GRANT_NOT_YET_VALID'
  | 'GOV_GRANT_EXPIRED'
  | 'GOV_GRANT_REVOKED'
  | 'GOV_AGREEMENT_PENDING'
  | 'GOV_AGREEMENT_EXPIRED'
  | 'GOV_AGREEMENT_TERMINATED'
  | 'GOV_AGREEMENT_NOT_COVERING'
  | 'GOV_ACK_MISSING'
  | 'GOV_ACK_STALE'
  | 'GOV_ACK_UNPUBLISHED'
  | 'GOV_TRAINING_MISSING'
  | 'GOV_TRAINING_EXPIRED';

export interface Denial {
  readonly code: DenialCode;
  /** What is missing, in terms the requester understands. */
  readonly message: string;
  /** Who can fix it, and the command to run. */
  readonly hint: string;
}

export interface GateInput {
  readonly principal: PrincipalDef;
  readonly dataset: DatasetDef;
  readonly purpose: string;
  readonly now?: Date;
}

export interface GateResult {
  readonly allowed: boolean;
  readonly denials: readonly Denial[];
  /**
   * For the Cedar context: governed, governanceAllowed, purposePermitted, vendorRiskTier
   * (0 for non-partners), maxVendorTier, agreementActive, agreementId, agreementKind,
   * grantId, grantActive, grantUntil, acknowledged, trainingCurrent ('' for absent strings).
   */
  readonly context: Record<string, string | number | boolean>;
}

type GrantIssue = Exclude<DenialCode, 'GOV_PURPOSE_NOT_PERMITTED' | 'GOV_VENDOR_RISK_TOO_HIGH' | 'GOV_VENDOR_CERTIFICATION_EXPIRED' | 'GOV_GRANT_MISSING' | `GOV_ACK_${string}` | `GOV_TRAINING_${string}`> | null;

export class Gate {
  readonly #core: Core;
  readonly #vendors: Vendors;
  readonly #acks: Acknowledgements;
  readonly #training: Training;
  constructor(core: Core, parts: { vendors: Vendors; acknowledgements: Acknowledgements; training: Training }) {
    this.#core = core;
    this.#vendors = parts.vendors;
    this.#acks = parts.acknowledgements;
    this.#training = parts.training;
  }

  /** The requirements per classification (defaults where none were set). */
  async requirements(classification: Classification): Promise<Requirements> {
    const r = await this.#core.stmt('SELECT value FROM gov_settings WHERE key = ?').get(`requirements.${classification}`) as Row | undefined;
    return r ? JSON.parse(r.value as string) as Requirements : DEFAULT_REQUIREMENTS[classification];
  }

  async setRequirements(classification: Classification, input: Requirements & { by: string }, at: Date = this.#core.now()): Promise<{ requirements: Requirements; event: GovernanceEvent }> {
    if (!(CLASSIFICATIONS as readonly string[]).includes(classification)) invalid(`classification must be one of ${CLASSIFICATIONS.join(', ')}`);
    const o = requireObject(input, 'requirements');
    const requirements: Requirements = {
      maxVendorTier: parseWhole(o.maxVendorTier, 'maxVendorTier', 1, 4) as RiskTier,
      courses: parseList(o.courses, 'courses', parseName, { max: 50 }),
      documents: parseList(o.documents, 'documents', parseName, { max: 50 }),
    };
    const by = parseName(o.by, 'by');
    await this.#core.stmt('INSERT INTO gov_settings (key, value, set_at, set_by) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_at = excluded.set_at, set_by = excluded.set_by')
      .run(`requirements.${classification}`, JSON.stringify(requirements), iso(at), by);
    return {
      requirements,
      event: event({ action: 'governance.requirements', actor: by, time: iso(at), subject: `classification:${classification}`, outcome: 'updated', refs: {},
        detail: `${by} set ${classification} requirements: vendor tier ≤ ${requirements.maxVendorTier}; courses ${requirements.courses.join(', ') || 'none'}; documents ${requirements.documents.join(', ') || 'none'}` }),
    };
  }

  async evaluate(input: GateInput): Promise<GateResult> {
    const { principal, dataset, purpose } = input;
    const now = input.now ?? this.#core.now();
    const t = iso(now);
    const org = typeof principal.attributes.org === 'string' ? principal.attributes.org : '';
    // Every read is independent: issue them together (on PostgreSQL they run on several
    // pooled connections at once, so an evaluation costs about two round trips, not ten).
    const [governed, req] = await Promise.all([org !== '' ? this.#vendors.isPartner(org) : false, this.requirements(dataset.classification)]);
    const [ackStates, trainingStates, risk, rows] = await Promise.all([
      Promise.all(req.documents.map((doc) => this.#acks.state(principal.id, doc))),
      Promise.all(req.courses.map((course) => this.#training.state(principal.id, course, now))),
      governed ? this.#vendors.risk(org, now) : null,
      governed ? this.#grantRows(dataset.name, purpose, org, principal.id) : [],
    ]);
    const owner = dataset.owner ?? 'the data owner';
    const denials: Denial[] = [];
    const context: Record<string, string | number | boolean> = {
      governed, governanceAllowed: true, purposePermitted: dataset.purposes.includes(purpose), vendorRiskTier: 0, maxVendorTier: req.maxVendorTier,
      agreementActive: false, agreementId: '', agreementKind: '', grantId: '', grantActive: false, grantUntil: '', acknowledged: true, trainingCurrent: true,
    };

    // Acknowledgements and training matter for everyone's context; they only deny partners.
    const ackDenials: Denial[] = [];
    for (const [i, doc] of req.documents.entries()) {
      const s = ackStates[i]!;
      if (s.state === 'current') continue;
      if (s.state === 'unpublished') {
        ackDenials.push({ code: 'GOV_ACK_UNPUBLISHED', message: `${dataset.classification} data requires acknowledging "${doc}", which has not been published`, hint: `an administrator of ${owner} publishes it: gatehouse acknowledge publish ${doc} --file <text>` });
      } else if (s.state === 'missing') {
        ackDenials.push({ code: 'GOV_ACK_MISSING', message: `you have not acknowledged "${doc}" (version ${s.current.version})`, hint: `read and acknowledge it yourself: gatehouse acknowledge show ${doc}, then gatehouse acknowledge sign ${doc} --sha256 ${s.current.sha256}` });
      } else {
        ackDenials.push({ code: 'GOV_ACK_STALE', message: `"${doc}" changed since you acknowledged version ${s.signature.version}; version ${s.current.version} needs your acknowledgement`, hint: `read the new text and acknowledge it: gatehouse acknowledge show ${doc}, then gatehouse acknowledge sign ${doc} --sha256 ${s.current.sha256}` });
      }
    }
    context.acknowledged = ackDenials.length === 0;
    const trainingDenials: Denial[] = [];
    for (const [i, course] of req.courses.entries()) {
      const s = trainingStates[i]!;
      if (s.state === 'current') continue;
      trainingDenials.push(s.state === 'expired'
        ? { code: 'GOV_TRAINING_EXPIRED', message: `your "${course}" training expired at ${s.expiredAt}; ${dataset.classification} data requires it to be current`, hint: `retake "${course}"; your organisation's training coordinator then records it: gatehouse training record ${principal.id} ${course} --completed <date> --expires <date>` }
        : { code: 'GOV_TRAINING_MISSING', message: `${dataset.classification} data requires "${course}" training, which has no record for you`, hint: `complete "${course}"; your organisation's training coordinator then records it: gatehouse training record ${principal.id} ${course} --completed <date> --expires <date>` });
    }
    context.trainingCurrent = trainingDenials.length === 0;

    if (!governed) return { allowed: true, denials: [], context };

    // 1. purpose
    if (!context.purposePermitted) {
      denials.push({ code: 'GOV_PURPOSE_NOT_PERMITTED', message: `dataset "${dataset.name}" may not be used for purpose "${purpose}"${dataset.purposes.length ? `; permitted: ${dataset.purposes.join(', ')}` : '; it lists no permitted purposes'}`, hint: `declare a permitted purpose, or ask ${owner} to add "${purpose}" to the dataset's purposes in gatehouse.yaml` });
    }

    // 2. vendor risk (read above: governed, so present)
    if (risk === null) throw new Error('unreachable: a governed principal without a risk assessment');
    context.vendorRiskTier = risk.tier;
    if (risk.tier > req.maxVendorTier) {
      const certExpired = risk.factors.some((f) => f.startsWith('certification expired'));
      denials.push({
        code: certExpired ? 'GOV_VENDOR_CERTIFICATION_EXPIRED' : 'GOV_VENDOR_RISK_TOO_HIGH',
        message: `${org} is at vendor risk tier ${risk.tier} (${risk.factors.join('; ')}); ${dataset.classification} data allows tier ≤ ${req.maxVendorTier}`,
        hint: certExpired
          ? `${org}'s security contact sends the renewed certificate to ${owner}'s vendor manager, who records it: gatehouse vendor certify ${org} --name <certification> --issuer <issuer> --valid-until <date>`
          : `${org}'s security contact works with ${owner}'s vendor manager to lower the tier (resolve incidents: gatehouse vendor incident resolve <id>; record a passing audit: gatehouse vendor audit ${org} …)`,
      });
    }

    // 3. grant + agreement, read fresh (above)
    let best: { row: Row; issue: GrantIssue } | null = null;
    for (const row of rows) {
      const issue = grantIssue(row, t);
      if (issue === null) {
        best = { row, issue };
        break;
      }
      best ??= { row, issue };
    }
    if (best) {
      const status = statusAt(best.row.effective_from as string, best.row.ends_on as string | null, best.row.terminated_at as string | null, t);
      context.agreementId = best.row.agreement_id as string;
      context.agreementKind = best.row.kind as string;
      context.agreementActive = status === 'active';
      context.grantId = best.row.id as string;
      context.grantActive = best.issue === null;
      context.grantUntil = best.row.valid_until as string;
    }
    if (!best) {
      denials.push({ code: 'GOV_GRANT_MISSING', message: `you hold no grant for "${dataset.name}" for purpose "${purpose}"`, hint: `request one; an owner of the dataset (${owner}) approves it: gatehouse grant request --dataset ${dataset.name} --purpose ${purpose} --days <n> --justification "<why>"` });
    } else if (best.issue !== null) {
      denials.push(grantDenial(best.issue, best.row, dataset.name, purpose, org, owner));
    }

    denials.push(...ackDenials, ...trainingDenials);
    context.governanceAllowed = denials.length === 0;
    return { allowed: denials.length === 0, denials, context };
  }
  /** Grants for dataset and purpose held by the principal or its org, with their agreement's state. */
  #grantRows(dataset: string, purpose: string, org: string, principalId: string): Promise<Row[]> {
    return this.#core.stmt(`SELECT g.id, g.valid_from, g.valid_until, g.revoked_at, g.agreement_id, a.kind, a.effective_from, a.ends_on, a.terminated_at,
        EXISTS (SELECT 1 FROM gov_agreement_datasets d WHERE d.agreement_id = a.id AND d.dataset = g.dataset) AS covers_dataset,
        EXISTS (SELECT 1 FROM gov_agreement_purposes p WHERE p.agreement_id = a.id AND p.purpose = g.purpose) AS covers_purpose
      FROM gov_grants g JOIN gov_agreements a ON a.id = g.agreement_id
      WHERE g.dataset = ? AND g.purpose = ? AND g.org = ? AND a.partner_org = g.org AND (g.principal_id IS NULL OR g.principal_id = ?)
      ORDER BY g.valid_until DESC, g.id`).all(dataset, purpose, org, principalId);
  }
}

/** The first thing wrong with a grant at time t (agreement first: it explains a revocation by termination). */
function grantIssue(r: Row, t: string): GrantIssue {
  const status = statusAt(r.effective_from as string, r.ends_on as string | null, r.terminated_at as string | null, t);
  if (status === 'terminated') return 'GOV_AGREEMENT_TERMINATED';
  if (status === 'expired') return 'GOV_AGREEMENT_EXPIRED';
  if (status === 'pending') return 'GOV_AGREEMENT_PENDING';
  if (Number(r.covers_dataset) !== 1 || Number(r.covers_purpose) !== 1) return 'GOV_AGREEMENT_NOT_COVERING';
  if (r.revoked_at !== null && (r.revoked_at as string) <= t) return 'GOV_GRANT_REVOKED';
  if ((r.valid_from as string) > t) return 'GOV_GRANT_NOT_YET_VALID';
  if ((r.valid_until as string) <= t) return 'GOV_GRANT_EXPIRED';
  return null;
}

function grantDenial(issue: Exclude<GrantIssue, null>, r: Row, dataset: string, purpose: string, org: string, owner: string): Denial {
  const a = r.agreement_id as string;
  const g = r.id as string;
  const renew = `gatehouse agreement create --partner ${org} --kind ${r.kind as string} --dataset ${dataset} --purpose ${purpose} …`;
  const request = `gatehouse grant request --dataset ${dataset} --purpose ${purpose} --days <n> --justification "<why>"`;
  switch (issue) {
    case 'GOV_AGREEMENT_TERMINATED':
      return { code: issue, message: `agreement ${a} between ${owner} and ${org} was terminated at ${r.terminated_at as string}; grant ${g} no longer gives access`, hint: `access needs a new agreement between ${owner} and ${org} (their legal contacts: ${renew}), then a new grant` };
    case 'GOV_AGREEMENT_EXPIRED':
      return { code: issue, message: `agreement ${a} with ${org} ended at ${r.ends_on as string}; grant ${g} no longer gives access`, hint: `${owner} and ${org} renew the agreement (${renew}), then request a new grant` };
    case 'GOV_AGREEMENT_PENDING':
      return { code: issue, message: `agreement ${a} with ${org} takes effect only at ${r.effective_from as string}`, hint: 'wait until it takes effect; nothing else is needed' };
    case 'GOV_AGREEMENT_NOT_COVERING':
      return { code: issue, message: `agreement ${a} does not cover "${dataset}" for "${purpose}"`, hint: `${owner} and ${org} record an agreement that covers them (${renew})` };
    case 'GOV_GRANT_REVOKED':
      return { code: issue, message: `your grant ${g} for "${dataset}" (${purpose}) was revoked at ${r.revoked_at as string}`, hint: `ask an owner of the dataset (${owner}) why, or request again: ${request}` };
    case 'GOV_GRANT_NOT_YET_VALID':
      return { code: issue, message: `your grant ${g} for "${dataset}" starts at ${r.valid_from as string}`, hint: 'wait until it starts; nothing else is needed' };
    case 'GOV_GRANT_EXPIRED':
      return { code: issue, message: `your grant ${g} for "${dataset}" (${purpose}) expired at ${r.valid_until as string}`, hint: `request a new one; an owner of the dataset (${owner}) approves it: ${request}` };
  }
}
