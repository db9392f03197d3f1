import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { routeSchemas } from './openapi.ts';
import { queryResponseJson } from './query-json.ts';
import type { QueryResponse } from '../kernel/types.ts';

/** What Fastify's schema serializer writes for the route's 200 response (the path before). */
async function schemaSerializer(r: QueryResponse): Promise<string> {
  const app = Fastify();
  app.get('/', { schema: { response: { 200: routeSchemas.query.response[200] } } }, async () => r);
  try { return (await app.inject({ method: 'GET', url: '/' })).body; } finally { await app.close(); }
}

const plain: QueryResponse = {
  columns: [{ name: 'region', type: 'VARCHAR' }, { name: 'n', type: 'BIGINT' }, { name: 'when', type: 'DATE' }],
  rows: [['us-east', 12, '2024-01-02'], ['quote " and \\ and \u2028 and \ud800', -0.5, null], [null, 1e21, 'x']],
  governance: { policyVersion: 'sha256:abc', decision: 'allow', datasets: ['claims'], policies: ['p1', 'p2'], obligationsApplied: ['rowFilter:claims', 'rowCap:1000'], rowsSuppressed: 0, truncated: false, rowCap: 1000, auditId: '42' },
};

describe('the /v1/query body written in one pass', () => {
  it('is byte for byte what the route schema serializer writes, for plain rows with awkward strings and numbers', async () => {
    assert.equal(queryResponseJson(plain), await schemaSerializer(plain));
  });

  it('is byte for byte the schema serializer\'s for a DP release with intervals, privacy and a saved result', async () => {
    const dp: QueryResponse = {
      ...plain,
      intervals: [[null, [1.5, 2.5], null], [null, [-3, 4], null], [null, null, null]],
      governance: { ...plain.governance, truncated: true, rowsSuppressed: 3, privacy: { mechanism: 'gaussian', epsilon: 1, delta: 1e-7, budget: { spent: 2, left: 8 } } as never, resultId: 'r-1' },
    };
    assert.equal(queryResponseJson(dp), await schemaSerializer(dp));
  });

  it('keeps the residency report of a routed answer, byte for byte the schema serializer\'s', async () => {
    const routed = {
      ...plain,
      residency: { requestId: 'req-1', route: 'split', complete: false, parts: [
        { region: 'eu', node: 'node-eu', auditId: '7', rowsSuppressed: 2, obligationsApplied: ['aggregationOnly'] },
        { region: 'us', node: 'node-us', auditId: '9', rowsSuppressed: 0, obligationsApplied: [] },
      ] },
    } as unknown as QueryResponse;
    const body = queryResponseJson(routed);
    assert.equal(body, await schemaSerializer(routed));
    assert.equal((JSON.parse(body) as { residency: { parts: unknown[] } }).residency.parts.length, 2);
  });

  it('writes only the members the schema declares, so nothing extra a caller attached leaks', async () => {
    const extra = { ...plain, secret: 'x', columns: [{ name: 'a', type: 'INTEGER', internal: 'y' }], governance: { ...plain.governance, debug: 'z' } } as unknown as QueryResponse;
    const body = queryResponseJson(extra);
    assert.equal(body, await schemaSerializer(extra));
    assert.ok(!/secret|internal|debug/.test(body));
  });
});
