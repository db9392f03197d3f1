/**
 * Exact non-negative rationals for mechanism parameters (noise scale t, variance σ²).
 *
 * The samplers of Canonne, Kamath and Steinke (2020) are exact only if their parameters
 * are exact: a scale handed over as a binary double would silently become a different
 * number. `rational()` therefore converts decimal strings digit by digit, and JavaScript
 * numbers through their shortest round-trip decimal form (`String(0.1)` is "0.1", so
 * `rational(0.1)` is 1/10, which is what the caller wrote).
 */
import { MechanismParameterInvalid, MechanismParameterOutOfRange } from './errors.ts';

/** num/den in lowest terms, den > 0. */
export type Rational = { readonly num: bigint; readonly den: bigint };
/** What the public API accepts wherever a rational parameter is expected. */
export type RationalInput = Rational | number | string;

const MAX_INPUT_CHARS = 400;
const MAX_EXPONENT = 300;
/** Numerator and denominator of a mechanism parameter must each fit in 64 bits. */
export const MAX_COMPONENT = (1n << 64n) - 1n;

export function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b !== 0n) { const r = a % b; a = b; b = r; }
  return a;
}

function reduced(num: bigint, den: bigint): Rational {
  if (den === 0n) throw new MechanismParameterInvalid('rational with a zero denominator');
  if (den < 0n) { num = -num; den = -den; }
  const g = gcd(num, den);
  return Object.freeze(g > 1n ? { num: num / g, den: den / g } : { num, den });
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const FRACTION = /^([+-]?)(\d+)\s*\/\s*(\d+)$/;

/**
 * Exact conversion: "0.1" → 1/10, "7/2" → 7/2, "1e-3" → 1/1000, 2.5 → 5/2.
 * NaN, ±Infinity and malformed strings are refused. −0 becomes 0 (sign of zero dropped);
 * whether zero or a negative value is acceptable is decided where the rational is used.
 */
export function rational(x: number | string | bigint): Rational {
  if (typeof x === 'bigint') return Object.freeze({ num: x, den: 1n });
  if (typeof x === 'number') {
    if (!Number.isFinite(x)) throw new MechanismParameterInvalid(`parameter must be a finite number, got ${x}`);
    if (Number.isSafeInteger(x)) return Object.freeze({ num: BigInt(x), den: 1n });
    return rational(String(x));
  }
  if (typeof x !== 'string') throw new MechanismParameterInvalid(`parameter must be a number or a decimal string, got ${typeof x}`);
  const s = x.trim();
  if (s.length === 0 || s.length > MAX_INPUT_CHARS) throw new MechanismParameterInvalid('parameter string is empty or too long');
  const f = FRACTION.exec(s);
  if (f) {
    const den = BigInt(f[3]!);
    if (den === 0n) throw new MechanismParameterInvalid('rational with a zero denominator');
    const num = BigInt(f[2]!);
    return reduced(f[1] === '-' ? -num : num, den);
  }
  const m = DECIMAL.exec(s);
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) {
    throw new MechanismParameterInvalid('parameter is not a decimal number (expected e.g. "0.5", "3", "1e-2" or "7/2")');
  }
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  const exp = m[4] === undefined ? 0 : Number(m[4]);
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > MAX_EXPONENT) throw new MechanismParameterOutOfRange('parameter exponent out of range');
  let num = BigInt((intPart + fracPart) || '0');
  let den = 10n ** BigInt(fracPart.length);
  if (exp > 0) num *= 10n ** BigInt(exp);
  else if (exp < 0) den *= 10n ** BigInt(-exp);
  return reduced(m[1] === '-' ? -num : num, den);
}

/** Validates a `Rational` object handed in by a caller (types are not trusted at the boundary). */
export function toRational(x: RationalInput, name: string): Rational {
  if (typeof x === 'number' || typeof x === 'string') {
    if (typeof x === 'number' && Object.is(x, -0)) throw new MechanismParameterInvalid(`${name} must not be -0`);
    return rational(x);
  }
  if (x === null || typeof x !== 'object' || typeof x.num !== 'bigint' || typeof x.den !== 'bigint') {
    throw new MechanismParameterInvalid(`${name} must be a rational { num: bigint, den: bigint }, a number or a decimal string`);
  }
  return reduced(x.num, x.den);
}

/**
 * A strictly positive rational whose value lies in [min, max] and whose components fit in
 * 64 bits (bounded work per sample; absurd parameters are refused, not approximated).
 */
export function positiveRational(x: RationalInput, name: string, max: bigint): Rational {
  const r = toRational(x, name);
  if (r.num <= 0n) throw new MechanismParameterOutOfRange(`${name} must be > 0`);
  if (r.num > MAX_COMPONENT || r.den > MAX_COMPONENT) {
    throw new MechanismParameterOutOfRange(`${name} needs more than 64 bits in its numerator or denominator`);
  }
  if (r.num > max * r.den) throw new MechanismParameterOutOfRange(`${name} exceeds the supported maximum ${max}`);
  return r;
}

/** floor(sqrt(n)) for n ≥ 0 (Newton's method on integers). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError('isqrt of a negative number');
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  // Correct the float estimate in both directions.
  while (x * x > n) x = (x + n / x) >> 1n;
  while ((x + 1n) * (x + 1n) <= n) x += 1n;
  return x;
}

/** Nearest double (for display and float computations such as intervals). */
export function toNumber(r: Rational): number {
  return Number(r.num) / Number(r.den);
}
