/**
 * Byzantine-robust aggregation, for a coordinator trusted to see individual updates
 * (secure aggregation off, configured as `aggregation: robust`):
 *
 *   krum          Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with
 *                 Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017: the
 *                 update whose summed squared distance to its n − f − 2 nearest others is
 *                 smallest (needs n > 2f + 2);
 *   trimmed-mean  Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed Learning:
 *                 Towards Optimal Statistical Rates", ICML 2018: per coordinate, drop the f
 *                 largest and f smallest values and average the rest (needs n > 2f);
 *   median        the same paper: the coordinate-wise median.
 *
 * Why none of them can run on masked updates: each needs individual updates in the clear —
 * distances between pairs (Krum) or the order of each coordinate's values (trimmed mean,
 * median). Secure aggregation reveals only Σ x_u, and a mask makes each y_u uniform in
 * Z_{2^32}^d, so distances and orders of masked vectors are noise. Combining them would need
 * secure comparison (generic MPC) or trusting the coordinator with every update, which is
 * what masking exists to avoid. docs/federated.md says the same.
 */
import { FlError } from '../errors.ts';

export type RobustRule = 'krum' | 'trimmed-mean' | 'median';

function checkShapes(updates: readonly Float64Array[]): number {
  if (updates.length === 0) throw new FlError('FL_TOO_FEW_PARTICIPANTS', 'no updates to aggregate');
  const d = updates[0]!.length;
  if (updates.some((u) => u.length !== d)) throw new FlError('FL_PARAMETERS_INVALID', 'updates differ in length');
  return d;
}

export function krum(updates: readonly Float64Array[], f: number): Float64Array {
  const n = updates.length;
  checkShapes(updates);
  if (n <= 2 * f + 2) throw new FlError('FL_PARAMETERS_INVALID', `Krum tolerates f Byzantine participants only when n > 2f + 2 (n = ${n}, f = ${f})`);
  const dist = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
    let s = 0;
    const a = updates[i]!;
    const b = updates[j]!;
    for (let k = 0; k < a.length; k++) { const t = a[k]! - b[k]!; s += t * t; }
    dist[i]![j] = s;
    dist[j]![i] = s;
  }
  let best = 0;
  let bestScore = Infinity;
  for (let i = 0; i < n; i++) {
    const others = [...dist[i]!].filter((_, j) => j !== i).sort((a, b) => a - b);
    const score = others.slice(0, n - f - 2).reduce((s, x) => s + x, 0);
    if (score < bestScore) { bestScore = score; best = i; }
  }
  return Float64Array.from(updates[best]!);
}

function perCoordinate(updates: readonly Float64Array[], pick: (sorted: Float64Array) => number): Float64Array {
  const d = checkShapes(updates);
  const n = updates.length;
  const col = new Float64Array(n);
  const out = new Float64Array(d);
  for (let k = 0; k < d; k++) {
    for (let i = 0; i < n; i++) col[i] = updates[i]![k]!;
    col.sort();
    out[k] = pick(col);
  }
  return out;
}

export function trimmedMean(updates: readonly Float64Array[], f: number): Float64Array {
  const n = updates.length;
  if (!Number.isInteger(f) || f < 0 || n <= 2 * f) throw new FlError('FL_PARAMETERS_INVALID', `the trimmed mean drops f from each end and needs n > 2f (n = ${n}, f = ${f})`);
  return perCoordinate(updates, (s) => {
    let sum = 0;
    for (let i = f; i < n - f; i++) sum += s[i]!;
    return sum / (n - 2 * f);
  });
}

export function coordinateMedian(updates: readonly Float64Array[]): Float64Array {
  return perCoordinate(updates, (s) => {
    const n = s.length;
    return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  });
}

export function robustAggregate(rule: RobustRule, updates: readonly Float64Array[], f: number): Float64Array {
  switch (rule) {
    case 'krum': return krum(updates, f);
    case 'trimmed-mean': return trimmedMean(updates, f);
    case 'median': return coordinateMedian(updates);
  }
}
