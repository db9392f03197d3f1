/**
 * OpenTelemetry: with an OTLP endpoint configured (the standard environment variable), a
 * node exports a SERVER span per HTTP request and, inside it, the span of the audited
 * request — to a real OTLP/HTTP receiver on 127.0.0.1. No principal, key, SQL or value
 * appears in what leaves. Without the variable nothing is exported.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';
import { otlpEndpointFromEnv } from '../src/monitoring/tracing.ts';

let receiver: Server;
const bodies: { type: string; body: string }[] = [];
let fx: ServerFixture;

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => { bodies.push({ type: String(req.headers['content-type']), body }); res.writeHead(200, { 'content-type': 'application/json' }).end('{}'); });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  try {
    fx = await demoFixture({ patients: 200, http: true });
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  }
});
after(async () => { await fx.close(); receiver.closeAllConnections(); receiver.close(); });

describe('OpenTelemetry traces', () => {
  it('exports an HTTP server span with the audited request as its child, with no identities or values', async () => {
    const sql = 'SELECT payer, count(*) AS n FROM claims GROUP BY payer';
    const res = await fx.http.app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${KEYS.ivan}` }, payload: { sql, purpose: 'claims-processing' } });
    assert.equal(res.statusCode, 200);
    let spans: { name: string; traceId: string; spanId: string; parentSpanId?: string; kind: number; attributes: { key: string; value: Record<string, unknown> }[] }[] = [];
    for (let i = 0; i < 100; i++) {
      spans = bodies.flatMap((b) => JSON.parse(b.body).resourceSpans.flatMap((r: { scopeSpans: { spans: typeof spans }[] }) => r.scopeSpans.flatMap((s) => s.spans)));
      if (spans.some((s) => s.name === 'HTTP POST /v1/query') && spans.some((s) => s.name === 'gatehouse query')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(bodies[0]!.type, /application\/json/);
    const http = spans.find((s) => s.name === 'HTTP POST /v1/query')!;
    const inner = spans.find((s) => s.name === 'gatehouse query' && s.traceId === http.traceId)!;
    assert.ok(inner, 'the audited request is in the same trace');
    assert.equal(inner.parentSpanId, http.spanId);
    const attr = (s: typeof http, k: string) => s.attributes.find((a) => a.key === k)?.value;
    assert.deepEqual(attr(http, 'http.route'), { stringValue: '/v1/query' });
    assert.equal(Number(Object.values(attr(http, 'http.response.status_code')!)[0]), 200);
    assert.deepEqual(attr(inner, 'gatehouse.decision'), { stringValue: 'allow' });
    const all = bodies.map((b) => b.body).join('\n');
    for (const secret of [KEYS.ivan, 'ivan', 'payer, count', 'claims-processing']) assert.ok(!all.includes(secret), `"${secret}" must not leave in a trace`);
  });

  it('is off unless an endpoint is configured', () => {
    assert.equal(otlpEndpointFromEnv({}), null);
    assert.equal(otlpEndpointFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }), 'http://collector:4318/v1/traces');
    assert.equal(otlpEndpointFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }), null);
  });
});
