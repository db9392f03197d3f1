/**
 * HTTP routes of the airlock, with schemas; each is one audited façade call.
 *
 *   POST /v1/airlock                      submit a run's outputs (pinned by hash; automatic checks run)
 *   GET  /v1/airlock                      requests you may see, with checks and reviews
 *   POST /v1/airlock/:id/review           approve or reject (two distinct reviewers, never your own)
 *   POST /v1/airlock/:id/release          hand out the approved outputs (re-hashed first)
 */
import type { FastifyInstance } from 'fastify';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';
import { ERROR_RESPONSES } from './jobs-routes.ts';

const id = { type: 'string', minLength: 1, maxLength: 100 } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;
const route = (summary: string, extra: Record<string, unknown> = {}) => ({ summary, tags: ['airlock'], security: [{ bearer: [] }], response: { 200: anyObject, ...ERROR_RESPONSES }, ...extra });

type P = { Params: { id: string } };

export async function registerAirlockRoutes(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  app.post('/v1/airlock', { schema: route('Submit a completed run\'s outputs to the airlock; automatic disclosure, DLP and row-cap checks run before review.', {
    body: { type: 'object', required: ['runId'], additionalProperties: false, properties: { runId: id } },
  }) }, async (r) => gatehouse.airlockSubmit(metaOf(r), r.body as { runId: string }));
  app.get('/v1/airlock', { schema: route('Airlock requests you may see.') }, async (r) => gatehouse.airlockList(metaOf(r)));
  app.post<P>('/v1/airlock/:id/review', { schema: route('Approve or reject a request in review (reviewers; two distinct approvals release it).', {
    params: { type: 'object', properties: { id } },
    body: { type: 'object', required: ['decision', 'reason'], additionalProperties: false, properties: { decision: { type: 'string', enum: ['approve', 'reject'] }, reason: { type: 'string', minLength: 1, maxLength: 2000 } } },
  }) }, async (r) => gatehouse.airlockReview(metaOf(r), { id: r.params.id, ...(r.body as { decision: 'approve' | 'reject'; reason: string }) }));
  app.post<P>('/v1/airlock/:id/release', { schema: route('Release an approved request\'s outputs.', { params: { type: 'object', properties: { id } } }) },
    async (r) => gatehouse.airlockRelease(metaOf(r), { id: r.params.id }));
}
