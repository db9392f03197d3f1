/**
 * Input validation and window arithmetic shared with the embedded BudgetStore. These are
 * copies of the private helpers of src/privacy/accounting/budget-store.ts (which does not
 * export them); the shared contract test (test/state-budget-contract.test.ts) runs the
 * same hostile inputs through both stores so the two copies cannot drift silently.
 */
import { MAX_RHO, MAX_WINDOW_DAYS, RHO_UNIT, rhoToNano, type BudgetWindow } from '../privacy/accounting/budget-store.ts';
import { BudgetArgumentInvalid, BudgetRhoInvalid, BudgetWindowInvalid } from '../privacy/accounting/errors.ts';

export const MAX_ID = 256;
export const MAX_REASON = 500;
const DAY_MS = 86_400_000;
const BAD_CHARS = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

export function text(name: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length === 0) throw new BudgetArgumentInvalid(`${name} must be a non-empty string`);
  if (value.length > max) throw new BudgetArgumentInvalid(`${name} is longer than ${max} characters`);
  if (value.trim() !== value) throw new BudgetArgumentInvalid(`${name} has leading or trailing whitespace`);
  if (BAD_CHARS.test(value)) throw new BudgetArgumentInvalid(`${name} contains control characters`);
  return value;
}

export function subjectOf(value: unknown): string {
  const s = text('subject', value, MAX_ID);
  if (s.startsWith('org:') && s.length === 4) throw new BudgetArgumentInvalid('subject "org:" needs an organisation name');
  return s;
}

const MAX_TIME_MS = Date.UTC(9999, 11, 1);

export function timeOf(name: string, value: unknown): number {
  if (!(value instanceof Date)) throw new BudgetArgumentInvalid(`${name} must be a Date`);
  const ms = value.getTime();
  if (!Number.isFinite(ms)) throw new BudgetArgumentInvalid(`${name} is an invalid Date`);
  if (ms < 0 || ms >= MAX_TIME_MS) throw new BudgetArgumentInvalid(`${name} is outside 1970-01-01 .. 9999-12-01`);
  return ms;
}

export function objectOf(name: string, value: unknown): void {
  if (typeof value !== 'object' || value === null) throw new BudgetArgumentInvalid(`${name} must be an object`);
}

export const nanoToRho = (n: number): number => n / 1e9;

export function rhoAmount(name: string, value: unknown, mode: 'ceil' | 'floor'): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new BudgetRhoInvalid(`${name} must be a number`);
  if (!Number.isFinite(value)) throw new BudgetRhoInvalid(`${name} must be finite`);
  if (Object.is(value, -0) || !(value > 0)) throw new BudgetRhoInvalid(`${name} must be > 0`);
  if (value > MAX_RHO) throw new BudgetRhoInvalid(`${name} must be <= ${MAX_RHO}`);
  const nano = rhoToNano(value, mode);
  if (nano < 1) throw new BudgetRhoInvalid(`${name} is below the accounting unit ${RHO_UNIT}`);
  return nano;
}

export type WindowKind = 'none' | 'calendar-month' | 'rolling-days';

export function windowOf(value: unknown): { kind: WindowKind; days: number | null } {
  if (value === null) return { kind: 'none', days: null };
  if (typeof value !== 'object' || value === undefined) throw new BudgetWindowInvalid('window must be null or an object with a kind');
  const w = value as { kind?: unknown; days?: unknown };
  if (w.kind === 'calendar-month') {
    if (Object.keys(w).some((k) => k !== 'kind')) throw new BudgetWindowInvalid('a calendar-month window has no other fields');
    return { kind: 'calendar-month', days: null };
  }
  if (w.kind === 'rolling-days') {
    if (Object.keys(w).some((k) => k !== 'kind' && k !== 'days')) throw new BudgetWindowInvalid('a rolling-days window has only kind and days');
    if (typeof w.days !== 'number' || !Number.isInteger(w.days) || w.days < 1 || w.days > MAX_WINDOW_DAYS) {
      throw new BudgetWindowInvalid(`rolling-days window needs an integer days in [1, ${MAX_WINDOW_DAYS}]`);
    }
    return { kind: 'rolling-days', days: w.days };
  }
  throw new BudgetWindowInvalid('window kind must be "calendar-month" or "rolling-days"');
}

export interface BudgetShape {
  readonly window_kind: WindowKind;
  readonly window_days: number | null;
  readonly anchor_ms: number;
}

const NO_WINDOW_START = 0;

/** [start, end) of the window containing `at`; end null when the budget never resets. */
export function windowContaining(b: BudgetShape, at: number): { start: number; end: number | null } {
  switch (b.window_kind) {
    case 'none':
      return { start: NO_WINDOW_START, end: null };
    case 'calendar-month': {
      const d = new Date(at);
      return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
    }
    case 'rolling-days': {
      const len = b.window_days! * DAY_MS;
      const start = b.anchor_ms + Math.floor((at - b.anchor_ms) / len) * len;
      return { start, end: start + len };
    }
  }
}

export function publicWindow(b: BudgetShape): BudgetWindow {
  if (b.window_kind === 'none') return null;
  if (b.window_kind === 'calendar-month') return { kind: 'calendar-month' };
  return { kind: 'rolling-days', days: b.window_days! };
}

export const iso = (ms: number): string => new Date(ms).toISOString();
