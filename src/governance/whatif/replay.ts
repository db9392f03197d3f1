/**
 * Policy what-if replay: the logged partner requests of a window, re-planned under the
 * version in force and under a draft, and the difference reported per principal × dataset
 * (diff.ts), with the draft's policy analysis (analysis.ts) and the regulated columns it
 * would newly show unmasked (reload-guard.ts). Nothing is executed and nothing is charged:
 * the planner stops before the engine.
 *
 * Each distinct request shape is planned once per version: requests that agree on
 * principal, purpose, channel, source, the minute, datasets, columns and SQL text get the
 * same outcome (decisions read the time to the minute at finest: hour and weekday in the
 * demo schema, the epoch second only through `context.time`, which the replay rounds), so a
 * month of traffic from a few partners replays in seconds (bench/governance.ts).
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

function shapeKey(r: LoggedRequest, sql: string | null): string {
  return JSON.stringify([r.principal, r.purpose, r.channel, r.source, r.time.slice(0, 16), r.datasets, r.columns, sql ?? r.sqlFingerprint]);
}

export async function replay(current: LoadedWorkspace, draft: LoadedWorkspace, requests: readonly LoggedRequest[], options: ReplayOptions): Promise<WhatIfReport> {
  const regulated = (ds: string, col: string): boolean => {
    const d = draft.workspace.datasets.get(ds) ?? current.workspace.datasets.get(ds);
    return d?.columns.find((c) => c.name === col)?.classification === 'regulated';
  };
  const diff = new WhatIfDiff(regulated);
  const memo = { before: new Map<string, RequestOutcome>(), after: new Map<string, RequestOutcome>() };
  const parsed = new Map<string, Select | GatehouseError>();
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
    const key = shapeKey(r, sql);
    // The time the outcome reads is rounded to the minute, as its memo key is.
    const at = { ...r, time: `${r.time.slice(0, 16)}:00.000Z` };
    let before = memo.before.get(key);
    if (!before) { before = await outcomeOf(current, at, { sql, parsed, ...(options.gate ? { gate: options.gate } : {}) }); memo.before.set(key, before); }
    let after = memo.after.get(key);
    if (!after) { after = await outcomeOf(draft, at, { sql, parsed, ...(options.gate ? { gate: options.gate } : {}) }); memo.after.set(key, after); }
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
