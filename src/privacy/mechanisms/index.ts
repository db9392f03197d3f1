/**
 * Differential-privacy noise mechanisms: exact discrete Laplace and discrete Gaussian
 * samplers (Canonne, Kamath, Steinke 2020) driven by the OS CSPRNG, their distributions,
 * error bars, calibration and fixed-point helpers. See docs/privacy-mechanisms.md.
 */
export { type Rational, type RationalInput, rational } from './rational.ts';
export { MechanismError, MechanismParameterInvalid, MechanismParameterOutOfRange, FixedPointOverflow } from './errors.ts';
export { uniformBelow, randomUint32 } from './rng.ts';
export { sampleBernoulli, sampleBernoulliExpNeg } from './bernoulli.ts';
export {
  DiscreteLaplace, MAX_LAPLACE_SCALE, discreteLaplace, discreteLaplacePmf, discreteLaplaceTail, sampleDiscreteLaplace,
} from './discrete-laplace.ts';
export {
  DiscreteGaussian, MAX_GAUSSIAN_SIGMA2, discreteGaussian, discreteGaussianPmf, sampleDiscreteGaussian,
} from './discrete-gaussian.ts';
export { type NoiseMechanism, confidenceInterval } from './confidence-interval.ts';
export { laplaceScale, gaussianSigma2 } from './calibration.ts';
export {
  type FixedPointBounds, type Neighbouring, clampToFixedPoint, fixedPointSensitivity, fixedPointSum, fromFixedPoint, toFixedPoint,
} from './fixed-point.ts';
