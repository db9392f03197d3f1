/**
 * decide → plan → enforce, shared by query and estimate: the caller's context (purpose,
 * MFA age, device posture, network zone), each dataset at its effective classification,
 * step-up for regulated data, contractor governance, the Cedar decision per dataset, then
 * the SQL bound against the catalog and rewritten by the decision's obligations.
 *
 * Datasets are decided before any column is bound, so a denied caller learns nothing about
 * a dataset's columns from binding errors. Fills the audit entry as it goes.
 */
import { rowEstimatesOf } from '../../engine/engine.ts';
import { GatehouseError } from '../../errors.ts';
import type { GateResult } from '../../governance/gate.ts';
import { scopesPermit } from '../../identity/api-keys.ts';
import { evaluatePosture, postureContext } from '../../identity/posture.ts';
import type { Decision, RequestContext } from '../../policy/engine.ts';
import { bindQuery, referencedDatasets, type BoundQuery } from '../../query/bind.ts';
import { govern, type GovernedQuery } from '../../query/govern/index.ts';
import type { Select } from '../../query/ir.ts';
import { parseSql } from '../../query/parse.ts';
import { CLASSIFICATIONS, type DatasetDef, type PrincipalDef } from '../../model/types.ts';
import type { AuthenticatedEnvelope } from '../../kernel/audited.ts';
import { mfaRequired } from '../../kernel/authenticate.ts';
import { erasureRegistry } from '../../governance/erasure/registry.ts';
import { erasedCopiesOf } from '../../governance/erasure/copies.ts';
import type { Runtime, WorkspaceState } from '../../kernel/runtime.ts';
import type { QueryRequest, RequestMeta } from '../../kernel/types.ts';
import { planCacheOf } from './plan-cache.ts';

export const PURPOSE = /^[a-z][a-z0-9_.-]{0,63}$/;

export interface Plan {
  readonly principal: PrincipalDef;
  readonly decisions: readonly Decision[];
  readonly bound: BoundQuery;
  readonly governed: GovernedQuery;
  readonly gates: readonly GateResult[];
}

export function requirePurpose(purpose: unknown): string {
  if (typeof purpose !== 'string' || !PURPOSE.test(purpose)) {
    throw new GatehouseError('REQUEST_INVALID', 'a purpose is required: lower-case letters, digits, _ . - (at most 64 characters)', { hint: 'declare why you query, e.g. purpose "research"' });
  }
  return purpose;
}

export async function plan(rt: Runtime, env: AuthenticatedEnvelope, req: QueryRequest): Promise<Plan> {
  const { state, entry } = env;
  const { principal, mfaAt, scopes } = env.auth;
  const ws = state.loaded.workspace;
  const purpose = requirePurpose(req.purpose);
  const parsed = req.params !== undefined ? parseSql(req.sql, req.params) : parseCached(rt, req.sql);
  const names = referencedDatasets(parsed, { dataset: (n) => ws.datasets.get(n) });
  entry.datasets = names;
  if (scopes) {
    const outside = names.filter((n) => !scopesPermit(scopes, { dataset: n, action: 'query' }));
    if (outside.length > 0) {
      throw new GatehouseError('POLICY_DENIED', `this service key is not scoped for ${outside.map((n) => `"${n}"`).join(', ')}`, { reasons: ['API key scope'], hint: 'ask an administrator for a key scoped to the datasets and action you need' });
    }
  }
  const ctx = await identityContext(rt, state, req, purpose, principal, mfaAt);
  // Classifications an administrator confirmed (gatehouse classify confirm) are as binding
  // as the declared ones: the stricter of the two decides from here on.
  const effective = await Promise.all(names.map((n) => effectiveDataset(rt, ws.datasets.get(n)!)));
  // Step-up: regulated data needs a recent MFA event from those who must use MFA.
  const stepUp = ws.identity?.stepUpMinutes ?? null;
  if (stepUp !== null && mfaRequired(state, principal) && effective.some((d) => d.classification === 'regulated')) {
    if (ctx.mfaAgeSeconds === null || ctx.mfaAgeSeconds === undefined || ctx.mfaAgeSeconds > stepUp * 60) {
      throw new GatehouseError('MFA_REQUIRED', `regulated data needs a multi-factor check within the last ${stepUp} minutes`, { hint: 'POST /v1/auth/step-up with a current TOTP code (gatehouse mfa step-up), then retry' });
    }
  }
  // Contractor governance (agreements, grants, acknowledgements, training, vendor risk):
  // checked before Cedar, and its attributes join the Cedar context per dataset.
  const gates = await Promise.all(effective.map((d) => gate(rt, principal, d, purpose, ctx.time)));
  const refused = gates.flatMap((g) => g.denials);
  if (refused.length > 0) {
    throw new GatehouseError('POLICY_DENIED', `access denied by contractor governance: ${refused[0]!.message}`, { reasons: refused.map((d) => `${d.code}: ${d.message}`), hint: refused[0]!.hint });
  }
  const decisions = effective.map((d, i) => state.loaded.policy.decide(principal, d, { ...ctx, governance: gates[i]!.context }));
  const denied = decisions.filter((d) => !d.allowed);
  if (denied.length > 0) {
    throw new GatehouseError('POLICY_DENIED', `access denied to ${denied.map((d) => `"${d.dataset}"`).join(', ')}`, { reasons: denied.flatMap((d) => d.reasons) });
  }
  // Bound values make the tree differ per execution: only parameter-free SQL is cached.
  const bound = req.params !== undefined ? bindQuery(parsed, { dataset: (n) => ws.datasets.get(n) }) : bindCached(rt, state, req.sql, parsed);
  entry.columns = bound.columns;
  // Erasures and opt-outs (src/query/govern/erasure.ts): the registry hands out one map per
  // erasure generation and purpose, so a new erasure is a new cache key from the next request.
  const erased = await erasureRegistry(rt).excludedFor(purpose);
  const rewrite = (): GovernedQuery => govern(bound, {
    principal, datasets: ws.datasets, defaultRowCap: ws.defaults.rowCap, rowFilters: state.loaded.rowFilters,
    obligations: new Map(decisions.map((d) => [d.dataset, d.obligations])), columnsUsed: new Set(bound.columns),
    rowEstimates: rowEstimatesOf(state.engines.engines()), ...(ws.defaults.maxJoinRows ? { maxJoinRows: ws.defaults.maxJoinRows } : {}),
    erased, erasedCopies: erasedCopiesOf(state.engines.engines()),
  });
  // The rewrite is a pure function of these inputs (plan-cache.ts says what is never cached).
  const governed = req.params !== undefined ? rewrite() : planCacheOf(rt).governed(state, { principal, purpose, decisions, sql: req.sql, erasures: erasureGeneration(erased) }, rewrite);
  entry.obligations = [...governed.obligationsApplied];
  return { principal, decisions, bound, governed, gates };
}

const erasureIds = new WeakMap<object, number>();
let nextErasureId = 0;
/** A number that changes whenever the erasure set a request sees changes (one map per generation and purpose). */
function erasureGeneration(erased: object): number {
  let id = erasureIds.get(erased);
  if (id === undefined) { id = nextErasureId++; erasureIds.set(erased, id); }
  return id;
}

/** Parsed IR by SQL text (the IR is immutable and independent of policy). */
function parseCached(rt: Runtime, sql: string): Select {
  const hit = rt.parseCache.get(sql);
  if (hit) return hit;
  const parsed = parseSql(sql);
  rt.parseCache.set(sql, parsed);
  return parsed;
}

/** Bound IR by policy version + SQL text. Call only after the decision allowed every dataset. */
function bindCached(rt: Runtime, state: WorkspaceState, sql: string, parsed: Select): BoundQuery {
  const key = `${state.loaded.workspace.policyVersion}\u0000${sql}`;
  const hit = rt.bindCache.get(key);
  if (hit) return hit;
  const bound = bindQuery(parsed, { dataset: (n) => state.loaded.workspace.datasets.get(n) });
  rt.bindCache.set(key, bound);
  return bound;
}

/** The request context: purpose, address, channel, time — plus MFA age, device posture, network zone. */
export async function identityContext(rt: Runtime, state: WorkspaceState, req: RequestMeta, purpose: string, principal: PrincipalDef, mfaAt: number | null): Promise<RequestContext> {
  const base = requestContext(rt, req, purpose);
  const mfaAgeSeconds = mfaAt === null ? null : Math.max(0, Math.floor(base.time.getTime() / 1000) - mfaAt);
  const posture = state.loaded.workspace.identity?.posture ?? null;
  if (!posture) return { ...base, mfaAgeSeconds };
  const r = await evaluatePosture({ principalId: principal.id, token: req.posture ?? null, sourceIp: base.sourceIp, now: base.time }, posture);
  const pc = postureContext(r);
  return { ...base, mfaAgeSeconds, deviceCompliant: pc.deviceCompliant, networkZone: pc.networkZone };
}

export function requestContext(rt: Runtime, req: RequestMeta, purpose: string): RequestContext {
  return { purpose, sourceIp: normaliseIp(req.source), channel: req.channel, time: rt.now() };
}

/**
 * The dataset as decisions see it: each column at the stricter of its declared and its
 * confirmed classification (tags merged), and the dataset at least as strict as its
 * strictest column and its own confirmed level.
 */
export async function effectiveDataset(rt: Runtime, ds: DatasetDef): Promise<DatasetDef> {
  const cls = rt.governance.store.classification;
  const confirmed = await cls.list({ status: 'confirmed', dataset: ds.name });
  if (confirmed.length === 0) return ds;
  const columns = await Promise.all(ds.columns.map(async (c) => {
    const e = await cls.effectiveClassification(ds.name, c.name, c.classification, c.tags);
    return e.decision === null ? c : { ...c, classification: e.level, tags: e.tags };
  }));
  const own = await cls.effectiveClassification(ds.name, null, ds.classification, ds.tags);
  const level = columns.reduce((l, c) => (CLASSIFICATIONS.indexOf(c.classification) > CLASSIFICATIONS.indexOf(l) ? c.classification : l), own.level);
  return { ...ds, classification: level, tags: own.tags, columns };
}

export function gate(rt: Runtime, principal: PrincipalDef, dataset: DatasetDef, purpose: string, now: Date): Promise<GateResult> {
  return rt.governance.store.evaluate({ principal, dataset, purpose, now });
}

function normaliseIp(source: string): string {
  const s = source.startsWith('::ffff:') ? source.slice(7) : source;
  return /^[0-9.]+$/.test(s) || s.includes(':') ? s : '127.0.0.1';
}
