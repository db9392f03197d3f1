/**
 * A clean-room member's read of its own contributed columns (docs/cleanrooms.md,
 * "Contributions"), as an internal principal: the node itself acts for the collaboration,
 * so no API key for a service principal has to exist, be stored or be rotated.
 *
 * The principal is a workspace principal (default `cleanroom`) that needs no credential at
 * all; no front can present it, because only this operation names it, and only the node's
 * clean-room service calls this operation (after a pinned peer asked for columns of a
 * collaboration this node belongs to). Everything else is the one path, unchanged: the
 * member's Cedar policy decides for the collaboration's purpose, contractor governance and
 * obligations apply, the one executor runs it with the output protections, and the read is
 * exactly one entry in the member's log, whose reasons name the collaboration and the
 * request id the compute node's entries carry. The read is made by this node itself, so its
 * source is loopback and its channel `cleanroom`; the peer it is for is in the reasons.
 */
import { GatehouseError } from '../../errors.ts';
import { auditedOpen } from '../../kernel/audited.ts';
import { resultDigest } from '../../kernel/digest.ts';
import { execute, executionContext } from '../../kernel/execute.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { QueryRequest, QueryResponse } from '../../kernel/types.ts';
import { auditedQueryOptions } from '../query/query.ts';
import { plan } from '../query/plan.ts';
import { protectionsFor } from '../query/protections.ts';

export interface MemberReadRequest {
  /** The workspace principal the collaboration acts as. */
  readonly principal: string;
  readonly sql: string;
  readonly purpose: string;
  readonly collaborationId: string;
  readonly requestId: string;
  /** The peer node that asked for the columns (the compute node). */
  readonly peer: string;
}

export async function cleanroomMemberRead(rt: Runtime, req: MemberReadRequest): Promise<QueryResponse> {
  const q: QueryRequest = { credential: null, sql: req.sql, purpose: req.purpose, source: '127.0.0.1', channel: 'cleanroom' };
  const { value, auditId } = await auditedOpen(rt, q, 'cleanroom.read', { ...auditedQueryOptions(q), principal: req.principal }, async (env) => {
    const { state, entry } = env;
    env.keep(`collaboration ${req.collaborationId}`);
    env.keep(`request ${req.requestId}, for compute node ${req.peer}`);
    const principal = state.loaded.workspace.principals.get(req.principal);
    if (!principal) {
      throw new GatehouseError('POLICY_DENIED', `this node's workspace has no principal "${req.principal}" for its clean rooms`, {
        hint: 'declare the clean-room principal under principals: (it needs no API key) and permit it in a Cedar policy for the collaboration\'s purpose',
      });
    }
    // The checks every authenticated request passes (a suspension by monitoring holds here too).
    rt.checkGates(principal.id, null, 'cleanroom.read');
    const ws = state.loaded.workspace;
    const p = await plan(rt, { ...env, auth: { principal, mfaAt: null } }, q);
    const engine = state.engines.forDatasets(p.bound.datasets);
    const released = await execute(
      { query: p.governed.query, engine, timeoutMs: ws.defaults.statementTimeoutMs, protections: protectionsFor(rt, state, p) },
      executionContext(env, state.engines, ws.defaults.statementTimeoutMs),
    );
    const obligationsApplied = [...p.governed.obligationsApplied, ...released.labels];
    entry.reasons = p.decisions.flatMap((d) => d.reasons);
    entry.obligations = obligationsApplied;
    entry.rowsReturned = released.rows.length;
    entry.resultDigest = resultDigest(released.columns, released.rows);
    const response: QueryResponse = {
      columns: released.columns, rows: released.rows,
      governance: {
        policyVersion: ws.policyVersion, decision: 'allow', datasets: p.bound.datasets,
        policies: [...new Set(p.decisions.flatMap((d) => d.policies))],
        obligationsApplied, rowsSuppressed: released.rowsSuppressed, truncated: released.truncated, rowCap: p.governed.rowCap, auditId: '',
        ...(released.privacy ? { privacy: released.privacy } : {}),
      },
    };
    return response;
  });
  return { ...value, governance: { ...value.governance, auditId } };
}
