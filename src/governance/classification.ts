/**
 * Classification decisions. The classifier (classifier.ts, not this file) proposes a level
 * and tags for a dataset or a column with its evidence and confidence; an administrator
 * confirms or rejects. Nothing applies until confirmed, and a confirmation can only make
 * things stricter: the effective level is the stricter of the declared level and the latest
 * confirmed decision for that dataset/column.
 */
import {
  CLASSIFICATIONS, event, invalid, iso, newId, parseList, parseName, parseOneOf, parseText, requireObject, stricter,
  GovernanceError, type Classification, type Core, type GovernanceEvent, type Row,
} from './types.ts';

/** column_name '' stands for the dataset itself in storage; the API uses null. */
export interface ClassificationProposal {
  readonly id: string;
  readonly dataset: string;
  readonly column: string | null;
  readonly level: Classification;
  readonly tags: readonly string[];
  readonly evidence: readonly string[];
  readonly confidence: number;
  readonly proposedBy: string;
  readonly proposedAt: string;
  readonly status: 'pending' | 'confirmed' | 'rejected';
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
}

const TAG = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;

const toProposal = (r: Row): ClassificationProposal => ({
  id: r.id as string, dataset: r.dataset as string, column: r.column_name === '' ? null : r.column_name as string, level: r.level as Classification,
  tags: JSON.parse(r.tags as string) as string[], evidence: JSON.parse(r.evidence as string) as string[], confidence: r.confidence as number,
  proposedBy: r.proposed_by as string, proposedAt: r.proposed_at as string, status: r.status as ClassificationProposal['status'],
  decidedBy: r.decided_by as string | null, decidedAt: r.decided_at as string | null,
});

export class ClassificationDecisions {
  readonly #core: Core;
  constructor(core: Core) {
    this.#core = core;
  }

  /** Records a proposal (an identical pending one is returned instead of a duplicate). */
  async propose(input: { dataset: string; column: string | null; level: Classification; tags: readonly string[]; evidence: readonly string[]; confidence: number; proposedBy: string }, at: Date = this.#core.now()): Promise<{ proposal: ClassificationProposal; created: boolean; event: GovernanceEvent | null }> {
    const o = requireObject(input, 'proposal');
    const dataset = parseName(o.dataset, 'dataset');
    const column = o.column === null || o.column === undefined ? '' : parseName(o.column, 'column');
    const level = parseOneOf(o.level, CLASSIFICATIONS, 'level');
    const tags = parseList(o.tags, 'tags', (v, f) => {
      if (typeof v !== 'string' || !TAG.test(v) || v.length > 64) invalid(`${f} must be a dotted lower-case tag such as pii.email`);
      return v as string;
    }, { max: 50 }).sort();
    const evidence = parseList(o.evidence, 'evidence', (v, f) => parseText(v, f, 500), { max: 50 });
    if (typeof o.confidence !== 'number' || !(o.confidence >= 0 && o.confidence <= 1)) invalid('confidence must be a number from 0 to 1');
    const by = parseName(o.proposedBy, 'proposedBy');
    return this.#core.tx(async () => {
      const same = await this.#core.stmt(`SELECT * FROM gov_classification_proposals WHERE dataset = ? AND column_name = ? AND level = ? AND tags = ? AND status = 'pending'`).get(dataset, column, level, JSON.stringify(tags)) as Row | undefined;
      if (same) return { proposal: toProposal(same), created: false, event: null };
      const id = newId('cls');
      await this.#core.stmt(`INSERT INTO gov_classification_proposals (id, dataset, column_name, level, tags, evidence, confidence, proposed_by, proposed_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`)
        .run(id, dataset, column, level, JSON.stringify(tags), JSON.stringify(evidence), o.confidence as number, by, iso(at));
      const target = column ? `${dataset}.${column}` : dataset;
      return { proposal: (await this.get(id))!, created: true, event: event({ action: 'classification.propose', actor: by, time: iso(at), subject: target, outcome: 'requested', refs: { proposalId: id }, detail: `${by} proposed ${level}${tags.length ? ` [${tags.join(', ')}]` : ''} for ${target}; awaiting confirmation` }) };
    });
  }

  async get(id: string): Promise<ClassificationProposal | null> {
    const r = await this.#core.stmt('SELECT * FROM gov_classification_proposals WHERE id = ?').get(String(id)) as Row | undefined;
    return r ? toProposal(r) : null;
  }

  async list(filter: { status?: ClassificationProposal['status']; dataset?: string } = {}): Promise<ClassificationProposal[]> {
    return (await this.#core.stmt('SELECT * FROM gov_classification_proposals WHERE (CAST(?1 AS TEXT) IS NULL OR status = ?1) AND (CAST(?2 AS TEXT) IS NULL OR dataset = ?2) ORDER BY proposed_at, id').all(filter.status ?? null, filter.dataset ?? null) as Row[]).map(toProposal);
  }

  async confirm(id: string, by: string, at: Date = this.#core.now()): Promise<{ proposal: ClassificationProposal; event: GovernanceEvent }> {
    return await this.#decide(id, by, 'confirmed', null, at);
  }

  async reject(id: string, by: string, reason: string, at: Date = this.#core.now()): Promise<{ proposal: ClassificationProposal; event: GovernanceEvent }> {
    return await this.#decide(id, by, 'rejected', parseText(reason, 'reason', 1000), at);
  }

  async #decide(id: string, by: string, status: 'confirmed' | 'rejected', reason: string | null, at: Date): Promise<{ proposal: ClassificationProposal; event: GovernanceEvent }> {
    const actor = parseName(by, 'by');
    return this.#core.tx(async () => {
      const p = await this.get(id);
      if (!p) throw new GovernanceError('GOV_NOT_FOUND', `no classification proposal "${String(id).slice(0, 64)}"`, 'list proposals with: gatehouse classify list');
      const changed = await this.#core.stmt(`UPDATE gov_classification_proposals SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?,
        decision_seq = (SELECT COALESCE(MAX(decision_seq), 0) + 1 FROM gov_classification_proposals) WHERE id = ? AND status = 'pending'`).run(status, actor, iso(at), reason, p.id);
      if (changed.changes !== 1) throw new GovernanceError('GOV_ALREADY_DECIDED', `this proposal has already been ${p.status}`, 'nothing to do; the classifier may propose again');
      const target = p.column ? `${p.dataset}.${p.column}` : p.dataset;
      return { proposal: (await this.get(p.id))!, event: event({ action: `classification.${status === 'confirmed' ? 'confirm' : 'reject'}`, actor, time: iso(at), subject: target, outcome: status, refs: { proposalId: p.id }, detail: `${actor} ${status} ${p.level} for ${target}` }) };
    });
  }

  /** The latest confirmed decision (in the order decisions were taken) for a dataset (column null) or column, if any. */
  async confirmed(dataset: string, column: string | null): Promise<ClassificationProposal | null> {
    const r = await this.#core.stmt(`SELECT * FROM gov_classification_proposals WHERE dataset = ? AND column_name = ? AND status = 'confirmed' ORDER BY decision_seq DESC LIMIT 1`).get(dataset, column ?? '') as Row | undefined;
    return r ? toProposal(r) : null;
  }

  /** The stricter of the declared level and the latest confirmed decision; tags are the union. */
  async effectiveClassification(dataset: string, column: string | null, declared: Classification, declaredTags: readonly string[] = []): Promise<{ level: Classification; tags: readonly string[]; decision: string | null }> {
    const c = await this.confirmed(dataset, column);
    if (!c) return { level: declared, tags: [...declaredTags], decision: null };
    return { level: stricter(declared, c.level), tags: [...new Set([...declaredTags, ...c.tags])].sort(), decision: c.id };
  }
}
