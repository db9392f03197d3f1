/**
 * Error bars for noisy results: the half-width h with P(|noise| ≤ h) ≥ level, computed from
 * the exact noise distribution (closed form for discrete Laplace, summed pmf for the
 * discrete Gaussian), in double precision. A noisy value v is reported as [v − h, v + h];
 * that interval covers the true value with probability ≥ level (before any clamping or
 * post-processing the caller applies).
 */
import { discreteGaussianHalfWidth } from './discrete-gaussian.ts';
import { discreteLaplaceHalfWidth } from './discrete-laplace.ts';
import { MechanismParameterInvalid } from './errors.ts';
import type { RationalInput } from './rational.ts';

export type NoiseMechanism =
  | { readonly kind: 'laplace'; readonly scale: RationalInput }
  | { readonly kind: 'gaussian'; readonly sigma2: RationalInput };

/** Half-width in noise units (for fixed-point sums multiply by the granularity). */
export function confidenceInterval(mechanism: NoiseMechanism, level = 0.95): number {
  if (typeof level !== 'number' || !Number.isFinite(level) || level <= 0 || level >= 1) {
    throw new MechanismParameterInvalid('confidence level must be a number strictly between 0 and 1');
  }
  if (mechanism === null || typeof mechanism !== 'object') throw new MechanismParameterInvalid('mechanism must be an object');
  switch (mechanism.kind) {
    case 'laplace':
      return discreteLaplaceHalfWidth(mechanism.scale, level);
    case 'gaussian':
      return discreteGaussianHalfWidth(mechanism.sigma2, level);
    default:
      throw new MechanismParameterInvalid('mechanism kind must be "laplace" or "gaussian"');
  }
}
