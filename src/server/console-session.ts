/**
 * The console's sign-in: a session cookie that stands for the bearer session token.
 *
 * Why a cookie: the console is a page, and a token a page can read is a token any script
 * injected into it can steal. So the session token the one path issues (POST /v1/auth/login,
 * src/operations/identity/auth.ts) is kept in an httpOnly cookie the page never sees, and the
 * server reads it back as the same bearer credential (`sessionCookieCredential`, called by
 * `credentialOf` in app.ts when no Authorization header is sent). The kernel verifies it like
 * any session token: expiry, revocation at logout, MFA time, all unchanged.
 *
 *   POST /console/session           password (+ TOTP code) → cookies; body { principal, expiresAt, mfa, csrf }
 *   POST /console/session/enrol     password → otpauth URI (the page draws its QR code)
 *   POST /console/session/confirm   password + first code → recovery codes
 *   POST /console/session/refresh   the refresh cookie → new cookies (rotating, single use)
 *   POST /console/session/logout    revokes the session on the path, clears the cookies
 *
 * Cookies (RFC 6265bis): `gh_session` (the access token) and `gh_refresh` (the refresh token,
 * sent only to /console/session) are HttpOnly and SameSite=Strict; `gh_csrf` is readable by
 * the page. All three are Secure unless the connection is on a loopback address.
 *
 * CSRF (OWASP CSRF Prevention Cheat Sheet): SameSite=Strict already keeps the cookies off
 * cross-site requests; as defence in depth every state-changing request (any method but
 * GET/HEAD/OPTIONS) that relies on the cookie must carry (1) the header `X-Gatehouse-CSRF`
 * equal to the `gh_csrf` cookie ("double-submit": another origin can neither read the
 * cookie nor set a custom header without a CORS preflight, which this server never grants),
 * and (2) an `Origin` header, when the browser sends one, naming this server. The sign-in
 * routes, which have no session yet, need the same Origin check and the custom header.
 * A refusal is CSRF_REJECTED, audited on the one path like every other refusal.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { GatehouseError } from '../errors.ts';
import type { Credential } from '../identity/credentials.ts';
import type { Gatehouse, RequestMeta } from '../pipeline/gatehouse.ts';

export const SESSION_COOKIE = 'gh_session';
export const REFRESH_COOKIE = 'gh_refresh';
export const CSRF_COOKIE = 'gh_csrf';
export const CSRF_HEADER = 'x-gatehouse-csrf';
/** Refresh tokens live longer than access tokens; the cookie lasts at most this long. */
const REFRESH_MAX_AGE_S = 12 * 3600;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** RFC 6265 §5.2 cookie-pair parsing, enough for the three cookies we set (no quoting, no decoding). */
export function readCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof header !== 'string' || header.length > 16384) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    // The first occurrence wins (RFC 6265 §5.4: more specific paths are sent first).
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

/** The bearer credential a console request carries in its session cookie, or null. */
export function sessionCookieCredential(request: FastifyRequest): Credential | null {
  const token = readCookies(request.headers.cookie).get(SESSION_COOKIE);
  return token ? { kind: 'bearer', value: token } : null;
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** Secure off loopback: a console reached over a network only sends its cookies over TLS. */
function secureFor(request: FastifyRequest): boolean {
  return !isLoopback(request.raw.socket.localAddress);
}

interface CookieOptions { readonly httpOnly: boolean; readonly path: string; readonly maxAge: number; readonly secure: boolean }

export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  return [
    `${name}=${value}`, `Path=${o.path}`, `Max-Age=${Math.max(0, Math.floor(o.maxAge))}`, 'SameSite=Strict',
    ...(o.httpOnly ? ['HttpOnly'] : []), ...(o.secure ? ['Secure'] : []),
  ].join('; ');
}

function sameBytes(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The origin this request was addressed to, as a browser would write it in `Origin`. */
function ownOrigin(request: FastifyRequest): string | null {
  const host = request.headers.host;
  if (typeof host !== 'string' || host.length === 0) return null;
  const tls = (request.raw.socket as import('node:tls').TLSSocket).encrypted === true;
  return `${tls ? 'https' : 'http'}://${host.toLowerCase()}`;
}

function csrfError(why: string): GatehouseError {
  return new GatehouseError('CSRF_REJECTED', `the request was refused as a possible cross-site request forgery: ${why}`, {
    hint: 'use the console at /console, which sends the X-Gatehouse-CSRF header; API clients send Authorization: Bearer instead of the cookie',
  });
}

/**
 * The CSRF rule for one request; throws CSRF_REJECTED. Exported for tests.
 * `signIn`: a /console/session route (no session yet): Origin and the custom header only.
 */
export function checkCsrf(request: FastifyRequest, signIn: boolean): void {
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin.toLowerCase() !== ownOrigin(request)) throw csrfError('the Origin header names another site');
  const sent = request.headers[CSRF_HEADER];
  if (typeof sent !== 'string' || sent.length === 0) throw csrfError('the X-Gatehouse-CSRF header is missing');
  if (signIn) return;
  const cookie = readCookies(request.headers.cookie).get(CSRF_COOKIE);
  if (!cookie || !sameBytes(cookie, sent)) throw csrfError('the X-Gatehouse-CSRF header does not match the session');
}

/** True when the request's credential would come from the session cookie (no header, no client certificate). */
function usesCookie(request: FastifyRequest): boolean {
  return request.headers.authorization === undefined && readCookies(request.headers.cookie).has(SESSION_COOKIE);
}

interface Tokens { readonly accessToken: string; readonly refreshToken?: string; readonly expiresAt: number }

function setSessionCookies(request: FastifyRequest, reply: FastifyReply, t: Tokens, nowS: number): string {
  const secure = secureFor(request);
  const csrf = randomBytes(24).toString('base64url');
  const ttl = t.expiresAt - nowS;
  const cookies = [
    serializeCookie(SESSION_COOKIE, t.accessToken, { httpOnly: true, path: '/', maxAge: ttl, secure }),
    serializeCookie(CSRF_COOKIE, csrf, { httpOnly: false, path: '/', maxAge: REFRESH_MAX_AGE_S, secure }),
  ];
  if (t.refreshToken) cookies.push(serializeCookie(REFRESH_COOKIE, t.refreshToken, { httpOnly: true, path: '/console/session', maxAge: REFRESH_MAX_AGE_S, secure }));
  void reply.header('set-cookie', cookies);
  return csrf;
}

function clearCookies(request: FastifyRequest, reply: FastifyReply): void {
  const secure = secureFor(request);
  void reply.header('set-cookie', [
    serializeCookie(SESSION_COOKIE, '', { httpOnly: true, path: '/', maxAge: 0, secure }),
    serializeCookie(CSRF_COOKIE, '', { httpOnly: false, path: '/', maxAge: 0, secure }),
    serializeCookie(REFRESH_COOKIE, '', { httpOnly: true, path: '/console/session', maxAge: 0, secure }),
  ]);
}

/** Route schemas carry OpenAPI's summary and tags (read by openapi.ts) beside Fastify's fields. */
const schema = (s: Record<string, unknown>): FastifySchema => s as FastifySchema;
const str = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
const errorBody = { type: 'object', properties: { error: { type: 'object', additionalProperties: true } } } as const;
const sessionOut = {
  200: { type: 'object', properties: { principal: { type: 'string' }, expiresAt: { type: 'integer' }, mfa: { type: 'boolean' }, csrf: { type: 'string' } } },
  400: errorBody, 401: errorBody, 403: errorBody, 429: errorBody, 503: errorBody,
} as const;

export interface ConsoleSessionOptions {
  readonly gatehouse: Gatehouse;
  readonly metaOf: (request: FastifyRequest) => RequestMeta;
  /** Seconds since the epoch (tests inject a clock). */
  readonly nowSeconds?: () => number;
}

/** The session routes and the CSRF hook. Registered on the root app so the hook covers every route. */
export async function registerConsoleSession(app: FastifyInstance, options: ConsoleSessionOptions): Promise<void> {
  const { gatehouse, metaOf } = options;
  const nowS = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));

  // A plain callback hook (no promise per request, issue 15); a refused check is passed to done().
  app.addHook('onRequest', (request, _reply, done) => {
    if (SAFE_METHODS.has(request.method)) { done(); return; }
    try {
      const path = request.url.split('?')[0]!;
      if (path.startsWith('/console/session')) checkCsrf(request, path !== '/console/session/logout');
      else if (usesCookie(request)) checkCsrf(request, false);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  });

  const tags = ['console'];
  app.post<{ Body: { principal: string; password: string; code?: string | null } }>('/console/session', {
    schema: schema({
      summary: 'Console sign-in: password (+ TOTP code) → an httpOnly session cookie (needs the X-Gatehouse-CSRF header)', tags,
      body: { type: 'object', additionalProperties: false, required: ['principal', 'password'], properties: { principal: str(200), password: str(1024), code: { type: ['string', 'null'], maxLength: 64 } } },
      response: sessionOut,
    }),
  }, async (request, reply) => {
    const t = await gatehouse.login(metaOf(request), request.body);
    const csrf = setSessionCookies(request, reply, t, nowS());
    return { principal: request.body.principal, expiresAt: t.expiresAt, mfa: t.mfa, csrf };
  });

  app.post<{ Body: { principal: string; password: string } }>('/console/session/enrol', {
    schema: schema({
      summary: 'Console: begin TOTP enrolment (password required) → the otpauth URI for the QR code', tags,
      body: { type: 'object', additionalProperties: false, required: ['principal', 'password'], properties: { principal: str(200), password: str(1024) } },
      response: { 200: { type: 'object', properties: { otpauthUri: { type: 'string' }, secret: { type: 'string' } } }, 400: errorBody, 401: errorBody, 429: errorBody },
    }),
  }, async (request) => gatehouse.enrolTotp(metaOf(request), request.body));

  app.post<{ Body: { principal: string; password: string; code: string } }>('/console/session/confirm', {
    schema: schema({
      summary: 'Console: confirm TOTP enrolment with a first code → recovery codes (shown once)', tags,
      body: { type: 'object', additionalProperties: false, required: ['principal', 'password', 'code'], properties: { principal: str(200), password: str(1024), code: str(64) } },
      response: { 200: { type: 'object', properties: { recoveryCodes: { type: 'array', items: { type: 'string' } } } }, 400: errorBody, 401: errorBody, 429: errorBody },
    }),
  }, async (request) => gatehouse.confirmTotp(metaOf(request), request.body));

  app.post('/console/session/refresh', {
    schema: schema({ summary: 'Console: rotate the session with the refresh cookie (single use)', tags, response: sessionOut }),
  }, async (request, reply) => {
    const refreshToken = readCookies(request.headers.cookie).get(REFRESH_COOKIE) ?? '';
    try {
      const t = await gatehouse.refresh(metaOf(request), { refreshToken });
      const csrf = setSessionCookies(request, reply, t, nowS());
      return { principal: '', expiresAt: t.expiresAt, mfa: false, csrf };
    } catch (err) {
      clearCookies(request, reply);
      throw err;
    }
  });

  app.post('/console/session/logout', {
    schema: schema({ summary: 'Console: sign out; the session is revoked and its cookies cleared', tags, response: { 200: { type: 'object', properties: { revoked: { type: 'boolean' } } }, 400: errorBody, 401: errorBody, 403: errorBody } }),
  }, async (request, reply) => {
    clearCookies(request, reply);
    return gatehouse.logout(metaOf(request));
  });
}
