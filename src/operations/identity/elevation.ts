/**
 * Just-in-time privileged access: a principal asks for a role for a purpose and a time
 * window; an approver of the role (never the requester) approves or denies; break-glass is
 * immediate, time-boxed and raises an alert; the holder or an approver revokes.
 */
import { GatehouseError } from '../../errors.ts';
import { identityError } from '../../identity/to-gatehouse-error.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';

function role(rt: Runtime, name: unknown): { name: string; maxMinutes: number } {
  const roles = rt.state.loaded.workspace.identity?.elevationRoles ?? {};
  if (typeof name !== 'string' || !roles[name]) {
    throw new GatehouseError('REQUEST_INVALID', `there is no privileged role "${String(name)}"`, { hint: `roles: ${Object.keys(roles).join(', ') || '(none configured)'}` });
  }
  return { name, maxMinutes: roles[name]!.maxMinutes };
}

/** POST /v1/elevation/requests */
export async function requestElevation(rt: Runtime, meta: RequestMeta, body: { role: string; purpose: string; minutes: number; justification: string }) {
  return (await audited(rt, meta, 'elevation.request', {}, async ({ entry, auth }) => {
    const r0 = role(rt, body.role);
    if (!Number.isInteger(body.minutes) || body.minutes < 1 || body.minutes > r0.maxMinutes) {
      throw new GatehouseError('REQUEST_INVALID', `"${r0.name}" may be granted for 1 to ${r0.maxMinutes} minutes`);
    }
    try {
      const r = await (await rt.elevations()).request({ principalId: auth.principal.id, role: r0.name, purpose: body.purpose, durationMinutes: body.minutes, justification: body.justification });
      entry.reasons = [`elevation requested: ${r0.name} for ${body.minutes} min, purpose ${body.purpose}`];
      return { requestId: r.request.id, status: r.request.status };
    } catch (err) { throw identityError(err, 'the elevation request was refused'); }
  })).value;
}

/** POST /v1/elevation/requests/:id/approve — by an approver of the role, never the requester. */
export async function approveElevation(rt: Runtime, meta: RequestMeta, requestId: string) {
  return (await audited(rt, meta, 'elevation.approve', {}, async ({ entry, auth }) => {
    try {
      const g = await (await rt.elevations()).approve(requestId, auth.principal.id);
      entry.reasons = [`elevation approved: ${g.grant.role} for ${g.grant.principalId} until ${g.grant.expiresAt}`];
      return { grantId: g.grant.id, principal: g.grant.principalId, role: g.grant.role, expiresAt: g.grant.expiresAt };
    } catch (err) { throw identityError(err, 'the approval was refused'); }
  })).value;
}

/** POST /v1/elevation/requests/:id/deny */
export async function denyElevation(rt: Runtime, meta: RequestMeta, requestId: string, reason: string) {
  return (await audited(rt, meta, 'elevation.deny', {}, async ({ auth }) => {
    try {
      await (await rt.elevations()).deny(requestId, auth.principal.id, reason);
      return { denied: true };
    } catch (err) { throw identityError(err, 'the denial was refused'); }
  })).value;
}

/** POST /v1/elevation/break-glass: immediate, time-boxed, needs a written justification, raises an alert. */
export async function breakGlass(rt: Runtime, meta: RequestMeta, body: { role: string; justification: string }) {
  return (await audited(rt, meta, 'elevation.break-glass', {}, async ({ entry, auth, keep }) => {
    const r0 = role(rt, body.role);
    try {
      const g = await (await rt.elevations()).breakGlass({ principalId: auth.principal.id, role: r0.name, justification: body.justification });
      entry.reasons = [`alert: break-glass into ${r0.name} until ${g.grant.expiresAt}`];
      return { grantId: g.grant.id, role: g.grant.role, expiresAt: g.grant.expiresAt, alert: true };
    } catch (err) {
      keep(`alert: refused break-glass into ${r0.name}`);
      throw identityError(err, 'break-glass was refused');
    }
  })).value;
}

/** POST /v1/elevation/grants/:id/revoke — by an approver of the role or the holder; effective at once. */
export async function revokeElevation(rt: Runtime, meta: RequestMeta, grantId: string) {
  return (await audited(rt, meta, 'elevation.revoke', {}, async ({ entry, auth }) => {
    const store = await rt.elevations();
    const grant = await store.getGrant(grantId);
    if (!grant) throw new GatehouseError('NOT_FOUND', 'no such grant');
    const roles = rt.state.loaded.workspace.identity?.elevationRoles ?? {};
    const approver = auth.principal.groups.some((g) => roles[grant.role]?.approvers.includes(g));
    if (grant.principalId !== auth.principal.id && !approver) throw new GatehouseError('POLICY_DENIED', 'only the holder or an approver of the role may revoke a grant');
    try { await store.revoke(grantId, auth.principal.id); } catch (err) { throw identityError(err, 'the grant could not be revoked'); }
    entry.reasons = [`elevation ${grant.role} of ${grant.principalId} revoked`];
    return { revoked: grantId };
  })).value;
}

/** GET /v1/elevation: the caller's active grants and the requests waiting for approval. */
export async function listElevations(rt: Runtime, meta: RequestMeta) {
  return (await audited(rt, meta, 'elevation.list', {}, async ({ auth }) => {
    const store = await rt.elevations();
    return {
      active: (await store.activeElevations(auth.principal.id)).map((g) => ({ grantId: g.id, role: g.role, purpose: g.purpose, expiresAt: g.expiresAt, breakGlass: g.breakGlass })),
      pending: (await store.pendingRequests()).map((r) => ({ requestId: r.id, principal: r.principalId, role: r.role, purpose: r.purpose, minutes: r.durationMinutes, requestedAt: r.requestedAt })),
    };
  })).value;
}
