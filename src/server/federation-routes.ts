/**
 * The partner-facing route of residency (issue 20): `POST /v1/residency/query` plans where
 * a query runs — here, in the data's region, or split across regions — and answers with the
 * result and how it travelled (`residency`: request id, route, each region's part). On a node
 * that is not federated it is the ordinary governed query. `/v1/query` routes the same way
 * (src/server/app.ts); this route adds the travel report to the answer.
 *
 * Node-to-node traffic never comes here: it has its own mutual-TLS listener on its own port
 * (src/federation/transport.ts), so partners cannot reach node operations and nodes cannot
 * reach partner routes.
 */
import type { FastifyInstance } from 'fastify';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import type { ResidencyNode } from '../residency/service.ts';
import { metaOf } from './app.ts';

const querySchema = {
  summary: 'Run a governed query where its data lives (routed or split across regions)',
  tags: ['residency'],
  body: {
    type: 'object',
    required: ['sql', 'purpose'],
    additionalProperties: false,
    properties: {
      sql: { type: 'string', minLength: 1, maxLength: 100_000 },
      purpose: { type: 'string', minLength: 1, maxLength: 64 },
    },
  },
};

export async function registerFederationRoutes(app: FastifyInstance, gatehouse: Gatehouse, residency: ResidencyNode | null): Promise<void> {
  app.post<{ Body: { sql: string; purpose: string } }>('/v1/residency/query', { schema: querySchema }, async (request) => {
    const req = { ...metaOf(request), sql: request.body.sql, purpose: request.body.purpose };
    return residency ? residency.query(req) : gatehouse.query(req);
  });
}
