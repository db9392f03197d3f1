/**
 * The partner-facing routes of federated learning (issue 19). Node-to-node traffic never
 * comes here (it has the mutual-TLS node listener); these are for each organisation's own
 * admins, on their own node:
 *
 *   POST /v1/fl/participations     a participant's admin joins a job (audited fl.join)
 *   POST /v1/fl/jobs               the coordinator's operator starts a job (audited fl.start)
 *   GET  /v1/fl/jobs/:job          per-round progress (audited fl.status)
 *   GET  /v1/fl/jobs/:job/model    the trained model and its card (audited fl.model.read)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatehouseError } from '../errors.ts';
import { flNodeOf } from '../fl/node/service.ts';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';

const NAME = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{2,62}$' } as const;
const NODE = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } as const;
const COLUMN = { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' } as const;

const joinSchema = {
  summary: 'Join a federated-learning job as a participant: this node trains on its own dataset, read through its own policy',
  tags: ['federated'],
  body: {
    type: 'object', additionalProperties: false, required: ['job', 'coordinator'],
    properties: {
      job: NAME, coordinator: NODE, dataset: { type: 'string', minLength: 1, maxLength: 128 }, label: COLUMN,
      holdout: { type: 'number', minimum: 0.05, maximum: 0.5 },
      keyAuthority: { type: 'boolean', description: 'join as the job\'s CKKS key authority (no dataset): decrypt verified sums for the coordinator, never single updates' },
      trustCoordinator: { type: 'boolean', description: 'send this job\'s updates in the clear to its coordinator, for robust aggregation (default false: secure aggregation only)' },
      budget: { type: 'object', additionalProperties: false, required: ['epsilon', 'delta'], properties: { epsilon: { type: 'number', exclusiveMinimum: 0, maximum: 1000 }, delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 } } },
    },
  },
};

const configSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    model: { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: { enum: ['logistic', 'mlp'] }, hidden: { type: 'integer', minimum: 1, maximum: 1024 } } },
    features: { type: 'array', minItems: 1, maxItems: 512, items: COLUMN },
    rounds: { type: 'integer', minimum: 1, maximum: 10000 }, localEpochs: { type: 'integer', minimum: 1, maximum: 1000 },
    learningRate: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 100 }, batchSize: { type: 'integer', minimum: 1 },
    algorithm: { enum: ['fedavg', 'fedprox'] }, proximalMu: { type: 'number', minimum: 0 }, clip: { type: 'number', exclusiveMinimum: 0 },
    maxExamples: { type: 'integer', minimum: 1 }, seed: { type: 'integer' },
    aggregation: {
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['mode', 'degree', 'threshold'], properties: { mode: { const: 'secagg' }, degree: { type: 'integer', minimum: 1 }, threshold: { type: 'integer', minimum: 2 } } },
        { type: 'object', additionalProperties: false, required: ['mode', 'keyAuthority'], properties: { mode: { const: 'ckks' }, keyAuthority: NODE } },
        { type: 'object', additionalProperties: false, required: ['mode', 'rule', 'byzantine'], properties: { mode: { const: 'robust' }, rule: { enum: ['krum', 'trimmed-mean', 'median'] }, byzantine: { type: 'integer', minimum: 0, maximum: 100 } } },
      ],
    },
    dp: { anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, required: ['noiseMultiplier', 'delta'], properties: { noiseMultiplier: { type: 'number', exclusiveMinimum: 0 }, delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 } } }] },
  },
  required: ['features'],
};

const startSchema = {
  summary: 'Start a federated-learning job coordinated by this node (secure aggregation over pinned peers)',
  tags: ['federated'],
  body: { type: 'object', additionalProperties: false, required: ['job', 'participants', 'agreement', 'config'], properties: { job: NAME, participants: { type: 'array', minItems: 2, maxItems: 1000, items: NODE }, agreement: { type: 'string', minLength: 1, maxLength: 128 }, config: configSchema } },
};

const jobParams = { type: 'object', required: ['job'], properties: { job: NAME } };
const statusSchema = { summary: 'Per-round progress of a job this node coordinates: participants, dropouts, loss, accuracy, ε', tags: ['federated'], params: jobParams };
const modelSchema = { summary: 'The trained model (JSON weights) and its model card, read from its encrypted artefact', tags: ['federated'], params: jobParams };

function nodeOf(gatehouse: Gatehouse) {
  const n = flNodeOf(gatehouse);
  if (!n) throw new GatehouseError('UNAVAILABLE', 'this node runs no federated-learning service', { hint: 'start the node with its federation listener (docs/federated.md)' });
  return n;
}

function bearerOf(request: FastifyRequest): string {
  const h = request.headers.authorization;
  if (typeof h === 'string' && /^Bearer\s+\S+$/i.test(h)) return h.replace(/^Bearer\s+/i, '');
  throw new GatehouseError('AUTH_REQUIRED', 'joining a job needs an API key: the node reads and releases as you', { hint: 'send "Authorization: Bearer <API key>"' });
}

export async function registerFlRoutes(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  app.post<{ Body: { job: string; coordinator: string; dataset?: string; label?: string; holdout?: number; keyAuthority?: boolean; trustCoordinator?: boolean; budget?: { epsilon: number; delta: number } } }>('/v1/fl/participations', { schema: joinSchema }, async (request) => {
    const node = nodeOf(gatehouse);
    const b = request.body;
    const credential = bearerOf(request);
    if (b.keyAuthority) {
      if (b.dataset || b.label || b.budget || b.trustCoordinator) throw new GatehouseError('REQUEST_INVALID', 'a key authority joins without a dataset, label, budget or trust-coordinator: it holds no data for the job');
      const { value, auditId } = await gatehouse.flJoin(metaOf(request), { job: b.job, coordinator: b.coordinator, dataset: null, budget: null });
      node.keyAuthority.designate({ job: b.job, coordinator: b.coordinator, credential });
      return { job: b.job, coordinator: b.coordinator, node: node.identity.nodeId, budgetSubject: value.subject, capRho: null, auditId };
    }
    if (!b.dataset || !b.label) throw new GatehouseError('REQUEST_INVALID', 'a participant joins with the dataset it trains on and the label column', { hint: 'gatehouse fl join --dataset D --label COL' });
    const { value, auditId } = await gatehouse.flJoin(metaOf(request), { job: b.job, coordinator: b.coordinator, dataset: b.dataset, budget: b.budget ?? null, trustCoordinator: b.trustCoordinator === true });
    const dataset = b.dataset;
    const label = b.label;
    node.participant.join({ job: b.job, coordinator: b.coordinator, dataset, label, credential, budgetSubject: value.subject, holdout: b.holdout ?? 0.25, trustCoordinator: b.trustCoordinator === true, requireDp: b.budget !== undefined });
    return { job: b.job, coordinator: b.coordinator, node: node.identity.nodeId, budgetSubject: value.subject, capRho: value.capRho, auditId };
  });

  app.post<{ Body: { job: string; participants: string[]; agreement: string; config: any } }>('/v1/fl/jobs', { schema: startSchema }, async (request, reply) => {
    const node = nodeOf(gatehouse);
    const meta = metaOf(request);
    const b = request.body;
    const { value, auditId } = await gatehouse.flControl(meta, 'fl.start', `start federated job ${b.job} with ${b.participants.join(',')} under agreement ${b.agreement}`, async (principal) => node.coordinator.start(meta, principal, b));
    reply.code(202);
    return { ...value, auditId };
  });

  app.get<{ Params: { job: string } }>('/v1/fl/jobs/:job', { schema: statusSchema }, async (request) => {
    const node = nodeOf(gatehouse);
    const { value } = await gatehouse.flControl(metaOf(request), 'fl.status', `status of federated job ${request.params.job}`, async (principal) => node.coordinator.status(request.params.job, principal));
    return value;
  });

  app.get<{ Params: { job: string } }>('/v1/fl/jobs/:job/model', { schema: modelSchema }, async (request) => {
    const node = nodeOf(gatehouse);
    const meta = metaOf(request);
    const { value: status } = await gatehouse.flControl(meta, 'fl.status', `model of federated job ${request.params.job}`, async (principal) => node.coordinator.status(request.params.job, principal));
    if (!status.model) throw new GatehouseError('NOT_FOUND', `job ${request.params.job} has no stored model (${status.state})`, { hint: 'wait for the job to finish: gatehouse fl status' });
    const { value } = await gatehouse.flReadModel(meta, status.model.artefactId);
    return JSON.parse(value.toString('utf8'));
  });
}
