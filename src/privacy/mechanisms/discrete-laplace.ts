/**
 * The discrete Laplace distribution Lap_Z(t): P(X = x) = tanh(1/(2t))·e^(−|x|/t), x ∈ Z.
 *
 * Sampler: Algorithm 2 of Canonne, Kamath, Steinke, "The Discrete Gaussian for
 * Differential Privacy", NeurIPS 2020 (arXiv:2004.00010), for a rational scale t = n/d
 * (the paper's t/s): U uniform in {0..n−1}, accept it with probability exp(−U/n),
 * V ~ Geometric(1 − e^(−1)), X = U + n·V, Y = ⌊X/d⌋, a uniform sign, and reject
 * (sign −, Y = 0) so that zero is not counted twice. Integer arithmetic only: this is the
 * exact distribution, without the holes and bias of floating-point Laplace noise
 * (Mironov, "On significance of the least significant bits for differential privacy",
 * CCS 2012).
 *
 * Adding Lap_Z(Δ/ε) to an integer query of sensitivity Δ is ε-differentially private.
 *
 * Fast path (n ≤ 2^16, numbers): the acceptance step and the geometric step compare uniform
 * words with exact digits of exp(−U/n) and exp(−v) (bernoulli.ts), so one accepted trial
 * costs a fixed amount of work whatever its value (see docs/privacy-mechanisms.md for what
 * is and is not constant-time). Larger n fall back to Algorithm 1 for the acceptance step;
 * components above 2^40 run the same algorithm on BigInts.
 */
import {
  MAX_TABLE_DENOMINATOR, bernoulliExpNeg1Reference, bernoulliExpNegBig, bernoulliExpNegFromTable, bernoulliExpNegUnchecked,
  expNegDigitTable, geometricExpNeg1, geometricExpNeg1Reference,
} from './bernoulli.ts';
import { MechanismParameterInvalid } from './errors.ts';
import { type Rational, type RationalInput, positiveRational, toNumber } from './rational.ts';
import { randomBit, uniformBelowBig, uniformBelowUnchecked } from './rng.ts';

/** Largest accepted scale. P(|X| ≥ 2^53) ≤ e^(−2^13) there, so results are exact JS integers. */
export const MAX_LAPLACE_SCALE = 1n << 40n;
const NUMBER_PATH_MAX = 2 ** 40;

const tableCache = new Map<number, Uint32Array>();
function digitTable(n: number): Uint32Array {
  let table = tableCache.get(n);
  if (table === undefined) {
    table = expNegDigitTable(n);
    if (tableCache.size >= 16) tableCache.delete(tableCache.keys().next().value!);
    tableCache.set(n, table);
  }
  return table;
}

/** A discrete Laplace sampler prepared for one scale (validation and tables done once). */
export class DiscreteLaplace {
  readonly scale: Rational;
  readonly sample: () => number;

  constructor(scale: RationalInput, options: { reference?: boolean } = {}) {
    this.scale = positiveRational(scale, 'scale', MAX_LAPLACE_SCALE);
    const { num, den } = this.scale;
    if (options.reference) this.sample = referenceSampler(num, den);
    else if (num <= BigInt(MAX_TABLE_DENOMINATOR) && den <= BigInt(NUMBER_PATH_MAX)) this.sample = tableSampler(Number(num), Number(den));
    else if (num <= BigInt(NUMBER_PATH_MAX) && den <= BigInt(NUMBER_PATH_MAX)) this.sample = numberSampler(Number(num), Number(den));
    else this.sample = bigSampler(num, den);
  }

  /** Fills `out` with independent samples. */
  fill(out: Int32Array | Float64Array | number[]): typeof out {
    const sample = this.sample;
    for (let i = 0; i < out.length; i++) out[i] = sample();
    return out;
  }
}

function floorDiv(x: number, s: number): number {
  if (s === 1) return x;
  const y = Math.floor(x / s);
  return y * s > x ? y - 1 : y;
}

function tableSampler(n: number, d: number): () => number {
  const table = digitTable(n);
  return () => {
    for (;;) {
      const u = n === 1 ? 0 : uniformBelowUnchecked(n);
      if (!bernoulliExpNegFromTable(table, u, n)) continue;
      const y = floorDiv(u + n * geometricExpNeg1(), d);
      const b = randomBit();
      if (b === 1 && y === 0) continue;
      return (1 - 2 * b) * y;
    }
  };
}

function numberSampler(n: number, d: number): () => number {
  return () => {
    for (;;) {
      const u = uniformBelowUnchecked(n);
      if (!bernoulliExpNegUnchecked(u, n)) continue;
      const y = floorDiv(u + n * geometricExpNeg1(), d);
      const b = randomBit();
      if (b === 1 && y === 0) continue;
      return (1 - 2 * b) * y;
    }
  };
}

function bigSampler(n: bigint, d: bigint): () => number {
  return () => {
    for (;;) {
      const u = uniformBelowBig(n);
      if (!bernoulliExpNegBig(u, n)) continue;
      const y = (u + n * BigInt(geometricExpNeg1())) / d;
      const b = randomBit();
      if (b === 1 && y === 0n) continue;
      return Number(b === 1 ? -y : y);
    }
  };
}

/** Algorithm 2 exactly as printed, every Bernoulli(exp(−γ)) by Algorithm 1 (tests, benchmark). */
function referenceSampler(n: bigint, d: bigint): () => number {
  const small = n <= BigInt(NUMBER_PATH_MAX) && d <= BigInt(NUMBER_PATH_MAX);
  const N = Number(n);
  const D = Number(d);
  return () => {
    for (;;) {
      if (small) {
        const u = uniformBelowUnchecked(N);
        if (!bernoulliExpNegUnchecked(u, N, false)) continue;
        let v = 0;
        while (bernoulliExpNeg1Reference()) v++;
        const y = floorDiv(u + N * v, D);
        const b = randomBit();
        if (b === 1 && y === 0) continue;
        return (1 - 2 * b) * y;
      }
      const u = uniformBelowBig(n);
      if (!bernoulliExpNegBig(u, n, false)) continue;
      const y = (u + n * BigInt(geometricExpNeg1Reference())) / d;
      const b = randomBit();
      if (b === 1 && y === 0n) continue;
      return Number(b === 1 ? -y : y);
    }
  };
}

const samplerCache = new Map<string, DiscreteLaplace>();
let lastInput: unknown;
let lastSampler: DiscreteLaplace | undefined;

/** Keeps prepared samplers for the scales in use, so repeated calls skip validation and table building. */
export function discreteLaplace(scale: RationalInput): DiscreteLaplace {
  if (scale === lastInput && lastSampler !== undefined) return lastSampler;
  const prepared = new DiscreteLaplace(scale); // validates even when a cached twin exists
  const key = `${prepared.scale.num}/${prepared.scale.den}`;
  let s = samplerCache.get(key);
  if (s === undefined) {
    s = prepared;
    if (samplerCache.size >= 64) samplerCache.delete(samplerCache.keys().next().value!);
    samplerCache.set(key, s);
  }
  // Remember by identity only what cannot change behind our back.
  if (typeof scale !== 'object' || Object.isFrozen(scale)) {
    lastInput = scale;
    lastSampler = s;
  }
  return s;
}

/** One sample of Lap_Z(scale), scale a positive rational ≤ 2^40. */
export function sampleDiscreteLaplace(scale: RationalInput): number {
  return discreteLaplace(scale).sample();
}

function checkOutcome(k: number): void {
  if (!Number.isSafeInteger(k)) throw new MechanismParameterInvalid('k must be a safe integer');
}

/** P(X = k) for X ~ Lap_Z(scale), in double precision. */
export function discreteLaplacePmf(k: number, scale: RationalInput): number {
  checkOutcome(k);
  const t = toNumber(positiveRational(scale, 'scale', MAX_LAPLACE_SCALE));
  return Math.tanh(1 / (2 * t)) * Math.exp(-Math.abs(k) / t);
}

/** P(|X| > h) = 2·e^(−(h+1)/t) / (1 + e^(−1/t)) for h ≥ 0. */
export function discreteLaplaceTail(h: number, scale: RationalInput): number {
  checkOutcome(h);
  const t = toNumber(positiveRational(scale, 'scale', MAX_LAPLACE_SCALE));
  return laplaceTail(h, t);
}

function laplaceTail(h: number, t: number): number {
  return (2 * Math.exp(-(h + 1) / t)) / (1 + Math.exp(-1 / t));
}

/** Smallest h ≥ 0 with P(|X| ≤ h) ≥ level, from the closed form above. */
export function discreteLaplaceHalfWidth(scale: RationalInput, level: number): number {
  const t = toNumber(positiveRational(scale, 'scale', MAX_LAPLACE_SCALE));
  const alpha = 1 - level;
  let h = Math.max(0, Math.ceil(t * Math.log(2 / (alpha * (1 + Math.exp(-1 / t))))) - 1);
  // The logarithm is rounded; settle the boundary against the tail itself.
  while (laplaceTail(h, t) > alpha) h++;
  while (h > 0 && laplaceTail(h - 1, t) <= alpha) h--;
  return h;
}
