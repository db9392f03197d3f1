/**
 * Findings: remediation tracking for audits and reviews. A finding has an owner, a due
 * date and a status (open → in-progress → closed; closed can be reopened). It is overdue
 * when it is not closed and its due date has passed. Reports list findings until closed.
 */
import {
  FINDING_STATUSES, SEVERITIES, event, iso, newId, parseEnd, parseName, parseOneOf, parseText, requireObject,
  GovernanceError, type Core, type FindingStatus, type GovernanceEvent, type Row, type Severity,
} from './types.ts';

export interface Finding {
  readonly id: string;
  readonly title: string;
  readonly severity: Severity;
  readonly owner: string;
  /** Exclusive deadline (a date-only due date means the end of that day). */
  readonly dueDate: string;
  readonly status: FindingStatus;
  readonly notes: readonly { readonly at: string; readonly by: string; readonly text: string }[];
  readonly createdAt: string;
  readonly createdBy: string;
  readonly closedAt: string | null;
  /** At the time read. */
  readonly overdue: boolean;
}

const ALLOWED: Readonly<Record<FindingStatus, readonly FindingStatus[]>> = { open: ['in-progress', 'closed'], 'in-progress': ['open', 'closed'], closed: ['open'] };

export class Findings {
  readonly #core: Core;
  constructor(core: Core) {
    this.#core = core;
  }

  async create(input: { title: string; severity: Severity; owner: string; dueDate: string | Date; notes?: string; by: string }, at: Date = this.#core.now()): Promise<{ finding: Finding; event: GovernanceEvent }> {
    const o = requireObject(input, 'finding');
    const title = parseText(o.title, 'title', 300);
    const severity = parseOneOf(o.severity, SEVERITIES, 'severity');
    const owner = parseName(o.owner, 'owner');
    const due = parseEnd(o.dueDate, 'dueDate');
    const note = o.notes === undefined ? null : parseText(o.notes, 'notes', 4000);
    const by = parseName(o.by, 'by');
    const id = newId('fnd');
    await this.#core.tx(async () => {
      await this.#core.stmt(`INSERT INTO gov_findings (id, title, severity, owner, due_date, status, created_at, created_by) VALUES (?, ?, ?, ?, ?, 'open', ?, ?)`).run(id, title, severity, owner, iso(due), iso(at), by);
      if (note) await this.#core.stmt('INSERT INTO gov_finding_notes (finding_id, at, by, text) VALUES (?, ?, ?, ?)').run(id, iso(at), by, note);
    });
    return { finding: (await this.get(id, at))!, event: event({ action: 'finding.create', actor: by, time: iso(at), subject: id, outcome: 'created', refs: { findingId: id }, detail: `${by} opened a ${severity} finding owned by ${owner}, due ${iso(due)}` }) };
  }

  async get(id: string, at: Date = this.#core.now()): Promise<Finding | null> {
    const r = await this.#core.stmt('SELECT * FROM gov_findings WHERE id = ?').get(String(id)) as Row | undefined;
    return r ? await this.#toFinding(r, at) : null;
  }

  async #toFinding(r: Row, at: Date): Promise<Finding> {
    const notes = (await this.#core.stmt('SELECT at, by, text FROM gov_finding_notes WHERE finding_id = ? ORDER BY rowid').all(r.id as string) as Row[])
      .map((n) => ({ at: n.at as string, by: n.by as string, text: n.text as string }));
    const status = r.status as FindingStatus;
    return {
      id: r.id as string, title: r.title as string, severity: r.severity as Severity, owner: r.owner as string, dueDate: r.due_date as string, status, notes,
      createdAt: r.created_at as string, createdBy: r.created_by as string, closedAt: r.closed_at as string | null,
      overdue: status !== 'closed' && (r.due_date as string) <= iso(at),
    };
  }

  /** Moves the finding to `status` (with an optional note, required to close). */
  async setStatus(id: string, input: { status: FindingStatus; by: string; note?: string }, at: Date = this.#core.now()): Promise<{ finding: Finding; event: GovernanceEvent }> {
    const o = requireObject(input, 'status change');
    const status = parseOneOf(o.status, FINDING_STATUSES, 'status');
    const by = parseName(o.by, 'by');
    const note = o.note === undefined ? null : parseText(o.note, 'note', 4000);
    if (status === 'closed' && note === null) throw new GovernanceError('GOV_INVALID', 'closing a finding needs a note saying how it was remediated', 'add --note "what was done"');
    return this.#core.tx(async () => {
      const f = await this.get(id, at);
      if (!f) throw new GovernanceError('GOV_NOT_FOUND', `no finding "${String(id).slice(0, 64)}"`, 'list findings with: gatehouse finding list');
      if (!ALLOWED[f.status].includes(status)) throw new GovernanceError('GOV_BAD_TRANSITION', `a ${f.status} finding cannot move to ${status}`, `allowed from ${f.status}: ${ALLOWED[f.status].join(', ')}`);
      await this.#core.stmt('UPDATE gov_findings SET status = ?, closed_at = ? WHERE id = ?').run(status, status === 'closed' ? iso(at) : null, f.id);
      if (note) await this.#core.stmt('INSERT INTO gov_finding_notes (finding_id, at, by, text) VALUES (?, ?, ?, ?)').run(f.id, iso(at), by, note);
      return { finding: (await this.get(f.id, at))!, event: event({ action: 'finding.status', actor: by, time: iso(at), subject: f.id, outcome: status === 'closed' ? 'closed' : 'updated', refs: { findingId: f.id }, detail: `${by} moved finding ${f.id} from ${f.status} to ${status}` }) };
    });
  }

  async addNote(id: string, input: { by: string; text: string }, at: Date = this.#core.now()): Promise<Finding> {
    const o = requireObject(input, 'note');
    const by = parseName(o.by, 'by');
    const text = parseText(o.text, 'text', 4000);
    return this.#core.tx(async () => {
      if (!await this.get(id, at)) throw new GovernanceError('GOV_NOT_FOUND', `no finding "${String(id).slice(0, 64)}"`, 'list findings with: gatehouse finding list');
      await this.#core.stmt('INSERT INTO gov_finding_notes (finding_id, at, by, text) VALUES (?, ?, ?, ?)').run(id, iso(at), by, text);
      return (await this.get(id, at))!;
    });
  }

  async list(filter: { status?: FindingStatus; overdue?: boolean; owner?: string; includeClosed?: boolean } = {}, at: Date = this.#core.now()): Promise<Finding[]> {
    const rows = await this.#core.stmt('SELECT * FROM gov_findings ORDER BY due_date, id').all() as Row[];
    const all: Finding[] = [];
    for (const r of rows) all.push(await this.#toFinding(r, at));
    return all.filter((f) =>
      (filter.status === undefined ? (filter.includeClosed || f.status !== 'closed') : f.status === filter.status)
      && (filter.overdue === undefined || f.overdue === filter.overdue)
      && (filter.owner === undefined || f.owner === filter.owner));
  }
}
