/**
 * What one logged request would get under one workspace version, computed by the real
 * planner without executing anything: decide (Cedar, per dataset) → parse → bind → govern
 * (the obligation transformers of src/query/govern), stopping before the engine.
 *
 * Both the version in force and the draft are evaluated here under the same reconstructed
 * request context, so a difference between the two outcomes is a difference of policy, never
 * an artefact of what the log could not record (the MFA age, the device posture token). The
 * context: purpose, channel, source address and time from the entry; MFA present for
 * principals who must use it (they could not have been served otherwise); the contractor-
 * governance attributes from the live governance store when the caller supplies it.
 */
import { isIP } from 'node:net';
import { GatehouseError } from '../../errors.ts';
import { rhoForEpsilonDelta } from '../../privacy/accounting/zcdp.ts';
import type { DatasetDef, DifferentialPrivacyDef, ObligationDef, PrincipalDef } from '../../model/types.ts';
import type { RequestContext } from '../../policy/engine.ts';
import { bindQuery } from '../../query/bind.ts';
import { effectiveAccess } from '../../query/govern/effective-access.ts';
import { govern } from '../../query/govern/index.ts';
import { describeMask } from '../../query/masks/registry.ts';
import { parseSql } from '../../query/parse.ts';
import type { Select } from '../../query/ir.ts';
import type { LoadedWorkspace } from '../../workspace/validate.ts';
import type { LoggedRequest } from './logged-request.ts';

/** Contractor-governance attributes for the Cedar context (GovernanceStore.evaluate), when replayed live. */
export type GateContext = (principal: PrincipalDef, dataset: DatasetDef, purpose: string, now: Date) => Promise<{ readonly context: Readonly<Record<string, string | number | boolean>>; readonly denials: readonly string[] } | null>;

export interface DpCost {
  readonly epsilon: number;
  readonly delta: number;
  /** zCDP ρ charged per query (src/privacy/release.ts). */
  readonly rho: number;
  /** The budget the charge counts against. */
  readonly subject: string;
  readonly capRho: number;
  readonly window: DifferentialPrivacyDef['budget']['window'];
}

export interface DatasetOutcome {
  readonly dataset: string;
  readonly allowed: boolean;
  /** Why not, when not allowed (Cedar reasons, or the planner's refusal code and message). */
  readonly reasons: readonly string[];
  readonly policies: readonly string[];
  /** Each referenced column's mask ("redact", "last4", …), or null when returned as stored; join-only columns are "join-only". */
  readonly columns: Readonly<Record<string, string | null>>;
  /** The row filter expressions in force (obligation texts), sorted. */
  readonly rowFilters: readonly string[];
  readonly rowCap: number | null;
  readonly aggregationOnly: number | null;
  readonly dp: DpCost | null;
}

export interface RequestOutcome {
  readonly allowed: boolean;
  /** 'sql': the stored text went through parse → bind → govern; 'shape': the logged datasets and columns. */
  readonly mode: 'sql' | 'shape';
  readonly datasets: readonly DatasetOutcome[];
}

export interface OutcomeOptions {
  readonly gate?: GateContext;
  /** The stored SQL text of the request, when the workspace keeps it. */
  readonly sql?: string | null;
  /** A cache of parsed statements by text (the replay parses each distinct text once). */
  readonly parsed?: Map<string, Select | GatehouseError>;
  /**
   * A cache of planned statements for THIS workspace version, by text, principal and the
   * obligations decided: binding and governing depend on nothing else.
   */
  readonly plans?: Map<string, { columns: readonly string[]; refusal: GatehouseError | null }>;
}

/**
 * The log keeps source addresses pseudonymised (src/audit/log.ts), so a replayed request
 * comes from the loopback address unless the entry holds a plain one: a policy on
 * `context.sourceIp` is evaluated alike under both versions (docs/policy-whatif.md).
 */
function normaliseIp(source: string): string {
  const s = source.startsWith('::ffff:') ? source.slice(7) : source;
  return isIP(s) ? s : '127.0.0.1';
}

export function replayContext(l: LoadedWorkspace, principal: PrincipalDef, r: LoggedRequest): RequestContext {
  const mfaGroups = l.workspace.identity?.mfaRequiredForGroups ?? [];
  const mfa = principal.groups.some((g) => mfaGroups.includes(g));
  return { purpose: r.purpose, sourceIp: normaliseIp(r.source), channel: r.channel, time: new Date(r.time), mfaAgeSeconds: mfa ? 0 : null };
}

function budgetSubject(principal: PrincipalDef, def: DifferentialPrivacyDef): string {
  const org = principal.attributes.org;
  return def.budget.per === 'org' && typeof org === 'string' ? `org:${org}` : principal.id;
}

/** ρ per query, as the release charges it (src/privacy/release.ts). */
export function rhoPerQuery(def: DifferentialPrivacyDef): number {
  return def.mechanism === 'gaussian' ? rhoOf(def.epsilon, def.delta) : (def.epsilon * def.epsilon) / 2;
}

/** ρ(ε, δ) is a numerical inversion; a replay asks for the same few pairs again and again. */
const RHO = new Map<string, number>();
function rhoOf(epsilon: number, delta: number): number {
  const k = `${epsilon}/${delta}`;
  let v = RHO.get(k);
  if (v === undefined) { v = rhoForEpsilonDelta(epsilon, delta); RHO.set(k, v); }
  return v;
}

function denied(dataset: string, reasons: readonly string[], policies: readonly string[] = []): DatasetOutcome {
  return { dataset, allowed: false, reasons, policies, columns: {}, rowFilters: [], rowCap: null, aggregationOnly: null, dp: null };
}

function accessOutcome(l: LoadedWorkspace, principal: PrincipalDef, ds: DatasetDef, obligations: readonly ObligationDef[], policies: readonly string[], columns: readonly string[]): DatasetOutcome {
  const access = effectiveAccess(ds, obligations, l.workspace.defaults.rowCap);
  const cols: Record<string, string | null> = {};
  for (const ref of columns) {
    const dot = ref.indexOf('.');
    if (ref.slice(0, dot) !== ds.name) continue;
    const c = access.columns.get(ref.slice(dot + 1));
    if (!c) continue;
    cols[c.name] = c.joinOnly ? 'join-only' : c.mask ? describeMask(c.mask) : null;
  }
  const dpDef = access.differentialPrivacy;
  return {
    dataset: ds.name, allowed: true, reasons: [], policies: [...policies].sort(), columns: cols,
    rowFilters: obligations.map((o) => o.rowFilter).filter((f): f is string => f !== null).sort(),
    rowCap: access.rowCap, aggregationOnly: access.aggregationOnly?.minGroupSize ?? null,
    dp: dpDef ? { epsilon: dpDef.epsilon, delta: dpDef.delta, rho: rhoPerQuery(dpDef), subject: budgetSubject(principal, dpDef), capRho: rhoOf(dpDef.budget.epsilon, dpDef.budget.delta), window: dpDef.budget.window } : null,
  };
}

/** The outcome of one logged request under workspace `l`. */
export async function outcomeOf(l: LoadedWorkspace, r: LoggedRequest, options: OutcomeOptions = {}): Promise<RequestOutcome> {
  const ws = l.workspace;
  const principal = ws.principals.get(r.principal);
  const mode = options.sql ? 'sql' : 'shape';
  if (!principal) return { allowed: false, mode, datasets: r.datasets.map((d) => denied(d, [`principal "${r.principal}" is not declared in this version`])) };
  const ctx = replayContext(l, principal, r);
  const decided: { ds: DatasetDef; obligations: readonly ObligationDef[]; policies: readonly string[] }[] = [];
  const out: DatasetOutcome[] = [];
  for (const name of r.datasets) {
    const ds = ws.datasets.get(name);
    if (!ds) { out.push(denied(name, [`dataset "${name}" is not declared in this version`])); continue; }
    const gated = options.gate ? await options.gate(principal, ds, r.purpose, ctx.time) : null;
    // Contractor governance refuses before Cedar, under either version alike.
    if (gated && gated.denials.length > 0) { out.push(denied(name, gated.denials)); continue; }
    const d = l.policy.decide(principal, ds, gated ? { ...ctx, governance: gated.context } : ctx);
    if (!d.allowed) { out.push(denied(name, d.reasons, d.policies)); continue; }
    decided.push({ ds, obligations: d.obligations, policies: d.policies });
  }
  if (out.length > 0) {
    // The pipeline refuses the whole request when any dataset is denied.
    return { allowed: false, mode, datasets: [...out, ...decided.map((x) => ({ ...accessOutcome(l, principal, x.ds, x.obligations, x.policies, r.columns), allowed: false, reasons: ['another dataset of the request is denied'] }))] };
  }
  let refusal: GatehouseError | null = null;
  let columns = r.columns;
  if (options.sql) {
    const key = `${options.sql}\u0000${principal.id}\u0000${decided.map((x) => `${x.ds.name}:${x.obligations.map((o) => o.name).join(',')}`).join(';')}`;
    let planned = options.plans?.get(key);
    if (!planned) {
      planned = plan(l, principal, options.sql, decided, options.parsed);
      options.plans?.set(key, planned);
    }
    columns = planned.columns ?? columns;
    refusal = planned.refusal;
  }
  const datasets = decided.map((x) => accessOutcome(l, principal, x.ds, x.obligations, x.policies, columns));
  if (refusal) return { allowed: false, mode, datasets: datasets.map((d) => ({ ...d, allowed: false, reasons: [`${refusal.code}: ${refusal.message}`] })) };
  return { allowed: true, mode, datasets };
}

/** parse → bind → govern, stopping before the engine: the columns touched, or the planner's refusal. */
function plan(l: LoadedWorkspace, principal: PrincipalDef, sql: string, decided: readonly { ds: DatasetDef; obligations: readonly ObligationDef[] }[], parsed: Map<string, Select | GatehouseError> | undefined): { columns: readonly string[]; refusal: GatehouseError | null } {
  const ws = l.workspace;
  let columns: readonly string[] = [];
  try {
    const bound = bindQuery(parsedOf(sql, parsed), { dataset: (n) => ws.datasets.get(n) });
    columns = bound.columns;
    govern(bound, {
      principal, datasets: ws.datasets, defaultRowCap: ws.defaults.rowCap, rowFilters: l.rowFilters,
      obligations: new Map(decided.map((x) => [x.ds.name, x.obligations])), columnsUsed: new Set(bound.columns),
      ...(ws.defaults.maxJoinRows ? { maxJoinRows: ws.defaults.maxJoinRows } : {}),
    });
    return { columns, refusal: null };
  } catch (err) {
    if (!(err instanceof GatehouseError)) throw err;
    return { columns, refusal: err };
  }
}

function parsedOf(sql: string, cache: Map<string, Select | GatehouseError> | undefined): Select {
  const hit = cache?.get(sql);
  if (hit instanceof GatehouseError) throw hit;
  if (hit) return hit;
  try {
    const p = parseSql(sql);
    cache?.set(sql, p);
    return p;
  } catch (err) {
    if (err instanceof GatehouseError) cache?.set(sql, err);
    throw err;
  }
}
