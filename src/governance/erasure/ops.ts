/**
 * `erasure.list` (issue 23), a row of the governance op table: the erasures and opt-outs
 * recorded on this node, for administrators (`gatehouse erasure list`,
 * GET /v1/governance/erasures). The subject's identifier is never listed: the registry
 * needs it to exclude the subject's rows, but a listing must not become a roll of erased
 * people. Each row names the audit entry's action so its receipt can be found.
 */
import type { GovernanceOp } from '../service.ts';
import { GovernanceError } from '../types.ts';

export const erasureList: GovernanceOp<{ unit?: string }> = {
  name: 'erasure.list', who: 'admin',
  summary: 'The erasures and consent withdrawals recorded on this node (ids, unit, kind, purposes, when and by whom; never the subject\'s identifier)',
  http: { method: 'GET', path: '/v1/governance/erasures' },
  args: { type: 'object', additionalProperties: false, properties: { unit: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' } } },
  async run(ctx, a) {
    if (!ctx.erasures) throw new GovernanceError('GOV_INVALID', 'this node keeps no erasure registry', 'run it on a node that serves the workspace');
    const rows = (await ctx.erasures()).filter((r) => a.unit === undefined || r.unit === a.unit);
    return { result: { erasures: rows.map((r) => ({ id: r.id, unit: r.unit, kind: r.kind, purposes: r.purposes, recordedAt: r.recordedAt, recordedBy: r.recordedBy })) } };
  },
};
