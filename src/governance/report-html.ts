/**
 * The compliance report as one self-contained HTML page for people: inline CSS (screen
 * and print), no scripts, no external resources, every value HTML-escaped, numbers and
 * dates formatted in plain English (UTC), highlighted rows explained in the caption,
 * hashes only in the footnotes.
 */
import { escapeXml } from './escape.ts';
import { formatCount, renderFlowSvg } from './flows.ts';
import type { Cell, ColumnKind, Report, ReportSection } from './report.ts';

const MONTHS_SHORT = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** "10 Nov 2025" / "10 Nov 2025, 14:03 UTC"; an unparseable value is shown as it is. */
export function formatDate(value: string, withTime: boolean): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return value;
  const t = new Date(ms);
  const day = `${t.getUTCDate()} ${MONTHS_SHORT[t.getUTCMonth()]} ${t.getUTCFullYear()}`;
  return withTime ? `${day}, ${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())} UTC` : day;
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return formatCount(n);
  const fixed = n.toFixed(n >= 100 ? 1 : n >= 1 ? 2 : 3);
  const [int, frac] = fixed.split('.');
  return `${formatCount(Number(int))}.${frac}`;
}

export function formatCell(value: Cell, kind: ColumnKind): string {
  if (value === null || value === '') return '—';
  if (typeof value === 'number') {
    if (kind === 'percent') return `${Math.round(value * 100)}%`;
    return kind === 'count' ? formatCount(value) : formatNumber(value);
  }
  if (kind === 'time') return formatDate(value, true);
  if (kind === 'date') return formatDate(value, false);
  return value;
}

const CSS = `
:root { color-scheme: light; }
body { font-family: Georgia, 'Times New Roman', serif; color: #1b1b1b; margin: 2rem auto; max-width: 62rem; padding: 0 1.2rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .3rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
.meta { color: #555; margin-top: 0; }
.summary { font-size: 1.08rem; background: #f5f7fa; border-left: 4px solid #2f5d9e; padding: .8rem 1rem; }
.figures { display: flex; flex-wrap: wrap; gap: .6rem; padding: 0; list-style: none; }
.figures li { border: 1px solid #d5d9e0; border-radius: 6px; padding: .4rem .8rem; min-width: 8rem; }
.figures b { display: block; font-size: 1.35rem; font-family: Helvetica, Arial, sans-serif; }
p.caption { margin: .2rem 0 .6rem; color: #444; }
table { border-collapse: collapse; width: 100%; font-family: Helvetica, Arial, sans-serif; font-size: .88rem; }
th, td { border: 1px solid #d5d9e0; padding: .3rem .5rem; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.warning td { background: #fff6d6; }
tr.alert td { background: #fde2e0; }
tr.warning td:first-child::before { content: "▲ "; color: #8a6d00; }
tr.alert td:first-child::before { content: "● "; color: #b3261e; }
.empty { font-style: italic; color: #555; }
.more { color: #555; font-size: .85rem; }
.flow { overflow-x: auto; margin-top: 1rem; }
.flow svg { max-width: 100%; height: auto; }
.legend { font-size: .85rem; color: #444; }
footer { margin-top: 2.5rem; font-size: .8rem; color: #555; border-top: 1px solid #ccc; }
footer li { overflow-wrap: anywhere; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  .summary { background: none; }
  tr.warning td, tr.alert td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`.trim();

function renderSection(s: ReportSection, extra: string): string {
  const out: string[] = [];
  out.push(`<section id="${escapeXml(s.id)}">`);
  out.push(`<h2>${escapeXml(s.title)}</h2>`);
  out.push(`<p class="caption">${escapeXml(s.caption)}</p>`);
  if (s.rows.length === 0) {
    out.push(`<p class="empty">${escapeXml(s.empty)}</p>`);
  } else {
    out.push('<table>');
    out.push(`<thead><tr>${s.columns.map((c) => `<th scope="col">${escapeXml(c.label)}</th>`).join('')}</tr></thead>`);
    out.push('<tbody>');
    for (const row of s.rows) {
      const cls = row.flag !== undefined ? ` class="${row.flag}"` : '';
      const cells = s.columns.map((c, i) => {
        const numeric = c.kind === 'count' || c.kind === 'number' || c.kind === 'percent';
        return `<td${numeric ? ' class="num"' : ''}>${escapeXml(formatCell(row.cells[i] ?? null, c.kind))}</td>`;
      });
      out.push(`<tr${cls}>${cells.join('')}</tr>`);
    }
    out.push('</tbody></table>');
    if (s.more > 0) out.push(`<p class="more">…and ${escapeXml(formatCount(s.more))} more rows not shown here; raise the row limit of the report to list them all.</p>`);
  }
  out.push(extra);
  out.push('</section>');
  return out.join('\n');
}

export function renderReportHtml(report: Report): string {
  const out: string[] = [];
  out.push('<!DOCTYPE html>');
  out.push('<html lang="en">');
  out.push('<head>');
  out.push('<meta charset="utf-8">');
  // No scripts, no external loads, even if a value were ever to slip through unescaped.
  out.push(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push(`<title>${escapeXml(report.title)}</title>`);
  out.push(`<style>\n${CSS}\n</style>`);
  out.push('</head>');
  out.push('<body>');
  out.push('<header>');
  out.push(`<h1>${escapeXml(report.title)}</h1>`);
  const last = new Date(Math.max(Date.parse(report.period.from), Date.parse(report.period.to) - 1)).toISOString();
  out.push(`<p class="meta">Period: ${escapeXml(formatDate(report.period.from, false))} to ${escapeXml(formatDate(last, false))} (inclusive, UTC) · Produced ${escapeXml(formatDate(report.generatedAt, true))}</p>`);
  out.push('</header>');
  out.push('<main>');
  out.push(`<p class="summary">${escapeXml(report.summary)}</p>`);
  out.push('<ul class="figures">');
  for (const f of report.figures) out.push(`<li><b>${escapeXml(formatCount(f.value))}</b>${escapeXml(f.label)}</li>`);
  out.push('</ul>');
  out.push('<p class="legend">In the tables, rows marked ▲ (yellow) need attention soon and rows marked ● (red) need attention now.</p>');
  for (const s of report.sections) {
    const extra = s.id === 'volumes' && report.flows.edges.length > 0
      ? `<figure class="flow">\n${renderFlowSvg(report.flows)}<figcaption class="caption">Data-flow map: datasets on the left, interfaces in the middle, partners on the right; thicker lines carried more rows, dashed red lines only refused attempts.</figcaption>\n</figure>`
      : '';
    out.push(renderSection(s, extra));
  }
  out.push('</main>');
  out.push('<footer>');
  out.push('<p>Notes</p>');
  out.push('<ol>');
  for (const f of report.footnotes) out.push(`<li id="note-${f.id}">${escapeXml(f.text)}</li>`);
  out.push('</ol>');
  out.push(`<p>Workspace: ${escapeXml(report.workspace)}. Figures come from Gatehouse's tamper-evident audit log; times are in UTC. Refused means Gatehouse's policy said no; failed means a technical error.</p>`);
  out.push('</footer>');
  out.push('</body>');
  out.push('</html>');
  return out.join('\n') + '\n';
}
