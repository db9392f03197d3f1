/**
 * Policy what-if replay: the logged partner requests of a window, re-planned under the
 * version in force and under a draft, and the difference reported per principal × dataset
 * (diff.ts), with the draft's policy analysis (analysis.ts) and the regulated columns it
 * would newly show unmasked (reload-guard.ts). Nothing is executed and nothing is charged:
 * the planner stops before the engine.
 *
 * Work is shared where the inputs agree: a request shape (principal, purpose, channel,
 * source, time as decisions read it, datasets, columns, SQL text) is decided once per
 * version, and a statement is bound and governed once per version, principal and decided
 * obligations — so 100k logged requests replay well inside a minute (bench/governance.ts).
 */
import type { LoadedWorkspace } from '../../workspace/validate.ts';
import { analysePolicies, type PolicyFinding } from './analysis.ts';
import { WhatIfDiff, type PairChange } from './diff.ts';
import type { LoggedRequest } from './logged-request.ts';
import { outcomeOf, type GateContext, type RequestOutcome } from './outcome.ts';
import { regulatedWidenings, wideningsDigest, type Widening } from './reload-guard.ts';
import type { Select } from '../../query/ir.ts';
import type { GatehouseError } from '../../errors.ts';

export interface WhatIfReport {
  readonly format: 'gatehouse-whatif/v1';
  readonly from: string;
  readonly to: string;
  readonly currentVersion: string;
  readonly draftVersion: string;
  readonly replayed: number;
  /** Entries that could not be replayed (no principal, purpose or dataset recorded). */
  readonly skipped: number;
  /** How many requests were re-planned from their stored SQL text, and how many from their shape. */
  readonly modes: { readonly sql: number; readonly shape: number };
  readonly changes: readonly PairChange[];
  /** Findings on the draft; `new` marks those the version in force does not have. */
  readonly analysis: readonly (PolicyFinding & { readonly new: boolean })[];
  readonly widenings: readonly Widening[];
  readonly wideningsDigest: string;
}

export interface ReplayOptions {
  readonly from: Date;
  readonly to: Date;
  readonly skipped?: number;
  /** The stored SQL text of a fingerprint, where the workspace keeps texts. */
  readonly sqlText?: (fingerprint: string) => string | null;
  readonly gate?: GateContext;
}

/**
 * The time a decision reads: to the minute; to the hour when no policy of either version
 * reads `context.time` (the demo schema's `hour` and `weekday` then still hold exactly), so
 * the engines' decision memos answer a month of traffic from a few hundred contexts.
 */
function timeOf(iso: string, exactMinutes: boolean): string {
  return exactMinutes ? `${iso.slice(0, 16)}:00.000Z` : `${iso.slice(0, 13)}:00:00.000Z`;
}

function readsTime(l: LoadedWorkspace): boolean {
  return [...l.workspace.policyFiles.values()].some((t) => /context\s*\.\s*time\b|context\s*\[\s*"time"\s*\]/.test(t));
}

function shapeKey(r: LoggedRequest, time: string, sql: string | null): string {
  return JSON.stringify([r.principal, r.purpose, r.channel, r.source, time, r.datasets, r.columns, sql ?? r.sqlFingerprint]);
}

export async function replay(current: LoadedWorkspace, draft: LoadedWorkspace, requests: readonly LoggedRequest[], options: ReplayOptions): Promise<WhatIfReport> {
  const regulated = (ds: string, col: string): boolean => {
    const d = draft.workspace.datasets.get(ds) ?? current.workspace.datasets.get(ds);
    return d?.columns.find((c) => c.name === col)?.classification === 'regulated';
  };
  const diff = new WhatIfDiff(regulated);
  const memo = { before: new Map<string, RequestOutcome>(), after: new Map<string, RequestOutcome>() };
  const parsed = new Map<string, Select | GatehouseError>();
  const plans = { before: new Map(), after: new Map() };
  const exactMinutes = readsTime(current) || readsTime(draft);
  const texts = new Map<string, string | null>();
  const modes = { sql: 0, shape: 0 };
  const ordered = [...requests].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  for (const r of ordered) {
    let sql: string | null = null;
    if (r.sqlFingerprint && options.sqlText) {
      if (!texts.has(r.sqlFingerprint)) texts.set(r.sqlFingerprint, options.sqlText(r.sqlFingerprint));
      sql = texts.get(r.sqlFingerprint) ?? null;
    }
    if (sql) modes.sql++; else modes.shape++;
    const time = timeOf(r.time, exactMinutes);
    const key = shapeKey(r, time, sql);
    const at = { ...r, time };
    let before = memo.before.get(key);
    if (!before) { before = await outcomeOf(current, at, { sql, parsed, plans: plans.before, ...(options.gate ? { gate: options.gate } : {}) }); memo.before.set(key, before); }
    let after = memo.after.get(key);
    if (!after) { after = await outcomeOf(draft, at, { sql, parsed, plans: plans.after, ...(options.gate ? { gate: options.gate } : {}) }); memo.after.set(key, after); }
    diff.add(r, before, after);
  }
  const purposes = new Set(requests.map((r) => r.purpose));
  const channels = [...new Set(['http', ...requests.map((r) => r.channel)])];
  const oldFindings = analysePolicies(current, { purposes, channels, at: options.to }).findings;
  const seen = new Set(oldFindings.map((f) => `${f.kind}\u0000${f.policy}\u0000${f.detail}`));
  const analysis = analysePolicies(draft, { purposes, channels, at: options.to }).findings.map((f) => ({ ...f, new: !seen.has(`${f.kind}\u0000${f.policy}\u0000${f.detail}`) }));
  const widenings = regulatedWidenings(current, draft, { purposes, at: options.to });
  return {
    format: 'gatehouse-whatif/v1', from: options.from.toISOString(), to: options.to.toISOString(),
    currentVersion: current.workspace.policyVersion, draftVersion: draft.workspace.policyVersion,
    replayed: requests.length, skipped: options.skipped ?? 0, modes, changes: diff.changes(), analysis, widenings, wideningsDigest: wideningsDigest(widenings),
  };
}
