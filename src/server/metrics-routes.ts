/**
 * GET /metrics — Prometheus text exposition (prom-client). Like /v1/health it is read by
 * infrastructure, not partners, and carries no principal, value or secret (labels are
 * outcome, channel, stage, rule, dataset), so it is not audited per scrape. Deployments that
 * expose the API to the internet put /metrics behind their scraper's network policy.
 *
 * Also: the "http" stage of the latency histogram (every request, from the first byte to the
 * response) and one structured JSON log line per request on stderr when enabled
 * (request-log.ts: method, route, status, duration, request id; no headers, body or query values),
 * and OpenTelemetry spans when an OTLP endpoint is configured (src/monitoring/tracing.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { GatehouseMetrics, type AuditLogFacts } from '../monitoring/metrics.ts';
import { requestLogLine } from '../monitoring/request-log.ts';
import { otlpEndpointFromEnv, startTracing, type Tracing } from '../monitoring/tracing.ts';
import type { Span } from '@opentelemetry/api';

export async function registerMetricsRoutes(app: FastifyInstance, gatehouse: Gatehouse, options: { auditLog?: AuditLogFacts | null; requestLog?: ((line: string) => void) | null; tracing?: Tracing | null } = {}): Promise<GatehouseMetrics> {
  const monitoring = gatehouse.monitoring();
  const metrics = new GatehouseMetrics({ monitor: monitoring.monitor, budgetUse: () => monitoring.budgetUse(), auditLog: options.auditLog ?? null });
  gatehouse.onRecorded((entry) => { metrics.recorded(entry); });
  monitoring.onTiming((stage, seconds) => { metrics.duration.observe({ stage }, seconds); });
  const log = options.requestLog === undefined ? (process.env.GATEHOUSE_REQUEST_LOG === '1' ? (l: string) => { process.stderr.write(`${l}\n`); } : null) : options.requestLog;
  // Traces: configured explicitly, or by the OpenTelemetry environment variables; none otherwise.
  const endpoint = options.tracing === undefined ? otlpEndpointFromEnv() : null;
  const tracing = options.tracing ?? (endpoint ? startTracing({ url: endpoint }) : null);
  const spans = new WeakMap<object, Span>();
  if (tracing) {
    gatehouse.onRecorded((entry) => { tracing.recorded(entry); });
    // Callback style: the rest of the request runs inside the span's context (done() is called in it).
    app.addHook('onRequest', (request, _reply, done) => { spans.set(request, tracing.startHttp(request.method, done)); });
    app.addHook('onClose', async () => { await tracing.shutdown(); });
  }
  // The request's time is Fastify's own clock for the reply (started as routing begins, stopped
  // when the response is finished), and the hook is a plain callback: no promise, no map per
  // request (issue 15).
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    metrics.duration.observe({ stage: 'http' }, seconds);
    const span = spans.get(request);
    if (span && tracing) tracing.endHttp(span, request.method, request.routeOptions.url ?? null, reply.statusCode);
    if (log) log(requestLogLine({ id: request.id, method: request.method, route: request.routeOptions.url ?? null, status: reply.statusCode, seconds, at: new Date() }));
    done();
  });
  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)', hide: true } as object }, async (_request, reply) => {
    const body = await metrics.text();
    return reply.header('content-type', metrics.contentType).send(body);
  });
  return metrics;
}
