/**
 * Governance model (issue 6): the shared vocabulary, the typed error, the audit event every
 * state change returns, and strict parsers for the inputs that reach the store from the
 * HTTP API and the CLI. The model is described with examples in docs/governance.md.
 *
 * Times cross the API as ISO 8601 strings and are stored normalised by `toISOString()`
 * (`2026-03-01T00:00:00.000Z`), so comparing two stored times as strings orders them.
 */
import { randomBytes } from 'node:crypto';
import { CLASSIFICATIONS, type Classification } from '../model/types.ts';
import { GatehouseError, type ErrorCode } from '../errors.ts';

export { CLASSIFICATIONS, type Classification };

export const AGREEMENT_KINDS = ['NDA', 'DPA', 'SLA', 'MSA'] as const;
export type AgreementKind = (typeof AGREEMENT_KINDS)[number];

/** Derived from the dates and termination at a given time; never stored. */
export type AgreementStatus = 'pending' | 'active' | 'expired' | 'terminated';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const AUDIT_OUTCOMES = ['pass', 'pass-with-findings', 'fail'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export const RETENTION_KINDS = ['dataset', 'grant', 'result', 'export'] as const;
export type RetentionKind = (typeof RETENTION_KINDS)[number];

export const HOLD_SUBJECT_KINDS = ['dataset', 'agreement', 'principal', 'artefact'] as const;
export type HoldSubjectKind = (typeof HOLD_SUBJECT_KINDS)[number];

export const FINDING_STATUSES = ['open', 'in-progress', 'closed'] as const;
export type FindingStatus = (typeof FINDING_STATUSES)[number];

/** 1 (low) … 4 (critical). */
export type RiskTier = 1 | 2 | 3 | 4;

export const CLASSIFICATION_RANK: Readonly<Record<Classification, number>> = { public: 0, internal: 1, confidential: 2, regulated: 3 };

/** The stricter of two classification levels. */
export function stricter(a: Classification, b: Classification): Classification {
  return CLASSIFICATION_RANK[a] >= CLASSIFICATION_RANK[b] ? a : b;
}

// ───────────────────────────── errors ─────────────────────────────

export type GovernanceErrorCode =
  | 'GOV_INVALID'
  | 'GOV_NOT_FOUND'
  | 'GOV_UNKNOWN_ORG'
  | 'GOV_UNKNOWN_DATASET'
  | 'GOV_DUPLICATE'
  | 'GOV_AGREEMENT_DATES'
  | 'GOV_AGREEMENT_OVERLAP'
  | 'GOV_AGREEMENT_NOT_ACTIVE'
  | 'GOV_AGREEMENT_NOT_COVERING'
  | 'GOV_AGREEMENT_ALREADY_ENDED'
  | 'GOV_GRANT_BEYOND_AGREEMENT'
  | 'GOV_GRANT_ALREADY_REVOKED'
  | 'GOV_SELF_APPROVAL'
  | 'GOV_NOT_OWNER'
  | 'GOV_ALREADY_DECIDED'
  | 'GOV_ACK_HASH_MISMATCH'
  | 'GOV_LEGAL_HOLD'
  | 'GOV_HOLD_ALREADY_RELEASED'
  | 'GOV_BAD_TRANSITION';

/**
 * Governance code → union code. Bad input is REQUEST_INVALID (400); the two-person and
 * ownership rules POLICY_DENIED (403); anything that contradicts the current state —
 * a duplicate, an overlapping agreement, a request already decided, a legal hold, a
 * transition the record cannot make — CONFLICT (409), so a caller can tell "fix your
 * request" from "read the current state and decide again".
 */
export const GOVERNANCE_CODES: Readonly<Record<GovernanceErrorCode, ErrorCode>> = {
  GOV_INVALID: 'REQUEST_INVALID',
  GOV_NOT_FOUND: 'NOT_FOUND',
  GOV_UNKNOWN_ORG: 'REQUEST_INVALID',
  GOV_UNKNOWN_DATASET: 'REQUEST_INVALID',
  GOV_DUPLICATE: 'CONFLICT',
  GOV_AGREEMENT_DATES: 'REQUEST_INVALID',
  GOV_AGREEMENT_OVERLAP: 'CONFLICT',
  GOV_AGREEMENT_NOT_ACTIVE: 'CONFLICT',
  GOV_AGREEMENT_NOT_COVERING: 'CONFLICT',
  GOV_AGREEMENT_ALREADY_ENDED: 'CONFLICT',
  GOV_GRANT_BEYOND_AGREEMENT: 'REQUEST_INVALID',
  GOV_GRANT_ALREADY_REVOKED: 'CONFLICT',
  GOV_SELF_APPROVAL: 'POLICY_DENIED',
  GOV_NOT_OWNER: 'POLICY_DENIED',
  GOV_ALREADY_DECIDED: 'CONFLICT',
  GOV_ACK_HASH_MISMATCH: 'CONFLICT',
  GOV_LEGAL_HOLD: 'CONFLICT',
  GOV_HOLD_ALREADY_RELEASED: 'CONFLICT',
  GOV_BAD_TRANSITION: 'CONFLICT',
};

/**
 * Every refusal of the governance store: `code` from GOVERNANCE_CODES, `detail` the
 * governance code (also the first reason, so the audit entry keeps it). Nothing was changed
 * when one is thrown (each change is one transaction). `hint` says what to do next; `event`
 * (workflow refusals such as self-approval) is the audit description of the refused attempt.
 */
export class GovernanceError extends GatehouseError {
  declare readonly detail: GovernanceErrorCode;
  declare readonly hint: string;
  readonly event: GovernanceEvent | null;
  constructor(code: GovernanceErrorCode, message: string, hint: string, event: GovernanceEvent | null = null) {
    super(GOVERNANCE_CODES[code], message, { detail: code, hint, reasons: [code] });
    this.event = event;
  }
}

export function invalid(message: string, hint = 'fix the input as the message says and retry; nothing was changed'): never {
  throw new GovernanceError('GOV_INVALID', message, hint);
}

// ───────────────────────────── audit events ─────────────────────────────

/**
 * What a state change (or a refused workflow step) means for the audit log. The store
 * never writes the audit log itself: the caller appends the event. Events name ids, orgs,
 * datasets and purposes, never free text (justifications, notes, reasons stay in the store).
 */
export interface GovernanceEvent {
  /** e.g. `agreement.create`, `agreement.terminate`, `grant.approve`. */
  readonly action: string;
  readonly actor: string;
  readonly time: string;
  /** Whose access or which record changes (principal id, `org:<name>`, record id). */
  readonly subject: string | null;
  readonly outcome: 'created' | 'updated' | 'requested' | 'approved' | 'denied' | 'revoked' | 'terminated' | 'signed' | 'published' | 'placed' | 'released' | 'confirmed' | 'rejected' | 'closed' | 'refused';
  /** Ids that the entry refers to (agreementId, grantId, requestId, …). */
  readonly refs: Readonly<Record<string, string>>;
  /** One sentence for the audit reader. */
  readonly detail: string;
}

export function event(e: Omit<GovernanceEvent, 'refs'> & { refs?: Record<string, string | null | undefined> }): GovernanceEvent {
  const refs: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.refs ?? {})) if (typeof v === 'string') refs[k] = v;
  return { ...e, refs };
}

// ───────────────────────────── the shared core ─────────────────────────────

/** A value bound to a statement parameter (`?`). */
export type SqlValue = string | number | bigint | null | Uint8Array;

/** One prepared statement of a Core: the same three calls on either backend. */
export interface Statement {
  get(...params: SqlValue[]): Promise<Row | undefined>;
  all(...params: SqlValue[]): Promise<Row[]>;
  run(...params: SqlValue[]): Promise<{ changes: number }>;
}

/**
 * What every part of the store shares: statements, transactions and one clock. Two
 * implementations: node:sqlite (core-sqlite.ts, the embedded default) and PostgreSQL
 * (src/state/governance-pg.ts, several nodes on one database). SQL is written once, in the
 * common subset (`?` parameters, `ON CONFLICT`, text times); the PostgreSQL core rewrites
 * parameters and qualifies `gov_*` tables with its schema.
 */
export interface Core {
  /** 'sqlite' or 'postgres' (for the rare statement that differs). */
  readonly dialect: 'sqlite' | 'postgres';
  /** A prepared statement, prepared once per SQL text (named statements on PostgreSQL). */
  stmt(sql: string): Statement;
  /**
   * Runs `fn` in one transaction: all of it or none of it, and no read-check-write inside it
   * interleaves with another writer (SQLite: BEGIN IMMEDIATE, one at a time; PostgreSQL: one
   * client holding the schema's advisory lock, one writer at a time across every node; a
   * deadlock is retried, so `fn` may run again).
   * Statements issued by `fn` (through any part of the store) join the transaction; a nested
   * `tx` joins the outer one.
   */
  tx<T>(fn: () => Promise<T>): Promise<T>;
  now(): Date;
  close(): Promise<void>;
}

export type Row = Record<string, string | number | null | bigint | Uint8Array>;

// ───────────────────────────── input parsing ─────────────────────────────

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses a strict ISO 8601 date (`2026-03-01`, read as 00:00 UTC that day) or date-time with
 * an offset (`2026-03-01T09:30:00Z`). Rejects impossible dates (2026-02-30), years outside
 * 1970–9999 and anything else. `Date` objects are accepted as they are (if valid).
 */
export function parseInstant(value: unknown, field: string): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime()) || value.getUTCFullYear() < 1970 || value.getUTCFullYear() > 9999) invalid(`${field} is not a valid time`);
    return new Date(value.getTime());
  }
  if (typeof value !== 'string' || value.length > 40) invalid(`${field} must be an ISO 8601 date (2026-03-01) or date-time (2026-03-01T09:30:00Z)`);
  const s = value as string;
  const m = DATE_ONLY.exec(s) ?? DATE_TIME.exec(s);
  if (!m) invalid(`${field} must be an ISO 8601 date (2026-03-01) or date-time with a zone (2026-03-01T09:30:00Z); got "${s.slice(0, 40)}"`);
  const [y, mo, d] = [Number(m![1]), Number(m![2]), Number(m![3])];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (y < 1970 || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) invalid(`${field} is not a real date: "${s}"`);
  if (m![4] !== undefined && (Number(m![4]) > 23 || Number(m![5]) > 59 || Number(m![6] ?? 0) > 59)) invalid(`${field} has an impossible time of day: "${s}"`);
  const t = new Date(s.length === 10 ? `${s}T00:00:00Z` : s);
  if (Number.isNaN(t.getTime())) invalid(`${field} is not a valid time: "${s}"`);
  return t;
}

/** An end date: a date-only value means the end of that day (the next midnight UTC, exclusive). */
export function parseEnd(value: unknown, field: string): Date {
  const t = parseInstant(value, field);
  if (typeof value === 'string' && DATE_ONLY.test(value)) return new Date(t.getTime() + DAY_MS);
  return t;
}

export const DAY_MS = 86_400_000;

/** Org, principal, dataset, course and document names: what a workspace and a CLI can spell. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$/;
const PURPOSE = /^[a-z][a-z0-9_.-]{0,63}$/;

export function parseName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) invalid(`${field} is required`);
  if (!NAME.test(value as string)) invalid(`${field} must start with a letter or digit and use only letters, digits, _ . @ : - (at most 128 characters)`);
  return value as string;
}

export function parsePurpose(value: unknown, field = 'purpose'): string {
  if (typeof value !== 'string' || !PURPOSE.test(value)) invalid(`${field} must be lower-case letters, digits, _ . - starting with a letter (at most 64 characters)`);
  return value as string;
}

/** Free text that must say something (titles, reasons, justifications). */
export function parseText(value: unknown, field: string, max = 4000): string {
  if (typeof value !== 'string' || value.trim().length === 0) invalid(`${field} is required and cannot be blank`);
  const t = (value as string).trim();
  if (t.length > max) invalid(`${field} is limited to ${max} characters`);
  return t;
}

export function parseOneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) invalid(`${field} must be one of ${allowed.join(', ')}; got ${JSON.stringify(typeof value === 'string' ? value.slice(0, 40) : value ?? null)}`);
  return value as T;
}

export function parseWhole(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) invalid(`${field} must be a whole number from ${min} to ${max}`);
  return value as number;
}

export function parseList<T>(value: unknown, field: string, each: (v: unknown, f: string) => T, opts: { min?: number; max?: number } = {}): T[] {
  if (!Array.isArray(value)) invalid(`${field} must be a list`);
  const arr = value as unknown[];
  if (arr.length < (opts.min ?? 0)) invalid(`${field} needs at least ${opts.min} entr${opts.min === 1 ? 'y' : 'ies'}`);
  if (arr.length > (opts.max ?? 1000)) invalid(`${field} is limited to ${opts.max ?? 1000} entries`);
  const out = arr.map((v, i) => each(v, `${field}[${i}]`));
  if (new Set(out.map((x) => JSON.stringify(x))).size !== out.length) invalid(`${field} lists an entry twice`);
  return out;
}

export function iso(d: Date): string {
  return d.toISOString();
}

/** Random but readable ids: `agr_5kq2m8x1c7ve4nzt`. */
export function newId(prefix: string): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(16);
  let s = '';
  for (const b of bytes) s += alphabet[b & 31];
  return `${prefix}_${s}`;
}

export function requireObject(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid(`${what} must be an object`);
  return value as Record<string, unknown>;
}
