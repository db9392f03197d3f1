/**
 * The live questions and alerts over HTTP (docs/monitoring.md):
 *
 *   GET  /v1/activity                       JSON snapshot; with `Accept: text/event-stream`
 *                                            (or ?stream=true) a server-sent-events stream
 *                                            (WHATWG HTML §9.2) of requests and alert changes
 *   GET  /v1/alerts                         alerts in the caller's scope
 *   POST /v1/alerts/:id/acknowledge|resolve|confirm
 *   POST /v1/monitoring/holds/:principal/lift   an administrator reverses an automatic response
 *   GET  /v1/alerts/dead-letters            webhook deliveries that exhausted their retries
 *   GET  /v1/incidents, POST /v1/incidents/:id/respond|remediate   incidents under SLA clocks
 *   POST /v1/trace                          a leaked extract → partner, query, audit entry, confidence
 *
 * Every call goes through the one path (audited, authorised there); the stream is authorised
 * once when it opens and filtered to the caller's scope for every event.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';
import type { StreamEvent } from '../monitoring/monitor.ts';

const ERROR = { type: 'object', properties: { error: { type: 'object', additionalProperties: true } } } as const;
const ALERT = { type: 'object', additionalProperties: true } as const;
const HEARTBEAT_MS = 15_000;
/** Route schemas carry an OpenAPI summary (src/server/openapi.ts reads it). */
const schema = (s: Record<string, unknown>): FastifySchema => s as FastifySchema;

export async function registerActivityRoutes(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  const monitoring = gatehouse.monitoring();

  app.get<{ Querystring: { minutes?: number; stream?: boolean } }>('/v1/activity', {
    schema: schema({
      summary: 'Who is accessing data now, under what conditions, for what purpose, and what they have extracted (JSON, or text/event-stream live)',
      querystring: { type: 'object', additionalProperties: false, properties: { minutes: { type: 'integer', minimum: 1, maximum: 1440 }, stream: { type: 'boolean' } } },
      response: { 200: { type: 'object', additionalProperties: true }, 401: ERROR, 403: ERROR },
    }),
  }, async (request, reply) => {
    const wantsStream = request.query.stream === true || (request.headers.accept ?? '').includes('text/event-stream');
    if (!wantsStream) return monitoring.activity(metaOf(request), request.query.minutes !== undefined ? { minutes: request.query.minutes } : {});
    const scope = await monitoring.activityStream(metaOf(request));
    return stream(request, reply, (send) => {
      const visible = monitoring.inScope(scope);
      return monitoring.monitor.subscribe((e: StreamEvent) => { if (visible(e.principal)) send(e.type, e); });
    });
  });

  app.get<{ Querystring: { state?: 'open' | 'acknowledged' | 'resolved' } }>('/v1/alerts', {
    schema: schema({
      summary: 'Alerts in your scope (auditors and administrators: every alert)',
      querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: ['open', 'acknowledged', 'resolved'] } } },
      response: { 200: { type: 'object', properties: { alerts: { type: 'array', items: ALERT } } }, 401: ERROR, 403: ERROR },
    }),
  }, async (request) => monitoring.listAlerts(metaOf(request), request.query.state ? { state: request.query.state } : {}));

  for (const change of ['acknowledge', 'resolve', 'confirm'] as const) {
    app.post<{ Params: { id: string }; Body: { note?: string } | null }>(`/v1/alerts/:id/${change}`, {
      schema: schema({
        summary: `${change[0]!.toUpperCase()}${change.slice(1)} an alert (auditors and administrators)`,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } },
        body: { type: ['object', 'null'], additionalProperties: false, properties: { note: { type: 'string', maxLength: 1000 } } },
        response: { 200: ALERT, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR },
      }),
    }, async (request) => monitoring.changeAlert(metaOf(request), request.params.id, change, request.body?.note ?? null));
  }

  app.post<{ Params: { principal: string } }>('/v1/monitoring/holds/:principal/lift', {
    schema: schema({
      summary: 'Lift an automatic response (suspension or required step-up) on a principal (administrators)',
      params: { type: 'object', required: ['principal'], properties: { principal: { type: 'string', maxLength: 200 } } },
      response: { 200: { type: 'object', additionalProperties: true }, 401: ERROR, 403: ERROR, 404: ERROR },
    }),
  }, async (request) => monitoring.liftHold(metaOf(request), request.params.principal));

  app.get('/v1/incidents', {
    schema: schema({
      summary: 'Incidents opened from confirmed alerts, with their SLA deadlines and breaches',
      response: { 200: { type: 'object', properties: { incidents: { type: 'array', items: ALERT } } }, 401: ERROR, 403: ERROR },
    }),
  }, async (request) => monitoring.listIncidents(metaOf(request)));

  for (const step of ['respond', 'remediate'] as const) {
    app.post<{ Params: { id: string }; Body: { note?: string } | null }>(`/v1/incidents/:id/${step}`, {
      schema: schema({
        summary: step === 'respond' ? 'Record the response to an incident (stops its response clock)' : 'Record an incident remediated (stops its remediation clock)',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } },
        body: { type: ['object', 'null'], additionalProperties: false, properties: { note: { type: 'string', maxLength: 1000 } } },
        response: { 200: ALERT, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR },
      }),
    }, async (request) => monitoring.workIncident(metaOf(request), request.params.id, step, request.body?.note ?? null));
  }

  app.post<{ Body: { extract: string } }>('/v1/trace', {
    schema: schema({
      summary: 'Trace a leaked extract (CSV or JSON text) to the partner, query and audit entry that most likely released it (auditors and administrators)',
      body: { type: 'object', required: ['extract'], additionalProperties: false, properties: { extract: { type: 'string', minLength: 1, maxLength: 250_000 } } },
      response: { 200: { type: 'object', additionalProperties: true }, 400: ERROR, 401: ERROR, 403: ERROR },
    }),
  }, async (request) => monitoring.trace(metaOf(request), request.body.extract));

  app.get('/v1/alerts/dead-letters', {
    schema: schema({
      summary: 'Alert webhooks that failed every retry (auditors and administrators)',
      response: { 200: { type: 'object', additionalProperties: true }, 401: ERROR, 403: ERROR },
    }),
  }, async (request) => monitoring.deadLetters(metaOf(request)));
}

/**
 * Opens a server-sent-events response and keeps it until the client goes away. `attach`
 * subscribes with a `send` function and returns the unsubscribe. Heartbeat comments keep
 * proxies from closing an idle stream; a client that reads too slowly is dropped rather than
 * buffered without bound.
 */
function stream(request: FastifyRequest, reply: FastifyReply, attach: (send: (event: string, data: unknown) => void) => () => void): FastifyReply {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': gatehouse activity stream\n\n');
  let closed = false;
  const send = (event: string, data: unknown): void => {
    if (closed) return;
    if (res.writableLength > 1 << 20) { close(); return; }
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const detach = attach(send);
  const beat = setInterval(() => { if (!closed) res.write(': keep-alive\n\n'); }, HEARTBEAT_MS);
  beat.unref();
  const close = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(beat);
    detach();
    res.end();
  };
  request.raw.on('close', close);
  res.on('close', close);
  return reply;
}
