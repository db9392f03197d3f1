/**
 * The coordinator side of a federated job (issue 19): drives each round over the node
 * layer (src/federation FederationClient: mutual TLS to pinned peers, signed envelopes,
 * one request id per round that every node's audit entries carry) and runs the SecAgg+
 * coordinator (src/fl/secagg/) on what comes back.
 *
 *   round r:  train session  → global += Σ ω·Δ / Σ ω   (or / |U3| under DP)
 *             eval session   → accuracy and loss of the new global model on every held-out split
 *             audit `fl.round` on this node; progress kept for `gatehouse fl status`
 *   end:      model + model card → encrypted artefact labelled with the agreement (`fl.model`)
 *
 * A participant whose budget is exhausted refuses its release (BUDGET_EXHAUSTED): the round
 * completes without it if enough others remain, and training then stops with
 * FL_BUDGET_EXHAUSTED naming it. Cross-node charges cannot be one transaction; each node
 * charges its own dataset all-or-nothing, before its own release.
 */
import { randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { FederationClient, NodeHandler, PeerPin } from '../../federation/index.ts';
import { GatehouseError } from '../../errors.ts';
import type { Gatehouse, RequestMeta } from '../../pipeline/gatehouse.ts';
import { toEpsilonDelta } from '../../privacy/accounting/index.ts';
import { FlError } from '../errors.ts';
import { unwire, wire } from '../secagg/codec.ts';
import { SecAggCoordinator } from '../secagg/coordinator.ts';
import type { SessionParams } from '../secagg/messages.ts';
import { dequantiseSum } from '../secagg/quantize.ts';
import { runSecAgg, type SecAggChannel } from '../secagg/round.ts';
import { modelOf } from '../training/config.ts';
import { robustAggregate } from '../robust/aggregators.ts';
import type { RoundProgress } from '../training/federated.ts';
import { checkJob, plansOf, type JobSpec, type Phase } from './job.ts';

export type JobState = 'running' | 'finished' | 'failed';

export interface JobStatus {
  readonly job: string;
  readonly state: JobState;
  readonly startedBy: string;
  readonly rounds: readonly RoundProgress[];
  readonly error: { readonly code: string; readonly detail: string | null; readonly message: string } | null;
  readonly model: { readonly artefactId: string; readonly sha256: string } | null;
}

export interface ModelCard {
  readonly format: 'gatehouse-fl-model/1';
  readonly job: string;
  readonly agreement: string;
  readonly model: JobSpec['config']['model'];
  readonly features: readonly string[];
  readonly weights: readonly number[];
  readonly card: {
    readonly rounds: number;
    readonly participants: readonly string[];
    readonly dropouts: readonly { readonly round: number; readonly nodes: readonly string[] }[];
    readonly algorithm: string;
    readonly aggregation: string;
    readonly dp: null | { readonly noiseMultiplier: number; readonly clip: number; readonly rhoPerRound: number; readonly rho: number; readonly epsilon: number; readonly delta: number };
    readonly accuracy: number | null;
    readonly trainedAt: string;
  };
}

export class FlCoordinatorRole {
  readonly #gatehouse: Gatehouse;
  readonly #client: FederationClient;
  readonly #self: string;
  readonly #pins: () => ReadonlyMap<string, KeyObject>;
  readonly #local: Readonly<Record<string, NodeHandler>>;
  readonly #selfPin: () => PeerPin;
  readonly #jobs = new Map<string, { status: JobStatus; done: Promise<void> }>();
  readonly #ckksKeys = new Map<string, { publicKey: string; sig: string }>();

  /** `local`: this node's own participant handlers, called directly when it is in the roster. */
  constructor(o: { gatehouse: Gatehouse; client: FederationClient; self: string; pins: () => ReadonlyMap<string, KeyObject>; local: Readonly<Record<string, NodeHandler>>; selfPin: () => PeerPin }) {
    this.#gatehouse = o.gatehouse;
    this.#client = o.client;
    this.#self = o.self;
    this.#pins = o.pins;
    this.#local = o.local;
    this.#selfPin = o.selfPin;
  }

  status(job: string, principal: string): JobStatus {
    const j = this.#jobs.get(job);
    if (!j || j.status.startedBy !== principal) throw new GatehouseError('NOT_FOUND', `no job ${job} that you started on this node`, { hint: 'start one: gatehouse fl start' });
    return j.status;
  }

  /** Resolves when the job ends (tests, the demo). */
  async done(job: string): Promise<JobStatus> {
    await this.#jobs.get(job)?.done;
    return this.#jobs.get(job)!.status;
  }

  start(meta: RequestMeta, principal: string, input: Omit<JobSpec, 'coordinator'>): JobStatus {
    const spec = checkJob({ ...input, coordinator: this.#self });
    const pins = this.#pins();
    for (const p of spec.participants) if (!pins.has(p)) throw new FlError('FL_PARTICIPANT_UNKNOWN', `${p} is not a pinned peer of this node`, 'add it to federation.peers in gatehouse.yaml');
    const existing = this.#jobs.get(spec.job);
    if (existing?.status.state === 'running') throw new FlError('FL_STAGE_OUT_OF_ORDER', `job ${spec.job} is already running`);
    const status: JobStatus = { job: spec.job, state: 'running', startedBy: principal, rounds: [], error: null, model: null };
    const entry = { status, done: Promise.resolve() };
    this.#jobs.set(spec.job, entry);
    const failure = (err: GatehouseError) => ({ code: err.code ?? 'INTERNAL', detail: err.detail ?? null, message: err.message });
    entry.done = this.#run(meta, spec).then(
      ({ model, stopped }) => { entry.status = { ...entry.status, state: stopped ? 'failed' : 'finished', model, error: stopped ? failure(stopped) : null }; },
      (err: GatehouseError) => { entry.status = { ...entry.status, state: 'failed', error: failure(err) }; },
    );
    return status;
  }

  #call(id: string, op: string, body: unknown, requestId: string): Promise<any> {
    if (id === this.#self) return this.#local[op]!({ operation: op, peer: this.#selfPin(), requestId, body });
    return this.#client.call(id, op, body, requestId).then((r) => r.result);
  }

  /**
   * CKKS: the key authority's signed public key (fetched once per job), each participant's
   * encrypted update, and the key authority's decryption of the verified sum. This node never
   * holds a key that decrypts anything.
   */
  async #ckks(spec: JobSpec, phase: Phase, round: number, weights: Float64Array, requestId: string, refusals: Map<string, GatehouseError>) {
    const a = spec.config.aggregation;
    if (a.mode !== 'ckks' || !a.keyAuthority) throw new FlError('FL_PARAMETERS_INVALID', 'this job names no CKKS key authority');
    const key = this.#ckksKeys.get(spec.job) ?? await this.#call(a.keyAuthority, 'fl-ckks-key', { spec }, requestId) as { publicKey: string; sig: string };
    this.#ckksKeys.set(spec.job, key);
    const session = `${spec.job}-r${round}-${phase}-${randomUUID()}`;
    const answers = await Promise.allSettled(spec.participants.map((id) => this.#call(id, 'fl-ckks', { spec, phase, round, session, weights: [...weights], publicKey: key.publicKey, keySig: key.sig }, requestId)));
    const contributions: unknown[] = [];
    const included: string[] = [];
    answers.forEach((x, i) => {
      const id = spec.participants[i]!;
      if (x.status === 'rejected') { refusals.set(id, x.reason as GatehouseError); return; }
      if ((x.value as { from?: unknown })?.from !== id) return;
      contributions.push(x.value);
      included.push(id);
    });
    const r = await this.#call(a.keyAuthority, 'fl-ckks-decrypt', { spec, session, contributions }, requestId) as { sum: number[] };
    if (!Array.isArray(r?.sum) || r.sum.some((v) => typeof v !== 'number' || !Number.isFinite(v))) throw new FlError('FL_PARAMETERS_INVALID', 'the key authority answered with a malformed sum');
    return { session, result: { included }, value: Float64Array.from(r.sum) };
  }

  /** Plain updates from every participant that answers (robust mode); refusals are dropouts. */
  async #plain(spec: JobSpec, phase: Phase, round: number, weights: Float64Array, length: number, requestId: string, refusals: Map<string, GatehouseError>): Promise<Map<string, Float64Array>> {
    const answers = await Promise.allSettled(spec.participants.map((id) => this.#call(id, 'fl-update', { spec, phase, round, weights: [...weights] }, requestId)));
    const out = new Map<string, Float64Array>();
    answers.forEach((a, i) => {
      const id = spec.participants[i]!;
      if (a.status === 'rejected') { refusals.set(id, a.reason as GatehouseError); return; }
      const v = a.value as { from?: unknown; vector?: unknown };
      if (v?.from !== id || !Array.isArray(v.vector) || v.vector.length !== length || v.vector.some((x) => typeof x !== 'number' || !Number.isFinite(x))) return;
      out.set(id, Float64Array.from(v.vector as number[]));
    });
    if (out.size < 2) throw new FlError('FL_TOO_FEW_PARTICIPANTS', `${out.size} participants sent updates; robust aggregation needs at least two`);
    return out;
  }

  async #session(spec: JobSpec, phase: Phase, round: number, weights: Float64Array, requestId: string, refusals: Map<string, GatehouseError>) {
    const plans = plansOf(spec);
    const cfg = spec.config;
    const session = `${spec.job}-r${round}-${phase}-${randomUUID()}`;
    const agg = cfg.aggregation.mode === 'secagg' ? cfg.aggregation : { degree: spec.participants.length - 1, threshold: spec.participants.length };
    const length = phase === 'train' ? plans.train.length : plans.eval.length;
    const params: SessionParams = { session, roster: spec.participants, degree: agg.degree, threshold: agg.threshold, length, graphSeed: session };
    const coord = new SecAggCoordinator(params, this.#pins());
    const note = (id: string) => (err: unknown) => { refusals.set(id, err as GatehouseError); throw err; };
    const channel: SecAggChannel = {
      advertise: (id) => this.#call(id, 'fl-begin', { spec, phase, round, session, weights: [...weights] }, requestId).then(unwire.advertise, note(id)),
      share: (id, adverts) => this.#call(id, 'fl-share', { session, adverts: adverts.map(wire.advertise) }, requestId).then(unwire.share, note(id)),
      masked: (id, shares) => this.#call(id, 'fl-masked', { session, shares: wire.incoming(shares) }, requestId).then((o) => unwire.masked(o, length), note(id)),
      consistency: (id, survivors) => this.#call(id, 'fl-consistency', { session, survivors }, requestId).then(unwire.consistency, note(id)),
      unmask: (id, req) => this.#call(id, 'fl-unmask', { session, ...wire.unmaskRequest(req) }, requestId).then(unwire.unmask, note(id)),
    };
    const r = await runSecAgg(coord, channel);
    return { session, result: r, value: dequantiseSum(phase === 'train' ? plans.train.quantiser : plans.eval.quantiser, r.sum) };
  }

  /** Runs every round; an exhausted budget stops training and the model so far is still stored (`stopped`). */
  async #run(meta: RequestMeta, spec: JobSpec): Promise<{ model: { artefactId: string; sha256: string }; stopped: FlError | null }> {
    const cfg = spec.config;
    const model = modelOf(cfg);
    const plans = plansOf(spec);
    let global = model.init(cfg.seed);
    let rho = 0;
    const history: RoundProgress[] = [];
    const dropouts: { round: number; nodes: string[] }[] = [];
    const entry = this.#jobs.get(spec.job)!;
    let stopped: FlError | null = null;
    const budgetStop = (round: number, refusals: ReadonlyMap<string, GatehouseError>, completed: boolean): FlError | null => {
      const out = [...refusals].filter(([, e]) => e?.code === 'BUDGET_EXHAUSTED').map(([id]) => id).sort();
      if (out.length === 0) return null;
      return new FlError('FL_BUDGET_EXHAUSTED', `training stopped ${completed ? 'after' : 'in'} round ${round}: ${out.map((id) => `node ${id}`).join(', ')} ${out.length === 1 ? 'has' : 'have'} no privacy budget left for this job`, `the model of the ${completed ? round : round - 1} completed round${(completed ? round : round - 1) === 1 ? '' : 's'} is stored; ask for more budget, or train with more noise`);
    };
    for (let round = 1; round <= cfg.rounds && !stopped; round++) {
      const requestId = randomUUID();
      const refusals = new Map<string, GatehouseError>();
      let progress: RoundProgress;
      try {
        ({ value: progress } = await this.#gatehouse.flRound(meta, spec.job, round, async () => {
        const d = model.size;
        const next = Float64Array.from(global);
        let train: { session: string; result: { included: readonly string[] }; value: Float64Array };
        let ev: { session: string; value: Float64Array };
        if (cfg.aggregation.mode === 'ckks') {
          const t = await this.#ckks(spec, 'train', round, global, requestId, refusals);
          train = t;
          const weight = t.value[d]!;
          if (weight > 0) for (let j = 0; j < d; j++) next[j] += t.value[j]! / weight;
          global = next;
          ev = await this.#ckks(spec, 'eval', round, global, requestId, new Map());
        } else if (cfg.aggregation.mode === 'robust') {
          // Secure aggregation off: a robust rule over updates sent in the clear by consenting participants.
          const rule = cfg.aggregation;
          const updates = await this.#plain(spec, 'train', round, global, d, requestId, refusals);
          train = { session: `${spec.job}-r${round}-train-plain`, result: { included: [...updates.keys()] }, value: robustAggregate(rule.rule, [...updates.values()], rule.byzantine) };
          for (let j = 0; j < d; j++) next[j] += train.value[j]!;
          global = next;
          const evals = await this.#plain(spec, 'eval', round, global, 3, requestId, new Map());
          const sum = new Float64Array(3);
          for (const v of evals.values()) for (let j = 0; j < 3; j++) sum[j] += v[j]!;
          ev = { session: `${spec.job}-r${round}-eval-plain`, value: sum };
        } else {
          const t = await this.#session(spec, 'train', round, global, requestId, refusals);
          train = t;
          const weight = plans.train.dp ? t.result.included.length : t.value[d]!;
          if (weight > 0) for (let j = 0; j < d; j++) next[j] += t.value[j]! / weight;
          global = next;
          if (plans.train.dp) rho += plans.train.dp.rho;
          ev = await this.#session(spec, 'eval', round, global, requestId, new Map());
        }
        const dropped = spec.participants.filter((p) => !train.result.included.includes(p));
        if (dropped.length) dropouts.push({ round, nodes: dropped });
        const p: RoundProgress = {
          round, participants: train.result.included, dropouts: dropped, trainLoss: null,
          accuracy: ev.value[0]! / ev.value[1]!, testLoss: ev.value[2]! / ev.value[1]!, rho,
          epsilon: cfg.dp && rho > 0 ? toEpsilonDelta(rho, cfg.dp.delta).epsilon : 0, clipped: 0,
        };
        return {
          value: p,
          outcome: {
            job: spec.job, round, session: train.session, participants: train.result.included, dropouts: dropped,
            reasons: [`request ${requestId}`, `eval session ${ev.session}`, `accuracy ${p.accuracy.toFixed(4)} loss ${p.testLoss.toFixed(4)}`, ...(cfg.dp ? [`rho ${rho} epsilon ${p.epsilon} delta ${cfg.dp.delta}`] : [])],
          },
        };
        }));
      } catch (err) {
        // A round that could not finish because budgets ran out stops training; the earlier rounds' model is kept.
        stopped = budgetStop(round, refusals, false);
        if (!stopped || history.length === 0) throw stopped ?? err;
        break;
      }
      history.push(progress);
      entry.status = { ...entry.status, rounds: [...history] };
      stopped = budgetStop(round, refusals, true);
    }
    const last = history.at(-1) ?? null;
    const card: ModelCard = {
      format: 'gatehouse-fl-model/1', job: spec.job, agreement: spec.agreement, model: cfg.model, features: cfg.features, weights: [...global],
      card: {
        rounds: history.length, participants: spec.participants.filter((id) => history.some((h) => h.participants.includes(id))), dropouts, algorithm: cfg.algorithm === 'fedprox' ? `FedProx μ=${cfg.proximalMu}` : 'FedAvg',
        aggregation: cfg.aggregation.mode === 'secagg' ? `SecAgg+ (k=${cfg.aggregation.degree}, t=${cfg.aggregation.threshold})` : cfg.aggregation.mode === 'robust' ? `${cfg.aggregation.rule} (f=${cfg.aggregation.byzantine}), trusted coordinator, no masking` : cfg.aggregation.mode === 'ckks' ? `CKKS, key authority ${cfg.aggregation.keyAuthority}` : cfg.aggregation.mode,
        dp: cfg.dp && plans.train.dp ? { noiseMultiplier: cfg.dp.noiseMultiplier, clip: cfg.clip, rhoPerRound: plans.train.dp.rho, rho, epsilon: last?.epsilon ?? 0, delta: cfg.dp.delta } : null,
        accuracy: last?.accuracy ?? null, trainedAt: new Date().toISOString(),
      },
    };
    const { value } = await this.#gatehouse.flStoreModel(meta, { job: spec.job, agreement: spec.agreement, content: Buffer.from(JSON.stringify(card)) });
    return { model: value, stopped };
  }
}
