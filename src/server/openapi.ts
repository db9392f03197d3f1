/**
 * Route schemas for the core API, and the OpenAPI 3.1 document built from every
 * registered route's schema (so the document cannot drift from what is validated).
 */
const errorBody = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string', description: 'stable error code (docs/errors.md)' },
        message: { type: 'string' },
        hint: { type: ['string', 'null'] },
        reasons: { type: 'array', items: { type: 'string' } },
      },
      required: ['code', 'message'],
    },
  },
} as const;

const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 408: errorBody, 422: errorBody, 429: errorBody, 500: errorBody, 503: errorBody };

const governance = {
  type: 'object',
  properties: {
    policyVersion: { type: 'string' },
    decision: { type: 'string', enum: ['allow'] },
    datasets: { type: 'array', items: { type: 'string' } },
    policies: { type: 'array', items: { type: 'string' } },
    obligationsApplied: { type: 'array', items: { type: 'string' } },
    rowsSuppressed: { type: 'integer' },
    truncated: { type: 'boolean' },
    rowCap: { type: 'integer' },
    auditId: { type: 'string' },
    privacy: { type: 'object', additionalProperties: true, description: 'differential privacy: mechanism, ε, δ, noise per output, budget' },
    resultId: { type: 'string', description: 'present when the request asked to save the result' },
  },
  required: ['policyVersion', 'decision', 'obligationsApplied', 'rowsSuppressed', 'auditId'],
} as const;

const auth = [{ bearer: [] }];

export const routeSchemas = {
  health: {
    summary: 'Liveness and the policy version in force',
    response: { 200: { type: 'object', properties: { status: { type: 'string' }, version: { type: 'string' }, policyVersion: { type: 'string' } } } },
  },
  ready: {
    summary: 'Readiness: 200 when the node can serve requests (state and audit log reachable), 503 with the reason otherwise',
    response: {
      200: { type: 'object', properties: { ready: { type: 'boolean' }, parts: { type: 'object', additionalProperties: { type: 'object', properties: { ready: { type: 'boolean' }, reason: { type: ['string', 'null'] } } } } } },
      503: { type: 'object', properties: { ready: { type: 'boolean' }, parts: { type: 'object', additionalProperties: { type: 'object', properties: { ready: { type: 'boolean' }, reason: { type: ['string', 'null'] } } } } } },
    },
  },
  query: {
    summary: 'Run a governed SQL query',
    description: 'One SELECT statement, decided by policy for the declared purpose and rewritten by its obligations (masks, row filters, aggregation rules, row caps).',
    security: auth,
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['sql', 'purpose'],
      properties: {
        sql: { type: 'string', minLength: 1, maxLength: 100000 },
        purpose: { type: 'string', minLength: 1, maxLength: 64 },
        save: { type: 'boolean', description: 'keep the released result encrypted (GET /v1/results/{id}); ending the agreement destroys it' },
      },
    },
    response: {
      200: {
        type: 'object',
        properties: {
          columns: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' } } } },
          rows: { type: 'array', items: { type: 'array', items: {} } },
          intervals: { type: 'array', items: { type: 'array', items: {} }, description: 'differential privacy: the 95 % interval [low, high] of each noisy value, null for group keys' },
          governance,
          residency: {
            type: 'object', description: 'on a federated node: how the query travelled (docs/residency.md); absent on a node without a region',
            properties: {
              requestId: { type: 'string' }, route: { type: 'string', enum: ['local', 'remote', 'split'] },
              parts: { type: 'array', items: { type: 'object', properties: { region: { type: 'string' }, node: { type: 'string' }, auditId: { type: 'string' }, rowsSuppressed: { type: 'integer' }, obligationsApplied: { type: 'array', items: { type: 'string' } } } } },
              complete: { type: 'boolean' },
            },
          },
        },
      },
      ...errors,
    },
  },
  login: {
    summary: 'Sign in a built-in user: password, plus the current TOTP code once enrolled → session tokens',
    body: { type: 'object', additionalProperties: false, required: ['principal', 'password'], properties: { principal: { type: 'string', maxLength: 200 }, password: { type: 'string', maxLength: 1024 }, code: { type: ['string', 'null'], maxLength: 64 } } },
    response: { 200: { type: 'object', properties: { accessToken: { type: 'string' }, refreshToken: { type: 'string' }, expiresAt: { type: 'integer' }, mfa: { type: 'boolean' } } }, ...errors },
  },
  totpEnrol: {
    summary: 'Begin TOTP enrolment (password required): returns the otpauth URI and secret for an authenticator app',
    body: { type: 'object', additionalProperties: false, required: ['principal', 'password'], properties: { principal: { type: 'string', maxLength: 200 }, password: { type: 'string', maxLength: 1024 } } },
    response: { 200: { type: 'object', properties: { otpauthUri: { type: 'string' }, secret: { type: 'string' } } }, ...errors },
  },
  totpConfirm: {
    summary: 'Confirm TOTP enrolment with a first code; returns single-use recovery codes (shown once)',
    body: { type: 'object', additionalProperties: false, required: ['principal', 'password', 'code'], properties: { principal: { type: 'string', maxLength: 200 }, password: { type: 'string', maxLength: 1024 }, code: { type: 'string', maxLength: 64 } } },
    response: { 200: { type: 'object', properties: { recoveryCodes: { type: 'array', items: { type: 'string' } } } }, ...errors },
  },
  stepUp: {
    summary: 'Step up: a current TOTP code refreshes the session\'s MFA time (regulated data needs a recent one)',
    security: auth,
    body: { type: 'object', additionalProperties: false, required: ['code'], properties: { code: { type: 'string', maxLength: 64 } } },
    response: { 200: { type: 'object', properties: { accessToken: { type: 'string' }, expiresAt: { type: 'integer' } } }, ...errors },
  },
  refresh: {
    summary: 'Exchange a refresh token (single use, rotating) for new tokens',
    body: { type: 'object', additionalProperties: false, required: ['refreshToken'], properties: { refreshToken: { type: 'string', maxLength: 512 } } },
    response: { 200: { type: 'object', properties: { accessToken: { type: 'string' }, refreshToken: { type: 'string' }, expiresAt: { type: 'integer' } } }, ...errors },
  },
  resultList: {
    summary: 'Your saved results (metadata; destroyed ones show when and why)',
    security: auth,
    response: { 200: { type: 'object', additionalProperties: true }, ...errors },
  },
  resultGet: {
    summary: 'A saved result, while the agreement it was shared under is in force',
    security: auth,
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } },
    response: { 200: { type: 'object', additionalProperties: true }, ...errors },
  },
  connectionPassword: {
    summary: 'Issue a named password for PostgreSQL clients (psql, JDBC, BI tools) on the wire-protocol port; shown once, replaces only the password of the same name',
    security: auth,
    body: { type: ['object', 'null'], additionalProperties: false, properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,31}$' } } },
    response: { 200: { type: 'object', properties: { name: { type: 'string' }, username: { type: 'string' }, password: { type: 'string' }, expiresAt: { type: 'string' } } }, ...errors },
  },
  connectionPasswordList: {
    summary: 'Your active connection passwords: names and times, never a secret',
    security: auth,
    response: { 200: { type: 'object', properties: { passwords: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, id: { type: 'string' }, createdAt: { type: 'string' }, expiresAt: { type: 'string' } } } } } }, ...errors },
  },
  connectionPasswordRevoke: {
    summary: 'Revoke one of your connection passwords by name: the tool using it fails from its next request',
    security: auth,
    params: { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,31}$' } } },
    response: { 200: { type: 'object', properties: { name: { type: 'string' }, revoked: { type: 'boolean' } } }, ...errors },
  },
  logout: {
    summary: 'Revoke the calling session: its tokens fail from the next request',
    security: auth,
    response: { 200: { type: 'object', properties: { revoked: { type: 'boolean' } } }, ...errors },
  },
  elevationRequest: {
    summary: 'Request a privileged role for a purpose and a time window (another principal approves)',
    security: auth,
    body: { type: 'object', additionalProperties: false, required: ['role', 'purpose', 'minutes', 'justification'], properties: { role: { type: 'string', maxLength: 64 }, purpose: { type: 'string', maxLength: 64 }, minutes: { type: 'integer', minimum: 1, maximum: 10080 }, justification: { type: 'string', minLength: 1, maxLength: 2000 } } },
    response: { 200: { type: 'object', properties: { requestId: { type: 'string' }, status: { type: 'string' } } }, ...errors },
  },
  elevationApprove: {
    summary: 'Approve an elevation request (approvers of the role only; never the requester)',
    security: auth,
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } },
    response: { 200: { type: 'object', properties: { grantId: { type: 'string' }, principal: { type: 'string' }, role: { type: 'string' }, expiresAt: { type: 'string' } } }, ...errors },
  },
  elevationDeny: {
    summary: 'Deny an elevation request',
    security: auth,
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } },
    body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 } } },
    response: { 200: { type: 'object', properties: { denied: { type: 'boolean' } } }, ...errors },
  },
  breakGlass: {
    summary: 'Break-glass: immediate, time-boxed elevation with a written justification; raises an alert',
    security: auth,
    body: { type: 'object', additionalProperties: false, required: ['role', 'justification'], properties: { role: { type: 'string', maxLength: 64 }, justification: { type: 'string', minLength: 1, maxLength: 2000 } } },
    response: { 200: { type: 'object', properties: { grantId: { type: 'string' }, role: { type: 'string' }, expiresAt: { type: 'string' }, alert: { type: 'boolean' } } }, ...errors },
  },
  elevationRevoke: {
    summary: 'Revoke an elevation grant (the holder or an approver of the role); effective on the next request',
    security: auth,
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } },
    response: { 200: { type: 'object', properties: { revoked: { type: 'string' } } }, ...errors },
  },
  elevationList: {
    summary: "The caller's active privileged grants and the requests waiting for approval",
    security: auth,
    response: { 200: { type: 'object', additionalProperties: true }, ...errors },
  },
  adminUserCreate: {
    summary: 'Administrators: create a built-in user for a workspace principal',
    security: auth,
    body: { type: 'object', additionalProperties: false, required: ['principal', 'password'], properties: { principal: { type: 'string', maxLength: 200 }, password: { type: 'string', maxLength: 1024 } } },
    response: { 200: { type: 'object', properties: { created: { type: 'string' } } }, ...errors },
  },
  adminUserAction: {
    summary: 'Administrators: disable or enable a user (disabling revokes their sessions), or request / approve an MFA reset (two administrators)',
    security: auth,
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } },
    response: { 200: { type: 'object', additionalProperties: true }, ...errors },
  },
  adminKeyCreate: {
    summary: 'Administrators: issue a scoped, optionally expiring service key (shown once)',
    security: auth,
    body: { type: 'object', additionalProperties: false, required: ['principal', 'datasets'], properties: { principal: { type: 'string', maxLength: 200 }, datasets: { type: 'array', items: { type: 'string', maxLength: 200 }, maxItems: 1000 }, actions: { type: 'array', items: { type: 'string', maxLength: 64 } }, expiresAt: { type: ['string', 'null'], format: 'date-time' } } },
    response: { 200: { type: 'object', properties: { id: { type: 'string' }, key: { type: 'string' } } }, ...errors },
  },
  adminKeyRevoke: {
    summary: 'Administrators: revoke a service key (it fails from the next request)',
    security: auth,
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } },
    response: { 200: { type: 'object', properties: { revoked: { type: 'string' } } }, ...errors },
  },
  adminKeyList: {
    summary: "Administrators: a principal's service keys (metadata, never the key)",
    security: auth,
    querystring: { type: 'object', additionalProperties: false, required: ['principal'], properties: { principal: { type: 'string', maxLength: 200 } } },
    response: { 200: { type: 'object', additionalProperties: true }, ...errors },
  },
  estimate: {
    summary: 'What a governed query would cost and how accurate it would be, without running it',
    description: 'Decided and planned exactly like POST /v1/query; nothing runs and no privacy budget is spent. For differentially private queries: ε, δ, ρ, the noise scale and 95 % half-width of each output, and the remaining budget.',
    security: auth,
    body: {
      type: 'object', additionalProperties: false, required: ['sql', 'purpose'],
      properties: { sql: { type: 'string', minLength: 1, maxLength: 100000 }, purpose: { type: 'string', minLength: 1, maxLength: 64 } },
    },
    response: {
      200: {
        type: 'object',
        properties: {
          policyVersion: { type: 'string' }, auditId: { type: 'string' },
          datasets: { type: 'array', items: { type: 'string' } },
          obligationsApplied: { type: 'array', items: { type: 'string' } },
          privacy: { type: ['object', 'null'], additionalProperties: true },
        },
      },
      ...errors,
    },
  },
  datasets: {
    summary: 'Datasets the caller may query, with masked and join-only columns marked',
    security: auth,
    querystring: { type: 'object', additionalProperties: false, properties: { purpose: { type: 'string', maxLength: 64 } } },
    response: {
      200: {
        type: 'object',
        properties: {
          policyVersion: { type: 'string' },
          auditId: { type: 'string' },
          datasets: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' }, description: { type: ['string', 'null'] }, classification: { type: 'string' },
                region: { type: ['string', 'null'] }, purposes: { type: 'array', items: { type: 'string' } },
                privacyUnit: { type: ['string', 'null'] }, rowFilter: { type: 'boolean' },
                aggregationOnly: { type: ['object', 'null'], properties: { minGroupSize: { type: 'integer' } } },
                rowCap: { type: 'integer' },
                columns: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      name: { type: 'string' }, type: { type: 'string' }, classification: { type: 'string' },
                      tags: { type: 'array', items: { type: 'string' } }, masked: { type: ['string', 'null'] },
                      joinOnly: { type: 'boolean' }, description: { type: ['string', 'null'] },
                    },
                  },
                },
              },
            },
          },
        },
      },
      ...errors,
    },
  },
} as const;

export interface RouteInfo {
  readonly method: string | string[];
  readonly url: string;
  readonly schema: Record<string, unknown> | undefined;
}

export function buildOpenApi(routes: readonly RouteInfo[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (!r.schema || (r.schema as { hide?: boolean }).hide) continue;
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => m !== 'HEAD');
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    for (const m of methods) {
      const s = r.schema as Record<string, any>;
      const op: Record<string, unknown> = { summary: s.summary ?? `${m} ${r.url}` };
      if (s.description) op.description = s.description;
      if (s.security) op.security = s.security;
      const params: unknown[] = [];
      for (const [where, key] of [['query', 'querystring'], ['path', 'params']] as const) {
        const props = s[key]?.properties as Record<string, unknown> | undefined;
        for (const [name, schema] of Object.entries(props ?? {})) params.push({ name, in: where, required: where === 'path' || (s[key].required ?? []).includes(name), schema });
      }
      if (params.length) op.parameters = params;
      if (s.body) op.requestBody = { required: true, content: { 'application/json': { schema: s.body } } };
      const responses: Record<string, unknown> = {};
      for (const [code, schema] of Object.entries((s.response ?? { 200: {} }) as Record<string, unknown>)) {
        responses[code] = { description: code === '200' ? 'OK' : 'error', content: { 'application/json': { schema } } };
      }
      op.responses = responses;
      (paths[path] ??= {})[m.toLowerCase()] = op;
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Gatehouse API', version, description: 'Governed data sharing: partners query, never copy.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API key issued in the workspace' } } },
    paths,
  };
}
