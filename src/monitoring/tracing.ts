/**
 * OpenTelemetry traces of the request path, exported over OTLP/HTTP when configured
 * (the standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT variable,
 * or an explicit URL). Off otherwise: no provider, no cost.
 *
 * Spans (OpenTelemetry semantic conventions for HTTP servers where they apply):
 *   "HTTP <method> <route>"  SERVER span per HTTP request: http.request.method, http.route,
 *                            http.response.status_code (the route pattern, never the URL:
 *                            ids and query strings stay out)
 *   "gatehouse <action>"     INTERNAL child span from the request's receipt (the audit
 *                            entry's time) to its durable audit entry: gatehouse.action,
 *                            gatehouse.channel, gatehouse.decision, gatehouse.error_code,
 *                            gatehouse.datasets (count), gatehouse.rows — requests on the wire
 *                            protocol and the CLI get this span as a root
 * No principal, SQL, value or secret is ever an attribute: traces leave the node.
 */
import { context, trace, SpanKind, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { BatchSpanProcessor, NodeTracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { createRequire } from 'node:module';
import type { AuditRecord } from '../audit/types.ts';

/**
 * The OTLP/HTTP exporter, loaded through CommonJS: @opentelemetry/exporter-trace-otlp-http
 * 0.300's transformer imports `SeverityNumber` (logs only) from @opentelemetry/api ≥ 1.10, and
 * the pinned api is 1.9, so its ES-module build fails to link. The CommonJS build reads the
 * missing name as undefined, which the trace path never uses. Remove once api ≥ 1.10 is pinned.
 */
function otlpExporter(url: string): SpanExporter {
  const { OTLPTraceExporter } = createRequire(import.meta.url)('@opentelemetry/exporter-trace-otlp-http') as { OTLPTraceExporter: new (c: { url: string }) => SpanExporter };
  return new OTLPTraceExporter({ url });
}

export interface Tracing {
  readonly tracer: Tracer;
  /** Starts the SERVER span of an HTTP request; `run` continues the request inside its context. */
  startHttp(method: string, run: () => void): Span;
  endHttp(span: Span, method: string, route: string | null, status: number): void;
  /** The span of one recorded request (child of the active HTTP span, if any). */
  recorded(entry: AuditRecord): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The OTLP traces URL from the environment (the OpenTelemetry exporter specification's variables), or null. */
export function otlpEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.OTEL_TRACES_EXPORTER === 'none' || env.OTEL_SDK_DISABLED === 'true') return null;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces`;
  return null;
}

let registered: NodeTracerProvider | null = null;

export function startTracing(options: { url: string; serviceName?: string; version?: string; exporter?: SpanExporter }): Tracing {
  const exporter = options.exporter ?? otlpExporter(options.url);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'gatehouse', 'service.version': options.version ?? 'unknown' }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500 })],
  });
  // One context manager per process (AsyncLocalStorage): the first node registers it.
  if (!registered) { provider.register(); registered = provider; }
  const tracer = provider.getTracer('gatehouse');
  return {
    tracer,
    startHttp(method, run) {
      const span = tracer.startSpan(`HTTP ${method}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method } });
      context.with(trace.setSpan(context.active(), span), run);
      return span;
    },
    endHttp(span, method, route, status) {
      span.updateName(`HTTP ${method} ${route ?? 'unmatched'}`);
      span.setAttribute('http.route', route ?? 'unmatched');
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    },
    recorded(entry) {
      const start = Date.parse(entry.time);
      const span = tracer.startSpan(`gatehouse ${entry.action}`, {
        kind: SpanKind.INTERNAL, ...(Number.isFinite(start) ? { startTime: start } : {}),
        attributes: {
          'gatehouse.action': entry.action, 'gatehouse.channel': entry.channel, 'gatehouse.decision': entry.decision,
          'gatehouse.datasets': entry.datasets.length, ...(entry.errorCode ? { 'gatehouse.error_code': entry.errorCode } : {}),
          ...(entry.rowsReturned !== null ? { 'gatehouse.rows': entry.rowsReturned } : {}),
        },
      }, context.active());
      if (entry.decision === 'error') span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
