/**
 * One round's aggregation of the participants' vectors, by mode, for participants in this
 * process (tests, benchmark, `gatehouse fl demo --in-process`). The node version
 * (src/fl/node/) runs the same secure-aggregation protocol over src/federation instead.
 *
 *   secagg   quantise (+ DP noise share) → SecAgg+ → exact modular sum → dequantise
 *   ckks     encrypt under CKKS → homomorphic sum → decryption by the key authority
 *   robust   the trusted coordinator applies Krum / trimmed mean / median to the updates
 *   plain    the trusted coordinator sums the updates (reference for tests)
 */
import { randomBytes } from 'node:crypto';
import type { DpPlan } from '../dp/distributed-gaussian.ts';
import { robustAggregate } from '../robust/aggregators.ts';
import type { Stage } from '../secagg/messages.ts';
import { dequantiseSum, planQuantiser, type QuantiserPlan } from '../secagg/quantize.ts';
import { simulateSecAgg } from '../secagg/simulate.ts';
import { encodeForSecAgg } from './participant-step.ts';
import type { Aggregation } from './config.ts';

export interface Aggregated {
  /** Sum of the included vectors (secagg, ckks, plain) or the robust aggregate (robust). */
  readonly value: Float64Array;
  readonly kind: 'sum' | 'robust';
  readonly included: readonly string[];
  readonly dropouts: readonly string[];
}

export interface CkksSummer {
  sum(vectors: readonly Float64Array[]): Promise<Float64Array>;
}

export function quantiserFor(maxInputs: number, maxAbs: number): QuantiserPlan {
  return planQuantiser(maxInputs, maxAbs);
}

export async function aggregateInProcess(
  mode: Aggregation, vectors: ReadonlyMap<string, Float64Array>, options: { plan?: QuantiserPlan; dp?: DpPlan | null; dropAt?: ReadonlyMap<string, Stage>; ckks?: CkksSummer; session?: string } = {},
): Promise<Aggregated> {
  const ids = [...vectors.keys()].sort();
  const length = vectors.get(ids[0]!)!.length;
  if (mode.mode === 'secagg') {
    const plan = options.dp?.quantiser ?? options.plan!;
    const inputs = new Map(ids.map((id) => [id, encodeForSecAgg(vectors.get(id)!, plan, options.dp ?? null)]));
    const session = options.session ?? `fl-${randomBytes(8).toString('hex')}`;
    const r = await simulateSecAgg({ session, roster: ids, degree: mode.degree, threshold: mode.threshold, length, graphSeed: session }, inputs, options.dropAt);
    return { value: dequantiseSum(plan, r.sum), kind: 'sum', included: r.included, dropouts: ids.filter((id) => !r.included.includes(id)) };
  }
  const present = ids.filter((id) => !options.dropAt?.has(id));
  const list = present.map((id) => vectors.get(id)!);
  if (mode.mode === 'robust') return { value: robustAggregate(mode.rule, list, mode.byzantine), kind: 'robust', included: present, dropouts: ids.filter((id) => !present.includes(id)) };
  if (mode.mode === 'ckks') return { value: await options.ckks!.sum(list), kind: 'sum', included: present, dropouts: ids.filter((id) => !present.includes(id)) };
  const sum = new Float64Array(length);
  for (const v of list) for (let i = 0; i < length; i++) sum[i] += v[i]!;
  return { value: sum, kind: 'sum', included: present, dropouts: ids.filter((id) => !present.includes(id)) };
}
