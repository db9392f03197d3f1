/**
 * The HTTP API (Fastify). Routes validate input with JSON schemas, call the one request
 * path (Gatehouse) and answer its errors with the status the one error table gives
 * (src/errors.ts), plus Retry-After when an error says when to retry. The OpenAPI document at
 * /openapi.json is built from the same route schemas.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { auditHttpPlugin } from '../audit/http.ts';
import type { TransparencyLog } from '../audit/log.ts';
import { asGatehouseError, GatehouseError } from '../errors.ts';
import type { Gatehouse, RequestMeta } from '../pipeline/gatehouse.ts';
import type { ResidencyNode } from '../residency/service.ts';
import { buildOpenApi, routeSchemas, type RouteInfo } from './openapi.ts';
import type { Credential } from '../identity/credentials.ts';
import { registerGovernanceRoutes } from './governance-routes.ts';
import { registerFederationRoutes } from './federation-routes.ts';
import { registerConsoleRoutes } from './console-routes.ts';
import { registerFlRoutes } from './fl-routes.ts';
import { sessionCookieCredential } from './console-session.ts';
import { registerActivityRoutes } from './activity-routes.ts';
import { registerMetricsRoutes } from './metrics-routes.ts';
import { registerJobsRoutes } from './jobs-routes.ts';
import { registerAirlockRoutes } from './airlock-routes.ts';
import { registerErasureRoutes } from './erasure-routes.ts';
import { queryResponseJson } from './query-json.ts';
import { registerCleanroomRoutes } from './cleanroom-routes.ts';
import { cleanroomOf } from '../cleanroom/node.ts';

export interface AppOptions {
  /** Serve HTTPS with this certificate and key (PEM); with `ca`, clients must present a certificate it signed (mTLS). */
  readonly https?: { readonly key: string | Buffer; readonly cert: string | Buffer; readonly ca?: string | Buffer };
  readonly gatehouse: Gatehouse;
  /** A federated node's residency node: governed queries are routed through it (docs/residency.md). */
  readonly residency?: ResidencyNode;
  readonly auditLog: TransparencyLog;
  readonly logger?: boolean;
  readonly version: string;
}

/**
 * The credential an HTTP request presents: a bearer string from the Authorization header,
 * or, with no header, the subject of a client certificate the TLS layer verified (mTLS).
 * The kind is set here, so no header can pass for a certificate or a wire connection.
 */
export function credentialOf(request: FastifyRequest): Credential | null {
  const h = request.headers.authorization;
  if (typeof h !== 'string') {
    const socket = request.raw.socket as import('node:tls').TLSSocket;
    if (socket.encrypted && socket.authorized) {
      const cn = socket.getPeerCertificate()?.subject?.CN;
      if (typeof cn === 'string' && cn.length > 0) return { kind: 'client-certificate', subject: cn };
    }
    // The web console's httpOnly session cookie carries the same bearer session token.
    return sessionCookieCredential(request);
  }
  // RFC 6750 §2.1: "Bearer", one space, the token. No \s here: in JavaScript it also matches
  // U+00A0 and other Unicode spaces, which would let "KEY\u00a0" or "  KEY" stand for "KEY".
  // Anything else that follows "Bearer" is passed on as it is and refused by the verifier.
  const m = /^Bearer(.*)$/is.exec(h);
  if (!m) return null;
  const rest = m[1]!;
  if (rest.startsWith(' ')) return { kind: 'bearer', value: rest.slice(1) };
  // "Bearer" followed by another kind of space, or by nothing: a bearer attempt that fails.
  return rest === '' || /^\s/u.test(rest) ? { kind: 'bearer', value: rest } : null;
}

export function metaOf(request: FastifyRequest): RequestMeta {
  const posture = request.headers['gatehouse-posture'];
  return { credential: credentialOf(request), source: request.ip, channel: 'http', ...(typeof posture === 'string' ? { posture } : {}) };
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { gatehouse } = options;
  const app = Fastify({
    ...(options.https ? {
      https: {
        key: options.https.key, cert: options.https.cert, minVersion: 'TLSv1.2' as const,
        ...(options.https.ca ? { ca: options.https.ca, requestCert: true, rejectUnauthorized: true } : {}),
      },
    } : {}),
    logger: options.logger ? { level: 'info', redact: ['req.headers.authorization'] } : false,
    bodyLimit: 256 * 1024,
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });

  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (r) => { routes.push({ method: r.method, url: r.url, schema: r.schema as Record<string, unknown> | undefined }); });

  // Every request leaves exactly one audit entry (invariant 8): a refusal the path already
  // recorded is not recorded again; anything the front refused itself (malformed or oversized
  // body, wrong media type, unknown route) is recorded here with what the client receives.
  const refuse = async (request: FastifyRequest, g: GatehouseError): Promise<GatehouseError> => {
    try {
      await gatehouse.rejectRequest(metaOf(request), `http ${request.method} ${request.routeOptions.url ?? 'unknown'}`, g);
      return g;
    } catch {
      return new GatehouseError('AUDIT_UNAVAILABLE', 'the audit log could not record this request, so it was not completed', { hint: 'retry later' });
    }
  };
  app.setErrorHandler(async (err, request, reply) => {
    const e = err as { validation?: unknown; statusCode?: number; code?: string; message: string };
    let g: GatehouseError;
    if (e.statusCode === 413 || e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      g = new GatehouseError('REQUEST_INVALID', 'the request body is too large', { hint: 'queries are limited to 256 KiB' });
    } else if (e.validation || e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 && !(err instanceof GatehouseError))) {
      g = new GatehouseError('REQUEST_INVALID', `the request is malformed: ${e.message}`, { hint: 'see /openapi.json for the request format' });
    } else {
      g = asGatehouseError(err);
    }
    if (!gatehouse.wasAudited(err)) g = await refuse(request, g);
    if (g.code === 'INTERNAL') request.log.error({ err }, 'internal error');
    // Status from the one table (409 and 503 reach the caller as such); Retry-After when the error says when.
    if (g.retryAfterSeconds !== null) void reply.header('retry-after', String(g.retryAfterSeconds));
    return reply.status(g.status).send({ error: g.toJSON() });
  });

  app.setNotFoundHandler(async (request, reply) => {
    const g = await refuse(request, new GatehouseError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`, { hint: 'see /openapi.json' }));
    return reply.status(g.status).send({ error: g.toJSON() });
  });

  await registerMetricsRoutes(app, gatehouse, { auditLog: options.auditLog });
  app.get('/v1/health', { schema: routeSchemas.health }, async () => ({ status: 'ok', version: options.version, policyVersion: gatehouse.policyVersion }));
  // Liveness (/v1/health) says the process answers; readiness says it can serve: a load
  // balancer takes a node out while its state or audit log is unreachable (fail closed).
  app.get('/v1/ready', { schema: routeSchemas.ready }, async (_req, reply) => {
    const r = await gatehouse.readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });

  app.post<{ Body: { sql: string; purpose: string; save?: boolean } }>('/v1/query', { schema: routeSchemas.query }, async (request, reply) => {
    // On a federated node the residency node routes a query to the region of its data (docs/residency.md).
    const r = await (options.residency ?? gatehouse).query({ ...metaOf(request), sql: request.body.sql, purpose: request.body.purpose, ...(request.body.save === true ? { save: true } : {}) });
    // Written in one pass, byte-equal to the schema serializer's output (query-json.ts).
    return reply.type('application/json; charset=utf-8').send(queryResponseJson(r));
  });
  app.get('/v1/results', { schema: routeSchemas.resultList }, async (request) => gatehouse.listResults(metaOf(request)));
  app.get<{ Params: { id: string } }>('/v1/results/:id', { schema: routeSchemas.resultGet }, async (request) => gatehouse.getResult(metaOf(request), request.params.id));

  app.post<{ Body: { principal: string; password: string; code?: string | null } }>('/v1/auth/login', { schema: routeSchemas.login }, async (request) => gatehouse.login(metaOf(request), request.body));
  app.post<{ Body: { principal: string; password: string } }>('/v1/auth/totp/enrol', { schema: routeSchemas.totpEnrol }, async (request) => gatehouse.enrolTotp(metaOf(request), request.body));
  app.post<{ Body: { principal: string; password: string; code: string } }>('/v1/auth/totp/confirm', { schema: routeSchemas.totpConfirm }, async (request) => gatehouse.confirmTotp(metaOf(request), request.body));
  app.post<{ Body: { code: string } }>('/v1/auth/step-up', { schema: routeSchemas.stepUp }, async (request) => gatehouse.stepUp(metaOf(request), request.body));
  app.post<{ Body: { refreshToken: string } }>('/v1/auth/refresh', { schema: routeSchemas.refresh }, async (request) => gatehouse.refresh(metaOf(request), request.body));
  app.post<{ Body: { name?: string } | null }>('/v1/auth/connection-password', { schema: routeSchemas.connectionPassword }, async (request) => gatehouse.issueConnectionPassword(metaOf(request), request.body?.name !== undefined ? { name: request.body.name } : {}));
  app.get('/v1/auth/connection-passwords', { schema: routeSchemas.connectionPasswordList }, async (request) => gatehouse.listConnectionPasswords(metaOf(request)));
  app.delete<{ Params: { name: string } }>('/v1/auth/connection-passwords/:name', { schema: routeSchemas.connectionPasswordRevoke }, async (request) => gatehouse.revokeConnectionPassword(metaOf(request), request.params.name));
  app.post('/v1/auth/logout', { schema: routeSchemas.logout }, async (request) => gatehouse.logout(metaOf(request)));

  app.post<{ Body: { role: string; purpose: string; minutes: number; justification: string } }>('/v1/elevation/requests', { schema: routeSchemas.elevationRequest }, async (request) => gatehouse.requestElevation(metaOf(request), request.body));
  app.post<{ Params: { id: string } }>('/v1/elevation/requests/:id/approve', { schema: routeSchemas.elevationApprove }, async (request) => gatehouse.approveElevation(metaOf(request), request.params.id));
  app.post<{ Params: { id: string }; Body: { reason: string } }>('/v1/elevation/requests/:id/deny', { schema: routeSchemas.elevationDeny }, async (request) => gatehouse.denyElevation(metaOf(request), request.params.id, request.body.reason));
  app.post<{ Body: { role: string; justification: string } }>('/v1/elevation/break-glass', { schema: routeSchemas.breakGlass }, async (request) => gatehouse.breakGlass(metaOf(request), request.body));
  app.post<{ Params: { id: string } }>('/v1/elevation/grants/:id/revoke', { schema: routeSchemas.elevationRevoke }, async (request) => gatehouse.revokeElevation(metaOf(request), request.params.id));
  app.get('/v1/elevation', { schema: routeSchemas.elevationList }, async (request) => gatehouse.listElevations(metaOf(request)));

  app.post<{ Body: { principal: string; password: string } }>('/v1/admin/users', { schema: routeSchemas.adminUserCreate }, async (request) => gatehouse.adminCreateUser(metaOf(request), request.body));
  app.post<{ Params: { id: string } }>('/v1/admin/users/:id/disable', { schema: routeSchemas.adminUserAction }, async (request) => gatehouse.adminSetUserEnabled(metaOf(request), request.params.id, false));
  app.post<{ Params: { id: string } }>('/v1/admin/users/:id/enable', { schema: routeSchemas.adminUserAction }, async (request) => gatehouse.adminSetUserEnabled(metaOf(request), request.params.id, true));
  app.post<{ Params: { id: string } }>('/v1/admin/users/:id/mfa-reset', { schema: routeSchemas.adminUserAction }, async (request) => gatehouse.adminMfaReset(metaOf(request), request.params.id, 'request'));
  app.post<{ Params: { id: string } }>('/v1/admin/users/:id/mfa-reset/approve', { schema: routeSchemas.adminUserAction }, async (request) => gatehouse.adminMfaReset(metaOf(request), request.params.id, 'approve'));
  app.post<{ Body: { principal: string; datasets: string[]; actions?: string[]; expiresAt?: string | null } }>('/v1/admin/keys', { schema: routeSchemas.adminKeyCreate }, async (request) => gatehouse.adminCreateKey(metaOf(request), request.body));
  app.delete<{ Params: { id: string } }>('/v1/admin/keys/:id', { schema: routeSchemas.adminKeyRevoke }, async (request) => gatehouse.adminRevokeKey(metaOf(request), request.params.id));
  app.get<{ Querystring: { principal: string } }>('/v1/admin/keys', { schema: routeSchemas.adminKeyList }, async (request) => gatehouse.adminListKeys(metaOf(request), request.query.principal));

  app.post<{ Body: { sql: string; purpose: string } }>('/v1/query/estimate', { schema: routeSchemas.estimate }, async (request) => {
    return gatehouse.estimate({ ...metaOf(request), sql: request.body.sql, purpose: request.body.purpose });
  });

  app.get<{ Querystring: { purpose?: string } }>('/v1/datasets', { schema: routeSchemas.datasets }, async (request) => {
    return gatehouse.datasets({ ...metaOf(request), purpose: request.query.purpose ?? null });
  });

  await registerGovernanceRoutes(app, gatehouse);
  await registerFederationRoutes(app, gatehouse, options.residency ?? null);
  await registerConsoleRoutes(app, gatehouse);
  await registerActivityRoutes(app, gatehouse);
  await registerJobsRoutes(app, gatehouse);
  await registerAirlockRoutes(app, gatehouse);
  await registerErasureRoutes(app, gatehouse);
  await registerFlRoutes(app, gatehouse);
  // Clean rooms (issue 17): on a node that serves them, managed by its administrators, each call authenticated and audited on the one path.
  const cleanroom = cleanroomOf(gatehouse);
  if (cleanroom) await registerCleanroomRoutes(app, cleanroom, { authorize: async (req) => { await gatehouse.authorizeCleanroom(metaOf(req), `${req.method} ${req.routeOptions.url ?? ''}`); } });

  await app.register(auditHttpPlugin, {
    log: options.auditLog,
    // Each audit read is authorised (and audited) on the one path: auditors read every entry,
    // a partner only its own; checkpoints and proofs are open to every authenticated principal.
    authorize: (request: FastifyRequest, scope) => gatehouse.authorizeAuditRead(metaOf(request), scope),
  });

  app.get('/openapi.json', { schema: { hide: true } as object }, async () => buildOpenApi(routes, options.version));
  return app;
}
