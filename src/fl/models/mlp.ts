/**
 * A multilayer perceptron with one hidden layer: h = tanh(W1 x + b1), P(y=1|x) = σ(w2·h + b2),
 * trained by backpropagation of the mean log-loss. Parameters, flat:
 * [W1 (hidden × d, row-major), b1 (hidden), w2 (hidden), b2].
 * Initialisation: Glorot/Xavier uniform (Glorot & Bengio 2010) from a seed.
 */
import { seeded } from './rng.ts';
import { sigmoid, logLoss, type Model } from './types.ts';

export function mlp(features: number, hidden: number): Model {
  const d = features;
  const oB1 = hidden * d;
  const oW2 = oB1 + hidden;
  const oB2 = oW2 + hidden;
  const size = oB2 + 1;
  const h = new Float64Array(hidden);
  const forward = (w: Float64Array, x: Float64Array, off: number): number => {
    let z = w[oB2]!;
    for (let k = 0; k < hidden; k++) {
      let a = w[oB1 + k]!;
      const row = k * d;
      for (let j = 0; j < d; j++) a += w[row + j]! * x[off + j]!;
      h[k] = Math.tanh(a);
      z += w[oW2 + k]! * h[k]!;
    }
    return sigmoid(z);
  };
  return {
    kind: 'mlp', features, size,
    init(seed) {
      const u = seeded(seed);
      const w = new Float64Array(size);
      const l1 = Math.sqrt(6 / (d + hidden));
      for (let i = 0; i < oB1; i++) w[i] = (2 * u() - 1) * l1;
      const l2 = Math.sqrt(6 / (hidden + 1));
      for (let k = 0; k < hidden; k++) w[oW2 + k] = (2 * u() - 1) * l2;
      return w;
    },
    predict: (w, data, i) => forward(w, data.x, i * data.d),
    gradient(w, data, rows, grad) {
      let loss = 0;
      const m = rows.length;
      for (let r = 0; r < m; r++) {
        const i = rows[r]!;
        const off = i * data.d;
        const p = forward(w, data.x, off);
        const y = data.y[i]!;
        loss += logLoss(p, y);
        const g = (p - y) / m;
        grad[oB2] += g;
        for (let k = 0; k < hidden; k++) {
          grad[oW2 + k] += g * h[k]!;
          const gk = g * w[oW2 + k]! * (1 - h[k]! * h[k]!);
          grad[oB1 + k] += gk;
          const row = k * d;
          for (let j = 0; j < d; j++) grad[row + j] += gk * data.x[off + j]!;
        }
      }
      return loss / m;
    },
  };
}
