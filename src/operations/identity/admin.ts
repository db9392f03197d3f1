/**
 * Identity administration, reserved to identity.adminGroups: built-in users, enabling and
 * disabling (effective on the user's next request), two-administrator MFA resets, and
 * scoped service keys (shown once, metadata only afterwards).
 */
import { GatehouseError } from '../../errors.ts';
import { identityError } from '../../identity/to-gatehouse-error.ts';
import type { PrincipalDef } from '../../model/types.ts';
import { audited, auditedOpen, type AuthenticatedEnvelope } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { knownPrincipal } from './auth.ts';

function admin<T>(rt: Runtime, meta: RequestMeta, action: string, run: (env: AuthenticatedEnvelope & { admin: PrincipalDef }) => Promise<T>): Promise<T> {
  return audited(rt, meta, action, {}, async (env) => {
    if (!rt.isAdmin(env.auth.principal)) {
      const admins = rt.adminGroups();
      throw new GatehouseError('POLICY_DENIED', 'identity administration is reserved to the administrator groups', { reasons: [`not a member of ${admins.join(', ')}`] });
    }
    return run({ ...env, admin: env.auth.principal });
  }).then((r) => r.value);
}

/** POST /v1/admin/users — create a built-in user for a workspace principal. */
export function adminCreateUser(rt: Runtime, meta: RequestMeta, body: { principal: string; password: string }) {
  return admin(rt, meta, 'admin.user.create', async ({ entry, admin: who }) => {
    knownPrincipal(rt, body.principal);
    try { await (await rt.identity()).users.createUser(body.principal, body.password, { by: who.id }); } catch (err) { throw identityError(err, 'the user could not be created'); }
    entry.reasons = [`user created for ${body.principal}`];
    return { created: body.principal };
  });
}

/** POST /v1/admin/users/:id/disable|enable — takes effect on the user's next request. */
export function adminSetUserEnabled(rt: Runtime, meta: RequestMeta, principalId: string, enabled: boolean) {
  return admin(rt, meta, enabled ? 'admin.user.enable' : 'admin.user.disable', async ({ entry, admin: who }) => {
    const ids = await rt.identity();
    try {
      if (enabled) await ids.users.enableUser(principalId, { by: who.id }); else await ids.users.disableUser(principalId, { by: who.id });
      if (!enabled) {
        await ids.sessions.revokeAllFor(principalId, { reason: 'user disabled' });
        await ids.connectionPasswords.revokeAll(principalId);
      }
    } catch (err) { throw identityError(err, 'the change was refused'); }
    entry.reasons = [`user ${principalId} ${enabled ? 'enabled' : 'disabled'}`];
    return { principal: principalId, enabled };
  });
}

/** POST /v1/admin/users/:id/mfa-reset (request) and /mfa-reset/approve (a second administrator). */
export function adminMfaReset(rt: Runtime, meta: RequestMeta, principalId: string, step: 'request' | 'approve') {
  return admin(rt, meta, `admin.mfa-reset.${step}`, async ({ entry, admin: who }) => {
    const users = (await rt.identity()).users;
    try {
      if (step === 'request') await users.requestMfaReset(principalId, who.id); else await users.approveMfaReset(principalId, who.id);
    } catch (err) { throw identityError(err, 'the MFA reset was refused'); }
    entry.reasons = [`MFA reset for ${principalId} ${step === 'request' ? 'requested' : 'approved'}`];
    return { principal: principalId, step };
  });
}

/** POST /v1/admin/keys — a scoped, optionally expiring service key, shown once. */
export function adminCreateKey(rt: Runtime, meta: RequestMeta, body: { principal: string; datasets: string[]; actions?: string[]; expiresAt?: string | null }) {
  return admin(rt, meta, 'admin.key.create', async ({ entry }) => {
    knownPrincipal(rt, body.principal);
    try {
      const k = await (await rt.identity()).apiKeys.create({ principalId: body.principal, scopes: { datasets: body.datasets, actions: body.actions ?? ['query'] }, expiresAt: body.expiresAt ? new Date(body.expiresAt) : null });
      entry.reasons = [`service key ${k.id} for ${body.principal}, datasets ${body.datasets.join(', ')}`];
      return { id: k.id, key: k.key };
    } catch (err) { throw identityError(err, 'the key could not be created'); }
  });
}

/** DELETE /v1/admin/keys/:id — the key fails from the next request. */
export function adminRevokeKey(rt: Runtime, meta: RequestMeta, id: string) {
  return admin(rt, meta, 'admin.key.revoke', async ({ entry }) => {
    try { await (await rt.identity()).apiKeys.revoke(id); } catch (err) { throw identityError(err, 'the key could not be revoked'); }
    entry.reasons = [`service key ${id} revoked`];
    return { revoked: id };
  });
}

/** GET /v1/admin/keys?principal= — metadata only, never the key. */
export function adminListKeys(rt: Runtime, meta: RequestMeta, principalId: string) {
  return admin(rt, meta, 'admin.key.list', async () => ({ keys: await (await rt.identity()).apiKeys.list(principalId) }));
}

/** Creates a built-in user for a workspace principal as an operator at the console (`gatehouse user create`; audited). */
export async function createUser(rt: Runtime, meta: RequestMeta & { admin: string }, principalId: string, password: string) {
  return (await auditedOpen(rt, meta, 'admin.user.create', { principal: principalId }, async () => {
    knownPrincipal(rt, principalId);
    try { await (await rt.identity()).users.createUser(principalId, password, { by: meta.admin }); } catch (err) { throw identityError(err, 'the user could not be created'); }
    return { created: principalId };
  })).value;
}

/** Whether a built-in user exists for a principal (demo set-up). */
export async function hasUser(rt: Runtime, principalId: string): Promise<boolean> {
  return (await (await rt.identity()).users.status(principalId)) !== null;
}
