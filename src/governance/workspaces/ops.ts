/**
 * The partner-workspace operations (issue 23), rows of the governance op table
 * (src/governance/service.ts), so each has its HTTP route, CLI command (`gatehouse workspace
 * list|get|deposit|expire`) and OpenAPI entry from this one declaration, and is audited as
 * `governance.workspace.<op>`:
 *
 *   workspace.list     a partner's members see their organisation's items and when each expires
 *   workspace.get      one item's content, for the members of the organisation that holds it;
 *                      any other caller is told it does not exist (no existence oracle)
 *   workspace.deposit  a job output, clean-room result or model placed in a partner's workspace,
 *                      sealed under its own key, under an agreement in force that covers its data
 *   workspace.expire   crypto-shreds every item past its date (the scheduler runs it), with a
 *                      destruction certificate as its own audit entry
 *   workspace.release-model  a trained federated model placed in the workspace of the partner
 *                      of the agreement it was trained under (model-release.ts)
 *
 * Job outputs released by the airlock and clean-room results delivered to a receiving member
 * are deposited automatically (src/operations/airlock/deposit-release.ts,
 * src/operations/cleanroom/deposit-result.ts), through the same `depositDerivative`.
 *
 * Built by a factory that receives the table's shredding helper, so service.ts can list these
 * rows without an import cycle.
 */
import { GatehouseError } from '../../errors.ts';
import type { ArtefactMeta, DestructionCertificate } from '../../keys/artefacts.ts';
import type { GovernanceOp, OpContext } from '../service.ts';
import { GovernanceError, type GovernanceEvent } from '../types.ts';
import type { DepositInput } from './deposit.ts';
import { depositDerivative, type DerivativeDeps } from './derivative.ts';
import { releaseModel } from './model-release.ts';
import { expiredItems, inWorkspace, partnerWorkspace, WORKSPACE_ITEM_KINDS, type PartnerWorkspace } from './partner-workspace.ts';

/** The most a deposit may hold (encoded); larger outputs belong in a bundle (src/airlock). */
export const MAX_DEPOSIT_CHARS = 4_000_000;

export interface WorkspaceOpDeps {
  shred(ctx: OpContext, artefacts: readonly ArtefactMeta[], reason: string): Promise<{ certificates: DestructionCertificate[]; events: GovernanceEvent[]; destroyed: string[]; held: { artefact: string; holds: readonly string[] }[] }>;
}

const str = { type: 'string', minLength: 1, maxLength: 200 } as const;
const obj = (required: readonly string[], properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required: [...required], properties });

function orgOf(ctx: OpContext): string | null {
  const o = ctx.caller.attributes.org;
  return typeof o === 'string' && o !== '' ? o : null;
}

/** The workspace the caller may see: its own organisation's; an administrator may name one. */
function workspaceOrg(ctx: OpContext, asked: string | undefined): string {
  const own = orgOf(ctx);
  if (asked !== undefined && asked !== own && !ctx.isAdmin) {
    throw new GatehouseError('POLICY_DENIED', 'you may only see your own organisation\'s workspace', { hint: 'leave out --org; your workspace is your organisation\'s' });
  }
  const org = asked ?? own;
  if (!org) throw new GovernanceError('GOV_INVALID', 'your principal has no organisation, so it has no partner workspace', 'an administrator names one with --org ORG');
  return org;
}

async function derivativeDeps(ctx: OpContext): Promise<DerivativeDeps> {
  const { artefacts } = await ctx.vault();
  return { artefacts, agreements: ctx.store.agreements, catalog: ctx.workspace, retentionRules: await ctx.store.retention.rules(), now: ctx.now };
}

async function load(ctx: OpContext, org: string): Promise<{ ws: PartnerWorkspace; metas: ArtefactMeta[] }> {
  const { artefacts } = await ctx.vault();
  const metas = (await artefacts.list({ includeDestroyed: true })).filter((a) => inWorkspace(a, org));
  return { ws: partnerWorkspace(org, metas, await ctx.store.agreements.list({ partner: org }, ctx.now), ctx.now), metas };
}

export function workspaceOps(deps: WorkspaceOpDeps): GovernanceOp[] {
  const list: GovernanceOp<{ org?: string; destroyed?: boolean; withinDays?: number }> = {
    name: 'workspace.list', who: 'any',
    summary: 'Your organisation\'s partner workspace: saved results, job outputs, room results and models, and when each expires (docs/partner-workspaces.md)',
    http: { method: 'GET', path: '/v1/governance/workspace' },
    args: obj([], {
      org: { ...str, description: 'administrators: the partner organisation' }, destroyed: { type: 'boolean', description: 'include crypto-shredded items' },
      withinDays: { type: 'integer', minimum: 0, maximum: 36_500, description: 'only items that expire within this many days' },
    }),
    async run(ctx, a) {
      const { ws } = await load(ctx, workspaceOrg(ctx, a.org));
      const now = ctx.now.getTime();
      const horizon = a.withinDays === undefined ? null : new Date(now + a.withinDays * 86_400_000).toISOString();
      const items = ws.items.filter((i) => a.destroyed === true || i.destroyedAt === null)
        .filter((i) => horizon === null || (i.destroyedAt === null && i.expiresAt !== null && i.expiresAt <= horizon))
        // What expires when comes first, so the table a partner sees starts with it.
        .map(({ id, item, name, expiresAt, basis, ...rest }) => ({
          id, item, name, expiresAt,
          expiresInDays: expiresAt === null || rest.destroyedAt !== null ? null : Math.max(0, Math.ceil((Date.parse(expiresAt) - now) / 86_400_000)),
          basis, ...rest,
        }));
      return { result: { ...ws, items } };
    },
  };

  const get: GovernanceOp<{ id: string }> = {
    name: 'workspace.get', who: 'any',
    summary: 'One item of your organisation\'s workspace, with its content, while it has not expired',
    http: { method: 'GET', path: '/v1/governance/workspace/item' },
    args: obj(['id'], { id: str }),
    async run(ctx, a) {
      const org = orgOf(ctx);
      const notYours = new GovernanceError('GOV_NOT_FOUND', `no item "${a.id.slice(0, 64)}" in your organisation's workspace`, 'list it with: gatehouse workspace list');
      if (!org) throw notYours;
      const { ws } = await load(ctx, org);
      const item = ws.items.find((i) => i.id === a.id);
      if (!item) throw notYours;
      if (item.destroyedAt !== null) throw new GovernanceError('GOV_NOT_FOUND', `item ${item.id} was crypto-shredded at ${item.destroyedAt}`, 'its data key was destroyed; the certificate is in the audit log');
      // Past its date it is unreadable even before the scheduler shreds it.
      if (item.expiresAt !== null && item.expiresAt <= ctx.now.toISOString()) throw new GovernanceError('GOV_NOT_FOUND', `item ${item.id} expired at ${item.expiresAt} (${item.basis})`, 'it is crypto-shredded on the next scheduler round');
      const { artefacts } = await ctx.vault();
      const { meta, content } = await artefacts.get(item.id);
      const json = meta.mediaType === 'application/json';
      return { result: { item, mediaType: meta.mediaType, ...(json ? { content: JSON.parse(content.toString('utf8')) as unknown } : { contentBase64: content.toString('base64') }) } };
    },
  };

  const deposit: GovernanceOp<{ org: string; item: string; name: string; datasets: string[]; agreementId?: string; content: string; encoding?: 'utf8' | 'base64'; mediaType?: string }> = {
    name: 'workspace.deposit', who: 'admin',
    summary: 'Place a job output, clean-room result or model in a partner\'s workspace, sealed under its own key and expiring with the agreement that covers its datasets',
    http: { method: 'POST', path: '/v1/governance/workspace/deposit' },
    args: obj(['org', 'item', 'name', 'datasets', 'content'], {
      org: str, item: { type: 'string', enum: WORKSPACE_ITEM_KINDS.filter((k) => k !== 'result') }, name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$' },
      datasets: { type: 'array', minItems: 1, maxItems: 50, items: str }, agreementId: str,
      content: { type: 'string', maxLength: MAX_DEPOSIT_CHARS }, encoding: { type: 'string', enum: ['utf8', 'base64'] },
      mediaType: { type: 'string', enum: ['application/json', 'application/octet-stream', 'text/csv'] },
    }),
    async run(ctx, a) {
      const d = await depositDerivative(await derivativeDeps(ctx), {
        org: a.org, item: a.item as DepositInput['item'], name: a.name, datasets: a.datasets, ...(a.agreementId ? { agreementId: a.agreementId } : {}),
        content: Buffer.from(a.content, a.encoding ?? 'utf8'), mediaType: (a.mediaType ?? 'application/json') as DepositInput['mediaType'], by: ctx.caller.id, source: `placed by ${ctx.caller.id}`,
      });
      const { ws } = await load(ctx, a.org);
      return { result: { item: ws.items.find((i) => i.id === d.id)! }, events: [d.event] };
    },
  };

  const expire: GovernanceOp<{ org?: string; dryRun?: boolean }> = {
    name: 'workspace.expire', who: 'admin',
    summary: 'Crypto-shred partner-workspace content past its date (agreement end or termination, result retention), with a destruction certificate; the scheduler runs this',
    http: { method: 'POST', path: '/v1/governance/workspace/expire' },
    args: obj([], { org: str, dryRun: { type: 'boolean' } }),
    async run(ctx, a) {
      const { artefacts } = await ctx.vault();
      const orgs = a.org !== undefined ? [a.org] : [...new Set((await artefacts.list()).map((x) => x.labels.org).filter((o): o is string => typeof o === 'string' && o !== ''))].sort();
      const due: { org: string; item: string; expiresAt: string; basis: string }[] = [];
      const metas: ArtefactMeta[] = [];
      for (const org of orgs) {
        const { ws, metas: own } = await load(ctx, org);
        for (const i of expiredItems(ws, ctx.now)) {
          due.push({ org, item: i.id, expiresAt: i.expiresAt!, basis: i.basis });
          metas.push(own.find((m) => m.id === i.id)!);
        }
      }
      if (a.dryRun === true) return { result: { dryRun: true, due } };
      const s = await deps.shred(ctx, metas, 'partner workspace content expired');
      return {
        result: { due, destroyed: s.destroyed, held: s.held, certificates: s.certificates.map((c) => ({ certificateId: c.certificateId, count: c.count, digest: c.digest })) },
        events: s.events, certificates: s.certificates,
      };
    },
  };

  const releaseModelOp: GovernanceOp<{ model: string; org: string }> = {
    name: 'workspace.release-model', who: 'admin',
    summary: 'Release a trained federated model to the partner of the agreement it was trained under: it goes into that partner\'s workspace and expires with the agreement',
    http: { method: 'POST', path: '/v1/governance/workspace/release-model' },
    args: obj(['model', 'org'], { model: { ...str, description: 'the model artefact the coordinator stored (gatehouse fl status JOB)' }, org: str }),
    async run(ctx, a) {
      const d = await releaseModel(await derivativeDeps(ctx), { model: a.model, org: a.org, by: ctx.caller.id });
      const { ws } = await load(ctx, a.org);
      return { result: { item: ws.items.find((i) => i.id === d.id)! }, events: [d.event] };
    },
  };

  return [list, get, deposit, expire, releaseModelOp] as GovernanceOp[];
}
