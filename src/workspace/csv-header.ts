/**
 * The declared columns of a CSV dataset against the file's header line.
 *
 * A column name that is not in the header passes every other check and then fails when the
 * engine first binds the table, with the engine's own message, after `serve` has created the
 * audit log and state. Reading the header (RFC 4180: the first record, fields optionally
 * quoted with "" as an escaped quote) lets `gatehouse validate` name the missing column and
 * the ones that exist. DuckDB matches identifiers case-insensitively, so this does too.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { WorkspaceProblem } from './load.ts';
import type { DatasetDef } from '../model/types.ts';

const HEAD_BYTES = 64 * 1024;

/** The first record of a CSV file as field names; the delimiter is `,`, else `;`, `\t` or `|` if only that splits it. */
export function readCsvHeader(path: string): string[] {
  const fd = openSync(path, 'r');
  let text: string;
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const n = readSync(fd, buf, 0, HEAD_BYTES, 0);
    text = buf.subarray(0, n).toString('utf8').replace(/^\uFEFF/, '');
  } finally {
    closeSync(fd);
  }
  const line = firstRecord(text);
  for (const delimiter of [',', ';', '\t', '|']) {
    const fields = splitRecord(line, delimiter);
    if (fields.length > 1 || delimiter === '|') return fields.length > 1 ? fields : splitRecord(line, ',');
  }
  return [];
}

function firstRecord(text: string): string {
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '\n' || c === '\r')) return text.slice(0, i);
  }
  return text;
}

function splitRecord(line: string, delimiter: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === delimiter) { fields.push(field.trim()); field = ''; } else field += c;
  }
  fields.push(field.trim());
  return fields;
}

/** Problems for the declared columns of a CSV dataset that its file's header lacks. */
export function csvHeaderProblems(ds: DatasetDef, relativePath: string): WorkspaceProblem[] {
  if (ds.source.kind !== 'csv') return [];
  let header: string[];
  try {
    header = readCsvHeader(ds.source.path);
  } catch (err) {
    return [{ file: 'gatehouse.yaml', line: null, message: `datasets.${ds.name}.source.csv: cannot read ${relativePath} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` }];
  }
  const present = new Set(header.map((h) => h.toLowerCase()));
  const missing = ds.columns.filter((c) => !present.has(c.name.toLowerCase()));
  return missing.map((c) => ({
    file: 'gatehouse.yaml', line: null,
    message: `datasets.${ds.name}.columns.${c.name}: no column "${c.name}" in ${relativePath}; its header has: ${header.join(', ') || '(nothing)'}`,
  }));
}
