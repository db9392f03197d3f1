/**
 * HTTP routes of a node's clean rooms (docs/cleanrooms.md), each with a JSON schema for its
 * body and answer. They call the node's clean-room service, which audits every step in the
 * node's log; `authorize` decides who may call them (the node's administrators: a served
 * node's app.ts passes the pipeline's authentication and admin check, audited as
 * `cleanroom.http`; `gatehouse cleanroom demo` a node token).
 *
 *   GET  /v1/cleanrooms                               collaborations and pending invitations
 *   POST /v1/cleanrooms                               create
 *   GET  /v1/cleanrooms/:id
 *   POST /v1/cleanrooms/:id/invitations               invite a pinned node with abilities
 *   POST /v1/cleanrooms/:id/join                      accept the invitation received
 *   POST /v1/cleanrooms/:id/contributions             contribute a table with its rule
 *   PUT  /v1/cleanrooms/:id/rules/:table              change a table's rule
 *   POST /v1/cleanrooms/:id/templates                 propose an analysis template
 *   POST /v1/cleanrooms/:id/templates/:name/approve   approve its current hash
 *   POST /v1/cleanrooms/:id/queries                   run an analysis (SQL or template)
 *   POST /v1/cleanrooms/:id/psi                       PSI cardinality / intersection / sum
 *   POST /v1/cleanrooms/:id/leave                     leave (the creator: end)
 *   GET  /v1/cleanrooms/:id/receipts/:member/:auditId fetch and verify a member's receipt
 *   GET  /v1/cleanrooms/:id/results                   results received as a receiver
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError, asGatehouseError } from '../errors.ts';
import type { CleanroomService } from '../cleanroom/service.ts';
import { parseVkey, verifyReceipt } from '../audit/index.ts';

export interface CleanroomRouteOptions {
  /** Throws a GatehouseError (AUTH_REQUIRED, POLICY_DENIED) when the caller may not manage clean rooms. */
  readonly authorize: (req: FastifyRequest) => Promise<void> | void;
}

const ID = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } as const;
const NAME = { type: 'string', pattern: '^[a-z_][a-z0-9_-]{0,62}$' } as const;
const ABILITIES = { type: 'array', items: { enum: ['query', 'receive', 'approve'] }, minItems: 1, uniqueItems: true } as const;
const ANY_OBJECT = { type: 'object', additionalProperties: true } as const;
const COLUMN = { type: 'object', properties: { name: NAME, type: { enum: ['VARCHAR', 'BIGINT', 'INTEGER', 'DOUBLE', 'DECIMAL', 'BOOLEAN', 'DATE', 'TIMESTAMP'] } }, required: ['name', 'type'], additionalProperties: false } as const;
const PARAMS = { type: 'object', properties: { id: ID }, required: ['id'] } as const;
const HEX = { type: 'string', pattern: '^[0-9a-fA-F]{64,128}$' } as const;
/** compute.requireAttestation (src/cleanroom/attestation-requirement.ts checks it again). */
const COMPUTE = {
  type: 'object', additionalProperties: false, properties: {
    requireAttestation: {
      type: 'object', required: ['format', 'measurements'], additionalProperties: false, properties: {
        format: { enum: ['aws-nitro', 'sample'] }, measurements: { type: 'array', items: HEX, minItems: 1, maxItems: 20 },
        pcrs: { type: 'object', additionalProperties: HEX, maxProperties: 32 }, maxAgeSeconds: { type: 'integer', minimum: 1, maximum: 300 },
      },
    },
  },
} as const;

function send(reply: FastifyReply, err: unknown): FastifyReply {
  const e = asGatehouseError(err);
  return reply.code(e.status).send({ error: { ...e.toJSON(), detail: e.detail } });
}

export async function registerCleanroomRoutes(app: FastifyInstance, service: CleanroomService, options: CleanroomRouteOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('preHandler', async (req) => { await options.authorize(req); });
    scope.setErrorHandler((err, _req, reply) => {
      if ((err as { validation?: unknown }).validation) return send(reply, new GatehouseError('REQUEST_INVALID', (err as Error).message));
      return send(reply, err);
    });
    type P = { id: string };

    scope.get('/v1/cleanrooms', { schema: {} }, async () => ({
      collaborations: service.list(), invitations: service.pendingInvitations(),
    }));
    scope.post<{ Body: { id?: string; name: string; purpose: string } }>('/v1/cleanrooms', {
      schema: { body: { type: 'object', properties: { id: ID, name: { type: 'string', minLength: 1, maxLength: 200 }, purpose: { type: 'string', pattern: '^[a-z][a-z0-9_.-]{0,63}$' }, compute: COMPUTE }, required: ['name', 'purpose'], additionalProperties: false } },
    }, async (req) => ({ collaboration: await service.create(req.body) }));
    scope.get<{ Params: P }>('/v1/cleanrooms/:id', { schema: { params: PARAMS } }, async (req) => ({ collaboration: service.get(req.params.id) }));
    scope.post<{ Params: P; Body: { node: string; abilities: ('query' | 'receive' | 'approve')[]; ttlHours?: number } }>('/v1/cleanrooms/:id/invitations', {
      schema: { params: PARAMS, body: { type: 'object', properties: { node: ID, abilities: ABILITIES, ttlHours: { type: 'integer', minimum: 1, maximum: 720 } }, required: ['node', 'abilities'], additionalProperties: false } },
    }, async (req) => ({ invitation: await service.invite(req.params.id, req.body.node, req.body.abilities, req.body.ttlHours) }));
    scope.post<{ Params: P }>('/v1/cleanrooms/:id/join', { schema: { params: PARAMS } }, async (req) => ({ collaboration: await service.join(req.params.id) }));
    scope.post<{ Params: P; Body: { table: string; dataset: string; columns: { name: string; type: 'VARCHAR' }[]; rule: unknown } }>('/v1/cleanrooms/:id/contributions', {
      schema: { params: PARAMS, body: { type: 'object', properties: { table: NAME, dataset: NAME, columns: { type: 'array', items: COLUMN, minItems: 1, maxItems: 200 }, rule: ANY_OBJECT }, required: ['table', 'dataset', 'columns', 'rule'], additionalProperties: false } },
    }, async (req) => ({ collaboration: await service.contribute(req.params.id, req.body) }));
    scope.put<{ Params: P & { table: string }; Body: { rule: unknown } }>('/v1/cleanrooms/:id/rules/:table', {
      schema: { params: { type: 'object', properties: { id: ID, table: NAME }, required: ['id', 'table'] }, body: { type: 'object', properties: { rule: ANY_OBJECT }, required: ['rule'], additionalProperties: false } },
    }, async (req) => ({ collaboration: await service.setRule(req.params.id, req.params.table, req.body.rule) }));
    scope.post<{ Params: P; Body: { name: string; text: string } }>('/v1/cleanrooms/:id/templates', {
      schema: { params: PARAMS, body: { type: 'object', properties: { name: NAME, text: { type: 'string', minLength: 1, maxLength: 20000 } }, required: ['name', 'text'], additionalProperties: false } },
    }, async (req) => ({ collaboration: await service.proposeTemplate(req.params.id, req.body.name, req.body.text) }));
    scope.post<{ Params: P & { name: string }; Body: { hash?: string } }>('/v1/cleanrooms/:id/templates/:name/approve', {
      schema: { params: { type: 'object', properties: { id: ID, name: NAME }, required: ['id', 'name'] }, body: { type: ['object', 'null'], properties: { hash: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } }, additionalProperties: false } },
    }, async (req) => ({ collaboration: await service.approve(req.params.id, req.params.name, req.body?.hash) }));
    scope.post<{ Params: P; Body: { sql?: string; template?: string; params?: string[] } }>('/v1/cleanrooms/:id/queries', {
      schema: { params: PARAMS, body: { type: 'object', properties: { sql: { type: 'string', minLength: 1, maxLength: 100000 }, template: NAME, params: { type: 'array', items: { type: 'string', maxLength: 1000 }, maxItems: 64 } }, additionalProperties: false } },
    }, async (req) => service.query(req.params.id, req.body));
    scope.post<{ Params: P; Body: { table: string; column: string; peerTable: string; mode: 'cardinality' | 'intersection' | 'sum'; valueColumn?: string } }>('/v1/cleanrooms/:id/psi', {
      schema: { params: PARAMS, body: { type: 'object', properties: { table: NAME, column: NAME, peerTable: NAME, mode: { enum: ['cardinality', 'intersection', 'sum'] }, valueColumn: NAME }, required: ['table', 'column', 'peerTable', 'mode'], additionalProperties: false } },
    }, async (req) => service.psi(req.params.id, req.body));
    scope.post<{ Params: P }>('/v1/cleanrooms/:id/leave', { schema: { params: PARAMS } }, async (req) => ({ collaboration: await service.leave(req.params.id) }));
    scope.get<{ Params: P & { member: string; auditId: string } }>('/v1/cleanrooms/:id/receipts/:member/:auditId', {
      schema: { params: { type: 'object', properties: { id: ID, member: ID, auditId: { type: 'string', pattern: '^[0-9]{1,15}$' } }, required: ['id', 'member', 'auditId'] } },
    }, async (req) => {
      const { receipt, vkeys } = await service.fetchReceipt(req.params.id, req.params.member, req.params.auditId);
      // Verified here against the member's log keys (which came signed by its pinned node key).
      const verified = verifyReceipt(receipt, vkeys.map(parseVkey));
      return { verified: true, index: verified.index, entry: verified.leaf.entry, checkpointSize: verified.checkpoint.size, receipt };
    });
    scope.get<{ Params: P }>('/v1/cleanrooms/:id/results', { schema: { params: PARAMS } }, async (req) => ({
      results: service.receivedResults().filter((r) => (r as { collaborationId?: string }).collaborationId === req.params.id),
    }));
  });
}
