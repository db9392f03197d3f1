/**
 * What one participant does in a round, wherever it runs (in process or as its own node):
 * train locally from the global model, clip, weight, and encode the contribution for the
 * aggregation mode — quantised for secure aggregation (with its DP noise share), plain
 * floats for a trusted coordinator. Nothing here sends anything: the caller does.
 */
import { clipL2, noisyQuantise, type DpPlan } from '../dp/distributed-gaussian.ts';
import { localUpdate } from '../models/local-train.ts';
import type { Dataset, Model } from '../models/types.ts';
import { quantise, type QuantiserPlan } from '../secagg/quantize.ts';
import type { TrainingConfig } from './config.ts';

export interface LocalStep {
  /** [ω·Δ…, ω] — or Δ alone under DP (uniform weights) and robust rules. */
  readonly vector: Float64Array;
  readonly loss: number;
  readonly clipped: boolean;
}

export function localStep(cfg: TrainingConfig, model: Model, global: Float64Array, train: Dataset, round: number, salt: number): LocalStep {
  const { delta, loss } = localUpdate(model, global, train, {
    epochs: cfg.localEpochs, learningRate: cfg.learningRate, batchSize: cfg.batchSize,
    proximalMu: cfg.algorithm === 'fedprox' ? cfg.proximalMu : 0, seed: cfg.seed * 1_000_003 + round * 7919 + salt,
  });
  const clipped = clipL2(delta, cfg.clip);
  if (cfg.dp || cfg.aggregation.mode === 'robust') return { vector: delta, loss, clipped };
  const omega = Math.min(1, train.n / cfg.maxExamples);
  const v = new Float64Array(delta.length + 1);
  for (let i = 0; i < delta.length; i++) v[i] = omega * delta[i]!;
  v[delta.length] = omega;
  return { vector: v, loss, clipped };
}

/** The secure-aggregation input: quantised, and with the DP noise share when DP is on. */
export function encodeForSecAgg(vector: Float64Array, plan: QuantiserPlan, dp: DpPlan | null): Uint32Array {
  return dp ? noisyQuantise(dp, vector) : quantise(plan, vector);
}
