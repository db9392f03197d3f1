/**
 * Governance operations: one table that the HTTP routes (src/server/governance-routes.ts),
 * the CLI (src/cli/governance.ts) and the OpenAPI document are all derived from. Each op
 * runs inside `Gatehouse.governanceOp`, which authenticates the caller, enforces `who`,
 * and writes one audit entry (plus one per destruction certificate) — so every
 * governance change is on the one path and in the one log.
 */
import type { CellValue } from '../engine/engine.ts';
import type { StoredAuditEntry } from '../audit/log.ts';
import type { DestructionCertificate } from '../keys/artefacts.ts';
import type { Vault } from '../pipeline/governance-runtime.ts';
import type { PrincipalDef, Workspace } from '../workspace/types.ts';
import type { GovernanceStore } from './store.ts';
import type { GovernanceEvent } from './types.ts';

/** Read access to the audit log for flows and reports (principals mapped back from pseudonyms). */
export interface AuditReader {
  entries(filter: { from?: string; to?: string }): AsyncIterable<StoredAuditEntry>;
  /** The principal id behind a pseudonym as stored in the log, when it is a workspace principal. */
  principalOf(pseudonym: string): string | null;
}

export interface OpContext {
  readonly caller: PrincipalDef;
  /** The caller is in identity.adminGroups. */
  readonly isAdmin: boolean;
  readonly workspace: Workspace;
  readonly store: GovernanceStore;
  vault(): Promise<Vault>;
  readonly now: Date;
  readonly audit: AuditReader | null;
  /** Data owners: members of a group named like the dataset's `owner` org's owners, or admins (see Gatehouse). */
  isOwner(principalId: string, dataset: string): boolean;
  /** Up to `limit` raw values per column, read inside Gatehouse for the classifier; never returned to the caller. */
  sample(dataset: string, columns: readonly string[], limit: number): Promise<ReadonlyMap<string, readonly CellValue[]>>;
}

export interface OpResult<T = unknown> {
  readonly result: T;
  /** Audited as reasons of the op's entry. */
  readonly events?: readonly GovernanceEvent[];
  /** Each one is written to the audit log as its own `governance.destruction` entry. */
  readonly certificates?: readonly DestructionCertificate[];
}

export type JsonSchema = Readonly<Record<string, unknown>>;

export interface GovernanceOp<A = any, T = unknown> {
  /** e.g. 'agreement.terminate'; audited as `governance.<name>`. */
  readonly name: string;
  /** admin: identity.adminGroups only; any: every authenticated principal (the op checks ownership itself). */
  readonly who: 'admin' | 'any';
  readonly summary: string;
  readonly http: { readonly method: 'GET' | 'POST'; readonly path: string };
  /** JSON Schema of the arguments (the POST body, or the GET query string). */
  readonly args?: JsonSchema;
  run(ctx: OpContext, args: A): Promise<OpResult<T>> | OpResult<T>;
}

const str = { type: 'string', maxLength: 200 } as const;

/** Terminating an agreement revokes its grants at once and crypto-shreds what was shared. */
const agreementTerminate: GovernanceOp<{ id: string; reason: string }> = {
  name: 'agreement.terminate',
  who: 'admin',
  summary: 'Terminate an agreement: its grants are revoked at once and the partner\'s saved results are crypto-shredded (certificate in the audit log)',
  http: { method: 'POST', path: '/v1/governance/agreements/terminate' },
  args: { type: 'object', additionalProperties: false, required: ['id', 'reason'], properties: { id: str, reason: { type: 'string', minLength: 1, maxLength: 1000 } } },
  async run(ctx, args) {
    const end = ctx.store.agreements.terminate(args.id, { by: ctx.caller.id, reason: args.reason });
    const certificates: DestructionCertificate[] = [];
    const held = new Set(end.destruction.holds.map((h) => `${h.subjectKind}:${h.subject}`));
    if (end.destruction.required && !held.has(`agreement:${end.agreement.id}`)) {
      const { artefacts } = await ctx.vault();
      const inScope = artefacts.list({ labels: { agreement: end.agreement.id } })
        .filter((a) => !held.has(`principal:${a.owner}`) && !(a.labels.dataset !== undefined && held.has(`dataset:${a.labels.dataset}`)) && a.legalHold === null);
      if (inScope.length > 0) certificates.push(await artefacts.destroy(inScope.map((a) => a.id), `agreement ${end.agreement.id} terminated: ${args.reason}`));
    }
    return {
      result: { agreement: end.agreement, revokedGrants: end.revokedGrants, destruction: end.destruction, certificates: certificates.map((c) => ({ certificateId: c.certificateId, count: c.count, digest: c.digest })) },
      events: end.events,
      certificates,
    };
  },
};

const agreementList: GovernanceOp<{ partner?: string }> = {
  name: 'agreement.list',
  who: 'admin',
  summary: 'List agreements with their current status',
  http: { method: 'GET', path: '/v1/governance/agreements' },
  args: { type: 'object', additionalProperties: false, properties: { partner: str } },
  run(ctx, args) {
    return { result: { agreements: ctx.store.agreements.list(args.partner ? { partner: args.partner } : {}, ctx.now) } };
  },
};

export const GOVERNANCE_OPS: readonly GovernanceOp[] = [agreementList, agreementTerminate];

export function governanceOp(name: string): GovernanceOp | undefined {
  return GOVERNANCE_OPS.find((o) => o.name === name);
}
