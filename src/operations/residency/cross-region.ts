/**
 * The audit entry of a query's step across regions (issue 20), inside the one audited
 * envelope: `residency.forward` on the node the request entered — what it sent to which
 * region and node, why (the datasets live there), and what came back. The data's node
 * writes no step of its own: it runs the forwarded request as the ordinary query operation
 * (one `query` entry per node), which says what it let cross the border, under which rule,
 * or the refusal naming the rule.
 *
 * The step authenticates the original principal on its own node (the forwarding node's word
 * is never taken for who asked) and carries the request id every node shares, so an auditor
 * can follow one request through every node's log. This module never touches an engine.
 */
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { QueryRequest } from '../../kernel/types.ts';
import { requirePurpose } from '../query/plan.ts';
import { auditedQueryOptions } from '../query/query.ts';

export interface CrossRegionOutcome<T> {
  readonly value: T;
  readonly reasons: readonly string[];
  readonly datasets: readonly string[];
  readonly obligations: readonly string[];
  readonly rowsReturned: number | null;
  readonly resultDigest: string | null;
}

export interface CrossRegionStep<T> {
  readonly action: 'residency.forward';
  readonly requestId: string;
  /** What the step is about before it runs (kept in the entry even if it fails). */
  readonly datasets: readonly string[];
  readonly why: string;
  readonly run: () => Promise<CrossRegionOutcome<T>>;
}

export async function crossRegion<T>(rt: Runtime, req: QueryRequest, step: CrossRegionStep<T>): Promise<{ value: T; auditId: string }> {
  return audited(rt, req, step.action, auditedQueryOptions(req), async (env) => {
    requirePurpose(req.purpose);
    env.entry.datasets = [...step.datasets];
    env.keep(`request ${step.requestId}`);
    env.keep(step.why);
    const o = await step.run();
    env.entry.datasets = [...o.datasets];
    env.entry.reasons = [...o.reasons];
    env.entry.obligations = [...o.obligations];
    env.entry.rowsReturned = o.rowsReturned;
    env.entry.resultDigest = o.resultDigest;
    return o.value;
  });
}
