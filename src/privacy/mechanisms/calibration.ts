/**
 * Noise parameters for a target guarantee, as exact rationals.
 *
 * - Discrete Laplace with scale Δ/ε on an integer query of sensitivity Δ is ε-DP
 *   (pure DP; CKS 2020 §1, Ghosh–Roughgarden–Sundararajan 2009 for the geometric mechanism).
 * - Discrete Gaussian with σ² = Δ²/(2ρ) is ρ-zCDP (CKS 2020, Theorem 4).
 */
import { MechanismParameterInvalid, MechanismParameterOutOfRange } from './errors.ts';
import { type Rational, type RationalInput, gcd, toRational } from './rational.ts';

function sensitivityOf(x: number | bigint): bigint {
  if (typeof x === 'bigint') {
    if (x < 1n) throw new MechanismParameterOutOfRange('sensitivity must be ≥ 1');
    return x;
  }
  if (!Number.isSafeInteger(x) || x < 1) throw new MechanismParameterInvalid('sensitivity must be a positive integer (in fixed-point units)');
  return BigInt(x);
}

function positive(x: RationalInput, name: string): Rational {
  const r = toRational(x, name);
  if (r.num <= 0n) throw new MechanismParameterOutOfRange(`${name} must be > 0`);
  return r;
}

function make(num: bigint, den: bigint): Rational {
  const g = gcd(num, den);
  return Object.freeze({ num: num / g, den: den / g });
}

/** Scale Δ/ε for the discrete Laplace mechanism. */
export function laplaceScale(sensitivity: number | bigint, epsilon: RationalInput): Rational {
  const d = sensitivityOf(sensitivity);
  const e = positive(epsilon, 'epsilon');
  return make(d * e.den, e.num);
}

/** Variance Δ²/(2ρ) for the discrete Gaussian mechanism under ρ-zCDP. */
export function gaussianSigma2(sensitivity: number | bigint, rho: RationalInput): Rational {
  const d = sensitivityOf(sensitivity);
  const r = positive(rho, 'rho');
  return make(d * d * r.den, 2n * r.num);
}
