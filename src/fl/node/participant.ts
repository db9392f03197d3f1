/**
 * The participant side of a federated job on its own node (issue 19). It answers the
 * coordinator's calls on the node listener (src/federation: mutual TLS, pinned keys, signed
 * envelopes), and only for a job its own admin joined naming that coordinator:
 *
 *   fl-begin        read the job's features through this node's own governed path
 *                   (`gatehouse.query`, purpose `model-training`, audited; this node's policy
 *                   decides which columns the model may see), train locally (train phase) or
 *                   evaluate the global model on the held-out split (eval phase), and advertise
 *                   this session's keys;
 *   fl-share        Shamir shares of its secrets for its neighbours (encrypted to each);
 *   fl-masked       the release: inside `gatehouse.flRelease` (audited `fl.release`, the DP
 *                   charge on this node's ledger), quantise, add its noise share, mask, send;
 *   fl-consistency  sign the survivor set;  fl-unmask  reveal one kind of share per neighbour.
 *
 * No row and no unmasked update ever leaves: what leaves is advertised keys, encrypted
 * shares, the masked vector and shares the protocol allows.
 */
import { GatehouseError } from '../../errors.ts';
import type { Gatehouse } from '../../pipeline/gatehouse.ts';
import type { NodeHandler, PeerPin } from '../../federation/index.ts';
import type { KeyObject } from 'node:crypto';
import { FlError } from '../errors.ts';
import { evaluationSums } from '../models/local-train.ts';
import { splitHoldout, toDataset } from '../models/dataset.ts';
import type { Dataset } from '../models/types.ts';
import { unwire, wire } from '../secagg/codec.ts';
import type { SessionParams } from '../secagg/messages.ts';
import { SecAggParticipant } from '../secagg/participant.ts';
import { encodeForSecAgg, localStep } from '../training/participant-step.ts';
import { modelOf } from '../training/config.ts';
import { checkJob, MAX_EVAL_ROWS, plansOf, type JobSpec, type Phase } from './job.ts';
import { contributionWire, verifyAuthorityKey } from './key-authority.ts';
import { encryptUpdate } from '../ckks/ckks.ts';

export interface Participation {
  readonly job: string;
  readonly coordinator: string;
  readonly dataset: string;
  readonly label: string;
  /** The admin's credential: every read and release runs as them, on this node. */
  readonly credential: string;
  readonly budgetSubject: string;
  readonly holdout: number;
  /**
   * The operator agreed to send this job's updates in the clear to its coordinator, for a
   * robust rule (Krum, trimmed mean, median) that cannot run on masked updates. Default false.
   */
  readonly trustCoordinator?: boolean;
  /** The operator gave the dataset a privacy budget: the job must train with DP noise. */
  readonly requireDp?: boolean;
}

interface Session {
  readonly spec: JobSpec;
  readonly phase: Phase;
  readonly round: number;
  readonly secagg: SecAggParticipant;
  readonly vector: Float64Array;
  readonly participation: Participation;
}

const MAX_SESSIONS = 16;

export class FlParticipantRole {
  readonly #gatehouse: Gatehouse;
  readonly #identity: KeyObject;
  readonly #pins: () => ReadonlyMap<string, KeyObject>;
  readonly #self: string;
  readonly #joined = new Map<string, Participation>();
  readonly #sessions = new Map<string, Session>();
  readonly #data = new Map<string, { train: Dataset; test: Dataset }>();
  /**
   * The last round released per job and phase. A round is released at most once: a
   * coordinator that re-ran a round with a different survivor set could subtract the two
   * sums and recover one participant's update (without DP, exactly), so it may not.
   */
  readonly #released = new Map<string, { train: number; eval: number }>();
  /** The job spec as first seen: a coordinator may not change features, roster, noise or aggregation mid-job. */
  readonly #specs = new Map<string, string>();

  constructor(gatehouse: Gatehouse, self: string, identity: KeyObject, pins: () => ReadonlyMap<string, KeyObject>) {
    this.#gatehouse = gatehouse;
    this.#self = self;
    this.#identity = identity;
    this.#pins = pins;
  }

  join(p: Participation): void { this.#joined.set(p.job, p); }
  joined(job: string): Participation | null { return this.#joined.get(job) ?? null; }

  #meta(p: Participation, coordinator: PeerPin) {
    return { credential: p.credential, source: `node:${coordinator.nodeId}`, channel: `federation:${coordinator.region}` };
  }

  #session(peer: PeerPin, body: any): Session {
    const s = typeof body?.session === 'string' ? this.#sessions.get(body.session) : undefined;
    if (!s || s.spec.coordinator !== peer.nodeId) throw new FlError('FL_STAGE_OUT_OF_ORDER', 'no such session of a job this node joined', 'the coordinator must begin the round first');
    return s;
  }

  /** Reads the job's features and label through this node's own governed path. */
  async #read(p: Participation, spec: JobSpec, coordinator: PeerPin): Promise<{ train: Dataset; test: Dataset }> {
    const cols = [...spec.config.features, p.label].map((c) => `"${c}"`).join(', ');
    const res = await this.#gatehouse.query({ ...this.#meta(p, coordinator), sql: `SELECT ${cols} FROM "${p.dataset}"`, purpose: 'model-training' });
    if (res.governance.truncated) throw new FlError('FL_PARAMETERS_INVALID', `the governed read of ${p.dataset} was truncated by its row cap`, 'raise the row cap for purpose model-training, or train on a sample');
    const rows: number[][] = [];
    const labels: number[] = [];
    for (const r of res.rows) {
      const xs = r.slice(0, -1).map(Number);
      const y = Number(r[r.length - 1]);
      if (xs.some((v) => !Number.isFinite(v)) || (y !== 0 && y !== 1)) throw new FlError('FL_PARAMETERS_INVALID', `a row of ${p.dataset} has a non-numeric feature or a label other than 0/1 (a masked column reads as text)`, 'ask the data owner which columns policy releases for model-training');
      rows.push(xs);
      labels.push(y);
    }
    if (rows.length < 10) throw new FlError('FL_PARAMETERS_INVALID', `${p.dataset} has fewer than 10 rows this node may train on`);
    const d = splitHoldout(toDataset(rows, labels), p.holdout);
    if (d.test.n > MAX_EVAL_ROWS) throw new FlError('FL_PARAMETERS_INVALID', 'the held-out split is larger than the evaluation plan allows');
    return d;
  }

  /** The common start of a round: the job was joined under this coordinator, the round is fresh, the data read, the vector computed. */
  async #prepare(peer: PeerPin, b: any): Promise<{ spec: JobSpec; p: Participation; phase: Phase; round: number; vector: Float64Array }> {
    const spec = checkJob(b?.spec);
    const p = this.#joined.get(spec.job);
    if (!p || p.coordinator !== peer.nodeId || spec.coordinator !== peer.nodeId) throw new GatehouseError('POLICY_DENIED', `this node has not joined job ${spec.job} under coordinator ${peer.nodeId}`, { hint: 'the participant\'s admin runs: gatehouse fl join' });
    if (!spec.participants.includes(this.#self)) throw new FlError('FL_PARTICIPANT_UNKNOWN', 'this node is not in the job\'s roster');
    if (p.requireDp && !spec.config.dp) throw new GatehouseError('POLICY_DENIED', `this node joined job ${spec.job} with a privacy budget, so it trains only with DP noise`, { hint: 'the coordinator sets config.dp', reasons: ['dp required by the participant'] });
    const canonical = JSON.stringify(spec);
    const first = this.#specs.get(spec.job);
    if (first !== undefined && first !== canonical) throw new FlError('FL_PARAMETERS_INVALID', `job ${spec.job} changed its configuration, roster or agreement after it began`, 'start a new job (and have participants join it) to change them');
    const phase: Phase = b.phase === 'eval' ? 'eval' : 'train';
    const round = Number(b.round);
    if (!Number.isInteger(round) || round < 1) throw new FlError('FL_PARAMETERS_INVALID', 'round must be a positive integer');
    this.#checkFresh(spec.job, phase, round);
    const model = modelOf(spec.config);
    const weights = Float64Array.from(Array.isArray(b.weights) ? b.weights : [], Number);
    if (weights.length !== model.size || weights.some((w) => !Number.isFinite(w))) throw new FlError('FL_PARAMETERS_INVALID', `the global model must have ${model.size} finite parameters`);
    if (phase === 'train' || !this.#data.has(spec.job)) this.#data.set(spec.job, await this.#read(p, spec, peer));
    const data = this.#data.get(spec.job)!;
    this.#specs.set(spec.job, canonical);
    const vector = phase === 'train' ? localStep(spec.config, model, weights, data.train, round, spec.participants.indexOf(this.#self)).vector : evaluationSums(model, weights, data.test);
    return { spec, p, phase, round, vector };
  }

  #markReleased(job: string, phase: Phase, round: number): void {
    this.#checkFresh(job, phase, round);
    const released = this.#released.get(job) ?? { train: 0, eval: 0 };
    this.#released.set(job, { ...released, [phase]: round });
  }

  #checkFresh(job: string, phase: Phase, round: number): void {
    const last = this.#released.get(job)?.[phase] ?? 0;
    if (round <= last) throw new FlError('FL_MESSAGE_REPLAYED', `round ${round} of job ${job} (${phase}) was already released; a round is never released twice`, 'the coordinator starts the next round instead of repeating one');
  }

  handlers(): Record<string, NodeHandler> {
    return {
      'fl-begin': async ({ peer, body }) => {
        const b = body as any;
        const { spec, p, phase, round, vector } = await this.#prepare(peer, b);
        if (spec.config.aggregation.mode !== 'secagg') throw new FlError('FL_PARAMETERS_INVALID', 'this job does not use secure aggregation');
        const plans = plansOf(spec);
        const cfg = spec.config;
        const params: SessionParams = {
          session: String(b.session), roster: spec.participants, degree: cfg.aggregation.mode === 'secagg' ? cfg.aggregation.degree : spec.participants.length - 1,
          threshold: cfg.aggregation.mode === 'secagg' ? cfg.aggregation.threshold : spec.participants.length, length: phase === 'train' ? plans.train.length : plans.eval.length, graphSeed: String(b.session),
        };
        if (this.#sessions.has(params.session)) throw new FlError('FL_MESSAGE_REPLAYED', 'this session has already begun');
        const secagg = new SecAggParticipant(this.#self, params, this.#identity, this.#pins());
        if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
        this.#sessions.set(params.session, { spec, phase, round, secagg, vector, participation: p });
        return wire.advertise(secagg.advertise());
      },
      'fl-share': async ({ peer, body }) => wire.share(await this.#session(peer, body).secagg.share(unwire.advertiseList(body))),
      'fl-masked': async ({ peer, body }) => {
        const s = this.#session(peer, body);
        const plans = plansOf(s.spec);
        const incoming = unwire.incoming(body);
        const dp = s.phase === 'train' ? plans.train.dp : null;
        const { value } = await this.#gatehouse.flRelease(this.#meta(s.participation, peer), {
          job: s.spec.job, round: s.round, session: s.secagg.params.session, coordinator: peer.nodeId, dataset: s.participation.dataset,
          rho: dp ? dp.rho : null, budgetSubject: s.participation.budgetSubject,
          run: async () => {
            this.#markReleased(s.spec.job, s.phase, s.round);
            const x = encodeForSecAgg(s.vector, s.phase === 'train' ? plans.train.quantiser : plans.eval.quantiser, dp);
            return wire.masked(s.secagg.masked(incoming, x));
          },
        });
        return value;
      },
      // Secure aggregation off: the update goes in the clear to a coordinator this node's operator chose to trust.
      'fl-update': async ({ peer, body }) => {
        const { spec, p, phase, round, vector } = await this.#prepare(peer, body);
        if (spec.config.aggregation.mode !== 'robust') throw new FlError('FL_PARAMETERS_INVALID', 'plain updates are sent only for robust aggregation');
        if (!p.trustCoordinator) throw new GatehouseError('POLICY_DENIED', `this node did not agree to send job ${spec.job}'s updates to ${peer.nodeId} in the clear`, { hint: 'the operator joins with --trust-coordinator to allow robust aggregation, or the job uses secure aggregation', reasons: ['no trust-coordinator consent'] });
        const { value } = await this.#gatehouse.flRelease(this.#meta(p, peer), {
          job: spec.job, round, session: `${spec.job}-r${round}-${phase}-plain`, coordinator: peer.nodeId, dataset: p.dataset, rho: null, budgetSubject: p.budgetSubject, mode: 'plain-to-trusted-coordinator',
          run: async () => { this.#markReleased(spec.job, phase, round); return { from: this.#self, vector: [...vector] }; },
        });
        return value;
      },
      // CKKS: the update leaves encrypted under the designated key authority's public key, which this node checks against that authority's pin.
      'fl-ckks': async ({ peer, body }) => {
        const b = body as any;
        const { spec, p, phase, round, vector } = await this.#prepare(peer, b);
        if (spec.config.aggregation.mode !== 'ckks') throw new FlError('FL_PARAMETERS_INVALID', 'this job does not use CKKS');
        const publicKey = new Uint8Array(Buffer.from(String(b.publicKey ?? ''), 'base64url'));
        verifyAuthorityKey(spec, this.#pins(), publicKey, new Uint8Array(Buffer.from(String(b.keySig ?? ''), 'base64url')));
        const session = String(b.session ?? '');
        if (session.length < 8 || session.length > 200) throw new FlError('FL_PARAMETERS_INVALID', 'a session id is 8–200 characters');
        const { value } = await this.#gatehouse.flRelease(this.#meta(p, peer), {
          job: spec.job, round, session, coordinator: peer.nodeId, dataset: p.dataset, rho: null, budgetSubject: p.budgetSubject, mode: 'ckks-to-key-authority',
          run: async () => {
            this.#markReleased(spec.job, phase, round);
            return contributionWire.to(await encryptUpdate(publicKey, session, this.#self, this.#identity, vector));
          },
        });
        return value;
      },
      'fl-consistency': async ({ peer, body }) => wire.consistency(this.#session(peer, body).secagg.consistency(unwire.survivors(body))),
      'fl-unmask': async ({ peer, body }) => {
        const s = this.#session(peer, body);
        const out = wire.unmask(s.secagg.unmask(unwire.unmaskRequest(body)));
        this.#sessions.delete(s.secagg.params.session);
        return out;
      },
    };
  }
}
