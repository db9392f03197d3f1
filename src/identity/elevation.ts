/**
 * Privileged access management (issue 4): just-in-time elevation to a privileged role.
 *
 *   request → approve (a different admin, who is an approver for the role) → grant
 *           → deny
 *   breakGlass → grant at once, flagged `alert: true`, with a written justification
 *   revoke (any time) · expiry (by itself: a grant is active while now < expiresAt)
 *
 * Storage is node:sqlite (WAL) or PostgreSQL shared by several nodes (src/identity/sql.ts).
 * Every state change is one transaction (`BEGIN IMMEDIATE`, or SERIALIZABLE) with a
 * conditional UPDATE (`WHERE status = 'pending'`), and a grant's `request_id` is UNIQUE: an
 * approval cannot be applied twice, even by two processes or nodes. Nothing runs in the
 * background; expiry is computed, and active grants are read on every call.
 *
 * Every operation, refused or not, yields an `ElevationAudit` (who, what, when, outcome)
 * for the caller to append to the audit log. Refusals throw an `ElevationError` whose
 * `audit` carries that description. Audits name ids, roles and purposes, never the
 * justification text (free text, possibly sensitive; kept in the store for reviewers).
 */
import { randomBytes } from 'node:crypto';
import { SqliteIdentitySql, type IdentitySql, type SqlQueries } from './sql.ts';
import { IdentityStoreUnavailable } from './session.ts';
import { GatehouseError, type ErrorCode } from '../errors.ts';
import { elevationTables } from '../sql/tables/identity.ts';

export type ElevationErrorCode =
  | 'ELEVATION_INVALID'
  | 'ELEVATION_JUSTIFICATION_REQUIRED'
  | 'ELEVATION_SELF_APPROVAL'
  | 'ELEVATION_NOT_APPROVER'
  | 'ELEVATION_BREAK_GLASS_NOT_ALLOWED'
  | 'ELEVATION_ALREADY_DECIDED'
  | 'ELEVATION_REQUEST_EXPIRED'
  | 'ELEVATION_NOT_FOUND'
  | 'ELEVATION_ALREADY_REVOKED';

export type ElevationAction = 'elevation.request' | 'elevation.approve' | 'elevation.deny' | 'elevation.break-glass' | 'elevation.revoke';

/** One audit entry's worth: who did what to whose elevation, when, and how it ended. */
export interface ElevationAudit {
  readonly action: ElevationAction;
  /** Who acted (requester, approver, revoker). */
  readonly actor: string;
  /** Whose privileges change; null when a refused call named no known request. */
  readonly subject: string | null;
  readonly role: string | null;
  readonly purpose: string | null;
  readonly requestId: string | null;
  readonly grantId: string | null;
  readonly time: string;
  readonly outcome: 'requested' | 'approved' | 'denied' | 'granted' | 'revoked' | 'refused';
  /** Break-glass grants (and refused break-glass attempts) alert the security team. */
  readonly alert: boolean;
  readonly expiresAt: string | null;
  /** Refusal code, or null. */
  readonly errorCode: ElevationErrorCode | null;
  /** A sentence for the audit reader (never the justification text). */
  readonly detail: string;
}

/**
 * A refused elevation step: `code` from ELEVATION_CODES, `detail` the elevation code (also
 * the first reason, so the audit entry keeps it), `audit` the entry to record.
 */
export class ElevationError extends GatehouseError {
  declare readonly detail: ElevationErrorCode;
  readonly audit: ElevationAudit;
  constructor(code: ElevationErrorCode, message: string, audit: Omit<ElevationAudit, 'outcome' | 'errorCode' | 'detail'>) {
    super(ELEVATION_CODES[code], message, { detail: code, reasons: [code] });
    this.audit = { ...audit, outcome: 'refused', errorCode: code, detail: message };
  }
}

/** Elevation code → union code: bad input 400, two-person and role rules 403, a request already decided or expired 409. */
export const ELEVATION_CODES: Readonly<Record<ElevationErrorCode, ErrorCode>> = {
  ELEVATION_INVALID: 'REQUEST_INVALID',
  ELEVATION_JUSTIFICATION_REQUIRED: 'REQUEST_INVALID',
  ELEVATION_SELF_APPROVAL: 'POLICY_DENIED',
  ELEVATION_NOT_APPROVER: 'POLICY_DENIED',
  ELEVATION_BREAK_GLASS_NOT_ALLOWED: 'POLICY_DENIED',
  ELEVATION_ALREADY_DECIDED: 'CONFLICT',
  ELEVATION_REQUEST_EXPIRED: 'CONFLICT',
  ELEVATION_NOT_FOUND: 'NOT_FOUND',
  ELEVATION_ALREADY_REVOKED: 'CONFLICT',
};

export interface ElevationRequest {
  readonly id: string;
  readonly principalId: string;
  readonly role: string;
  readonly purpose: string;
  readonly justification: string;
  readonly durationMinutes: number;
  readonly requestedAt: string;
  readonly status: 'pending' | 'approved' | 'denied';
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
  readonly decisionReason: string | null;
}

export interface ElevationGrant {
  readonly id: string;
  /** Null for break-glass. */
  readonly requestId: string | null;
  readonly principalId: string;
  readonly role: string;
  readonly purpose: string;
  /** The approver, or the principal itself for break-glass. */
  readonly grantedBy: string;
  readonly breakGlass: boolean;
  readonly alert: boolean;
  readonly startsAt: string;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
  readonly revokedBy: string | null;
}

export interface ElevationOptions extends ElevationStoreSettings {
  /** SQLite file, or ':memory:' (tests). */
  readonly path: string;
}

/** Everything but where the store lives (`openOn` takes shared storage instead of a path). */
export interface ElevationStoreSettings {
  /** Whether `approverId` may approve elevations to `role` (e.g. membership of an admin group). */
  readonly isApprover: (approverId: string, role: string) => boolean;
  /** Whether `principalId` may break glass into `role`; default: anyone (it alerts). */
  readonly canBreakGlass?: (principalId: string, role: string) => boolean;
  /** Longest grant a request may ask for (default 60). */
  readonly maxDurationMinutes?: number;
  /** How long break-glass lasts (default 60, at most maxDurationMinutes). */
  readonly breakGlassMinutes?: number;
  /** A pending request older than this can no longer be approved (default 24 h). */
  readonly requestTtlMinutes?: number;
  /** Roles that exist; an unknown role is refused. Default: any well-formed name. */
  readonly roles?: readonly string[];
  /** Clock, for the operations that take no explicit time (default: the system clock). */
  readonly clock?: () => Date;
}

export const MIN_BREAK_GLASS_JUSTIFICATION = 20;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$/;
const ROLE = /^[a-z][a-z0-9_.-]{0,63}$/;
const PURPOSE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

type Row = Record<string, string | number | null>;

function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function toRequest(r: Row): ElevationRequest {
  return {
    id: r.id as string, principalId: r.principal_id as string, role: r.role as string, purpose: r.purpose as string,
    justification: r.justification as string, durationMinutes: r.duration_minutes as number, requestedAt: iso(r.requested_at as number)!,
    status: r.status as ElevationRequest['status'], decidedBy: r.decided_by as string | null, decidedAt: iso(r.decided_at as number | null),
    decisionReason: r.decision_reason as string | null,
  };
}

function toGrant(r: Row): ElevationGrant {
  const breakGlass = r.break_glass === 1;
  return {
    id: r.id as string, requestId: r.request_id as string | null, principalId: r.principal_id as string, role: r.role as string,
    purpose: r.purpose as string, grantedBy: r.granted_by as string, breakGlass, alert: breakGlass,
    startsAt: iso(r.starts_at as number)!, expiresAt: iso(r.expires_at as number)!,
    revokedAt: iso(r.revoked_at as number | null), revokedBy: r.revoked_by as string | null,
  };
}

export class ElevationStore {
  readonly #sql: IdentitySql;
  readonly #isApprover: ElevationOptions['isApprover'];
  readonly #canBreakGlass: NonNullable<ElevationOptions['canBreakGlass']>;
  readonly #maxMinutes: number;
  readonly #breakGlassMinutes: number;
  readonly #requestTtlMs: number;
  readonly #roles: ReadonlySet<string> | null;
  readonly #clock: () => Date;

  private constructor(sql: IdentitySql, o: ElevationOptions) {
    this.#sql = sql;
    this.#isApprover = o.isApprover;
    this.#canBreakGlass = o.canBreakGlass ?? (() => true);
    this.#maxMinutes = o.maxDurationMinutes ?? 60;
    this.#breakGlassMinutes = Math.min(o.breakGlassMinutes ?? 60, this.#maxMinutes);
    this.#requestTtlMs = (o.requestTtlMinutes ?? 24 * 60) * 60_000;
    this.#roles = o.roles ? new Set(o.roles) : null;
    this.#clock = o.clock ?? (() => new Date());
  }

  static #check(options: ElevationStoreSettings): void {
    const bad = (m: string): never => { throw new ElevationError('ELEVATION_INVALID', m, blankAudit('elevation.request', 'system', new Date())); };
    const max = options.maxDurationMinutes ?? 60;
    if (!Number.isInteger(max) || max < 1 || max > 7 * 24 * 60) bad('maxDurationMinutes must be an integer from 1 to 10080');
    if (options.breakGlassMinutes !== undefined && (!Number.isInteger(options.breakGlassMinutes) || options.breakGlassMinutes < 1)) bad('breakGlassMinutes must be a positive integer');
    if (options.requestTtlMinutes !== undefined && (!Number.isInteger(options.requestTtlMinutes) || options.requestTtlMinutes < 1)) bad('requestTtlMinutes must be a positive integer');
    if (typeof options.isApprover !== 'function') bad('isApprover must be a function (approverId, role) => boolean');
  }

  /** Opens (and creates) the sqlite store. Throws `ElevationError('ELEVATION_INVALID')` for bad options. */
  static open(options: ElevationOptions): ElevationStore {
    ElevationStore.#check(options);
    const sql = SqliteIdentitySql.open(options.path, elevationTables, {
      unavailable: (what, cause) => new IdentityStoreUnavailable(`the elevation store: ${what}`, { cause }),
    });
    return new ElevationStore(sql, options);
  }

  /** The store on shared storage (PostgreSQL: src/state/identity.ts); its tables exist already. */
  static openOn(sql: IdentitySql, options: ElevationStoreSettings): ElevationStore {
    ElevationStore.#check(options);
    return new ElevationStore(sql, { ...options, path: '' });
  }

  /** Closes the store (and its sqlite file; shared storage is closed by its owner). */
  async close(): Promise<void> {
    if (this.#sql.dialect === 'sqlite') await this.#sql.close();
  }

  /** A principal asks for `role` for `purpose`, for `durationMinutes` once approved. */
  async request(input: { principalId: string; role: string; purpose: string; durationMinutes?: number; justification: string }, now: Date = this.#clock()): Promise<{ request: ElevationRequest; audit: ElevationAudit }> {
    const base = { ...blankAudit('elevation.request', String(input?.principalId), now), subject: String(input?.principalId), role: str(input?.role), purpose: str(input?.purpose) };
    const refuse = (code: ElevationErrorCode, m: string): never => { throw new ElevationError(code, m, base); };
    if (!input || typeof input.principalId !== 'string' || !ID.test(input.principalId)) refuse('ELEVATION_INVALID', 'principalId is missing or malformed');
    this.#checkRole(input.role, refuse);
    if (typeof input.purpose !== 'string' || !PURPOSE.test(input.purpose)) refuse('ELEVATION_INVALID', 'purpose must be lower-case letters, digits, _ . -');
    const duration = input.durationMinutes ?? this.#maxMinutes;
    if (!Number.isInteger(duration) || duration < 1 || duration > this.#maxMinutes) refuse('ELEVATION_INVALID', `durationMinutes must be an integer from 1 to ${this.#maxMinutes}`);
    if (typeof input.justification !== 'string' || input.justification.trim().length === 0) refuse('ELEVATION_JUSTIFICATION_REQUIRED', 'an elevation request needs a justification');
    if (input.justification.length > 4000) refuse('ELEVATION_INVALID', 'justification is limited to 4000 characters');
    const id = newId('elr');
    const row = await this.#sql.write(async (q) => {
      await q.run(`INSERT INTO {elevation_requests} (id, principal_id, role, purpose, justification, duration_minutes, requested_at, status)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')`, [id, input.principalId, input.role, input.purpose, input.justification.trim(), duration, now.getTime()]);
      return q.get<Row>('SELECT * FROM {elevation_requests} WHERE id = ?', [id]);
    });
    const request = toRequest(row!);
    return {
      request,
      audit: { ...base, requestId: id, outcome: 'requested', errorCode: null, detail: `${input.principalId} requested role "${input.role}" for purpose "${input.purpose}" for ${duration} min; awaiting approval` },
    };
  }

  /**
   * A different principal, who is an approver for the role, approves a pending request; the
   * grant runs from `now` for the requested duration. Refused: self-approval, a non-approver,
   * a request already decided (including a concurrent second approval, on any node), an
   * expired request.
   */
  async approve(requestId: string, approverId: string, now: Date = this.#clock()): Promise<{ grant: ElevationGrant; audit: ElevationAudit }> {
    return this.#sql.write(async (q) => {
      const { row, base } = await this.#decidable(q, requestId, approverId, 'elevation.approve', now);
      const grantId = newId('elg');
      const expires = now.getTime() + (row.duration_minutes as number) * 60_000;
      // The conditional UPDATE is the guard: a second approval finds no pending row.
      const changed = await q.run(`UPDATE {elevation_requests} SET status = 'approved', decided_by = ?, decided_at = ? WHERE id = ? AND status = 'pending'`, [approverId, now.getTime(), requestId]);
      if (changed !== 1) throw new ElevationError('ELEVATION_ALREADY_DECIDED', 'this request has already been decided', base);
      await q.run(`INSERT INTO {elevation_grants} (id, request_id, principal_id, role, purpose, granted_by, break_glass, justification, starts_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`, [grantId, requestId, row.principal_id, row.role, row.purpose, approverId, row.justification, now.getTime(), expires]);
      const grant = toGrant((await q.get<Row>('SELECT * FROM {elevation_grants} WHERE id = ?', [grantId]))!);
      return {
        grant,
        audit: { ...base, grantId, outcome: 'approved' as const, errorCode: null, expiresAt: grant.expiresAt, detail: `${approverId} approved role "${grant.role}" for ${grant.principalId} until ${grant.expiresAt}` },
      };
    });
  }

  /** An approver denies a pending request, with a reason. Same refusals as `approve`. */
  async deny(requestId: string, approverId: string, reason: string, now: Date = this.#clock()): Promise<{ request: ElevationRequest; audit: ElevationAudit }> {
    return this.#sql.write(async (q) => {
      const { base } = await this.#decidable(q, requestId, approverId, 'elevation.deny', now);
      if (typeof reason !== 'string' || reason.trim().length === 0) throw new ElevationError('ELEVATION_INVALID', 'a denial needs a reason the requester can read', base);
      const changed = await q.run(`UPDATE {elevation_requests} SET status = 'denied', decided_by = ?, decided_at = ?, decision_reason = ? WHERE id = ? AND status = 'pending'`,
        [approverId, now.getTime(), reason.trim().slice(0, 1000), requestId]);
      if (changed !== 1) throw new ElevationError('ELEVATION_ALREADY_DECIDED', 'this request has already been decided', base);
      const request = toRequest((await q.get<Row>('SELECT * FROM {elevation_requests} WHERE id = ?', [requestId]))!);
      return { request, audit: { ...base, outcome: 'denied' as const, errorCode: null, detail: `${approverId} denied role "${request.role}" for ${request.principalId}` } };
    });
  }

  async #decidable(q: SqlQueries, requestId: string, approverId: string, action: ElevationAction, now: Date): Promise<{ row: Row; base: Omit<ElevationAudit, 'outcome' | 'errorCode' | 'detail'> }> {
    const base0 = { ...blankAudit(action, String(approverId), now), requestId: str(requestId) };
    if (typeof approverId !== 'string' || !ID.test(approverId)) throw new ElevationError('ELEVATION_INVALID', 'approverId is missing or malformed', base0);
    const row = typeof requestId === 'string' ? await q.get<Row>('SELECT * FROM {elevation_requests} WHERE id = ?', [requestId]) : undefined;
    if (!row) throw new ElevationError('ELEVATION_NOT_FOUND', 'no such elevation request', base0);
    const base = { ...base0, subject: row.principal_id as string, role: row.role as string, purpose: row.purpose as string };
    if (approverId === row.principal_id) throw new ElevationError('ELEVATION_SELF_APPROVAL', 'an elevation must be decided by someone other than the requester', base);
    if (!this.#isApprover(approverId, row.role as string)) throw new ElevationError('ELEVATION_NOT_APPROVER', `${approverId} is not an approver for role "${row.role}"`, base);
    if (row.status !== 'pending') throw new ElevationError('ELEVATION_ALREADY_DECIDED', `this request has already been ${row.status}`, base);
    if (now.getTime() - (row.requested_at as number) > this.#requestTtlMs) throw new ElevationError('ELEVATION_REQUEST_EXPIRED', 'this request is too old to decide; ask the requester to submit a new one', base);
    return { row, base };
  }

  /**
   * Emergency access without an approver: active at once for `breakGlassMinutes`, flagged
   * `alert: true` so the caller pages the security team. Requires a written justification of
   * at least 20 characters. Refused attempts are audited with `alert: true` as well.
   */
  async breakGlass(input: { principalId: string; role: string; purpose?: string; justification: string }, now: Date = this.#clock()): Promise<{ grant: ElevationGrant; audit: ElevationAudit }> {
    const purpose = input?.purpose ?? 'break-glass';
    const base = { ...blankAudit('elevation.break-glass', String(input?.principalId), now), subject: String(input?.principalId), role: str(input?.role), purpose: str(purpose), alert: true };
    const refuse = (code: ElevationErrorCode, m: string): never => { throw new ElevationError(code, m, base); };
    if (!input || typeof input.principalId !== 'string' || !ID.test(input.principalId)) refuse('ELEVATION_INVALID', 'principalId is missing or malformed');
    this.#checkRole(input.role, refuse);
    if (typeof purpose !== 'string' || !PURPOSE.test(purpose)) refuse('ELEVATION_INVALID', 'purpose must be lower-case letters, digits, _ . -');
    const justification = typeof input.justification === 'string' ? input.justification.trim() : '';
    if (justification.length < MIN_BREAK_GLASS_JUSTIFICATION) {
      refuse('ELEVATION_JUSTIFICATION_REQUIRED', `break-glass access needs a written justification of at least ${MIN_BREAK_GLASS_JUSTIFICATION} characters`);
    }
    if (justification.length > 4000) refuse('ELEVATION_INVALID', 'justification is limited to 4000 characters');
    if (!this.#canBreakGlass(input.principalId, input.role)) refuse('ELEVATION_BREAK_GLASS_NOT_ALLOWED', `${input.principalId} may not break glass into role "${input.role}"`);
    const grantId = newId('elg');
    const expires = now.getTime() + this.#breakGlassMinutes * 60_000;
    const row = await this.#sql.write(async (q) => {
      await q.run(`INSERT INTO {elevation_grants} (id, request_id, principal_id, role, purpose, granted_by, break_glass, justification, starts_at, expires_at)
        VALUES (?, NULL, ?, ?, ?, ?, 1, ?, ?, ?)`, [grantId, input.principalId, input.role, purpose, input.principalId, justification, now.getTime(), expires]);
      return q.get<Row>('SELECT * FROM {elevation_grants} WHERE id = ?', [grantId]);
    });
    const grant = toGrant(row!);
    return {
      grant,
      audit: { ...base, grantId, outcome: 'granted', errorCode: null, expiresAt: grant.expiresAt, detail: `BREAK-GLASS: ${input.principalId} took role "${input.role}" without approval until ${grant.expiresAt}; review the justification on grant ${grantId}` },
    };
  }

  /** Ends a grant now. Whoever may call this is the caller's policy (the grantee, an approver, an admin). */
  async revoke(grantId: string, by: string, reason: string | null = null, now: Date = this.#clock()): Promise<{ grant: ElevationGrant; audit: ElevationAudit }> {
    return this.#sql.write(async (q) => {
      const base0 = { ...blankAudit('elevation.revoke', String(by), now), grantId: str(grantId) };
      if (typeof by !== 'string' || !ID.test(by)) throw new ElevationError('ELEVATION_INVALID', 'the revoker id is missing or malformed', base0);
      const row = typeof grantId === 'string' ? await q.get<Row>('SELECT * FROM {elevation_grants} WHERE id = ?', [grantId]) : undefined;
      if (!row) throw new ElevationError('ELEVATION_NOT_FOUND', 'no such elevation grant', base0);
      const base = { ...base0, subject: row.principal_id as string, role: row.role as string, purpose: row.purpose as string, requestId: row.request_id as string | null, expiresAt: iso(row.expires_at as number) };
      const changed = await q.run('UPDATE {elevation_grants} SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL',
        [now.getTime(), by, reason === null ? null : String(reason).slice(0, 1000), grantId]);
      if (changed !== 1) throw new ElevationError('ELEVATION_ALREADY_REVOKED', 'this grant has already been revoked', base);
      const grant = toGrant((await q.get<Row>('SELECT * FROM {elevation_grants} WHERE id = ?', [grantId]))!);
      const expired = (row.expires_at as number) <= now.getTime();
      return { grant, audit: { ...base, outcome: 'revoked' as const, errorCode: null, detail: `${by} revoked role "${grant.role}" for ${grant.principalId}${expired ? ' (it had already expired)' : ''}` } };
    });
  }

  /** Grants in force for the principal at `now`: started, not expired, not revoked (read every call). */
  async activeElevations(principalId: string, now: Date = this.#clock()): Promise<ElevationGrant[]> {
    const t = now.getTime();
    return (await this.#sql.all<Row>('SELECT * FROM {elevation_grants} WHERE principal_id = ? AND revoked_at IS NULL AND starts_at <= ? AND expires_at > ? ORDER BY starts_at, id',
      [principalId, t, t])).map(toGrant);
  }

  /** Whether the principal holds `role` at `now` (for the request path: re-evaluated on every request). */
  async hasRole(principalId: string, role: string, now: Date = this.#clock()): Promise<boolean> {
    return (await this.activeElevations(principalId, now)).some((g) => g.role === role);
  }

  async getRequest(requestId: string): Promise<ElevationRequest | null> {
    const row = await this.#sql.get<Row>('SELECT * FROM {elevation_requests} WHERE id = ?', [requestId]);
    return row ? toRequest(row) : null;
  }

  async getGrant(grantId: string): Promise<ElevationGrant | null> {
    const row = await this.#sql.get<Row>('SELECT * FROM {elevation_grants} WHERE id = ?', [grantId]);
    return row ? toGrant(row) : null;
  }

  /** Pending requests an approver can still decide (oldest first). */
  async pendingRequests(now: Date = this.#clock()): Promise<ElevationRequest[]> {
    return (await this.#sql.all<Row>(`SELECT * FROM {elevation_requests} WHERE status = 'pending' AND requested_at >= ? ORDER BY requested_at, id`,
      [now.getTime() - this.#requestTtlMs])).map(toRequest);
  }

  #checkRole(role: unknown, refuse: (code: ElevationErrorCode, m: string) => never): void {
    if (typeof role !== 'string' || !ROLE.test(role)) refuse('ELEVATION_INVALID', 'role must be lower-case letters, digits, _ . -');
    if (this.#roles && !this.#roles.has(role as string)) refuse('ELEVATION_INVALID', `unknown role "${String(role)}"`);
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v.slice(0, 128) : null;
}

function blankAudit(action: ElevationAction, actor: string, now: Date): Omit<ElevationAudit, 'outcome' | 'errorCode' | 'detail'> {
  return { action, actor: actor.slice(0, 128), subject: null, role: null, purpose: null, requestId: null, grantId: null, time: now.toISOString(), alert: false, expiresAt: null };
}
