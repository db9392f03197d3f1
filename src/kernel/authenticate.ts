/**
 * Authentication on every request: rate limits per source address and per principal, the
 * credential's verifier (src/identity/credentials.ts), the workspace's MFA rule, and the
 * principal's active privileged-role grants. Re-evaluated on every request: a revoked
 * session, key or disabled user fails at once (invariant 6).
 */
import { GatehouseError } from '../errors.ts';
import { toCredential, verifyCredential, type PresentedCredential, type VerifierDeps } from '../identity/credentials.ts';
import type { ApiKeyScopes } from '../identity/api-keys.ts';
import type { PrincipalDef } from '../model/types.ts';
import type { Runtime, WorkspaceState } from './runtime.ts';

export interface Authenticated {
  readonly principal: PrincipalDef;
  /** Seconds since the epoch of the last multi-factor event, or null. */
  readonly mfaAt: number | null;
  readonly scopes?: ApiKeyScopes;
}

export async function authenticate(rt: Runtime, state: WorkspaceState, presented: PresentedCredential, source = ''): Promise<Authenticated> {
  limit(state, 'perAddress', source);
  const credential = toCredential(presented);
  if (credential === null) {
    throw new GatehouseError('AUTH_REQUIRED', 'authentication required', { hint: 'send your API key or session token as "Authorization: Bearer <credential>"' });
  }
  const v = await verifyCredential(verifierDeps(rt, state), credential);
  if (mfaRequired(state, v.principal) && v.mfaAt === null) throw mfaMissing(v.principal.id);
  limit(state, 'perPrincipal', v.principal.id);
  return { principal: await withElevations(rt, state, v.principal), mfaAt: v.mfaAt, ...(v.scopes ? { scopes: v.scopes } : {}) };
}

export function verifierDeps(rt: Runtime, state: WorkspaceState): VerifierDeps {
  const ws = state.loaded.workspace;
  return {
    principals: ws.principals, keyIndex: state.keyIndex, oidc: state.loaded.oidc,
    mtlsPrincipals: ws.identity?.mtlsPrincipals ?? {}, identity: () => rt.identity(), now: () => rt.now(),
  };
}

/**
 * The principal a credential names, or null — for audit entries of requests a front refused
 * (no rate limit is spent, nothing is granted by it).
 */
export async function claimedPrincipal(rt: Runtime, state: WorkspaceState, presented: PresentedCredential): Promise<string | null> {
  const c = toCredential(presented);
  if (c === null) return null;
  try { return (await verifyCredential(verifierDeps(rt, state), c)).principal.id; } catch { return null; }
}

/** Token buckets per source address and per principal (identity.rateLimits), on every request. */
function limit(state: WorkspaceState, kind: 'perAddress' | 'perPrincipal', key: string): void {
  const limiter = state.limiters[kind];
  if (!limiter || key === '') return;
  const d = limiter.take(key);
  if (!d.allowed) {
    const seconds = Math.ceil(d.retryAfterMs / 1000);
    throw new GatehouseError('RATE_LIMITED', `too many requests; retry in ${seconds} s`, { hint: 'slow down; the limits are per source address and per principal', retryAfterSeconds: seconds });
  }
}

export function mfaRequired(state: WorkspaceState, p: PrincipalDef): boolean {
  const groups = state.loaded.workspace.identity?.mfaRequiredForGroups ?? [];
  return p.groups.some((g) => groups.includes(g));
}

export function mfaMissing(principalId: string): GatehouseError {
  return new GatehouseError('MFA_REQUIRED', `${principalId} must sign in with multi-factor authentication; API keys and password-only sessions are refused`, {
    hint: 'POST /v1/auth/login with password and TOTP code (gatehouse login), and use the session token',
  });
}

/** Active privileged-role grants join the principal to Cedar group `elevated:<role>`. */
async function withElevations(rt: Runtime, state: WorkspaceState, p: PrincipalDef): Promise<PrincipalDef> {
  if (Object.keys(state.loaded.workspace.identity?.elevationRoles ?? {}).length === 0) return p;
  const active = await (await rt.elevations()).activeElevations(p.id);
  return active.length === 0 ? p : { ...p, groups: [...p.groups, ...active.map((g) => `elevated:${g.role}`)] };
}
