/**
 * The controls report: each control of a framework (catalog.ts) marked met, partly met or
 * no evidence from the evidence kinds it rests on (evidence.ts): met when all are met,
 * no evidence when none is even partly met, partly otherwise. HTML with a printable layout
 * (A4, page breaks between frameworks' parts, links printed after their text).
 */
import { escapeXml as esc } from '../escape.ts';
import type { Control, Framework } from './catalog.ts';
import type { Evidence, EvidenceKind, Status } from './evidence.ts';

export interface ControlResult {
  readonly id: string;
  readonly title: string;
  readonly summary: string;
  readonly status: Status;
  readonly evidence: readonly Evidence[];
}

export interface ControlsReport {
  readonly framework: string;
  readonly name: string;
  readonly citation: string;
  readonly workspace: string;
  readonly period: { readonly from: string; readonly to: string };
  readonly generatedAt: string;
  readonly totals: Readonly<Record<Status, number>>;
  readonly controls: readonly ControlResult[];
}

function judge(c: Control, evidence: ReadonlyMap<EvidenceKind, Evidence>): ControlResult {
  const ev = c.evidence.map((k) => evidence.get(k)!);
  const status: Status = ev.every((e) => e.status === 'met') ? 'met' : ev.every((e) => e.status === 'unmet') ? 'unmet' : 'partly';
  return { id: c.id, title: c.title, summary: c.summary, status, evidence: ev };
}

export function controlsReport(f: Framework, evidence: ReadonlyMap<EvidenceKind, Evidence>, meta: { workspace: string; period: { from: string; to: string }; generatedAt: string }): ControlsReport {
  const controls = f.controls.map((c) => judge(c, evidence));
  const totals = { met: 0, partly: 0, unmet: 0 };
  for (const c of controls) totals[c.status]++;
  return { framework: f.id, name: f.name, citation: f.citation, ...meta, totals, controls };
}

const LABEL: Record<Status, string> = { met: 'Met', partly: 'Partly met', unmet: 'No evidence' };

export function renderControlsHtml(r: ControlsReport): string {
  const rows = r.controls.map((c) => `
<tr class="${c.status}">
  <td class="id">${esc(c.id)}</td>
  <td><strong>${esc(c.title)}</strong><br><span class="summary">${esc(c.summary)}</span></td>
  <td class="status"><span class="badge ${c.status}">${LABEL[c.status]}</span></td>
  <td><ul>${c.evidence.map((e) => `<li><span class="badge ${e.status}">${LABEL[e.status]}</span> <em>${esc(e.kind)}</em>: ${esc(e.detail)}${e.links.length ? ` ${e.links.map((l) => `<a href="${esc(l)}">${esc(l)}</a>`).join(' ')}` : ''}</li>`).join('')}</ul></td>
</tr>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.name)} — evidence by control — ${esc(r.workspace)}</title>
<style>
  body { font: 10.5pt/1.4 system-ui, sans-serif; color: #111; margin: 2em; }
  h1 { font-size: 16pt; margin: 0 0 .2em; } .meta { color: #444; margin-bottom: 1em; }
  table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #bbb; padding: .35em .5em; vertical-align: top; text-align: left; }
  th { background: #eee; } td.id { white-space: nowrap; font-family: ui-monospace, monospace; } .summary { color: #333; }
  ul { margin: 0; padding-left: 1.1em; } a { color: #0645ad; word-break: break-all; }
  .badge { display: inline-block; padding: 0 .4em; border-radius: .3em; font-size: 9pt; font-weight: 600; }
  .badge.met { background: #d7f0dc; color: #0b5a1f; } .badge.partly { background: #fff1c2; color: #6b4e00; } .badge.unmet { background: #fad4d4; color: #8a1111; }
  .totals span { margin-right: 1.2em; } footer { margin-top: 1.5em; color: #444; font-size: 9pt; }
  @page { size: A4; margin: 15mm; }
  @media print {
    body { margin: 0; font-size: 9.5pt; } tr { break-inside: avoid; } thead { display: table-header-group; }
    a { color: #111; text-decoration: none; } a[href]::after { content: ""; }
    .badge { border: 1px solid #555; }
  }
</style></head><body>
<h1>${esc(r.name)}: evidence by control</h1>
<div class="meta">Workspace ${esc(r.workspace)} · period ${esc(r.period.from)} to ${esc(r.period.to)} · generated ${esc(r.generatedAt)}</div>
<p class="totals"><span class="badge met">Met ${r.totals.met}</span><span class="badge partly">Partly met ${r.totals.partly}</span><span class="badge unmet">No evidence ${r.totals.unmet}</span></p>
<table><thead><tr><th>Control</th><th>What it asks (our summary)</th><th>Status</th><th>Evidence Gatehouse holds</th></tr></thead><tbody>${rows}
</tbody></table>
<footer><p>Source: ${esc(r.citation)} Control texts are summarised in our own words; read each requirement in the publication. "Met" means Gatehouse holds evidence covering what the control asks of a data-sharing gateway; it is evidence for an assessor, not an assessment. Links are paths on this node's API.</p></footer>
</body></html>
`;
}
