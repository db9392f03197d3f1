/**
 * What a federated model is: a flat Float64Array of parameters and the functions of it that
 * local training and evaluation need. Flat parameters are what secure aggregation sums, so
 * a model never has a second, structured representation to keep in step.
 */
export interface Dataset {
  /** Row-major features, n × d. */
  readonly x: Float64Array;
  /** Labels 0/1. */
  readonly y: Uint8Array;
  readonly n: number;
  readonly d: number;
}

export interface Model {
  readonly kind: 'logistic' | 'mlp';
  /** Number of features the model reads. */
  readonly features: number;
  /** Number of parameters. */
  readonly size: number;
  /** Initial parameters (deterministic for a seed, so every participant starts alike). */
  init(seed: number): Float64Array;
  /** P(y = 1 | row i of `data`). */
  predict(w: Float64Array, data: Dataset, i: number): number;
  /**
   * Adds ∂(mean log-loss over rows `rows`)/∂w into `grad` and returns that mean loss.
   * `grad` must be zeroed by the caller.
   */
  gradient(w: Float64Array, data: Dataset, rows: ArrayLike<number>, grad: Float64Array): number;
}

/** Log-loss of one prediction, clamped so a confident mistake is large but finite. */
export function logLoss(p: number, y: number): number {
  const q = Math.min(Math.max(p, 1e-12), 1 - 1e-12);
  return y === 1 ? -Math.log(q) : -Math.log(1 - q);
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}
