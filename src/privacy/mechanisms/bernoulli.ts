/**
 * Bernoulli(p) and Bernoulli(exp(−γ)) for rational p, γ.
 *
 * Bernoulli(exp(−γ)) is Algorithm 1 of Canonne, Kamath, Steinke, "The Discrete Gaussian
 * for Differential Privacy", NeurIPS 2020 (arXiv:2004.00010): for γ ∈ [0,1] draw
 * A_k ~ Bernoulli(γ/k) for k = 1, 2, … until the first A_k = 0 and return 1 iff that k is
 * odd (von Neumann's trick: P = Σ_j (−γ)^j / j!); for γ > 1 return 1 iff ⌊γ⌋ draws of
 * Bernoulli(exp(−1)) and one of Bernoulli(exp(−(γ − ⌊γ⌋))) all return 1.
 *
 * The fast path (ExpNegTable, geometricExpNeg1) draws the same distributions by comparing
 * one uniform 32-bit word with the correct first 32 binary digits of exp(−γ)
 * (exp-neg-bits.ts); only when the word equals those digits (probability 2^−32) are further
 * words drawn and compared with further digits, computed on demand. It is exact, needs about
 * one word per draw, and its running time does not depend on the outcome except in that
 * 2^−32 case. Algorithm 1 is kept as the reference and for parameters no table covers.
 */
import { MechanismParameterInvalid, MechanismParameterOutOfRange } from './errors.ts';
import { expNegDigit32, floorExpNegScaled } from './exp-neg-bits.ts';
import { type RationalInput, toRational } from './rational.ts';
import { randomBit, randomUint32, uniformBelowBig, uniformBelowUnchecked } from './rng.ts';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// ---------------------------------------------------------------- Bernoulli(p)

/** Bernoulli(num/den) for safe integers 0 ≤ num ≤ den, 1 ≤ den ≤ 2^53. */
export function bernoulliUnchecked(num: number, den: number): boolean {
  return uniformBelowUnchecked(den) < num;
}

export function bernoulliBig(num: bigint, den: bigint): boolean {
  return uniformBelowBig(den) < num;
}

/** Bernoulli(p) for a rational 0 ≤ p ≤ 1 (validated). */
export function sampleBernoulli(p: RationalInput): boolean {
  const r = toRational(p, 'p');
  if (r.num < 0n || r.num > r.den) throw new MechanismParameterOutOfRange('Bernoulli p must lie in [0, 1]');
  if (r.den <= BigInt(MAX_SAFE)) return bernoulliUnchecked(Number(r.num), Number(r.den));
  return bernoulliBig(r.num, r.den);
}

// ------------------------------------------------- Algorithm 1 (reference path)

/** Algorithm 1, γ = p/q ∈ [0, 1], BigInt arithmetic, starting the k-loop at `k`. */
function expNegFractionBig(p: bigint, q: bigint, k: bigint): boolean {
  for (;;) {
    if (uniformBelowBig(q * k) >= p) break; // A_k ~ Bernoulli(γ/k) came out 0
    k++;
  }
  return (k & 1n) === 1n;
}

/** Algorithm 1, γ = p/q ∈ [0, 1], for safe integers (falls over to BigInt if q·k leaves 2^53). */
function expNegFraction(p: number, q: number): boolean {
  let k = 1;
  for (;;) {
    const d = q * k;
    if (d > MAX_SAFE) return expNegFractionBig(BigInt(p), BigInt(q), BigInt(k));
    if (uniformBelowUnchecked(d) >= p) break;
    k++;
  }
  return (k & 1) === 1;
}

/** Algorithm 1 with γ = 1: A_1 ~ Bernoulli(1) is always 1, so the loop starts at k = 2. */
export function bernoulliExpNeg1Reference(): boolean {
  let k = 2;
  while (k === 2 ? randomBit() === 0 : uniformBelowUnchecked(k) === 0) k++;
  return (k & 1) === 1;
}

/**
 * Bernoulli(exp(−p/q)) for safe integers p ≥ 0, q ≥ 1 (not validated). `fast` selects the
 * table draw for each Bernoulli(exp(−1)) of the integer part; the fractional part always
 * runs Algorithm 1.
 */
export function bernoulliExpNegUnchecked(p: number, q: number, fast = true): boolean {
  let whole = Math.floor(p / q);
  if (whole * q > p) whole--;
  else if ((whole + 1) * q <= p) whole++;
  for (let i = 0; i < whole; i++) {
    if (!(fast ? bernoulliExpNeg1() : bernoulliExpNeg1Reference())) return false;
  }
  return expNegFraction(p - whole * q, q);
}

/** Bernoulli(exp(−p/q)) for bigint p ≥ 0, q ≥ 1 (not validated). */
export function bernoulliExpNegBig(p: bigint, q: bigint, fast = true): boolean {
  const whole = p / q;
  for (let i = 0n; i < whole; i++) {
    if (!(fast ? bernoulliExpNeg1() : bernoulliExpNeg1Reference())) return false;
  }
  return expNegFractionBig(p - whole * q, q, 1n);
}

/** Most Bernoulli(exp(−1)) draws one γ may require: refuses absurd γ instead of looping for hours. */
const MAX_GAMMA = 1n << 32n;

/** Bernoulli(exp(−γ)) for a rational γ ≥ 0 (validated), CKS 2020 Algorithm 1. */
export function sampleBernoulliExpNeg(gamma: RationalInput): boolean {
  const g = toRational(gamma, 'gamma');
  if (g.num < 0n) throw new MechanismParameterOutOfRange('gamma must be ≥ 0');
  if (g.num > MAX_GAMMA * g.den) throw new MechanismParameterOutOfRange('gamma exceeds 2^32 (the probability is below exp(-2^32))');
  if (g.num <= BigInt(MAX_SAFE) && g.den <= BigInt(MAX_SAFE)) return bernoulliExpNegUnchecked(Number(g.num), Number(g.den));
  return bernoulliExpNegBig(g.num, g.den);
}

// ------------------------------------------------------------ table fast path

/**
 * After the first word tied with the first digit of exp(−p/q), keep comparing fresh words
 * with the following 32-bit digits until one differs. Exported for tests: it is
 * Bernoulli(frac(2^32·exp(−p/q))).
 */
export function expNegTieBreak(p: bigint, q: bigint): boolean {
  for (let i = 1; ; i++) {
    const d = expNegDigit32(p, q, i);
    const w = randomUint32();
    if (w !== d) return w < d;
  }
}

const E1_DIGIT = Number(floorExpNegScaled(1n, 1n, 32));

/**
 * When to trust the double-precision estimate ŝ of s = 2^32·exp(−x), x = p/q: its relative error
 * is at most (x/2 + 1)·2^−52 (x = p/q rounded once, relative error 2^−53, moves e^{−x} by x·2^−53
 * relative; Math.exp within 1 ulp, fdlibm's bound; the scaling by 2^32 is exact). ERROR_SCALE
 * is 2^−46, a factor of 64 above that bound. floor(ŝ) is floor(s) when no integer lies within
 * the error of ŝ (and s ≥ 0 always, so a floor of 0 only needs ŝ + error < 1).
 */
const ERROR_SCALE = 2 ** -46;
/** Exact digits computed for estimates too near a digit boundary (a few values per σ², reused). */
const exactDigits = new Map<string, number>();

/**
 * Bernoulli(exp(−p/q)) for safe integers p ≥ 0, q ≥ 1 (not validated), by one digit
 * comparison: a uniform word W against d = floor(2^32·exp(−p/q)). W < d: 1; W > d: 0; W = d
 * (probability 2^−32): the next exact 32-bit digits decide (expNegTieBreak). d comes from
 * Math.exp when the double is provably on the right side of a digit boundary (ERROR_SCALE),
 * from exact BigInt arithmetic (exp-neg-bits.ts) otherwise, memoised. So the result is exactly
 * Bernoulli(exp(−p/q)) for any γ = p/q, with one word and one Math.exp per draw, instead of
 * ⌊γ⌋ Bernoulli(exp(−1)) draws plus Algorithm 1's loop of uniforms below 2·q.
 */
export function bernoulliExpNegDigit(p: number, q: number): boolean {
  const w = randomUint32();
  if (p === 0) return true;
  const d = expNegDigit(p, q);
  if (w !== d) return w < d;
  return expNegTieBreak(BigInt(p), BigInt(q));
}

/** ⌊2^32·exp(−p/q)⌋ exactly, for safe integers p > 0, q ≥ 1: from Math.exp where provably right. */
export function expNegDigit(p: number, q: number): number {
  const x = p / q;
  const scaled = Math.exp(-x) * 4294967296;
  let d = Math.floor(scaled);
  const frac = scaled - d;
  const err = scaled * (x + 2) * ERROR_SCALE;
  if (frac + err >= 1 || (d > 0 && frac <= err)) d = exactDigit(p, q);
  return d;
}

function exactDigit(p: number, q: number): number {
  const key = `${p}/${q}`;
  let d = exactDigits.get(key);
  if (d === undefined) {
    d = Number(floorExpNegScaled(BigInt(p), BigInt(q), 32));
    if (exactDigits.size >= 4096) exactDigits.clear();
    exactDigits.set(key, d);
  }
  return d;
}

/** Bernoulli(exp(−1)) by digit comparison (exact). */
export function bernoulliExpNeg1(): boolean {
  const w = randomUint32();
  if (w !== E1_DIGIT) return w < E1_DIGIT;
  return expNegTieBreak(1n, 1n);
}

/** floor(2^32·e^(−v)) for v = 1..GEOMETRIC_STEPS: strictly decreasing and positive. */
const GEOMETRIC_STEPS = 22;
const GEOMETRIC_DIGITS = Uint32Array.from({ length: GEOMETRIC_STEPS }, (_, i) => Number(floorExpNegScaled(BigInt(i + 1), 1n, 32)));

/**
 * V with P(V = v) = (1 − e^(−1))·e^(−v), v ≥ 0: the number of successes before the first
 * failure of Bernoulli(exp(−1)) draws, which is the loop in lines 5–9 of Algorithm 2.
 * Equivalently V = #{v ≥ 1 : R < e^(−v)} for one uniform R ∈ [0,1). A fixed scan of
 * GEOMETRIC_STEPS comparisons decides every v up to 22 from one word, so the running time
 * does not depend on V unless V ≥ 22 (probability e^(−22) ≈ 2.8·10^−10) or the word ties
 * with a digit (probability 22·2^−32 ≈ 5·10^−9).
 */
export function geometricExpNeg1(): number {
  const w = randomUint32();
  let v = 0;
  let tie = 0;
  for (let i = 0; i < GEOMETRIC_STEPS; i++) {
    const d = GEOMETRIC_DIGITS[i]!;
    v += +(w < d);
    tie |= +(w === d) * (i + 1);
  }
  if (tie !== 0 && expNegTieBreak(BigInt(tie), 1n)) v++;
  if (v === GEOMETRIC_STEPS) {
    // Memoryless: given V ≥ 22, V − 22 has the same distribution.
    while (bernoulliExpNeg1()) v++;
  }
  return v;
}

/** Reference version of geometricExpNeg1: the literal loop of Algorithm 2, lines 5–9. */
export function geometricExpNeg1Reference(): number {
  let v = 0;
  while (bernoulliExpNeg1Reference()) v++;
  return v;
}

/** Largest t for which a Bernoulli(exp(−u/t)) digit table is built (2^16 words = 256 KiB). */
export const MAX_TABLE_DENOMINATOR = 1 << 16;

/**
 * First 32 binary digits of exp(−u/t), u = 0..t−1, for the first step of Algorithm 2.
 * Built as powers of an enclosure of exp(−1/t) with outward rounding; an entry whose
 * enclosure straddles a digit boundary is recomputed directly.
 */
export function expNegDigitTable(t: number): Uint32Array {
  if (!Number.isSafeInteger(t) || t < 1 || t > MAX_TABLE_DENOMINATOR) {
    throw new MechanismParameterInvalid(`table denominator must be an integer in [1, ${MAX_TABLE_DENOMINATOR}]`);
  }
  const table = new Uint32Array(t);
  table[0] = 0xffffffff; // unused: u = 0 always accepts (exp(0) = 1)
  if (t === 1) return table;
  const P = 160n;
  const T = BigInt(t);
  const base = floorExpNegScaled(1n, T, 160);
  const baseLo = base;
  const baseHi = base + 1n;
  let lo = 1n << P;
  let hi = 1n << P;
  const shift = P - 32n;
  for (let u = 1; u < t; u++) {
    lo = (lo * baseLo) >> P;
    hi = ((hi * baseHi) >> P) + 1n;
    const a = lo >> shift;
    table[u] = Number(a === hi >> shift ? a : floorExpNegScaled(BigInt(u), T, 32));
  }
  return table;
}

/** Bernoulli(exp(−u/t)) from a table built by expNegDigitTable(t), 0 ≤ u < t. */
export function bernoulliExpNegFromTable(table: Uint32Array, u: number, t: number): boolean {
  const w = randomUint32();
  if (u === 0) return true;
  const d = table[u]!;
  if (w !== d) return w < d;
  return expNegTieBreak(BigInt(u), BigInt(t));
}
