/**
 * Fastify 5 plugin exposing the transparency log to auditors and partners:
 *
 *   GET /v1/audit/checkpoint                          latest signed checkpoint (C2SP tlog-checkpoint)
 *   GET /v1/audit/keys                                the log's vkeys (whole rotation history)
 *   GET /v1/audit/proof/inclusion?index=&size=        RFC 9162 §2.1.3 inclusion proof
 *   GET /v1/audit/proof/consistency?first=&second=    RFC 9162 §2.1.4 consistency proof
 *   GET /v1/audit/receipt/:auditId                    entry + inclusion proof + checkpoint
 *   GET /v1/audit/entries?principal=&dataset=&...     search (JSON)
 *   GET /v1/audit/export?...same filters              JSON lines with proofs (application/x-ndjson)
 *
 * Every route declares its schema. The caller decides who may read the log: the plugin
 * calls `authorize(request, 'audit.read', reply)` in a preHandler; it may throw (an error
 * with statusCode) or send a reply itself. Errors are returned as
 * {"error": {"code", "message"}}: the AUDIT_* code of an AuditError (docs/audit.md) with the
 * HTTP status of its union code (src/errors.ts), and Retry-After when the error gives one.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { asGatehouseError, GatehouseError } from '../errors.ts';
import { AuditError } from './errors.ts';
import type { SearchFilter, TransparencyLog } from './log.ts';
import { parseCheckpoint, parseNote } from './note.ts';

export interface AuditHttpOptions {
  readonly log: TransparencyLog;
  readonly authorize: (request: FastifyRequest, action: 'audit.read', reply: FastifyReply) => unknown | Promise<unknown>;
}

const hashes = { type: 'array', items: { type: 'string' } } as const;
const errorSchema = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } },
} as const;
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 410: errorSchema, 429: errorSchema, 500: errorSchema, 503: errorSchema };
const nonNegInt = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

const filterQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    principal: { type: 'string', maxLength: 512 },
    pseudonym: { type: 'string', maxLength: 128 },
    dataset: { type: 'string', maxLength: 512 },
    decision: { type: 'string', enum: ['allow', 'deny', 'error'] },
    purpose: { type: 'string', maxLength: 512 },
    action: { type: 'string', maxLength: 256 },
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    fromIndex: nonNegInt,
    limit: { type: 'integer', minimum: 1, maximum: 10000 },
  },
} as const;

const storedEntry = {
  type: 'object',
  additionalProperties: true,
  properties: {
    time: { type: 'string' }, principal: { type: ['string', 'null'] }, source: { type: 'string' }, channel: { type: 'string' },
    action: { type: 'string' }, purpose: { type: ['string', 'null'] }, datasets: { type: 'array', items: { type: 'string' } },
    columns: { type: 'array', items: { type: 'string' } }, decision: { type: 'string' }, reasons: { type: 'array', items: { type: 'string' } },
    policyVersion: { type: ['string', 'null'] }, obligations: { type: 'array', items: { type: 'string' } },
    sqlFingerprint: { type: ['string', 'null'] }, rowsReturned: { type: ['integer', 'null'] }, resultDigest: { type: ['string', 'null'] },
    errorCode: { type: ['string', 'null'] }, subjects: { type: 'array', items: { type: 'string' } }, pseudonymEpoch: { type: 'string' },
  },
} as const;
const leafSchema = { type: 'object', properties: { entry: storedEntry, index: { type: 'integer' }, v: { type: 'integer' } }, required: ['entry', 'index', 'v'] } as const;

type FilterQuery = SearchFilter & { proofs?: boolean };

export async function auditHttpPlugin(app: FastifyInstance, options: AuditHttpOptions): Promise<void> {
  const { log, authorize } = options;
  if (typeof authorize !== 'function') throw new TypeError('auditHttpPlugin needs an authorize(request, action, reply) option');

  app.addHook('preHandler', async (request, reply) => {
    await authorize(request, 'audit.read', reply);
  });

  // The status (and Retry-After) of a GatehouseError come from the one table (src/errors.ts);
  // the body's `code` is the audit part's own AUDIT_* code (docs/audit.md), else the union code.
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, _request, reply) => {
    if (err.validation) return reply.status(400).send({ error: { code: 'AUDIT_INPUT_INVALID', message: err.message } });
    if (err instanceof GatehouseError) {
      const g = err instanceof AuditError ? err : asGatehouseError(err);
      if (g.retryAfterSeconds !== null) void reply.header('retry-after', String(g.retryAfterSeconds));
      return reply.status(g.status).send({ error: { code: g instanceof AuditError ? g.detail : g.code, message: g.message } });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return reply.status(status).send({ error: { code: status === 500 ? 'INTERNAL' : (err.code ?? 'REQUEST_REJECTED'), message: status === 500 ? 'internal error' : err.message } });
  });

  app.get('/v1/audit/checkpoint', {
    schema: {
      response: { 200: { type: 'object', properties: { origin: { type: 'string' }, size: { type: 'integer' }, checkpoint: { type: 'string' } }, required: ['origin', 'size', 'checkpoint'] }, ...errors },
    },
  }, async () => {
    const note = await log.checkpoint();
    return { origin: log.origin, size: parseCheckpoint(parseNote(note).text).size, checkpoint: note };
  });

  app.get('/v1/audit/keys', {
    schema: { response: { 200: { type: 'object', properties: { origin: { type: 'string' }, vkeys: { type: 'array', items: { type: 'string' } } } }, ...errors } },
  }, async () => {
    const k = log.publicKeys();
    return { origin: k.origin, vkeys: k.vkeys };
  });

  app.get<{ Querystring: { index: number; size?: number } }>('/v1/audit/proof/inclusion', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, required: ['index'], properties: { index: nonNegInt, size: nonNegInt } },
      response: { 200: { type: 'object', properties: { index: { type: 'integer' }, size: { type: 'integer' }, leafHash: { type: 'string' }, proof: hashes } }, ...errors },
    },
  }, async (request) => {
    if (request.query.size === undefined) await log.checkpoint();
    return log.inclusionProof(request.query.index, request.query.size);
  });

  app.get<{ Querystring: { first: number; second?: number } }>('/v1/audit/proof/consistency', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, required: ['first'], properties: { first: nonNegInt, second: nonNegInt } },
      response: { 200: { type: 'object', properties: { first: { type: 'integer' }, second: { type: 'integer' }, proof: hashes } }, ...errors },
    },
  }, async (request) => {
    if (request.query.second === undefined) await log.checkpoint();
    return log.consistencyProof(request.query.first, request.query.second);
  });

  app.get<{ Params: { auditId: string } }>('/v1/audit/receipt/:auditId', {
    schema: {
      params: { type: 'object', properties: { auditId: { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$' } }, required: ['auditId'] },
      response: {
        200: {
          type: 'object',
          properties: { type: { type: 'string' }, origin: { type: 'string' }, index: { type: 'integer' }, leaf: leafSchema, proof: hashes, checkpoint: { type: 'string' } },
          required: ['type', 'origin', 'index', 'leaf', 'proof', 'checkpoint'],
        },
        ...errors,
      },
    },
  }, async (request) => log.receipt(request.params.auditId));

  app.get<{ Querystring: SearchFilter }>('/v1/audit/entries', {
    schema: {
      querystring: filterQuery,
      response: {
        200: {
          type: 'object',
          properties: { entries: { type: 'array', items: { type: 'object', properties: { auditId: { type: 'string' }, index: { type: 'integer' }, entry: storedEntry } } } },
        },
        ...errors,
      },
    },
  }, async (request) => ({ entries: await log.search(request.query) }));

  app.get<{ Querystring: FilterQuery }>('/v1/audit/export', {
    schema: {
      querystring: { ...filterQuery, properties: { ...filterQuery.properties, proofs: { type: 'boolean' } } },
    },
  }, async (request, reply) => {
    const { proofs, limit: _limit, ...filter } = request.query;
    const hasFilter = Object.keys(filter).length > 0;
    const out = new PassThrough();
    // Sign the checkpoint before streaming so errors still become a proper JSON reply.
    await log.checkpoint();
    log.export(out, { ...(hasFilter ? { filter } : {}), proofs: proofs ?? true }).then(() => out.end(), (e: unknown) => out.destroy(e as Error));
    return reply.type('application/x-ndjson').send(out);
  });
}
// Fastify plugins that should decorate the caller's scope use fastify-plugin; these routes
// deliberately stay encapsulated so the error handler and preHandler apply to them only.
