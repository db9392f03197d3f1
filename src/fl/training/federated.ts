/**
 * Federated training with every participant in this process: the reference loop the node
 * version follows round for round, used by the tests (federated vs pooled accuracy, robust
 * aggregation under attack, DP budget exhaustion) and by the benchmark.
 *
 * One round: (DP: charge every participant's budget, all-or-nothing per participant) →
 * each participant trains locally → aggregate → global += Σω·Δ / Σω (or the robust
 * aggregate) → each participant evaluates the new model on its held-out split, and the
 * evaluation sums [correct, rows, Σ loss] are aggregated the same way → progress record.
 */
import { chargeRound, type RoundLedger } from '../dp/budget.ts';
import { planDp, type DpPlan } from '../dp/distributed-gaussian.ts';
import { toEpsilonDelta } from '../../privacy/accounting/index.ts';
import { FlError } from '../errors.ts';
import { evaluationSums } from '../models/local-train.ts';
import type { Dataset } from '../models/types.ts';
import type { Stage } from '../secagg/messages.ts';
import { aggregateInProcess, quantiserFor, type CkksSummer } from './aggregate.ts';
import { checkConfig, modelOf, type TrainingConfig } from './config.ts';
import { localStep } from './participant-step.ts';

export interface LocalParty {
  readonly id: string;
  readonly train: Dataset;
  readonly test: Dataset;
  /** DP: the participant's own ledger and the budget its dataset is charged to. */
  readonly budget?: { readonly ledger: RoundLedger; readonly subject: string; readonly dataset: string };
  /** Replaces the honest update (robust-aggregation attack tests). */
  readonly attack?: (honest: Float64Array, all: ReadonlyMap<string, Float64Array>) => Float64Array;
}

export interface RoundProgress {
  readonly round: number;
  readonly participants: readonly string[];
  readonly dropouts: readonly string[];
  /** Mean local training loss of the participants (in process only: nodes do not release it). */
  readonly trainLoss: number | null;
  /** Held-out accuracy and loss of the new global model, aggregated over participants. */
  readonly accuracy: number;
  readonly testLoss: number;
  /** Cumulative ρ charged to each participant dataset, and ε at the configured δ. */
  readonly rho: number;
  readonly epsilon: number;
  readonly clipped: number;
}

export interface TrainingResult {
  readonly weights: Float64Array;
  readonly history: readonly RoundProgress[];
}

export async function trainFederated(config: TrainingConfig, parties: readonly LocalParty[], options: { dropAt?: (round: number) => ReadonlyMap<string, Stage>; ckks?: CkksSummer; onRound?: (p: RoundProgress) => void } = {}): Promise<TrainingResult> {
  const cfg = checkConfig(config);
  const model = modelOf(cfg);
  let global = model.init(cfg.seed);
  const history: RoundProgress[] = [];
  const n = parties.length;
  const agg = cfg.aggregation;
  const threshold = agg.mode === 'secagg' ? agg.threshold : n;
  const dp: DpPlan | null = cfg.dp ? planDp({ clip: cfg.clip, noiseMultiplier: cfg.dp.noiseMultiplier }, n, threshold, model.size) : null;
  const plan = dp?.quantiser ?? quantiserFor(n, Math.max(cfg.clip, 1));
  const evalPlan = quantiserFor(n, Math.max(...parties.map((p) => p.test.n)) * 40);
  let rho = 0;
  for (let round = 1; round <= cfg.rounds; round++) {
    const session = `fl-round-${round}-${cfg.seed}-${Date.now().toString(36)}`;
    const charges: { ledger: RoundLedger; id: string }[] = [];
    if (dp) {
      for (const p of parties) {
        if (!p.budget) throw new FlError('FL_PARAMETERS_INVALID', `${p.id} has no privacy budget configured`);
        try {
          const c = await chargeRound(p.budget.ledger, p.budget.subject, [p.budget.dataset], dp.rho, session);
          for (const a of c) charges.push({ ledger: p.budget.ledger, id: a.chargeId });
        } catch (err) {
          for (const c of charges) await c.ledger.refund(c.id, 'federated round stopped: another participant budget is exhausted');
          throw err;
        }
      }
    }
    const vectors = new Map<string, Float64Array>();
    let lossSum = 0;
    let clipped = 0;
    parties.forEach((p, i) => {
      const s = localStep(cfg, model, global, p.train, round, i);
      vectors.set(p.id, s.vector);
      lossSum += s.loss;
      if (s.clipped) clipped++;
    });
    for (const p of parties) if (p.attack) vectors.set(p.id, p.attack(vectors.get(p.id)!, vectors));
    const dropAt = options.dropAt?.(round);
    let r;
    try {
      r = await aggregateInProcess(agg, vectors, { plan, dp, ...(dropAt ? { dropAt } : {}), ...(options.ckks ? { ckks: options.ckks } : {}), session });
    } catch (err) {
      for (const c of charges) await c.ledger.refund(c.id, 'federated round failed before release');
      throw err;
    }
    for (const c of charges) await c.ledger.markReleased(c.id);
    if (dp) rho += dp.rho;
    const d = model.size;
    if (r.kind === 'robust') for (let j = 0; j < d; j++) global[j] += r.value[j]!;
    else {
      const weight = dp ? r.included.length : r.value[d]!;
      if (weight > 0) for (let j = 0; j < d; j++) global[j] += r.value[j]! / weight;
    }
    const evals = new Map(parties.map((p) => [p.id, evaluationSums(model, global, p.test)]));
    const e = await aggregateInProcess(agg.mode === 'robust' ? { mode: 'plain' } : agg.mode === 'secagg' ? { ...agg } : agg, evals, { plan: evalPlan, ...(options.ckks ? { ckks: options.ckks } : {}), session: `${session}-eval` });
    const progress: RoundProgress = {
      round, participants: r.included, dropouts: r.dropouts, trainLoss: lossSum / n,
      accuracy: e.value[0]! / e.value[1]!, testLoss: e.value[2]! / e.value[1]!, rho,
      epsilon: dp && rho > 0 ? toEpsilonDelta(rho, cfg.dp!.delta).epsilon : 0, clipped,
    };
    history.push(progress);
    options.onRound?.(progress);
    global = Float64Array.from(global);
  }
  return { weights: global, history };
}

/** The same model trained centrally on the pooled data (the reference the federated model is held to). */
export function trainCentral(config: TrainingConfig, train: Dataset, epochs: number): Float64Array {
  const model = modelOf(config);
  const w = model.init(config.seed);
  const grad = new Float64Array(model.size);
  const rows = Array.from({ length: train.n }, (_, i) => i);
  for (let e = 0; e < epochs; e++) {
    for (let s = 0; s < train.n; s += config.batchSize) {
      grad.fill(0);
      model.gradient(w, train, rows.slice(s, s + config.batchSize), grad);
      for (let j = 0; j < w.length; j++) w[j] -= config.learningRate * grad[j]!;
    }
  }
  return w;
}

export function accuracy(config: TrainingConfig, w: Float64Array, data: Dataset): number {
  const s = evaluationSums(modelOf(config), w, data);
  return s[0]! / s[1]!;
}
