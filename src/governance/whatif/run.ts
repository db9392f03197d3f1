/**
 * `gatehouse policy whatif`: load the draft, read the window's logged query requests from
 * the audit log, join their stored SQL texts (where kept), replay, and render the report.
 * The same function serves the CLI and tests; what it needs from a node is passed in.
 */
import { loadWorkspace, type LoadedWorkspace } from '../../workspace/validate.ts';
import { readLoggedRequests, type AuditLogReader } from './logged-request.ts';
import type { GateContext } from './outcome.ts';
import { queryTextStore } from './query-texts.ts';
import { replay, type WhatIfReport } from './replay.ts';

export interface WhatIfInput {
  readonly current: LoadedWorkspace;
  readonly draftDir: string;
  readonly log: AuditLogReader;
  /** The node's state directory (stored SQL texts); null: replay from shapes only. */
  readonly stateDir: string | null;
  readonly now: Date;
  readonly days: number;
  readonly gate?: GateContext;
}

export async function whatIf(input: WhatIfInput): Promise<WhatIfReport> {
  const draft = await loadWorkspace(input.draftDir);
  const to = input.now;
  const from = new Date(to.getTime() - input.days * 86_400_000);
  const principals = new Set([...input.current.workspace.principals.keys(), ...draft.workspace.principals.keys()]);
  const { requests, skipped } = await readLoggedRequests(input.log, principals, { from, to });
  const texts = input.stateDir ? queryTextStore(input.stateDir) : null;
  return replay(input.current, draft, requests, {
    from, to, skipped, ...(texts ? { sqlText: (fp: string) => texts.get(fp) } : {}), ...(input.gate ? { gate: input.gate } : {}),
  });
}

const mask = (m: string | null): string => (m === null ? 'as stored' : m);

/** The report for people: one block per principal × dataset that changes. */
export function renderWhatIf(r: WhatIfReport): string {
  const out: string[] = [];
  out.push(`what-if: draft ${r.draftVersion.slice(0, 19)} against ${r.currentVersion.slice(0, 19)} in force`);
  out.push(`replayed ${r.replayed} logged requests from ${r.from} to ${r.to} (${r.modes.sql} from stored SQL text, ${r.modes.shape} from the logged shape; ${r.skipped} not replayable)`);
  out.push('');
  if (r.changes.length === 0) out.push('no principal × dataset would see a difference.');
  for (const c of r.changes) {
    out.push(`${c.principal} × ${c.dataset}  (${c.requests} requests; e.g. audit ${c.examples.join(', ')})`);
    if (c.newlyDenied) out.push(`  newly denied: ${c.newlyDenied}${c.deniedReasons.length ? ` — ${c.deniedReasons[0]}` : ''}`);
    if (c.newlyAllowed) out.push(`  newly allowed: ${c.newlyAllowed}`);
    for (const m of c.newlyMasked) out.push(`  newly masked: ${m.column}${m.regulated ? ' (regulated)' : ''}: ${mask(m.before)} → ${mask(m.after)}`);
    for (const m of c.newlyUnmasked) out.push(`  newly unmasked: ${m.column}${m.regulated ? ' (regulated)' : ''}: ${mask(m.before)} → ${mask(m.after)}`);
    for (const m of c.maskChanged) out.push(`  mask changed: ${m.column}: ${mask(m.before)} → ${mask(m.after)}`);
    if (c.rowFilters) out.push(`  row filters: [${c.rowFilters.before.join('; ') || 'none'}] → [${c.rowFilters.after.join('; ') || 'none'}]`);
    if (c.rowCap) out.push(`  row cap: ${c.rowCap.before ?? 'none'} → ${c.rowCap.after ?? 'none'}`);
    if (c.aggregationOnly) out.push(`  aggregation-only minimum group: ${c.aggregationOnly.before ?? 'none'} → ${c.aggregationOnly.after ?? 'none'}`);
    if (c.dpCost) out.push(`  DP ε per query: ${c.dpCost.before ?? 'none'} → ${c.dpCost.after ?? 'none'}`);
    if (c.budgetRunsOut) out.push(`  privacy budget runs out: ${c.budgetRunsOut.before ?? 'never'} → ${c.budgetRunsOut.after ?? 'never'}${c.budgetEarlier ? ' (earlier)' : ''}`);
  }
  out.push('');
  const fresh = r.analysis.filter((f) => f.new);
  out.push(`policy analysis of the draft: ${r.analysis.length} finding(s), ${fresh.length} new`);
  for (const f of r.analysis) out.push(`  ${f.new ? 'NEW ' : ''}${f.kind}: ${f.policy} — ${f.detail}`);
  const policy = r.widenings.filter((w) => w.kind === 'policy');
  const membership = r.widenings.filter((w) => w.kind === 'membership');
  if (policy.length > 0) {
    out.push('');
    out.push(`regulated columns the draft's policies newly show unmasked (serve refuses this reload without a signed acknowledgement; widenings ${r.wideningsDigest.slice(0, 19)}):`);
    for (const w of policy) out.push(`  ${w.principal}: ${w.dataset}.${w.column} (e.g. purpose ${w.purpose})`);
  }
  if (membership.length > 0) {
    out.push('');
    out.push('regulated columns newly shown unmasked through membership (new principals, changed groups or attributes; governed by grants and access reviews):');
    for (const w of membership) out.push(`  ${w.principal}: ${w.dataset}.${w.column} (e.g. purpose ${w.purpose})`);
  }
  return `${out.join('\n')}\n`;
}
