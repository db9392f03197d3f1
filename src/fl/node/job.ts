/**
 * A federated job as it travels between nodes: the training configuration, the roster of
 * participant nodes, the agreement it runs under, and each round's session parameters.
 * Every participant recomputes the quantiser and DP plan from these itself (plan.ts), so a
 * coordinator cannot hand a participant a plan that would wrap or under-noise.
 */
import { FlError } from '../errors.ts';
import { planDp, type DpPlan } from '../dp/distributed-gaussian.ts';
import { planQuantiser, type QuantiserPlan } from '../secagg/quantize.ts';
import { checkConfig, DEFAULTS, modelOf, type TrainingConfig } from '../training/config.ts';

export interface JobSpec {
  readonly job: string;
  readonly coordinator: string;
  readonly participants: readonly string[];
  readonly agreement: string;
  readonly config: TrainingConfig;
}

export type Phase = 'train' | 'eval';

/** The evaluation vector [correct, rows, Σ loss] is bounded by the rows a participant declares. */
export const MAX_EVAL_ROWS = 1_000_000;

export function checkJob(spec: JobSpec): JobSpec {
  if (typeof spec.job !== 'string' || !/^[a-z0-9][a-z0-9-]{2,62}$/.test(spec.job)) throw new FlError('FL_PARAMETERS_INVALID', 'a job name is 3–63 lower-case letters, digits and dashes');
  if (!Array.isArray(spec.participants) || spec.participants.length < 2 || new Set(spec.participants).size !== spec.participants.length) throw new FlError('FL_PARAMETERS_INVALID', 'a job needs at least two distinct participant nodes');
  if (typeof spec.agreement !== 'string' || spec.agreement.length === 0) throw new FlError('FL_PARAMETERS_INVALID', 'a job runs under an agreement: give its id');
  const cfg = checkConfig({ ...DEFAULTS, ...spec.config });
  const a = cfg.aggregation;
  if (a.mode === 'plain') throw new FlError('FL_PARAMETERS_INVALID', 'between nodes, updates are aggregated with secure aggregation, CKKS with a key authority, or a robust rule by a coordinator every participant chose to trust');
  if (a.mode === 'ckks' && (typeof a.keyAuthority !== 'string' || a.keyAuthority === spec.coordinator)) throw new FlError('FL_PARAMETERS_INVALID', 'CKKS aggregation names a key authority node that is not the coordinator', 'set aggregation.keyAuthority');
  return { ...spec, config: cfg };
}

export interface RoundPlans {
  readonly train: { readonly quantiser: QuantiserPlan; readonly dp: DpPlan | null; readonly length: number };
  readonly eval: { readonly quantiser: QuantiserPlan; readonly length: number };
}

export function plansOf(spec: JobSpec): RoundPlans {
  const cfg = spec.config;
  const n = spec.participants.length;
  const size = modelOf(cfg).size;
  const threshold = cfg.aggregation.mode === 'secagg' ? cfg.aggregation.threshold : n;
  const dp = cfg.dp ? planDp({ clip: cfg.clip, noiseMultiplier: cfg.dp.noiseMultiplier }, n, threshold, size) : null;
  return {
    train: { quantiser: dp?.quantiser ?? planQuantiser(n, Math.max(cfg.clip, 1)), dp, length: dp || cfg.aggregation.mode === 'robust' ? size : size + 1 },
    eval: { quantiser: planQuantiser(n, 30 * MAX_EVAL_ROWS, 2), length: 3 },
  };
}
