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
 * calls `authorize(request, scope, reply)` in a preHandler, with scope 'proofs' for the
 * checkpoint, keys and proofs (open to every authenticated principal: they are hashes) and
 * 'own-entries' for receipts, entries and exports, where it must return the caller's grant
 * `{ principal, auditor }` (src/operations/audit/read.ts). An auditor reads every entry; any
 * other principal only entries whose (pseudonymised) principal is theirs: another
 * partner's entry answers exactly like one that does not exist (AUDIT_ENTRY_NOT_FOUND),
 * and searches and exports are narrowed to the caller's own entries. Without a grant the
 * entry routes answer AUDIT_READ_DENIED (fail closed).
 *
 * Errors are returned as {"error": {"code", "message"}}: the AUDIT_* code of an AuditError
 * (docs/audit.md) with the HTTP status of its union code (src/errors.ts), and Retry-After
 * when the error gives one. A failure of the audit storage itself (an I/O error that
 * escaped the log) is AUDIT_UNAVAILABLE (503), anything else AUDIT_INTERNAL (500): no
 * route answers a bare 500.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { asGatehouseError, GatehouseError } from '../errors.ts';
import { AuditError } from './errors.ts';
import type { SearchFilter, TransparencyLog } from './log.ts';
import { parseCheckpoint, parseNote } from './note.ts';

/** What a route reveals: hashes only ('proofs'), or entries, filtered to the caller's own unless an auditor. */
export type AuditReadScope = 'proofs' | 'own-entries';

/** Who is reading: the principal id (pseudonymised by the log to find its entries) and whether they are an auditor. */
export interface AuditReadGrant { readonly principal: string; readonly auditor: boolean }

export interface AuditHttpOptions {
  readonly log: TransparencyLog;
  /** Authenticates and authorises (and audits) the read; returns the grant for 'own-entries'. May throw. */
  readonly authorize: (request: FastifyRequest, scope: AuditReadScope, reply: FastifyReply) => Promise<AuditReadGrant | void> | AuditReadGrant | void;
}

const grants = new WeakMap<FastifyRequest, AuditReadGrant>();

/** The caller's grant, or AUDIT_READ_DENIED: entry routes never run without knowing whose entries to show. */
function grantOf(request: FastifyRequest): AuditReadGrant {
  const g = grants.get(request);
  if (!g) throw new AuditError('AUDIT_READ_DENIED', 'reading audit entries needs a signed-in principal; checkpoints and proofs stay open', 403);
  return g;
}

/** The filter narrowed to the caller's own entries, unless an auditor. */
function ownerOf(grant: AuditReadGrant): string | undefined { return grant.auditor ? undefined : grant.principal; }

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

/**
 * Entries are appended in arrival order and stamped when their request began, so a later
 * entry is never earlier than an earlier one by more than one request's lifetime (statement
 * timeout plus admission wait, well under this margin).
 */
export const TIME_ORDER_SKEW_MS = 15 * 60_000;

/**
 * The first index a search with `from` needs to read: a binary search for the first entry
 * stamped at or after `from` minus the skew margin. Every entry at or after `from` lies at or
 * beyond it (an entry before it is earlier than `from` − margin, so everything before that
 * entry is earlier than `from`); the scan still applies the exact time filter. Without it a
 * time-window search read the log from its first entry: ~1 s per page at 10⁵ entries.
 */
export function seekTime(log: Pick<TransparencyLog, 'size' | 'leaf'>, from: string, fromIndex = 0): number {
  const t = Date.parse(from) - TIME_ORDER_SKEW_MS;
  if (Number.isNaN(t)) return fromIndex;
  let lo = fromIndex; let hi = log.size;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (Date.parse(log.leaf(mid).entry.time) < t) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** The filter with `fromIndex` moved forward to where a `from` time can first match. */
function seeking<F extends SearchFilter>(log: TransparencyLog, filter: F): F {
  return filter.from === undefined ? filter : { ...filter, fromIndex: seekTime(log, filter.from, filter.fromIndex ?? 0) };
}

export async function auditHttpPlugin(app: FastifyInstance, options: AuditHttpOptions): Promise<void> {
  const { log, authorize } = options;
  if (typeof authorize !== 'function') throw new TypeError('auditHttpPlugin needs an authorize(request, action, reply) option');

  app.addHook('preHandler', async (request, reply) => {
    const scope: AuditReadScope = (request.routeOptions.config as { auditScope?: AuditReadScope } | undefined)?.auditScope ?? 'own-entries';
    const grant = await authorize(request, scope, reply);
    if (grant && typeof grant === 'object' && typeof grant.principal === 'string' && typeof grant.auditor === 'boolean') grants.set(request, grant);
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
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reply.status(err.statusCode).send({ error: { code: err.code ?? 'REQUEST_REJECTED', message: err.message } });
    // A system error (EIO, ENOSPC, EACCES ...) that escaped the log is its storage failing.
    if (typeof err.code === 'string' && /^E[A-Z]+$/.test(err.code)) {
      return reply.status(503).send({ error: { code: 'AUDIT_UNAVAILABLE', message: 'audit storage is failing; retry later' } });
    }
    return reply.status(500).send({ error: { code: 'AUDIT_INTERNAL', message: 'internal error in the audit log' } });
  });

  const proofs = { auditScope: 'proofs' as AuditReadScope };
  const entries = { auditScope: 'own-entries' as AuditReadScope };

  app.get('/v1/audit/checkpoint', {
    config: proofs,
    schema: {
      response: { 200: { type: 'object', properties: { origin: { type: 'string' }, size: { type: 'integer' }, checkpoint: { type: 'string' } }, required: ['origin', 'size', 'checkpoint'] }, ...errors },
    },
  }, async () => {
    const note = await log.checkpoint();
    return { origin: log.origin, size: parseCheckpoint(parseNote(note).text).size, checkpoint: note };
  });

  app.get('/v1/audit/keys', {
    config: proofs,
    schema: { response: { 200: { type: 'object', properties: { origin: { type: 'string' }, vkeys: { type: 'array', items: { type: 'string' } } } }, ...errors } },
  }, async () => {
    const k = log.publicKeys();
    return { origin: k.origin, vkeys: k.vkeys };
  });

  app.get<{ Querystring: { index: number; size?: number } }>('/v1/audit/proof/inclusion', {
    config: proofs,
    schema: {
      querystring: { type: 'object', additionalProperties: false, required: ['index'], properties: { index: nonNegInt, size: nonNegInt } },
      response: { 200: { type: 'object', properties: { index: { type: 'integer' }, size: { type: 'integer' }, leafHash: { type: 'string' }, proof: hashes } }, ...errors },
    },
  }, async (request) => {
    if (request.query.size === undefined) await log.checkpoint();
    return log.inclusionProof(request.query.index, request.query.size);
  });

  app.get<{ Querystring: { first: number; second?: number } }>('/v1/audit/proof/consistency', {
    config: proofs,
    schema: {
      querystring: { type: 'object', additionalProperties: false, required: ['first'], properties: { first: nonNegInt, second: nonNegInt } },
      response: { 200: { type: 'object', properties: { first: { type: 'integer' }, second: { type: 'integer' }, proof: hashes } }, ...errors },
    },
  }, async (request) => {
    if (request.query.second === undefined) await log.checkpoint();
    return log.consistencyProof(request.query.first, request.query.second);
  });

  app.get<{ Params: { auditId: string } }>('/v1/audit/receipt/:auditId', {
    config: entries,
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
  }, async (request) => {
    const owner = ownerOf(grantOf(request));
    return log.receipt(request.params.auditId, owner === undefined ? {} : { owner });
  });

  app.get<{ Querystring: SearchFilter }>('/v1/audit/entries', {
    config: entries,
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
  }, async (request) => {
    const owner = ownerOf(grantOf(request));
    return { entries: await log.search(seeking(log, owner === undefined ? request.query : { ...request.query, owner })) };
  });

  app.get<{ Querystring: FilterQuery }>('/v1/audit/export', {
    config: entries,
    schema: {
      querystring: { ...filterQuery, properties: { ...filterQuery.properties, proofs: { type: 'boolean' } } },
    },
  }, async (request, reply) => {
    const owner = ownerOf(grantOf(request));
    const { proofs: withProofs, limit: _limit, ...asked } = request.query;
    const filter: SearchFilter = owner === undefined ? asked : { ...asked, owner };
    const hasFilter = Object.keys(filter).length > 0;
    const out = new PassThrough();
    // Sign the checkpoint before streaming so errors still become a proper JSON reply.
    await log.checkpoint();
    log.export(out, { ...(hasFilter ? { filter } : {}), proofs: withProofs ?? true }).then(() => out.end(), (e: unknown) => out.destroy(e as Error));
    return reply.type('application/x-ndjson').send(out);
  });
}
// Fastify plugins that should decorate the caller's scope use fastify-plugin; these routes
// deliberately stay encapsulated so the error handler and preHandler apply to them only.
