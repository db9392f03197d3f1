/**
 * Small statistics kit for testing samplers against their exact distributions and for
 * the stochastic DP tester: χ² goodness of fit (p-value from the regularised incomplete
 * gamma function, Numerical Recipes §6.2) and Chernoff–Hoeffding (binomial KL)
 * confidence bounds for a proportion.
 */

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error < 10^−15). */
export function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised upper incomplete gamma Q(a, x). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lnPre = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    // Series for P(a, x).
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 10000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return 1 - sum * Math.exp(lnPre);
  }
  // Continued fraction for Q(a, x) (modified Lentz).
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return Math.exp(lnPre) * h;
}

/** P(χ²_df ≥ statistic). */
export function chiSquareSurvival(statistic: number, df: number): number {
  return gammaQ(df / 2, statistic / 2);
}

export type ChiSquareResult = { statistic: number; df: number; pValue: number; bins: number };

/**
 * χ² goodness of fit of integer samples against a pmf on Z. Every integer whose expected
 * count is at least `minExpected` gets its own bin; everything below and above those is
 * pooled into two tail bins (their mass is one minus the rest, split by summing the pmf).
 */
export function chiSquareIntegers(samples: ArrayLike<number>, pmf: (k: number) => number, minExpected = 20): ChiSquareResult {
  const n = samples.length;
  // The distributions tested here are unimodal around 0; walk outwards while bins are big enough.
  let lo = 0;
  let hi = 0;
  while (n * pmf(lo - 1) >= minExpected) lo--;
  while (n * pmf(hi + 1) >= minExpected) hi++;
  const width = hi - lo + 1;
  const observed = new Float64Array(width + 2);
  for (let i = 0; i < n; i++) {
    const x = samples[i]!;
    observed[x < lo ? 0 : x > hi ? width + 1 : x - lo + 1]!++;
  }
  const expected = new Float64Array(width + 2);
  let central = 0;
  for (let k = lo; k <= hi; k++) {
    const p = pmf(k);
    expected[k - lo + 1] = n * p;
    central += p;
  }
  let left = 0;
  for (let k = lo - 1; ; k--) { const p = pmf(k); left += p; if (p < 1e-20) break; }
  expected[0] = n * left;
  expected[width + 1] = n * Math.max(0, 1 - central - left);
  let statistic = 0;
  let bins = 0;
  for (let i = 0; i < width + 2; i++) {
    const e = expected[i]!;
    if (e < 1e-9) {
      if (observed[i]! > 0) return { statistic: Infinity, df: width + 1, pValue: 0, bins };
      continue;
    }
    statistic += (observed[i]! - e) ** 2 / e;
    bins++;
  }
  const df = bins - 1;
  return { statistic, df, pValue: chiSquareSurvival(statistic, df), bins };
}

/** Binary relative entropy kl(q ‖ p). */
function kl(q: number, p: number): number {
  let r = 0;
  if (q > 0) r += q * Math.log(q / p);
  if (q < 1) r += (1 - q) * Math.log((1 - q) / (1 - p));
  return r;
}

/**
 * Chernoff–Hoeffding confidence bounds for a binomial proportion from `count` of `n`:
 * the true p is below `upper` (and, separately, above `lower`) with probability ≥ 1 − alpha,
 * since P(p̂ ≤ q) ≤ exp(−n·kl(q ‖ p)) for q < p.
 */
export function proportionBounds(count: number, n: number, alpha: number): { lower: number; upper: number } {
  const q = count / n;
  const budget = Math.log(1 / alpha) / n;
  let upper = 1;
  if (q < 1) {
    let a = q;
    let b = 1;
    for (let i = 0; i < 80; i++) { const m = (a + b) / 2; if (kl(q, m) > budget) b = m; else a = m; }
    upper = b;
  }
  let lower = 0;
  if (q > 0) {
    let a = 0;
    let b = q;
    for (let i = 0; i < 80; i++) { const m = (a + b) / 2; if (kl(q, m) > budget) a = m; else b = m; }
    lower = a;
  }
  return { lower, upper };
}
