/**
 * Local training on one participant's data: minibatch gradient descent from the global
 * parameters, optionally with FedProx's proximal term (Li et al., "Federated Optimization in
 * Heterogeneous Networks", MLSys 2020): minimise F_k(w) + (μ/2)·‖w − w_global‖², whose
 * gradient adds μ(w − w_global). μ = 0 is FedAvg's local step (McMahan et al., AISTATS 2017).
 * Returns the update Δ = w_local − w_global: what is aggregated.
 */
import { seeded } from './rng.ts';
import type { Dataset, Model } from './types.ts';

export interface LocalTrainOptions {
  readonly epochs: number;
  readonly learningRate: number;
  /** Rows per step; ≥ n means full-batch gradient descent. */
  readonly batchSize: number;
  /** FedProx μ; 0 for FedAvg. */
  readonly proximalMu: number;
  readonly seed: number;
}

export function localUpdate(model: Model, global: Float64Array, data: Dataset, o: LocalTrainOptions): { delta: Float64Array; loss: number } {
  const w = Float64Array.from(global);
  const grad = new Float64Array(model.size);
  const order = Array.from({ length: data.n }, (_, i) => i);
  const u = seeded(o.seed);
  let loss = 0;
  for (let e = 0; e < o.epochs; e++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(u() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let s = 0; s < data.n; s += o.batchSize) {
      const rows = order.slice(s, s + o.batchSize);
      grad.fill(0);
      loss = model.gradient(w, data, rows, grad);
      for (let j = 0; j < w.length; j++) w[j] -= o.learningRate * (grad[j]! + o.proximalMu * (w[j]! - global[j]!));
    }
  }
  const delta = new Float64Array(model.size);
  for (let j = 0; j < w.length; j++) delta[j] = w[j]! - global[j]!;
  return { delta, loss };
}

/** Held-out evaluation as sums, so it aggregates like an update: [correct, rows, Σ log-loss]. */
export function evaluationSums(model: Model, w: Float64Array, data: Dataset): Float64Array {
  let correct = 0;
  let loss = 0;
  for (let i = 0; i < data.n; i++) {
    const p = model.predict(w, data, i);
    const y = data.y[i]!;
    if ((p >= 0.5 ? 1 : 0) === y) correct++;
    loss += y === 1 ? -Math.log(Math.max(p, 1e-12)) : -Math.log(Math.max(1 - p, 1e-12));
  }
  return Float64Array.from([correct, data.n, loss]);
}
