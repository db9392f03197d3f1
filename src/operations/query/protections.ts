/**
 * The output protections a governed plan carries, in the order they fold over the result:
 * differential privacy (noise, then the budget marked spent), or disclosure control
 * (differencing probe, then suppression, then release audit), or plain truncation at the row cap — then DLP,
 * the last look at what leaves. Adding a protection is one file in src/kernel/protections/
 * and one line here.
 */
import { indexedColumns, mergeDlp } from '../../privacy/dlp-release.ts';
import { planNoise } from '../../privacy/release.ts';
import type { Protection } from '../../kernel/execute.ts';
import { differencing } from '../../kernel/protections/differencing.ts';
import { disclosureControl } from '../../kernel/protections/disclosure.ts';
import { releaseAudit } from '../../kernel/protections/release-audit.ts';
import { dlp } from '../../kernel/protections/dlp.ts';
import { dpBudget } from '../../kernel/protections/dp-budget.ts';
import { dpNoise } from '../../kernel/protections/dp-release.ts';
import { truncate } from '../../kernel/protections/truncate.ts';
import { watermark } from '../../kernel/protections/watermark.ts';
import { monitorOf } from '../monitoring/attach.ts';
import type { Runtime, WorkspaceState } from '../../kernel/runtime.ts';
import type { Plan } from './plan.ts';

export function protectionsFor(rt: Runtime, state: WorkspaceState, p: Plan): Protection[] {
  const { governed, bound, principal } = p;
  const ws = state.loaded.workspace;
  const capAfterOffset = governed.rowCap - (bound.query.offset ?? 0);
  const out: Protection[] = [];
  if (governed.dp) {
    const noise = planNoise(governed.dp);
    out.push(dpNoise(noise, governed.rowLimit, capAfterOffset), dpBudget(rt.budgets, principal, governed.dp, noise));
  } else if (governed.disclosure) {
    const now = (): number => rt.now().getTime();
    if (governed.disclosure.probes.length > 0) out.push(differencing(rt.differencing, principal.id, governed.disclosure.probes, now));
    out.push(disclosureControl(governed.disclosure, governed.rowLimit, capAfterOffset));
    out.push(releaseAudit(rt.releaseAuditor, principal.id, governed.disclosure, now));
  } else {
    out.push(truncate(governed.rowLimit), watermark(monitorOf(rt).leaks, principal.id, bound.datasets, bound.query, () => rt.now()));
  }
  const dlpConfig = mergeDlp([ws.dlp, ...p.decisions.flatMap((d) => d.obligations.map((o) => o.dlp))]);
  if (dlpConfig) {
    const obligations = new Map(p.decisions.map((d) => [d.dataset, d.obligations]));
    out.push(dlp(dlpConfig, state.sensitive.get(indexedColumns(bound.datasets.map((n) => ws.datasets.get(n)!), obligations))));
  }
  return out;
}
