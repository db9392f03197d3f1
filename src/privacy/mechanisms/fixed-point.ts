/**
 * Fixed-point encoding so that integer noise can protect real-valued sums.
 *
 * A value v is encoded as the integer round(v / g) at a declared granularity g (e.g.
 * g = 0.01 for cents). Rounding after division by a positive g is monotone, so values
 * clamped to [lower, upper] encode into [round(lower/g), round(upper/g)] and the sum's
 * sensitivity in units is fixedPointSensitivity(bounds): max(|round(lower/g)|,
 * |round(upper/g)|) when a neighbour adds or removes one row (one privacy unit's
 * contribution after bounding), round(upper/g) − round(lower/g) when it replaces one.
 * A finer granularity multiplies the sensitivity in units by the same factor, so the
 * noise in the caller's units (noise · g) is unchanged; each row carries at most g/2 of
 * rounding error. Integer noise then keeps the exactness the samplers provide instead of
 * reintroducing floating-point Laplace (Mironov 2012).
 */
import { FixedPointOverflow, MechanismParameterInvalid } from './errors.ts';

export type FixedPointBounds = { readonly lower: number; readonly upper: number; readonly granularity: number };
export type Neighbouring = 'add-remove' | 'replace';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function finite(x: unknown, name: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new MechanismParameterInvalid(`${name} must be a finite number`);
  return x === 0 ? 0 : x; // −0 → 0
}

function checkGranularity(g: unknown): number {
  const x = finite(g, 'granularity');
  if (x <= 0) throw new MechanismParameterInvalid('granularity must be > 0');
  return x;
}

/** Rounds half away from zero, so encoding is symmetric: toFixedPoint(−v) = −toFixedPoint(v). */
function roundSymmetric(x: number): number {
  const r = Math.round(Math.abs(x));
  return x < 0 ? -r || 0 : r;
}

/** round(value / granularity) as a safe integer; NaN, ±Infinity and overflow are refused. */
export function toFixedPoint(value: number, granularity: number): number {
  const g = checkGranularity(granularity);
  const units = roundSymmetric(finite(value, 'value') / g);
  if (!Number.isSafeInteger(units)) throw new FixedPointOverflow('value / granularity leaves the exact integer range (2^53)');
  return units;
}

/** units · granularity (the caller's units). */
export function fromFixedPoint(units: number, granularity: number): number {
  const g = checkGranularity(granularity);
  if (!Number.isSafeInteger(units)) throw new MechanismParameterInvalid('units must be a safe integer');
  return units * g;
}

function checkBounds(b: FixedPointBounds): { lower: number; upper: number; g: number } {
  if (b === null || typeof b !== 'object') throw new MechanismParameterInvalid('bounds must be an object');
  const lower = finite(b.lower, 'lower');
  const upper = finite(b.upper, 'upper');
  if (lower > upper) throw new MechanismParameterInvalid('lower bound exceeds upper bound');
  return { lower, upper, g: checkGranularity(b.granularity) };
}

/** Clamps to [lower, upper], then encodes. NaN is refused rather than silently clamped. */
export function clampToFixedPoint(value: number, bounds: FixedPointBounds): number {
  const { lower, upper, g } = checkBounds(bounds);
  const v = finite(value, 'value');
  return toFixedPoint(v < lower ? lower : v > upper ? upper : v, g);
}

/** Sensitivity, in fixed-point units, of a sum of values clamped to the bounds. */
export function fixedPointSensitivity(bounds: FixedPointBounds, neighbouring: Neighbouring = 'add-remove'): number {
  const { lower, upper, g } = checkBounds(bounds);
  const lo = toFixedPoint(lower, g);
  const hi = toFixedPoint(upper, g);
  if (neighbouring === 'replace') return hi - lo;
  if (neighbouring !== 'add-remove') throw new MechanismParameterInvalid('neighbouring must be "add-remove" or "replace"');
  return Math.max(Math.abs(lo), Math.abs(hi));
}

/** Σ clampToFixedPoint(v), refusing a sum that would leave the exact integer range. */
export function fixedPointSum(values: Iterable<number>, bounds: FixedPointBounds): number {
  const { lower, upper, g } = checkBounds(bounds);
  const lo = toFixedPoint(lower, g);
  const hi = toFixedPoint(upper, g);
  const limit = MAX_SAFE - Math.max(Math.abs(lo), Math.abs(hi));
  let sum = 0;
  for (const value of values) {
    const v = finite(value, 'value');
    sum += v <= lower ? lo : v >= upper ? hi : roundSymmetric(v / g);
    if (sum > limit || sum < -limit) throw new FixedPointOverflow('fixed-point sum leaves the exact integer range (2^53)');
  }
  return sum;
}
