/**
 * Signing in and out: password (+ TOTP) → session tokens, TOTP enrolment, step-up,
 * refresh, logout, and connection passwords for PostgreSQL clients. Each is one audited
 * request; the entry names the principal claimed, never a secret.
 */
import { GatehouseError } from '../../errors.ts';
import { toCredential } from '../../identity/credentials.ts';
import type { ConnectionPasswordInfo, ScramVerifier } from '../../identity/connection-passwords.ts';
import { looksLikeJwt } from '../../identity/service.ts';
import { identityError } from '../../identity/to-gatehouse-error.ts';
import type { Credential } from '../../identity/credentials.ts';
import { audited, auditedOpen } from '../../kernel/audited.ts';
import { mfaRequired } from '../../kernel/authenticate.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';

/** Lifetime of a connection password for the PostgreSQL wire protocol. */
const CONNECTION_PASSWORD_HOURS = 8;

function claimed(principal: unknown): string | null {
  return typeof principal === 'string' ? principal : null;
}

/** A principal of the workspace; otherwise the same answer as a wrong password (which principals exist is not disclosed). */
export function knownPrincipal(rt: Runtime, principalId: unknown): string {
  if (typeof principalId !== 'string' || !rt.state.loaded.workspace.principals.has(principalId)) {
    throw new GatehouseError('AUTH_INVALID', 'the credentials are not valid');
  }
  return principalId;
}

/**
 * A sign-in with a password for a name the workspace does not list costs what a wrong
 * password for a real principal costs, and counts the same: the user store verifies it
 * against a decoy scrypt hash with the default parameters (src/identity/password.ts
 * `verifyPasswordDecoy`), takes a token from the per-address bucket and records a failure
 * against the name as typed, so unknown names lock out and rate-limit like known ones. Then
 * the answer is the wrong-password answer, even if the store still has a user of that name
 * (a principal removed from the workspace cannot sign in). Without this, an unknown name was
 * answered in ~8 ms against ~200 ms for a real one: principals could be listed by timing.
 */
async function passwordPrincipal(rt: Runtime, meta: RequestMeta, principalId: unknown, password: unknown): Promise<string> {
  if (typeof principalId === 'string' && rt.state.loaded.workspace.principals.has(principalId)) return principalId;
  try {
    const users = (await rt.identity()).users;
    await users.verifyPassword(typeof principalId === 'string' ? principalId : '', typeof password === 'string' ? password : '', { address: meta.source });
  } catch (err) {
    throw identityError(err, 'the credentials are not valid');
  }
  throw new GatehouseError('AUTH_INVALID', 'the credentials are not valid');
}

async function value<T>(p: Promise<{ value: T }>): Promise<T> {
  return (await p).value;
}

/** POST /v1/auth/login: password (+ TOTP when enrolled) → session tokens. */
export function login(rt: Runtime, meta: RequestMeta, body: { principal: string; password: string; code?: string | null }) {
  return value(auditedOpen(rt, meta, 'auth.login', { principal: claimed(body.principal) }, async ({ state }) => {
    const id = await passwordPrincipal(rt, meta, body.principal, body.password);
    const p = state.loaded.workspace.principals.get(id)!;
    const ids = await rt.identity();
    const status = await ids.users.status(id);
    if (mfaRequired(state, p) && status && !status.mfaEnrolled && !status.mfaEnrolmentPending) {
      // Check the password before telling the caller anything about enrolment.
      await ids.users.verifyPassword(id, body.password, { address: meta.source }).catch((err: unknown) => { throw identityError(err, 'the credentials are not valid'); });
      throw new GatehouseError('MFA_REQUIRED', 'this account must enrol an authenticator before its first sign-in', { hint: 'POST /v1/auth/totp/enrol, then /v1/auth/totp/confirm (gatehouse mfa enrol / confirm)' });
    }
    try {
      const t = await ids.login(id, body.password, body.code ?? null, meta.source);
      return { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: t.expiresAt, mfa: t.mfa };
    } catch (err) {
      throw identityError(err, 'the credentials are not valid');
    }
  }));
}

/** POST /v1/auth/totp/enrol: begins TOTP enrolment (password required). */
export function enrolTotp(rt: Runtime, meta: RequestMeta, body: { principal: string; password: string }) {
  return value(auditedOpen(rt, meta, 'auth.totp.enrol', { principal: claimed(body.principal) }, async () => {
    const id = await passwordPrincipal(rt, meta, body.principal, body.password);
    try {
      const users = (await rt.identity()).users;
      await users.verifyPassword(id, body.password, { address: meta.source });
      const e = await users.beginTotpEnrolment(id);
      return { otpauthUri: e.otpauthUri, secret: e.secret };
    } catch (err) {
      throw identityError(err, 'the credentials are not valid');
    }
  }));
}

/** POST /v1/auth/totp/confirm: a first code activates TOTP; recovery codes are shown once. */
export function confirmTotp(rt: Runtime, meta: RequestMeta, body: { principal: string; password: string; code: string }) {
  return value(auditedOpen(rt, meta, 'auth.totp.confirm', { principal: claimed(body.principal) }, async () => {
    const id = await passwordPrincipal(rt, meta, body.principal, body.password);
    try {
      const users = (await rt.identity()).users;
      await users.verifyPassword(id, body.password, { address: meta.source });
      const r = await users.confirmTotpEnrolment(id, body.code);
      return { recoveryCodes: r.recoveryCodes };
    } catch (err) {
      throw identityError(err, 'the code or credentials are not valid');
    }
  }));
}

/** The session behind a bearer session token (step-up and logout act on it, nothing else). */
async function session(rt: Runtime, meta: RequestMeta, what: string) {
  const c = toCredential(meta.credential);
  if (c?.kind !== 'bearer' || !looksLikeJwt(c.value)) throw new GatehouseError('AUTH_REQUIRED', `${what} with the session token you signed in with`);
  try { return await (await rt.identity()).verify(c.value); } catch (err) { throw identityError(err, 'the session token is not valid'); }
}

/** POST /v1/auth/step-up: a current TOTP code refreshes the session's MFA time (new access token). */
export function stepUp(rt: Runtime, meta: RequestMeta, body: { code: string }) {
  return value(auditedOpen(rt, meta, 'auth.step-up', {}, async ({ entry }) => {
    const who = await session(rt, meta, 'step up');
    entry.principal = who.principalId;
    try {
      const ids = await rt.identity();
      await ids.users.verifySecondFactor(who.principalId, body.code, { address: meta.source });
      const t = await ids.sessions.stepUp(who.sessionId, Math.floor(rt.now().getTime() / 1000), { amr: ['pwd', 'otp'] });
      return { accessToken: t.accessToken, expiresAt: t.expiresAt };
    } catch (err) { throw identityError(err, 'the code is not valid'); }
  }));
}

/** POST /v1/auth/refresh: a refresh token (single use, rotating) → new tokens. */
export function refresh(rt: Runtime, meta: RequestMeta, body: { refreshToken: string }) {
  return value(auditedOpen(rt, meta, 'auth.refresh', {}, async () => {
    try {
      const t = await (await rt.identity()).sessions.refresh(body.refreshToken);
      return { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: t.expiresAt };
    } catch (err) {
      throw identityError(err, 'the refresh token is not valid');
    }
  }));
}

/** POST /v1/auth/logout: revokes the caller's session; its tokens fail from the next request. */
export function logout(rt: Runtime, meta: RequestMeta) {
  return value(auditedOpen(rt, meta, 'auth.logout', {}, async ({ entry }) => {
    const who = await session(rt, meta, 'log out');
    entry.principal = who.principalId;
    const ids = await rt.identity();
    await ids.sessions.revokeSession(who.sessionId, { reason: 'logout' });
    await ids.connectionPasswords.revokeAll(who.principalId);
    return { revoked: true };
  }));
}

/**
 * POST /v1/auth/connection-password: a password for psql and other PostgreSQL clients
 * (src/identity/connection-passwords.ts). The caller authenticates as for a query (an MFA
 * session when their group requires one); the password carries that MFA time, lasts at
 * most CONNECTION_PASSWORD_HOURS, and replaces only the caller's password of the same
 * name (default `default`): one per tool, each revocable on its own.
 */
export function issueConnectionPassword(rt: Runtime, meta: RequestMeta, options: { name?: string } = {}): Promise<{ name: string; username: string; password: string; expiresAt: string }> {
  return value(audited(rt, meta, 'auth.connection-password', {}, async ({ entry, auth }) => {
    refuseFromWire(meta);
    const expiresAt = Math.floor(rt.now().getTime() / 1000) + CONNECTION_PASSWORD_HOURS * 3600;
    const issued = await (await rt.identity()).connectionPasswords.issue(auth.principal.id, { ...(options.name !== undefined ? { name: options.name } : {}), mfaAt: auth.mfaAt, expiresAt });
    entry.reasons = [`connection password ${issued.id} (${issued.name}) issued until ${issued.expiresAt}; an earlier one of that name is revoked`];
    return { name: issued.name, username: issued.username, password: issued.password, expiresAt: issued.expiresAt };
  }));
}

/** A wire connection authenticated by a connection password cannot manage connection passwords. */
function refuseFromWire(meta: RequestMeta): void {
  if (toCredential(meta.credential)?.kind === 'connection-password') throw new GatehouseError('POLICY_DENIED', 'a wire connection cannot manage connection passwords', { hint: 'ask over HTTPS or the CLI' });
}

/** GET /v1/auth/connection-passwords: the caller's active connection passwords (names and times, never a secret). */
export function listConnectionPasswords(rt: Runtime, meta: RequestMeta): Promise<{ passwords: ConnectionPasswordInfo[] }> {
  return value(audited(rt, meta, 'auth.connection-password.list', {}, async ({ entry, auth }) => {
    refuseFromWire(meta);
    const passwords = await (await rt.identity()).connectionPasswords.list(auth.principal.id);
    entry.rowsReturned = passwords.length;
    return { passwords };
  }));
}

/** DELETE /v1/auth/connection-passwords/:name: revokes one; the tool using it fails from its next request. */
export function revokeConnectionPassword(rt: Runtime, meta: RequestMeta, name: string): Promise<{ name: string; revoked: boolean }> {
  return value(audited(rt, meta, 'auth.connection-password.revoke', {}, async ({ entry, auth }) => {
    refuseFromWire(meta);
    const n = await (await rt.identity()).connectionPasswords.revoke(auth.principal.id, name);
    if (n === 0) throw new GatehouseError('NOT_FOUND', 'you have no active connection password of that name', { hint: 'gatehouse pg-password --list shows the names' });
    entry.reasons = [`connection password ${name.slice(0, 32)} revoked`];
    return { name, revoked: true };
  }));
}

/**
 * What SCRAM needs to check a principal's connection passwords: their shared salt and
 * iterations, and per active password its keys and the credential the wire front passes
 * for a connection made with it; null when there is none (the caller must fail SCRAM
 * exactly as for a wrong password).
 */
export async function connectionVerifier(rt: Runtime, username: string): Promise<ConnectionVerifiers | null> {
  if (typeof username !== 'string' || !rt.state.loaded.workspace.principals.has(username)) return null;
  const v = await (await rt.identity()).connectionPasswords.verifier(username);
  if (!v) return null;
  const credential = (id: string): Credential => ({ kind: 'connection-password', id });
  return {
    salt: v.salt, iterations: v.iterations,
    candidates: v.candidates.map((c) => ({ storedKey: c.storedKey, serverKey: c.serverKey, credential: credential(c.id) })),
    verifier: v.verifier, credential: credential(v.id),
  };
}

export interface ConnectionVerifiers {
  readonly salt: string;
  readonly iterations: number;
  readonly candidates: readonly { readonly storedKey: string; readonly serverKey: string; readonly credential: Credential }[];
  /** The newest password's verifier and credential. */
  readonly verifier: ScramVerifier;
  readonly credential: Credential;
}
