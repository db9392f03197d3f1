/**
 * A query result as text: a table for people, CSV (RFC 4180), TSV (IANA text/tab-separated-values)
 * or JSON rows for programs. Noisy values are rounded to what their interval supports
 * (precision.ts); NULL is an empty field in CSV/TSV and null in JSON.
 */
import { formatNoisy } from './precision.ts';
import { formatTable } from './table.ts';

export const ROW_FORMATS = ['table', 'csv', 'tsv', 'json'] as const;
export type RowFormat = (typeof ROW_FORMATS)[number];

export interface Rows {
  readonly columns: readonly { readonly name: string }[];
  readonly rows: readonly (readonly unknown[])[];
  readonly intervals?: readonly (readonly ((readonly [number, number]) | null)[])[];
}

/** Cells as printed: noisy numbers rounded to their interval, the rest as released. */
function cells(res: Rows): unknown[][] {
  return res.rows.map((row, i) => row.map((v, j) => {
    const iv = res.intervals?.[i]?.[j];
    return iv && typeof v === 'number' ? formatNoisy(v, iv) : v;
  }));
}

function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function tsvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

export function formatRows(res: Rows, format: RowFormat): string {
  const names = res.columns.map((c) => c.name);
  const body = cells(res);
  switch (format) {
    case 'table': return `${formatTable(names, body)}\n`;
    case 'csv': return [names, ...body].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
    case 'tsv': return [names, ...body].map((r) => r.map(tsvField).join('\t')).join('\n') + '\n';
    case 'json': return `${JSON.stringify(body.map((r, i) => Object.fromEntries(names.map((n, j) => [n, res.intervals?.[i]?.[j] && typeof res.rows[i]![j] === 'number' ? Number(r[j]) : r[j] ?? null]))))}\n`;
  }
}
