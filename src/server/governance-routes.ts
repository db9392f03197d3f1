/**
 * HTTP routes for contractor governance, one per operation in GOVERNANCE_OPS
 * (src/governance/service.ts): the op's method and path, its `args` schema as the body
 * (POST) or the query string (GET), bearer auth via metaOf. Every route calls
 * `Gatehouse.governanceOp`, which authenticates, enforces who may run it and audits it,
 * so these routes add no second way in. The schemas land in /openapi.json through the
 * app's onRoute hook like every other route.
 *
 * Two reads can be served in their own media type when asked:
 *   GET /v1/governance/report?format=html|csv   → text/html, text/csv (json: { mediaType, body })
 *   GET /v1/governance/flows/svg?format=svg     → image/svg+xml (default: { svg })
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS } from '../errors.ts';
import { GOVERNANCE_OPS, type GovernanceOp } from '../governance/service.ts';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';

const errorBody = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, hint: { type: ['string', 'null'] }, reasons: { type: 'array', items: { type: 'string' } } },
      required: ['code', 'message'],
    },
  },
} as const;

/** One error body per status the error table (src/errors.ts) can answer with, 409 and 503 among them. */
const errors = Object.fromEntries([...new Set(Object.values(ERRORS).map((e) => e.status))].sort().map((status) => [status, errorBody]));

/** Raw documents (HTML report, SVG) are served inert: no scripts, no sniffing, no framing. */
const RAW_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

/** The route schema of one op (exported for tests and the docs). */
export function schemaOf(op: GovernanceOp): Record<string, unknown> {
  const args = op.args ?? { type: 'object', additionalProperties: false, properties: {} };
  return {
    summary: op.summary,
    description: `Governance operation \`${op.name}\` (${op.who === 'admin' ? 'administrators only' : 'any authenticated principal; the operation checks what you may see or do'}); audited as \`governance.${op.name}\`.`,
    tags: ['governance'],
    security: [{ bearer: [] }],
    ...(op.http.method === 'GET' ? { querystring: args } : { body: args }),
    response: { 200: { type: 'object', additionalProperties: true }, ...errors },
  };
}

function sendRaw(reply: FastifyReply, mediaType: string, body: string): FastifyReply {
  return reply.headers(RAW_HEADERS).type(mediaType).send(body);
}

export async function registerGovernanceRoutes(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  for (const op of GOVERNANCE_OPS) {
    const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      const raw = (op.http.method === 'GET' ? request.query : request.body) as Record<string, unknown> | undefined;
      const args: Record<string, unknown> = { ...(raw ?? {}) };
      const format = typeof args.format === 'string' ? args.format : undefined;
      // `format` of the SVG route chooses the envelope only; the op does not take it.
      if (op.name === 'flows.svg') delete args.format;
      const out = await gatehouse.governanceOp(metaOf(request), op.name, args);
      if (op.name === 'report.build' && (format === 'html' || format === 'csv')) {
        const r = out as { mediaType: string; body: string };
        return sendRaw(reply, r.mediaType, r.body);
      }
      if (op.name === 'flows.svg' && format === 'svg') return sendRaw(reply, 'image/svg+xml; charset=utf-8', (out as { svg: string }).svg);
      return out;
    };
    app.route({ method: op.http.method, url: op.http.path, schema: schemaOf(op), handler });
  }
}
