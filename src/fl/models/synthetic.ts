/**
 * Synthetic card-fraud data for the three-bank demo, tests and the benchmark: each bank's
 * customers differ (a bank-specific shift of the feature means, so the data is not IID
 * across banks), and fraud follows one shared, non-linear rule the banks can only learn
 * together. Deterministic for a seed. Features: amount z-score, hour-of-day (cyclic, two
 * columns), merchant risk, distance from home, transactions in the last hour.
 */
import { normal, seeded } from './rng.ts';

export const FRAUD_FEATURES = ['amount_z', 'hour_sin', 'hour_cos', 'merchant_risk', 'distance_z', 'velocity_1h'] as const;

export function fraudRows(n: number, bank: number, seed: number): { rows: number[][]; labels: number[] } {
  const u = seeded(seed * 7919 + bank * 104729 + 1);
  const shift = [0.3 * (bank - 1), 0, 0, 0.2 * bank, -0.25 * (bank - 1), 0.1 * bank];
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const hour = u() * 2 * Math.PI;
    const r = [normal(u) + shift[0]!, Math.sin(hour), Math.cos(hour), normal(u) + shift[3]!, normal(u) + shift[4]!, Math.abs(normal(u)) + shift[5]!];
    const score = 1.6 * r[0]! + 1.2 * r[3]! + 0.9 * r[4]! + 1.1 * r[5]! - 0.8 * r[2]! - 2.2 + 0.6 * normal(u);
    rows.push(r.map((v) => Math.round(v * 1e4) / 1e4));
    labels.push(score > 0 ? 1 : 0);
  }
  return { rows, labels };
}

export { splitHoldout, toDataset } from './dataset.ts';
