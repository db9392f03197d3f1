/**
 * The training configuration of a federated job, checked once: which model, how each
 * participant trains locally (FedAvg or FedProx), how updates are aggregated (secure
 * aggregation, CKKS, or — with a coordinator trusted as such — a robust rule), and DP.
 */
import { FlError } from '../errors.ts';
import { logisticRegression } from '../models/logistic.ts';
import { mlp } from '../models/mlp.ts';
import type { Model } from '../models/types.ts';
import type { RobustRule } from '../robust/aggregators.ts';

export type Aggregation =
  | { readonly mode: 'secagg'; readonly degree: number; readonly threshold: number }
  /** keyAuthority: between nodes, the node that decrypts verified sums (never the coordinator). */
  | { readonly mode: 'ckks'; readonly keyAuthority?: string }
  | { readonly mode: 'robust'; readonly rule: RobustRule; readonly byzantine: number }
  | { readonly mode: 'plain' };

export interface TrainingConfig {
  readonly model: { readonly kind: 'logistic' } | { readonly kind: 'mlp'; readonly hidden: number };
  readonly features: readonly string[];
  readonly rounds: number;
  readonly localEpochs: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly algorithm: 'fedavg' | 'fedprox';
  /** FedProx μ (ignored by FedAvg). */
  readonly proximalMu: number;
  /** L2 bound every update is clipped to before quantisation (with DP: the sensitivity C). */
  readonly clip: number;
  /** Largest number of training rows a participant declares; FedAvg weight = min(1, n/maxExamples). */
  readonly maxExamples: number;
  readonly aggregation: Aggregation;
  readonly dp: null | { readonly noiseMultiplier: number; readonly delta: number };
  readonly seed: number;
}

export const DEFAULTS: Omit<TrainingConfig, 'features'> = {
  model: { kind: 'logistic' }, rounds: 20, localEpochs: 2, learningRate: 0.5, batchSize: 64, algorithm: 'fedavg', proximalMu: 0.01,
  clip: 10, maxExamples: 100_000, aggregation: { mode: 'secagg', degree: 2, threshold: 2 }, dp: null, seed: 1,
};

export function modelOf(cfg: Pick<TrainingConfig, 'model' | 'features'>): Model {
  return cfg.model.kind === 'logistic' ? logisticRegression(cfg.features.length) : mlp(cfg.features.length, cfg.model.hidden);
}

export function checkConfig(cfg: TrainingConfig): TrainingConfig {
  const bad = (m: string): never => { throw new FlError('FL_PARAMETERS_INVALID', m); };
  if (!Array.isArray(cfg.features) || cfg.features.length === 0 || cfg.features.some((f) => !/^[a-z_][a-z0-9_]{0,62}$/.test(f))) bad('features are one or more lower-case column names');
  if (!Number.isInteger(cfg.rounds) || cfg.rounds < 1 || cfg.rounds > 10_000) bad('rounds must be 1–10000');
  if (!Number.isInteger(cfg.localEpochs) || cfg.localEpochs < 1 || cfg.localEpochs > 1000) bad('localEpochs must be 1–1000');
  if (!(cfg.learningRate > 0 && cfg.learningRate < 100)) bad('learningRate must be in (0, 100)');
  if (!Number.isInteger(cfg.batchSize) || cfg.batchSize < 1) bad('batchSize must be a positive integer');
  if (cfg.algorithm !== 'fedavg' && cfg.algorithm !== 'fedprox') bad("algorithm is 'fedavg' or 'fedprox'");
  if (!(cfg.proximalMu >= 0)) bad('proximalMu must be ≥ 0');
  if (!(cfg.clip > 0)) bad('clip must be > 0');
  if (!(cfg.maxExamples >= 1)) bad('maxExamples must be ≥ 1');
  if (cfg.model.kind === 'mlp' && !(Number.isInteger(cfg.model.hidden) && cfg.model.hidden >= 1 && cfg.model.hidden <= 1024)) bad('an MLP has 1–1024 hidden units');
  const a = cfg.aggregation;
  if (a.mode === 'robust' && cfg.dp) bad('robust aggregation sees individual updates; use secure aggregation with DP');
  if (!['secagg', 'ckks', 'robust', 'plain'].includes(a.mode)) bad("aggregation mode is 'secagg', 'ckks', 'robust' or 'plain'");
  if (cfg.dp && a.mode !== 'secagg') bad('distributed DP noise needs secure aggregation: the noise shares are only private summed');
  if (cfg.dp && !(cfg.dp.noiseMultiplier > 0 && cfg.dp.delta > 0 && cfg.dp.delta < 1)) bad('dp needs noiseMultiplier > 0 and 0 < delta < 1');
  return cfg;
}
