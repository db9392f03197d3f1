/**
 * Exact binary digits of e^(−p/q) for rational p/q ≥ 0, by interval arithmetic on BigInts.
 *
 * Used to build the comparison tables of the fast Bernoulli(exp(−γ)) path
 * (bernoulli.ts): a Bernoulli(c) draw is exact if a uniform R ∈ [0,1) is compared with c
 * digit by digit (the first differing digit decides), so all that is needed are the
 * correct leading digits of c. e^(−x) is irrational for rational x ≠ 0
 * (Lindemann–Weierstrass), so no digit string is ever ambiguous forever; raising the
 * working precision always decides the next digits.
 */

/** Lower and upper bounds L ≤ 2^prec · e^(p/q) ≤ U from the Taylor series with rounding outwards. */
function expBounds(p: bigint, q: bigint, prec: bigint): [bigint, bigint] {
  const one = 1n << prec;
  let lo = one;
  let hi = one;
  let sumLo = one;
  let sumHi = one;
  const x2 = (2n * p) / q + 2n; // stop only once the terms shrink by at least half each step
  for (let k = 1n; ; k++) {
    lo = (lo * p) / (q * k);
    hi = (hi * p + q * k - 1n) / (q * k);
    sumLo += lo;
    sumHi += hi;
    if (k >= x2 && hi <= 1n) break;
  }
  // Remaining terms each at most half the previous one, the last kept one ≤ 1: tail ≤ 1.
  return [sumLo, sumHi + 2n];
}

/** floor(2^bits · e^(−p/q)) exactly, for integers p ≥ 0, q ≥ 1, bits ≥ 0. */
export function floorExpNegScaled(p: bigint, q: bigint, bits: number): bigint {
  if (p < 0n || q < 1n || bits < 0) throw new RangeError('floorExpNegScaled needs p ≥ 0, q ≥ 1, bits ≥ 0');
  if (p === 0n) return 1n << BigInt(bits);
  // e^x needs about x·log2(e) extra bits so that 2^(2·prec)/e^x keeps `bits` significant digits.
  let prec = BigInt(bits) + 64n + (p / q) * 2n;
  for (;;) {
    const [lo, hi] = expBounds(p, q, prec);
    const scale2 = 1n << (2n * prec);
    // 2^prec·e^(−x) lies in [scale2/hi, scale2/lo].
    const eLo = scale2 / hi;
    const eHi = (scale2 + lo - 1n) / lo;
    const shift = prec - BigInt(bits);
    const a = eLo >> shift;
    const b = eHi >> shift;
    if (a === b) return a;
    prec *= 2n;
  }
}

/**
 * 32-bit digit `index` (0 = the first 32 bits after the binary point) of e^(−p/q) for
 * p/q > 0, i.e. floor(2^(32(index+1)) · e^(−p/q)) mod 2^32.
 */
export function expNegDigit32(p: bigint, q: bigint, index: number): number {
  return Number(floorExpNegScaled(p, q, 32 * (index + 1)) & 0xffffffffn);
}
