/**
 * A confidence interval for a ratio of two noisy values — the DP mean s/c of a bounded sum and
 * a count, each with independent noise — by Fieller's theorem (E. C. Fieller, "Some problems in
 * interval estimation", JRSS-B 16, 1954): the set of μ with
 *     |s − μ·c| ≤ z·√(σₛ² + μ²·σ_c²),
 * since s − μ_true·c = Xₛ − μ_true·X_c has standard deviation √(σₛ² + μ_true²·σ_c²). Unlike the
 * delta method (which adds or squares half-widths around s/c) it stays valid when c is small;
 * when c is too noisy to bound the ratio the set is unbounded and the declared bounds are returned.
 */
export function fiellerInterval(s: number, c: number, sdS: number, sdC: number, bounds: readonly [number, number] | null, z = 1.959963984540054): [number, number] | null {
  return fieller(s, c, sdS, sdC, bounds, z);
}

function fieller(s: number, c: number, sdS: number, sdC: number, bounds: readonly [number, number] | null, z: number): [number, number] | null {
  const z2 = z * z;
  const a = c * c - z2 * sdC * sdC;
  const b = -2 * s * c;
  const k = s * s - z2 * sdS * sdS;
  const clip = (lo: number, hi: number): [number, number] => (bounds ? [Math.max(bounds[0], lo), Math.min(bounds[1], hi)] : [lo, hi]);
  if (a <= 0) {
    // c cannot be told from 0: the set is the complement of (r₁, r₂) (or everything). Within the
    // declared bounds that can still be a single interval, when one of the two rays misses them.
    if (!bounds) return null;
    const disc = b * b - 4 * a * k;
    if (a === 0 || disc <= 0) return [bounds[0], bounds[1]];
    const r = Math.sqrt(disc);
    const r1 = Math.min((-b - r) / (2 * a), (-b + r) / (2 * a)), r2 = Math.max((-b - r) / (2 * a), (-b + r) / (2 * a));
    const left = r1 >= bounds[0], right = r2 <= bounds[1];
    if (left && right) return [bounds[0], bounds[1]]; // two pieces: their hull is the whole range
    if (left) return [bounds[0], Math.min(bounds[1], r1)];
    if (right) return [Math.max(bounds[0], r2), bounds[1]];
    return [bounds[0], bounds[1]]; // (r₁, r₂) covers the bounds: nothing is excluded
  }
  const disc = b * b - 4 * a * k;
  if (disc < 0) return bounds ? [bounds[0], bounds[1]] : null;
  const r = Math.sqrt(disc);
  const lo = (-b - r) / (2 * a), hi = (-b + r) / (2 * a);
  const out = clip(lo, hi);
  if (out[0] > out[1]) return bounds ? [bounds[0], bounds[1]] : null;
  return out;
}
