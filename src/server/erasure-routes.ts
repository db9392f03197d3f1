/**
 * HTTP route for erasures and consent withdrawals (issue 23, docs/erasure.md):
 *
 *   POST /v1/erasures   { unit, value, kind?, purposes? } → the erasure receipt
 *
 * The route calls `Gatehouse.recordErasure`, which authenticates, checks the caller is an
 * administrator and audits the request as `erasure.record`: no second way in.
 */
import type { FastifyInstance } from 'fastify';
import { ERRORS } from '../errors.ts';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';

const errorBody = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, hint: { type: ['string', 'null'] }, reasons: { type: 'array', items: { type: 'string' } } }, required: ['code', 'message'] } },
} as const;
const errors = Object.fromEntries([...new Set(Object.values(ERRORS).map((e) => e.status))].sort().map((status) => [status, errorBody]));

const ids = { type: 'array', items: { type: 'string' } } as const;

export const erasureSchema = {
  summary: 'Record the erasure (or opt-out) of one data subject; effective from the next request on every path',
  description: 'Administrators only; audited as `erasure.record`. The receipt lists every place the subject was excluded from and carries the audit log\'s receipt of the entry (docs/erasure.md).',
  tags: ['governance'],
  security: [{ bearer: [] }],
  body: {
    type: 'object', additionalProperties: false, required: ['unit', 'value'],
    properties: {
      unit: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$', description: 'the privacy unit column, e.g. patient_id' },
      value: { type: 'string', minLength: 1, maxLength: 256, description: 'the subject\'s identifier in that column' },
      kind: { type: 'string', enum: ['erasure', 'opt-out'] },
      purposes: { type: 'array', items: { type: 'string', pattern: '^[a-z][a-z0-9_.-]{0,63}$' }, maxItems: 64 },
    },
  },
  response: {
    200: {
      type: 'object',
      properties: {
        format: { type: 'string' }, erasureId: { type: 'string' }, kind: { type: 'string' }, unit: { type: 'string' }, purposes: ids,
        recordedAt: { type: 'string' }, commitment: { type: 'string' }, salt: { type: 'string' }, auditId: { type: 'string' },
        places: { type: 'object', properties: { datasets: ids, shreddedResults: ids, keptReleases: ids, heldResults: ids, rekeyedDatasets: ids, certificate: { type: ['string', 'null'] } } },
        log: { type: ['object', 'null'], additionalProperties: true },
      },
    },
    ...errors,
  },
} as const;

export async function registerErasureRoutes(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  app.post('/v1/erasures', { schema: erasureSchema }, async (request) => gatehouse.recordErasure(metaOf(request), request.body));
}
