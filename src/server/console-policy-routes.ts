/**
 * POST /v1/policy/simulate — the owners' what-if simulator (src/operations/policy/simulate-request.ts):
 * a principal + purpose + SQL → the decision, its reasons and the rewritten SQL. A public API
 * route (the console calls it like any client); administrators only; audited.
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';

const errorBody = { type: 'object', properties: { error: { type: 'object', additionalProperties: true } } } as const;

const schema = {
  summary: 'What-if: how policy would answer this SQL from that principal for that purpose (administrators; nothing runs)',
  tags: ['policy'],
  security: [{ bearer: [] }],
  body: {
    type: 'object', additionalProperties: false, required: ['principal', 'purpose', 'sql'],
    properties: { principal: { type: 'string', minLength: 1, maxLength: 200 }, purpose: { type: 'string', minLength: 1, maxLength: 64 }, sql: { type: 'string', minLength: 1, maxLength: 100000 } },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        decision: { type: 'string', enum: ['allow', 'deny', 'error'] }, code: { type: ['string', 'null'] },
        reasons: { type: 'array', items: { type: 'string' } }, policies: { type: 'array', items: { type: 'string' } },
        datasets: { type: 'array', items: { type: 'string' } }, obligationsApplied: { type: 'array', items: { type: 'string' } },
        rewrittenSql: { type: ['string', 'null'] }, differentialPrivacy: { type: 'boolean' }, policyVersion: { type: 'string' }, auditId: { type: 'string' },
      },
    },
    400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 429: errorBody, 503: errorBody,
  },
} as const;

export async function registerSimulateRoute(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  app.post<{ Body: { principal: string; purpose: string; sql: string } }>('/v1/policy/simulate', { schema: schema as unknown as FastifySchema }, async (request) => gatehouse.simulateRequest(metaOf(request), request.body));
}
