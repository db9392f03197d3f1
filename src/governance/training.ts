/**
 * Training records: (principal, course, completedAt, expiresAt). A course is current at `t`
 * when some completion has completedAt ≤ t < expiresAt. Which courses a classification
 * requires is a gate setting (gate.ts `requirements`).
 */
import { event, invalid, iso, newId, parseInstant, parseName, requireObject, type Core, type GovernanceEvent, type Row } from './types.ts';

export interface TrainingRecord {
  readonly id: string;
  readonly principalId: string;
  readonly course: string;
  readonly completedAt: string;
  readonly expiresAt: string;
}

export type TrainingState =
  | { readonly state: 'current'; readonly expiresAt: string }
  | { readonly state: 'expired'; readonly expiredAt: string }
  | { readonly state: 'missing' };

const toRecord = (r: Row): TrainingRecord => ({ id: r.id as string, principalId: r.principal_id as string, course: r.course as string, completedAt: r.completed_at as string, expiresAt: r.expires_at as string });

export class Training {
  readonly #core: Core;
  constructor(core: Core) {
    this.#core = core;
  }

  async record(input: { principalId: string; course: string; completedAt: string | Date; expiresAt: string | Date; by: string }, at: Date = this.#core.now()): Promise<{ record: TrainingRecord; event: GovernanceEvent }> {
    const o = requireObject(input, 'training record');
    const principalId = parseName(o.principalId, 'principalId');
    const course = parseName(o.course, 'course');
    const completed = parseInstant(o.completedAt, 'completedAt');
    const expires = parseInstant(o.expiresAt, 'expiresAt');
    const by = parseName(o.by, 'by');
    if (expires.getTime() <= completed.getTime()) invalid(`expiresAt (${iso(expires)}) must be after completedAt (${iso(completed)})`, 'check the two dates are not swapped');
    if (completed.getTime() > at.getTime() + 60_000) invalid('completedAt is in the future', 'record training once it has been completed');
    const id = newId('trn');
    await this.#core.stmt('INSERT INTO gov_training (id, principal_id, course, completed_at, expires_at, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, principalId, course, iso(completed), iso(expires), iso(at), by);
    const record = toRecord(await this.#core.stmt('SELECT * FROM gov_training WHERE id = ?').get(id) as Row);
    return { record, event: event({ action: 'training.record', actor: by, time: iso(at), subject: principalId, outcome: 'created', refs: { trainingId: id, course }, detail: `${by} recorded "${course}" for ${principalId}, valid until ${record.expiresAt}` }) };
  }

  /** The principal's standing in a course at `at` (one indexed query). */
  async state(principalId: string, course: string, at: Date = this.#core.now()): Promise<TrainingState> {
    const t = iso(at);
    const r = await this.#core.stmt(`SELECT MAX(CASE WHEN completed_at <= ?3 AND expires_at > ?3 THEN expires_at END) AS current_until,
        MAX(CASE WHEN expires_at <= ?3 THEN expires_at END) AS expired_at
      FROM gov_training WHERE principal_id = ?1 AND course = ?2`).get(principalId, course, t) as Row;
    if (r.current_until !== null) return { state: 'current', expiresAt: r.current_until as string };
    if (r.expired_at !== null) return { state: 'expired', expiredAt: r.expired_at as string };
    return { state: 'missing' };
  }

  async records(principalId: string): Promise<TrainingRecord[]> {
    return (await this.#core.stmt('SELECT * FROM gov_training WHERE principal_id = ? ORDER BY course, completed_at').all(principalId) as Row[]).map(toRecord);
  }
}
