/**
 * Contractor-governance operations (src/governance/service.ts lists them): the caller is
 * authenticated, the op's `who` enforced, and the op audited as `governance.<name>` with
 * the events it caused; each destruction certificate then becomes its own audit entry.
 * The scheduler runs ops as the principal `gatehouse-scheduler`, audited the same way.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../../errors.ts';
import { governanceOp as findGovernanceOp, type AuditReader, type OpContext } from '../../governance/service.ts';
import type { DestructionCertificate } from '../../keys/artefacts.ts';
import { spentEpsilon } from '../../privacy/release.ts';
import type { PrincipalDef } from '../../model/types.ts';
import { auditedOpen, draftEntry, record } from '../../kernel/audited.ts';
import { authenticate } from '../../kernel/authenticate.ts';
import { internalRead } from '../../kernel/execute.ts';
import { sampleQuery } from '../../kernel/internal-queries.ts';
import type { Runtime, WorkspaceState } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import type { CellValue } from '../../engine/engine.ts';
import { erasureRegistry } from '../../governance/erasure/registry.ts';

/** The principal the governance scheduler acts as (retention, close-out, daily reports). */
const SCHEDULER: PrincipalDef = { id: 'gatehouse-scheduler', kind: 'service', displayName: 'Gatehouse scheduler', groups: [], attributes: {}, apiKeySha256: [] };

type Caller = () => Promise<{ principal: PrincipalDef; isAdmin: boolean }>;

async function runOp(rt: Runtime, meta: RequestMeta, name: string, args: unknown, who: Caller): Promise<unknown> {
  const op = findGovernanceOp(name);
  const certificates: DestructionCertificate[] = [];
  let principal: string | null = null;
  const { value } = await auditedOpen(rt, meta, `governance.${op ? op.name : 'unknown'}`, {}, async ({ state, entry }) => {
    if (!op) throw new GatehouseError('NOT_FOUND', `there is no governance operation "${String(name).slice(0, 64)}"`);
    const caller = await who();
    entry.principal = principal = caller.principal.id;
    if (op.who === 'admin' && !caller.isAdmin) throw new GatehouseError('POLICY_DENIED', `${op.name} is for administrators (${rt.adminGroups().join(', ')})`, { hint: 'ask an administrator' });
    // Governance errors are GatehouseErrors: a conflict stays 409, a missing record 404.
    const r = await op.run(opContext(rt, state, caller.principal, caller.isAdmin), (args ?? {}) as never);
    certificates.push(...(r.certificates ?? []));
    entry.reasons = (r.events ?? []).map((e) => `${e.action} ${e.outcome}: ${e.detail}`);
    return r.result;
  });
  for (const c of certificates) {
    const ce = draftEntry(rt, rt.state, meta, 'governance.destruction');
    ce.principal = principal;
    ce.decision = 'allow';
    ce.reasons = [`destruction certificate ${c.certificateId}: ${c.count} artefact(s), ${c.totalBytes} bytes, ${c.method}; reason: ${c.reason}`, JSON.stringify({ certificateId: c.certificateId, digest: c.digest, destroyedAt: c.destroyedAt, artefacts: c.artefacts.map((a) => ({ id: a.id, owner: a.owner, ciphertextSha256: a.ciphertextSha256, keyId: a.keyId, wrappedKeyDigest: a.wrappedKeyDigest })) })];
    await record(rt, ce);
  }
  return value;
}

/** One governance operation for an authenticated caller (HTTP, CLI). */
export function governanceOp(rt: Runtime, meta: RequestMeta, name: string, args: unknown): Promise<unknown> {
  return runOp(rt, meta, name, args, async () => {
    const { principal } = await authenticate(rt, rt.state, meta.credential, meta.source);
    return { principal, isAdmin: rt.isAdmin(principal) };
  });
}

/**
 * The scheduler's round (every few minutes while serving): close out ended agreements and
 * shred what retention says must go and partner-workspace content past its date (never what
 * is under legal hold). With `reportsDir`,
 * also writes the previous day's compliance report there once (HTML).
 */
export async function runScheduledGovernance(rt: Runtime, options: { reportsDir?: string; now?: Date } = {}): Promise<{ retention: unknown; workspaces: unknown; report: string | null }> {
  const meta: RequestMeta = { credential: null, source: 'scheduler', channel: 'scheduler' };
  const system: Caller = async () => ({ principal: SCHEDULER, isAdmin: true });
  const retention = await runOp(rt, meta, 'retention.run', {}, system);
  // Partner workspaces: content past its agreement's end or termination is shredded too.
  const workspaces = await runOp(rt, meta, 'workspace.expire', {}, system);
  let report: string | null = null;
  if (options.reportsDir) {
    const now = options.now ?? rt.now();
    const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const from = new Date(day.getTime() - 86_400_000);
    const file = join(options.reportsDir, `compliance-${from.toISOString().slice(0, 10)}.html`);
    if (!existsSync(file)) {
      const r = await runOp(rt, meta, 'report.build', { from: from.toISOString(), to: day.toISOString(), format: 'html' }, system) as { body: string };
      mkdirSync(options.reportsDir, { recursive: true, mode: 0o700 });
      writeFileSync(file, r.body, { mode: 0o600 });
      report = file;
    }
  }
  return { retention, workspaces, report };
}

/**
 * Seeds the demo's partners, agreements, grants, acknowledgements and training into an
 * empty governance store; audited as one governance entry.
 */
export async function setupDemoGovernance(rt: Runtime, seed: (store: typeof rt.governance.store, o: { datasets: string[] }) => Promise<readonly { action: string; outcome: string; detail: string }[]>): Promise<number> {
  const events = await seed(rt.governance.store, { datasets: [...rt.state.loaded.workspace.datasets.keys()] });
  if (events.length > 0) {
    await auditedOpen(rt, { credential: null, source: 'cli', channel: 'cli' }, 'governance.demo-setup', { principal: 'demo-setup' }, async ({ entry }) => {
      entry.reasons = events.map((e) => `${e.action} ${e.outcome}: ${e.detail}`);
    });
  }
  return events.length;
}

function opContext(rt: Runtime, state: WorkspaceState, principal: PrincipalDef, isAdmin: boolean): OpContext {
  const ws = state.loaded.workspace;
  const reader = rt.options.auditReader;
  let reverse: Map<string, string> | null = null;
  const audit: AuditReader | null = reader ? {
    async *entries(filter) { for await (const { leaf } of reader.scan(filter)) yield leaf.entry; },
    principalOf(pseudonym) {
      if (!reverse) {
        reverse = new Map();
        for (const id of ws.principals.keys()) for (const ps of reader.pseudonymsOf(id)) reverse.set(ps, id);
      }
      return reverse.get(pseudonym) ?? null;
    },
  } : null;
  return {
    caller: principal, isAdmin, workspace: ws, store: rt.governance.store, vault: () => rt.governance.vault(), now: rt.now(), audit,
    erasures: () => erasureRegistry(rt).rows(),
    budgetUse: async () => {
      const pairs = new Map<string, { subject: string; dataset: string }>();
      for (const e of await rt.budgets.history({ limit: 100_000 })) pairs.set(`${e.subject}\u0000${e.dataset}`, { subject: e.subject, dataset: e.dataset });
      const out: { subject: string; dataset: string; spentEpsilon: number; capEpsilon: number }[] = [];
      // ε at the smallest budget δ of the workspace's DP obligations (the conservative reading).
      const deltas = [...ws.obligations.values()].flatMap((o) => (o.differentialPrivacy ? [o.differentialPrivacy.budget.delta] : []));
      for (const { subject, dataset } of pairs.values()) {
        const st = await rt.budgets.status(subject, dataset);
        if (!st || deltas.length === 0) continue;
        const delta = Math.min(...deltas);
        // Tight accounting (pld.ts) reports the composed ε at the budget's own δ; older budgets, through zCDP.
        out.push({ subject, dataset, spentEpsilon: st.tight?.spentEpsilon ?? spentEpsilon(st.spentRho, delta), capEpsilon: st.tight?.epsilon ?? spentEpsilon(st.capRho, delta) });
      }
      return out;
    },
    isOwner: (principalId, dataset) => {
      const p = ws.principals.get(principalId);
      const ds = ws.datasets.get(dataset);
      if (!p || !ds) return false;
      return rt.isAdmin(p) || (p.groups.includes('data-owners') && ds.owner !== null && p.attributes.org === ds.owner);
    },
    sample: async (dataset, columns, limit) => {
      const ds = ws.datasets.get(dataset);
      if (!ds) throw new GatehouseError('NOT_FOUND', `no dataset "${dataset}"`);
      const cols = columns.filter((c) => ds.columns.some((d) => d.name === c));
      const out = new Map<string, CellValue[]>();
      if (cols.length === 0) return out;
      const n = Math.max(1, Math.min(10_000, Math.floor(limit)));
      const r = await internalRead(state.engines, sampleQuery(ds, cols, n), dataset, ws.defaults.statementTimeoutMs);
      cols.forEach((c, i) => out.set(c, r.rows.map((row) => row[i] ?? null)));
      return out;
    },
  };
}
