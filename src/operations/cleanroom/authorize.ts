/**
 * Who may manage this node's clean rooms over HTTP (src/server/cleanroom-routes.ts): the
 * node's administrators (identity.adminGroups, default `admins`). Each call is authenticated
 * on the one path and leaves its own entry (`cleanroom.http`, with the route), allowed or
 * denied; the clean-room step it leads to is then recorded by the service (`cleanroom.*`).
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';

export async function authorizeCleanroom(rt: Runtime, meta: RequestMeta, route: string): Promise<{ principal: string }> {
  return (await audited(rt, meta, 'cleanroom.http', {}, async ({ auth, entry }) => {
    entry.reasons = [route];
    if (!rt.isAdmin(auth.principal)) {
      throw new GatehouseError('POLICY_DENIED', 'clean rooms are managed by this node\'s administrators', {
        reasons: [route, `not a member of ${rt.adminGroups().join(', ')}`], hint: 'ask an administrator of this node',
      });
    }
    return { principal: auth.principal.id };
  })).value;
}
