/**
 * Access review (issue 4, "least privilege made visible"): each principal's effective
 * access — the datasets and purposes policy allows, the columns they see unmasked, row
 * filters, aggregation-only / differential-privacy / join-only obligations, the row cap —
 * and the grants they have not used for N days.
 *
 * It asks the same `decide` the request path uses (Cedar over the workspace), once per
 * principal × dataset × purpose, in one evaluation context (`evaluatedAs`). Policies that
 * depend on the source address or the time are reported as they decide for that context;
 * the report says so. Column effects are the effective-access function the mask transformer
 * and the dataset listing use (src/query/govern/effective-access.ts).
 *
 * Usage comes from the caller (derived from the audit log): `{ principalId, dataset,
 * lastUsedAt, purpose? }`. A grant is unused when no use of that dataset (for one of the
 * grant's purposes, when the usage record names one) falls in the last N days.
 */
import { GatehouseError } from '../errors.ts';
import type { Decision, RequestContext } from '../policy/engine.ts';
import { describeMask } from '../query/govern/mask.ts';
import { effectiveAccess } from '../query/govern/effective-access.ts';
import type { DatasetDef, ObligationDef, PrincipalDef } from '../model/types.ts';

/** Malformed review input: REQUEST_INVALID, detail ACCESS_REVIEW_INVALID. */
export class AccessReviewInvalid extends GatehouseError {
  declare readonly detail: 'ACCESS_REVIEW_INVALID';
  constructor(message: string) {
    super('REQUEST_INVALID', message, { detail: 'ACCESS_REVIEW_INVALID', reasons: ['ACCESS_REVIEW_INVALID'] });
  }
}

export interface UsageRecord {
  readonly principalId: string;
  readonly dataset: string;
  readonly lastUsedAt: Date | string;
  /** When known, usage counts only for grants that include this purpose. */
  readonly purpose?: string | null;
}

export interface AccessReviewInput {
  readonly principals: Iterable<PrincipalDef>;
  readonly datasets: Iterable<DatasetDef>;
  readonly decide: (principal: PrincipalDef, dataset: DatasetDef, context: RequestContext) => Decision;
  /** Purposes to ask about per dataset; default: each dataset's declared purposes. */
  readonly purposes?: Readonly<Record<string, readonly string[]>> | ReadonlyMap<string, readonly string[]>;
  readonly usage: readonly UsageRecord[];
  /** A grant with no use in this many days is reported as unused (default 90). */
  readonly unusedAfterDays?: number;
  readonly now: Date;
  /** The workspace default row cap (obligations may lower it). */
  readonly defaultRowCap?: number;
  /** Evaluation context besides purpose and time (default: 127.0.0.1 over channel "review"). */
  readonly sourceIp?: string;
  readonly channel?: string;
  readonly policyVersion?: string | null;
}

export interface ColumnAccess {
  readonly column: string;
  /** Mask name (`redact`, `hash`, `truncate(year)`…), or null when seen unmasked. */
  readonly mask: string | null;
  readonly joinOnly: boolean;
}

/** One grant: a dataset and the purposes for which policy has the same effect. */
export interface DatasetGrant {
  readonly dataset: string;
  readonly classification: string;
  readonly purposes: readonly string[];
  /** Determining permit policies. */
  readonly policies: readonly string[];
  readonly obligations: readonly string[];
  /** Returned as stored: no mask and not join-only. */
  readonly unmaskedColumns: readonly string[];
  readonly maskedColumns: readonly { readonly column: string; readonly mask: string }[];
  /** Usable in JOIN/WHERE, never returned. */
  readonly joinOnlyColumns: readonly string[];
  /** Row filter expressions (in terms of the dataset's columns and principal attributes). */
  readonly rowFilters: readonly string[];
  readonly aggregationOnly: { readonly minGroupSize: number } | null;
  readonly differentialPrivacy: { readonly epsilon: number; readonly delta: number; readonly budgetEpsilon: number; readonly budgetPer: 'principal' | 'org' } | null;
  readonly rowCap: number | null;
  readonly lastUsedAt: string | null;
  /** Days since last use (floor), or null when never used. */
  readonly daysSinceUse: number | null;
  readonly unused: boolean;
}

export interface PrincipalAccess {
  readonly principalId: string;
  readonly kind: 'user' | 'service';
  readonly displayName: string | null;
  readonly groups: readonly string[];
  readonly grants: readonly DatasetGrant[];
  readonly unusedGrants: number;
}

export interface AccessReport {
  readonly generatedAt: string;
  readonly policyVersion: string | null;
  readonly unusedAfterDays: number;
  /** The context every decision was evaluated in. */
  readonly evaluatedAs: { readonly sourceIp: string; readonly channel: string; readonly time: string };
  readonly principals: readonly PrincipalAccess[];
  readonly summary: { readonly principals: number; readonly grants: number; readonly unusedGrants: number; readonly principalsWithoutAccess: readonly string[] };
}

const DAY_MS = 86_400_000;


interface Effect {
  readonly policies: readonly string[];
  readonly obligations: readonly string[];
  readonly columns: readonly ColumnAccess[];
  readonly rowFilters: readonly string[];
  readonly aggregationOnly: DatasetGrant['aggregationOnly'];
  readonly differentialPrivacy: DatasetGrant['differentialPrivacy'];
  readonly rowCap: number | null;
}

/** What a set of obligations does to a dataset, as the governance transformers apply it. */
export function effectOf(ds: DatasetDef, obligations: readonly ObligationDef[], policies: readonly string[], defaultRowCap: number | null): Effect {
  const access = effectiveAccess(ds, obligations, defaultRowCap);
  const dp = access.differentialPrivacy;
  return {
    policies: [...policies].sort(),
    obligations: obligations.map((o) => o.name).sort(),
    columns: [...access.columns.values()].map((c): ColumnAccess => ({ column: c.name, mask: c.mask ? describeMask(c.mask) : null, joinOnly: c.joinOnly })),
    rowFilters: obligations.map((o) => o.rowFilter).filter((f): f is string => f !== null),
    aggregationOnly: access.aggregationOnly,
    // Several DP obligations: report the strictest per-query ε (the release uses one mechanism).
    differentialPrivacy: dp ? { epsilon: dp.epsilon, delta: dp.delta, budgetEpsilon: dp.budget.epsilon, budgetPer: dp.budget.per } : null,
    rowCap: access.rowCap,
  };
}

function toTime(v: Date | string, what: string): number {
  const t = v instanceof Date ? v.getTime() : Date.parse(v);
  if (!Number.isFinite(t)) throw new AccessReviewInvalid(`usage: ${what} has an unreadable lastUsedAt`);
  return t;
}

/** Computes the access review. Throws `AccessReviewInvalid` for malformed input only. */
export function accessReview(input: AccessReviewInput): AccessReport {
  const unusedAfterDays = input.unusedAfterDays ?? 90;
  if (!Number.isInteger(unusedAfterDays) || unusedAfterDays < 1) throw new AccessReviewInvalid('unusedAfterDays must be a positive integer');
  if (!(input.now instanceof Date) || !Number.isFinite(input.now.getTime())) throw new AccessReviewInvalid('now must be a valid Date');
  const now = input.now.getTime();
  const sourceIp = input.sourceIp ?? '127.0.0.1';
  const channel = input.channel ?? 'review';
  const purposesFor = (ds: DatasetDef): readonly string[] => {
    const p = input.purposes;
    const given = p === undefined ? undefined : p instanceof Map ? p.get(ds.name) : (p as Readonly<Record<string, readonly string[]>>)[ds.name];
    return given ?? ds.purposes;
  };

  // Latest use per principal → dataset → purpose ('' = purpose not recorded).
  const lastUse = new Map<string, Map<string, Map<string, number>>>();
  for (const u of input.usage) {
    const t = toTime(u.lastUsedAt, `${u.principalId}/${u.dataset}`);
    const byDs = lastUse.get(u.principalId) ?? new Map<string, Map<string, number>>();
    lastUse.set(u.principalId, byDs);
    const byPurpose = byDs.get(u.dataset) ?? new Map<string, number>();
    byDs.set(u.dataset, byPurpose);
    const key = u.purpose ?? '';
    byPurpose.set(key, Math.max(byPurpose.get(key) ?? -Infinity, t));
  }

  const datasets = [...input.datasets].sort((a, b) => a.name.localeCompare(b.name));
  const principals: PrincipalAccess[] = [];
  for (const p of [...input.principals].sort((a, b) => a.id.localeCompare(b.id))) {
    const grants: DatasetGrant[] = [];
    for (const ds of datasets) {
      // Purposes with the same effect form one grant.
      const groups = new Map<string, { effect: Effect; purposes: string[] }>();
      for (const purpose of purposesFor(ds)) {
        const d = input.decide(p, ds, { purpose, sourceIp, channel, time: input.now });
        if (!d.allowed) continue;
        const effect = effectOf(ds, d.obligations, d.policies, input.defaultRowCap ?? null);
        const key = JSON.stringify(effect);
        const g = groups.get(key) ?? { effect, purposes: [] };
        g.purposes.push(purpose);
        groups.set(key, g);
      }
      for (const { effect, purposes } of groups.values()) {
        const uses = lastUse.get(p.id)?.get(ds.name);
        let last = -Infinity;
        for (const [purpose, t] of uses ?? []) if (purpose === '' || purposes.includes(purpose)) last = Math.max(last, t);
        const used = Number.isFinite(last);
        grants.push({
          dataset: ds.name, classification: ds.classification, purposes,
          policies: effect.policies, obligations: effect.obligations,
          unmaskedColumns: effect.columns.filter((c) => c.mask === null && !c.joinOnly).map((c) => c.column),
          maskedColumns: effect.columns.filter((c) => c.mask !== null && !c.joinOnly).map((c) => ({ column: c.column, mask: c.mask! })),
          joinOnlyColumns: effect.columns.filter((c) => c.joinOnly).map((c) => c.column),
          rowFilters: effect.rowFilters, aggregationOnly: effect.aggregationOnly, differentialPrivacy: effect.differentialPrivacy, rowCap: effect.rowCap,
          lastUsedAt: used ? new Date(last).toISOString() : null,
          daysSinceUse: used ? Math.max(0, Math.floor((now - last) / DAY_MS)) : null,
          unused: !used || now - last > unusedAfterDays * DAY_MS,
        });
      }
    }
    principals.push({ principalId: p.id, kind: p.kind, displayName: p.displayName, groups: p.groups, grants, unusedGrants: grants.filter((g) => g.unused).length });
  }
  return {
    generatedAt: input.now.toISOString(),
    policyVersion: input.policyVersion ?? null,
    unusedAfterDays,
    evaluatedAs: { sourceIp, channel, time: input.now.toISOString() },
    principals,
    summary: {
      principals: principals.length,
      grants: principals.reduce((n, p) => n + p.grants.length, 0),
      unusedGrants: principals.reduce((n, p) => n + p.unusedGrants, 0),
      principalsWithoutAccess: principals.filter((p) => p.grants.length === 0).map((p) => p.principalId),
    },
  };
}

/** One short phrase per obligation kind that limits what comes back. */
function limits(g: DatasetGrant): string {
  const out: string[] = [];
  if (g.differentialPrivacy) out.push(`DP ε=${g.differentialPrivacy.epsilon}/query (budget ε=${g.differentialPrivacy.budgetEpsilon} per ${g.differentialPrivacy.budgetPer})`);
  if (g.aggregationOnly) out.push(`aggregates only (groups ≥ ${g.aggregationOnly.minGroupSize})`);
  if (g.joinOnlyColumns.length) out.push(`join-only: ${g.joinOnlyColumns.join(', ')}`);
  if (g.rowCap !== null) out.push(`≤ ${g.rowCap} rows`);
  return out.join('; ') || '—';
}

/** Like src/cli/table.ts, but never truncates: a review must show every column it lists. */
function table(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const text = rows.map((r) => r.map((v) => String(v ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join(' │ ').trimEnd();
  return [line(columns), widths.map((w) => '─'.repeat(w)).join('─┼─'), ...text.map(line)].join('\n');
}

/** The plain-text table `gatehouse access review` prints: one row per grant, then a summary. */
export function renderAccessReview(report: AccessReport): string {
  const rows: unknown[][] = [];
  for (const p of report.principals) {
    if (p.grants.length === 0) {
      rows.push([p.principalId, '(no access)', '', '', '', '', '', '']);
      continue;
    }
    for (const g of p.grants) {
      rows.push([
        p.principalId, g.dataset, g.purposes.join(', '),
        g.unmaskedColumns.join(', ') || '—',
        g.maskedColumns.map((c) => `${c.column}=${c.mask}`).join(', ') || '—',
        g.rowFilters.join(' AND ') || '—',
        limits(g),
        g.lastUsedAt === null ? (g.unused ? 'never · UNUSED' : 'never') : `${g.daysSinceUse}d ago${g.unused ? ' · UNUSED' : ''}`,
      ]);
    }
  }
  const text = table(['principal', 'dataset', 'purposes', 'unmasked columns', 'masked columns', 'row filter', 'limits', 'last used'], rows);
  const s = report.summary;
  const lines = [
    `Access review ${report.generatedAt}${report.policyVersion ? ` · policy ${report.policyVersion.slice(0, 19)}` : ''}`,
    `Evaluated as: source ${report.evaluatedAs.sourceIp}, channel ${report.evaluatedAs.channel} (policies that depend on address or time may decide differently elsewhere)`,
    '',
    text,
    '',
    `${s.principals} principals · ${s.grants} grants · ${s.unusedGrants} unused for more than ${report.unusedAfterDays} days${s.principalsWithoutAccess.length ? ` · no data access: ${s.principalsWithoutAccess.join(', ')}` : ''}`,
  ];
  return `${lines.join('\n')}\n`;
}
