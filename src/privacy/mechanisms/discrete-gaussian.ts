/**
 * The discrete Gaussian N_Z(0, σ²): P(X = x) = e^(−x²/(2σ²)) / Σ_{y∈Z} e^(−y²/(2σ²)).
 *
 * Sampler: Algorithm 3 of Canonne, Kamath, Steinke, "The Discrete Gaussian for
 * Differential Privacy", NeurIPS 2020 (arXiv:2004.00010): with t = ⌊σ⌋ + 1, draw
 * Y ~ Lap_Z(t) (Algorithm 2) and accept it with probability
 * exp(−(|Y| − σ²/t)² / (2σ²)) (Algorithm 1). For σ² = a/b that exponent is the rational
 * (|Y|·b·t − a)² / (2·a·b·t²), so everything is integer arithmetic and the output has
 * exactly the discrete Gaussian distribution.
 *
 * Fast path (t ≤ 4096, the σ² Gatehouse calibrates to): the same algorithm, with the proposal's
 * magnitude drawn from one word by binary search over exact digits of e^(−k/t)
 * (geometric-table.ts) and the acceptance test one word against precomputed exact digits of its
 * probability — about three words per proposal, 2× the general path (docs/privacy-mechanisms.md).
 *
 * Adding N_Z(0, σ²) to an integer query of sensitivity Δ satisfies (Δ²/(2σ²))-zCDP
 * (CKS 2020, Theorem 4); conversion to (ε, δ) belongs to the accountant.
 */
import { bernoulliExpNegBig, bernoulliExpNegDigit, bernoulliExpNegUnchecked, expNegDigit, expNegTieBreak } from './bernoulli.ts';
import { randomBit, randomUint32 } from './rng.ts';
import { DiscreteLaplace } from './discrete-laplace.ts';
import { MAX_GEOMETRIC_TABLE_SCALE, geometricDigits, geometricFromDigits } from './geometric-table.ts';
import { MechanismParameterInvalid } from './errors.ts';
import { type Rational, type RationalInput, isqrt, positiveRational, toNumber } from './rational.ts';

/** σ ≤ 2^39: the Laplace proposal's scale stays within its own limit and results far below 2^53. */
export const MAX_GAUSSIAN_SIGMA2 = 1n << 78n;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** |d| below this keeps d² below 2^53. */
const SQUARE_SAFE = 94906265;

export class DiscreteGaussian {
  readonly sigma2: Rational;
  /** The Laplace proposal's scale ⌊σ⌋ + 1. */
  readonly t: bigint;
  readonly sample: () => number;

  /** reference: Algorithms 1–3 as printed; general: the pre-table fast path (for the benchmark). */
  constructor(sigma2: RationalInput, options: { reference?: boolean; general?: boolean } = {}) {
    this.sigma2 = positiveRational(sigma2, 'sigma2', MAX_GAUSSIAN_SIGMA2);
    const { num: a, den: b } = this.sigma2;
    const t = isqrt(a / b) + 1n; // ⌊√(a/b)⌋ = ⌊√⌊a/b⌋⌋
    this.t = t;
    const proposal = new DiscreteLaplace({ num: t, den: 1n }, options).sample;
    const fast = !options.reference;
    const BT = b * t;
    const DEN = 2n * a * b * t * t;
    const bt = Number(BT);
    const A = Number(a);
    const den = Number(DEN);
    const numbersFit = BT <= BigInt(MAX_SAFE) && a <= BigInt(MAX_SAFE) && DEN <= BigInt(MAX_SAFE);
    if (fast && !options.general && numbersFit && t <= BigInt(MAX_GEOMETRIC_TABLE_SCALE)) {
      this.sample = tableSampler(Number(t), bt, A, den, a, BT, DEN);
      return;
    }
    this.sample = () => {
      for (;;) {
        const y = proposal();
        const ay = y < 0 ? -y : y;
        if (numbersFit) {
          const m = ay * bt;
          const d = m - A;
          if (m <= MAX_SAFE && d < SQUARE_SAFE && d > -SQUARE_SAFE) {
            if (fast ? bernoulliExpNegDigit(d * d, den) : bernoulliExpNegUnchecked(d * d, den, false)) return y;
            continue;
          }
        }
        const d = BigInt(ay) * BT - a;
        if (bernoulliExpNegBig(d * d, DEN, fast)) return y;
      }
    };
  }

  fill(out: Int32Array | Float64Array | number[]): typeof out {
    const sample = this.sample;
    for (let i = 0; i < out.length; i++) out[i] = sample();
    return out;
  }
}

const digitTables = new Map<number, Uint32Array>();

/**
 * The fast path (t ≤ 4096, acceptance numbers within doubles): the same Algorithm 3, with the
 * Laplace proposal's magnitude drawn by one word and a binary search over exact digits of
 * e^{−k/t} (geometric-table.ts) and the acceptance Bernoulli(exp(−γ)) by one word compared with
 * the digits of exp(−γ) (bernoulli.ts, bernoulliExpNegDigit). Both are exact, so the output is
 * exactly N_Z(0, σ²); about three words per proposal instead of seven or more.
 */
function tableSampler(t: number, bt: number, A: number, den: number, a: bigint, BT: bigint, DEN: bigint): () => number {
  let digits = digitTables.get(t);
  if (digits === undefined) {
    digits = geometricDigits(t);
    if (digitTables.size >= 16) digitTables.delete(digitTables.keys().next().value!);
    digitTables.set(t, digits);
  }
  const magnitude = geometricFromDigits(digits, t);
  // The acceptance probability depends on the magnitude g only: its first 32 digits for every g
  // the table covers, computed once per σ² (exact, expNegDigit); further digits only on a tie.
  const G = digits.length + 1;
  const gammaNum = new Float64Array(G);
  const acceptDigits = new Float64Array(G).fill(-1);
  for (let g = 0; g < G; g++) {
    const d = g * bt - A;
    if (g * bt > MAX_SAFE || d >= SQUARE_SAFE || d <= -SQUARE_SAFE) break;
    gammaNum[g] = d * d;
    acceptDigits[g] = d === 0 ? 4294967296 : expNegDigit(d * d, den);
  }
  const acceptFar = (g: number): boolean => {
    const m = g * bt, d = m - A;
    return m <= MAX_SAFE && d < SQUARE_SAFE && d > -SQUARE_SAFE ? bernoulliExpNegDigit(d * d, den) : bernoulliExpNegBig((BigInt(g) * BT - a) ** 2n, DEN);
  };
  return () => {
    for (;;) {
      // Lap_Z(t) as in Algorithm 2: magnitude, sign, and "−0" rejected so zero is not counted twice.
      const g = magnitude();
      const minus = randomBit();
      if (minus === 1 && g === 0) continue;
      let accept: boolean;
      const digit = g < G ? acceptDigits[g]! : -1;
      if (digit >= 0) {
        const w = randomUint32();
        accept = w !== digit ? w < digit : expNegTieBreak(BigInt(gammaNum[g]!), DEN);
      } else {
        accept = acceptFar(g);
      }
      if (accept) return minus === 1 ? -g : g;
    }
  };
}

const samplerCache = new Map<string, DiscreteGaussian>();
let lastInput: unknown;
let lastSampler: DiscreteGaussian | undefined;

/** Keeps prepared samplers for the variances in use. */
export function discreteGaussian(sigma2: RationalInput): DiscreteGaussian {
  if (sigma2 === lastInput && lastSampler !== undefined) return lastSampler;
  const prepared = new DiscreteGaussian(sigma2);
  const key = `${prepared.sigma2.num}/${prepared.sigma2.den}`;
  let s = samplerCache.get(key);
  if (s === undefined) {
    s = prepared;
    if (samplerCache.size >= 64) samplerCache.delete(samplerCache.keys().next().value!);
    samplerCache.set(key, s);
  }
  if (typeof sigma2 !== 'object' || Object.isFrozen(sigma2)) {
    lastInput = sigma2;
    lastSampler = s;
  }
  return s;
}

/** One sample of N_Z(0, σ²), σ² a positive rational ≤ 2^78. */
export function sampleDiscreteGaussian(sigma2: RationalInput): number {
  return discreteGaussian(sigma2).sample();
}

// ------------------------------------------------------------ distribution

const SQRT_2PI = Math.sqrt(2 * Math.PI);

/**
 * Normalising constant Σ_{y∈Z} e^(−y²/(2σ²)). For σ ≥ 1 by Poisson summation,
 * Σ_y e^(−y²/(2σ²)) = √(2π)·σ·Σ_k e^(−2π²σ²k²), whose terms vanish at once; for small σ
 * by the direct sum, whose terms vanish at once there.
 */
export function discreteGaussianNormalizer(s2: number): number {
  const sigma = Math.sqrt(s2);
  if (sigma >= 1) {
    let sum = 1;
    for (let k = 1; k < 10; k++) {
      const term = Math.exp(-2 * Math.PI * Math.PI * s2 * k * k);
      if (term === 0) break;
      sum += 2 * term;
    }
    return SQRT_2PI * sigma * sum;
  }
  let sum = 1;
  for (let y = 1; ; y++) {
    const term = Math.exp(-(y * y) / (2 * s2));
    if (term < 1e-300) break;
    sum += 2 * term;
  }
  return sum;
}

/** P(X = k) for X ~ N_Z(0, σ²), in double precision. */
export function discreteGaussianPmf(k: number, sigma2: RationalInput): number {
  if (!Number.isSafeInteger(k)) throw new MechanismParameterInvalid('k must be a safe integer');
  const s2 = toNumber(positiveRational(sigma2, 'sigma2', MAX_GAUSSIAN_SIGMA2));
  return Math.exp(-(k * k) / (2 * s2)) / discreteGaussianNormalizer(s2);
}

/** Above this σ the half-width is found from an integral approximation instead of summing every term. */
const DIRECT_SUM_MAX_SIGMA = 1 << 17;

/**
 * Smallest h ≥ 0 with P(|X| ≤ h) ≥ level, by summing the pmf outwards from 0. For
 * σ > 2^17 the partial sums come from Euler–Maclaurin (Simpson integral plus the endpoint
 * corrections, relative error far below 10^−12) and h is widened by one as a margin.
 */
export function discreteGaussianHalfWidth(sigma2: RationalInput, level: number): number {
  const s2 = toNumber(positiveRational(sigma2, 'sigma2', MAX_GAUSSIAN_SIGMA2));
  const z = discreteGaussianNormalizer(s2);
  const target = level * z;
  const sigma = Math.sqrt(s2);
  if (sigma <= DIRECT_SUM_MAX_SIGMA) {
    let mass = 1;
    let h = 0;
    while (mass < target) {
      h++;
      const term = Math.exp(-(h * h) / (2 * s2));
      if (term === 0) break; // level so close to 1 that doubles cannot tell; h is as wide as they get
      mass += 2 * term;
    }
    return h;
  }
  const f = (x: number): number => Math.exp(-(x * x) / (2 * s2));
  // Σ_{x=−h}^{h} f(x) = 1 + 2·Σ_{x=1}^{h} f(x) ≈ 1 + 2·(∫_0^h f + (f(h) − f(0))/2 + (f'(h) − f'(0))/12).
  const mass = (h: number): number => {
    const n = 20000;
    const step = h / n;
    let acc = f(0) + f(h);
    for (let i = 1; i < n; i++) acc += (i % 2 === 1 ? 4 : 2) * f(i * step);
    const integral = (acc * step) / 3;
    const fPrimeH = (-h / s2) * f(h);
    return 1 + 2 * (integral + (f(h) - 1) / 2 + fPrimeH / 12);
  };
  let lo = 0;
  let hi = Math.ceil(sigma * Math.sqrt(2 * Math.log(2 / (1 - level)))) + 1; // P(|X| > h) ≤ 2e^(−h²/(2σ²)): N_Z(0, σ²) is σ-subgaussian (CKS 2020)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (mass(mid) >= target) hi = mid;
    else lo = mid;
  }
  return hi + 1;
}
