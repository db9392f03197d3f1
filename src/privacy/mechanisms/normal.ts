/**
 * The standard normal's tails to full double precision, for the analytic Gaussian calibration
 * and the Gaussian privacy-loss profile, whose δ is a small difference of two tail
 * probabilities (Balle & Wang 2018, eq. (6)): an approximation good to 10⁻⁷ absolute would
 * lose δ = 10⁻⁷ entirely, so both tails are computed to relative precision.
 *
 * erfc(x), x ≥ 0:
 *  - x < 2: erfc = 1 − erf with the all-positive series erf(x) = (2/√π)·e^{−x²}·Σ 2ⁿx^{2n+1}/(2n+1)!!
 *    (Abramowitz & Stegun 7.1.6), no cancellation inside the sum;
 *  - x ≥ 2: the continued fraction erfc(x) = (e^{−x²}/√π)·1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
 *    (A&S 7.1.14), evaluated by the modified Lentz method (Press et al., Numerical Recipes §5.2),
 *    which keeps its relative error near one ulp.
 */

const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);

function erfSeries(x: number): number {
  let term = x, sum = x;
  const x2 = x * x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return 2 * INV_SQRT_PI * Math.exp(-x2) * sum;
}

function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x, c = x, d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d; if (Math.abs(d) < tiny) d = tiny; d = 1 / d;
    c = x + a / c; if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return INV_SQRT_PI * Math.exp(-x * x) / f;
}

/** Complementary error function, relative precision near 10⁻¹⁵ over the whole line. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) return 1 - erfSeries(x);
  if (x > 27.3) return 0; // below the smallest double
  return erfcContinuedFraction(x);
}

/** Φ(x) = P(Z ≤ x) for Z ~ N(0, 1); relative precision in the lower tail. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}
