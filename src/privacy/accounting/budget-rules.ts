/**
 * Input validation, exact units and window arithmetic of privacy budgets: the pure rules of
 * BudgetStore (budget-store.ts), kept apart from its storage so they are read and tested on
 * their own (test/state-budget-contract.test.ts runs the same hostile inputs on both backends).
 */
import { BudgetArgumentInvalid, BudgetRhoInvalid, BudgetWindowInvalid } from './errors.ts';

/** ρ is accounted in integer multiples of this unit. */
export const RHO_UNIT = 1e-9;
/** Largest cap or single charge, in ρ (keeps nano-ρ integers exact in a double). */
export const MAX_RHO = 1e6;
/** Longest rolling window, in days (ten years). */
export const MAX_WINDOW_DAYS = 3660;

export type BudgetWindow =
  | { readonly kind: 'calendar-month' }
  | { readonly kind: 'rolling-days'; readonly days: number }
  | null;

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

/**
 * Converts a double ρ to nano-ρ, rounding up (charges) or down (caps).
 *
 * A ρ that is the double nearest to a decimal with at most nine decimals (0.1, 0.25,
 * 1e-9 …) is read as that decimal: the caller meant 0.1, not 0.1000000000000000055….
 * Any other double is rounded exactly: a double is m·2^e, and the integer arithmetic
 * below has no rounding error. So the only imprecision is at most half an ulp of ρ (one
 * part in 10¹⁶) in the first case, and rounding never loosens a cap in the second.
 */
export function rhoToNano(rho: number, mode: 'ceil' | 'floor'): number {
  const nearest = Math.round(rho * 1e9);
  if (nearest / 1e9 === rho) return nearest;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, rho);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exponent: number;
  if (biased === 0) exponent = -1074;
  else { mantissa |= 1n << 52n; exponent = biased - 1075; }
  const scaled = mantissa * 1_000_000_000n;
  if (exponent >= 0) return Number(scaled << BigInt(exponent));
  const divisor = 1n << BigInt(-exponent);
  const q = scaled / divisor;
  return Number(mode === 'ceil' && q * divisor !== scaled ? q + 1n : q);
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
