/**
 * Logistic regression: P(y=1|x) = σ(w·x + b). Parameters [w_1 … w_d, b]. The mean log-loss
 * is convex, so federated averaging of full local gradient steps converges to the pooled
 * optimum (the test in test/fl-models.test.ts relies on that).
 */
import { sigmoid, logLoss, type Dataset, type Model } from './types.ts';

export function logisticRegression(features: number): Model {
  return {
    kind: 'logistic', features, size: features + 1,
    init: () => new Float64Array(features + 1),
    predict(w, data, i) {
      let z = w[features]!;
      const off = i * data.d;
      for (let j = 0; j < features; j++) z += w[j]! * data.x[off + j]!;
      return sigmoid(z);
    },
    gradient(w, data, rows, grad) {
      let loss = 0;
      const m = rows.length;
      for (let r = 0; r < m; r++) {
        const i = rows[r]!;
        const p = this.predict(w, data, i);
        const y = data.y[i]!;
        loss += logLoss(p, y);
        const g = (p - y) / m;
        const off = i * data.d;
        for (let j = 0; j < features; j++) grad[j] += g * data.x[off + j]!;
        grad[features] += g;
      }
      return loss / m;
    },
  };
}
