/**
 * The compliance report as CSV (RFC 4180): one file, every section in it.
 *
 * Layout: the first line is `section,kind,c1,…,cN` (N = the widest section). Each section
 * then has one `header` line (its column labels) followed by its `row` lines, and a `more`
 * line when rows were left out. Every line has the same number of fields (short sections
 * are padded with empty fields), so the whole file loads as one table and a spreadsheet
 * filter on the `section` column gives one section. `renderReportCsv(report, { section })`
 * gives one section alone as a plain CSV (its labels as the header line).
 *
 * Values are the raw data, not the HTML formatting: counts as integers, times and dates
 * as ISO-8601, ratios as decimals. Fields are quoted when they contain a comma, quote, CR
 * or LF (quotes doubled); lines end in CRLF. Spreadsheet formula injection is neutralised:
 * a text field starting with = + - @ tab, CR or LF gets a leading apostrophe (numbers the
 * report computed are written as numbers and never prefixed).
 */
import type { Cell, Report, ReportSection } from './report.ts';

const FORMULA_START = /^[=+\-@\t\r\n]/;

/** One CSV field: formula-neutralised and RFC 4180-quoted. */
export function csvCell(value: Cell): string {
  if (value === null) return '';
  let text: string;
  if (typeof value === 'number') {
    text = Number.isFinite(value) ? String(value) : '';
  } else {
    text = FORMULA_START.test(value) ? `'${value}` : value;
  }
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function line(cells: readonly Cell[]): string {
  return cells.map(csvCell).join(',');
}

function sectionLines(s: ReportSection, width: number, prefix: boolean): string[] {
  const pad = (cells: Cell[]): Cell[] => [...cells, ...Array<Cell>(Math.max(0, width - cells.length)).fill(null)];
  const lead = (kind: string): Cell[] => (prefix ? [s.id, kind] : []);
  const out = [line([...lead('header'), ...pad(s.columns.map((c) => c.label))])];
  for (const r of s.rows) out.push(line([...lead('row'), ...pad([...r.cells])]));
  if (s.more > 0 && prefix) out.push(line([...lead('more'), ...pad([`${s.more} more rows left out`])]));
  return out;
}

export function renderReportCsv(report: Report, options: { readonly section?: string } = {}): string {
  if (options.section !== undefined) {
    const s = report.sections.find((x) => x.id === options.section);
    if (s === undefined) throw new RangeError(`no report section "${options.section}"; sections: ${report.sections.map((x) => x.id).join(', ')}`);
    return sectionLines(s, s.columns.length, false).join('\r\n') + '\r\n';
  }
  const width = Math.max(1, ...report.sections.map((s) => s.columns.length));
  const header: Cell[] = ['section', 'kind', ...Array.from({ length: width }, (_, i) => `c${i + 1}`)];
  const lines = [line(header)];
  for (const s of report.sections) lines.push(...sectionLines(s, width, true));
  return lines.join('\r\n') + '\r\n';
}
