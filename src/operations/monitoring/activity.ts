/**
 * The four live questions (issue 21), answered from the running node:
 *
 *   who         active sessions, connection passwords, elevations and service keys now, and
 *               who made a request in the last N minutes;
 *   conditions  MFA age, device posture (verified off the request path: posture-watch.ts),
 *               network zone, agreement and grants in force, any monitoring hold;
 *   purpose     the purposes each principal declared, per dataset;
 *   extraction  rows and distinct privacy units released per principal × dataset (units: from
 *               row-level results that carry the dataset's unit column), columns seen
 *               unmasked, privacy budget spent.
 *
 * Authorised and audited like every read: auditors and administrators see every principal,
 * anyone else only themselves. The same scope filters the live stream (SSE).
 */
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import type { PrincipalDef } from '../../model/types.ts';
import type { Alert } from '../../monitoring/alerts.ts';
import { AUDITORS } from '../audit/read.ts';
import { monitorOf } from './attach.ts';
import { MAX_UNITS } from '../../monitoring/activity.ts';
import { describePosture } from '../../monitoring/posture-watch.ts';


/** Who may watch whom: everyone, or one principal. */
export interface ActivityScope {
  readonly viewer: string;
  readonly all: boolean;
}

export function scopeOf(rt: Runtime, p: PrincipalDef): ActivityScope {
  return { viewer: p.id, all: p.groups.includes(AUDITORS) || rt.isAdmin(p) };
}

export const inScope = (s: ActivityScope) => (principal: string): boolean => s.all || principal === s.viewer;

export interface ActivityAnswer {
  readonly at: string;
  readonly scope: 'all' | 'self';
  readonly recentMinutes: number;
  readonly who: {
    readonly sessions: readonly { principal: string; session: string; createdAt: string; expiresAt: string; mfaAgeSeconds: number | null; methods: readonly string[] }[];
    readonly connectionPasswords: readonly { principal: string; name: string; createdAt: string; expiresAt: string }[];
    readonly elevations: readonly { principal: string; role: string; purpose: string; breakGlass: boolean; expiresAt: string }[];
    readonly serviceKeys: readonly { principal: string; id: string; datasets: readonly string[] | null; expiresAt: string | null; lastUsedAt: string | null }[];
    readonly recent: readonly { principal: string; org: string | null; lastAt: string; source: string; zone: string | null; channel: string; action: string; purpose: string | null; requests: number; denials: number; score: number; reasons: readonly string[] }[];
  };
  readonly conditions: readonly { principal: string; org: string | null; mfaAgeSeconds: number | null; posture: string | null; zone: string | null; hold: string | null; agreements: readonly string[]; grants: readonly { dataset: string; purpose: string; until: string }[] }[];
  readonly extraction: readonly { principal: string; dataset: string; requests: number; rowsReleased: number; unitsReleased: number | null; unitsAtLeast: boolean; purposes: readonly string[]; columnsUnmasked: readonly string[]; budget: { spentRho: number; capRho: number; remainingRho: number } | null; lastAt: string }[];
  readonly alerts: { readonly open: number; readonly acknowledged: number; readonly resolved: number; readonly active: readonly Alert[] };
}

const iso = (ms: number): string => new Date(ms).toISOString();
const short = (id: string): string => id.slice(0, 8);

/** GET /v1/activity */
export async function activity(rt: Runtime, meta: RequestMeta, options: { minutes?: number } = {}): Promise<ActivityAnswer> {
  return (await audited(rt, meta, 'monitoring.activity', {}, async ({ auth, entry }) => {
    const scope = scopeOf(rt, auth.principal);
    entry.reasons = [scope.all ? 'activity of every principal' : 'own activity'];
    return snapshot(rt, scope, options.minutes);
  })).value;
}

/** Authorises (and audits) a live activity stream; the route then filters events by the scope. */
export async function activityStream(rt: Runtime, meta: RequestMeta): Promise<ActivityScope> {
  return (await audited(rt, meta, 'monitoring.activity.stream', {}, async ({ auth, entry }) => {
    const scope = scopeOf(rt, auth.principal);
    entry.reasons = [scope.all ? 'live activity of every principal' : 'own live activity'];
    return scope;
  })).value;
}

async function snapshot(rt: Runtime, scope: ActivityScope, minutes: number | undefined): Promise<ActivityAnswer> {
  const monitor = monitorOf(rt);
  const ws = rt.state.loaded.workspace;
  const now = rt.now();
  const nowS = Math.floor(now.getTime() / 1000);
  const recentMinutes = minutes ?? monitor.config.recentMinutes;
  const visible = inScope(scope);
  const principals = [...ws.principals.values()].filter((p) => visible(p.id));
  const ids = await rt.identity().catch(() => null);
  const elevations = Object.keys(ws.identity?.elevationRoles ?? {}).length > 0 ? await rt.elevations().catch(() => null) : null;

  const sessions: ActivityAnswer['who']['sessions'][number][] = [];
  const passwords: ActivityAnswer['who']['connectionPasswords'][number][] = [];
  const elevated: ActivityAnswer['who']['elevations'][number][] = [];
  const keys: ActivityAnswer['who']['serviceKeys'][number][] = [];
  const mfaAge = new Map<string, number>();
  for (const p of principals) {
    if (ids) {
      for (const s of await ids.sessions.sessionsOf(p.id, { now }).catch(() => [])) {
        const age = s.mfaAt === null ? null : Math.max(0, nowS - s.mfaAt);
        if (age !== null) mfaAge.set(p.id, Math.min(age, mfaAge.get(p.id) ?? Infinity));
        sessions.push({ principal: p.id, session: short(s.sessionId), createdAt: iso(s.createdAt * 1000), expiresAt: iso(s.expiresAt * 1000), mfaAgeSeconds: age, methods: s.amr });
      }
      for (const c of await ids.connectionPasswords.list(p.id).catch(() => [])) {
        if (Date.parse(c.expiresAt) > now.getTime()) passwords.push({ principal: p.id, name: c.name, createdAt: c.createdAt, expiresAt: c.expiresAt });
      }
      for (const k of await ids.apiKeys.list(p.id).catch(() => [])) {
        if (k.revokedAt !== null || (k.expiresAt !== null && k.expiresAt <= nowS)) continue;
        keys.push({ principal: p.id, id: k.id, datasets: k.scopes.datasets ?? null, expiresAt: k.expiresAt === null ? null : iso(k.expiresAt * 1000), lastUsedAt: k.lastUsedAt === null ? null : iso(k.lastUsedAt * 1000) });
      }
    }
    if (elevations) {
      for (const g of await elevations.activeElevations(p.id, now).catch(() => [])) elevated.push({ principal: p.id, role: g.role, purpose: g.purpose, breakGlass: g.breakGlass, expiresAt: g.expiresAt });
    }
    // Keys declared in the workspace (by digest) are service keys too.
    for (let i = 0; i < p.apiKeySha256.length; i++) keys.push({ principal: p.id, id: `workspace:${i}`, datasets: null, expiresAt: null, lastUsedAt: null });
  }

  const since = now.getTime() - recentMinutes * 60_000;
  const activityRows = monitor.activity.principals(visible);
  const recent = activityRows.filter((a) => a.lastAt >= since).map((a) => ({
    principal: a.principal, org: a.org, lastAt: iso(a.lastAt), source: a.lastSource, zone: a.lastZone, channel: a.lastChannel, action: a.lastAction,
    purpose: a.lastPurpose, requests: a.requests, denials: a.denials, score: a.lastScore, reasons: a.lastReasons,
  }));

  const gov = rt.governance.store;
  const conditions: ActivityAnswer['conditions'][number][] = [];
  for (const p of principals) {
    const org = typeof p.attributes.org === 'string' ? p.attributes.org : null;
    const seen = activityRows.find((a) => a.principal === p.id);
    const agreements = org ? (await gov.agreements.list({ partner: org, status: 'active' }, now).catch(() => [])).map((a) => `${a.kind} ${a.id}`) : [];
    const grants = (await gov.grants.list({ principalId: p.id }, now).catch(() => [])).map((g) => ({ dataset: g.dataset, purpose: g.purpose, until: g.until }));
    const hold = monitor.holdOf(p.id);
    conditions.push({ principal: p.id, org, mfaAgeSeconds: mfaAge.get(p.id) ?? null, posture: describePosture(monitor.posture.of(p.id)), zone: seen?.lastZone ?? monitor.posture.of(p.id)?.zone ?? null, hold: hold ? `${hold.kind} (alert ${hold.alertId})` : null, agreements, grants });
  }

  const extraction: ActivityAnswer['extraction'][number][] = [];
  for (const x of monitor.activity.extraction(visible)) {
    const p = ws.principals.get(x.principal);
    const org = p && typeof p.attributes.org === 'string' ? p.attributes.org : null;
    let budget: { spentRho: number; capRho: number; remainingRho: number } | null = null;
    for (const subject of [x.principal, ...(org ? [`org:${org}`] : [])]) {
      const s = await rt.budgets.status(subject, x.dataset, now).catch(() => null);
      if (s) { budget = { spentRho: s.spentRho, capRho: s.capRho, remainingRho: s.remainingRho }; break; }
    }
    extraction.push({
      principal: x.principal, dataset: x.dataset, requests: x.requests, rowsReleased: x.rowsReleased,
      unitsReleased: x.units === null ? null : x.units.size, unitsAtLeast: x.units !== null && x.units.size >= MAX_UNITS, purposes: [...x.purposes].sort(),
      columnsUnmasked: [...x.columnsUnmasked].sort(), budget, lastAt: iso(x.lastAt),
    });
  }

  const all = monitor.alerts.list().filter((a) => visible(a.principal));
  const counts = { open: 0, acknowledged: 0, resolved: 0 };
  for (const a of all) counts[a.state]++;
  return {
    at: now.toISOString(), scope: scope.all ? 'all' : 'self', recentMinutes,
    who: { sessions, connectionPasswords: passwords, elevations: elevated, serviceKeys: keys, recent },
    conditions, extraction,
    alerts: { ...counts, active: all.filter((a) => a.state !== 'resolved') },
  };
}
