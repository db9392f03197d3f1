/**
 * Mock rows for developing a job before it is approved (PySyft's mock data, OpenSAFELY's
 * dummy data): the same columns and types the governed query would return, with values drawn
 * from the catalog's *declarations* — column type, tags (pii.email, id.patient …) and
 * declared bounds — and never from a stored value. Nothing here opens an engine, so a mock
 * cannot leak a real value, a real category or a real distribution: categories are
 * synthetic labels, numbers are uniform within the declared bounds, dates uniform over a
 * fixed decade, identifiers sequential, and personal data uses reserved forms
 * (`example.invalid` mail, 555-01xx phone numbers, SSNs with area 000, which is never issued).
 *
 * Deterministic: the same seed gives the same rows (SHA-256 of seed, column and row as
 * the random stream), so a partner's test run is reproducible.
 */
import { createHash } from 'node:crypto';
import type { ColumnDef } from '../model/types.ts';

export interface MockColumn {
  readonly name: string;
  /** Engine or catalog type (BIGINT, INTEGER, DOUBLE, DECIMAL, BOOLEAN, DATE, TIMESTAMP, VARCHAR …). */
  readonly type: string;
  readonly tags?: readonly string[];
  readonly bounds?: readonly [number, number] | null;
  /** The column names the dataset's privacy unit (sequential identifiers). */
  readonly unit?: boolean;
}

export type MockRow = Record<string, null | boolean | number | string>;

/** Distinct synthetic labels per text column: enough for group-bys to look plausible. */
const CATEGORIES = 6;
const DAY = 86_400_000;
const FROM = Date.UTC(2015, 0, 1);
const TO = Date.UTC(2024, 11, 31);

function uniform(seed: string, col: string, row: number, salt = ''): number {
  const h = createHash('sha256').update(`${seed}\0${col}\0${row}\0${salt}`).digest();
  return h.readUInt32BE(0) / 0x1_0000_0000;
}

function value(c: MockColumn, row: number, seed: string): null | boolean | number | string {
  const u = uniform(seed, c.name, row);
  const tags = c.tags ?? [];
  const type = c.type.toUpperCase();
  const has = (t: string) => tags.some((x) => x === t || x.startsWith(`${t}.`));
  if (/INT/.test(type)) {
    if (c.unit || has('id')) return 1_000 + row;
    const [lo, hi] = c.bounds ?? [0, 1_000];
    return Math.floor(lo + u * (hi - lo + 1));
  }
  if (/DOUBLE|DECIMAL|FLOAT|REAL|NUMERIC/.test(type)) {
    const [lo, hi] = c.bounds ?? [0, 1_000];
    return Math.round((lo + u * (hi - lo)) * 100) / 100;
  }
  if (/BOOL/.test(type)) return u < 0.5;
  if (/TIMESTAMP/.test(type)) return new Date(FROM + Math.floor(u * (TO - FROM))).toISOString();
  if (/DATE/.test(type)) return new Date(FROM + Math.floor(u * ((TO - FROM) / DAY)) * DAY).toISOString().slice(0, 10);
  const k = Math.floor(u * 10_000);
  if (has('pii.email')) return `user${k}@example.invalid`;
  if (has('pii.name')) return `Mock Person ${k}`;
  if (has('pii.ssn')) return `000-00-${String(k).padStart(4, '0')}`;
  if (has('pii.phone')) return `555-01${String(k % 100).padStart(2, '0')}`;
  if (has('pii.location')) return `00${String(k % 1000).padStart(3, '0')}`;
  if (has('pii.dob')) return new Date(Date.UTC(1940, 0, 1) + Math.floor(u * 60 * 365) * DAY).toISOString().slice(0, 10);
  return `${c.name}_${1 + Math.floor(u * CATEGORIES)}`;
}

export function mockRows(columns: readonly MockColumn[], rows: number, seed = 'gatehouse-mock'): MockRow[] {
  const out: MockRow[] = [];
  for (let i = 0; i < rows; i++) {
    const r: MockRow = {};
    for (const c of columns) r[c.name] = value(c, i, seed);
    out.push(r);
  }
  return out;
}

/** Mock columns for a query's described result, with tags and bounds of same-named catalog columns. */
export function mockColumnsFor(result: readonly { name: string; type: string }[], catalog: readonly ColumnDef[], unit: string | null): MockColumn[] {
  return result.map((c) => {
    const def = catalog.find((d) => d.name === c.name);
    return { name: c.name, type: c.type, tags: def?.tags ?? [], bounds: def?.bounds ?? null, unit: unit !== null && c.name === unit };
  });
}

/** Columns of `sql` that a dataset has (word match), or all of them: the shape a mock input takes. */
export function referenced<C extends { readonly name: string }>(sql: string, columns: readonly C[]): C[] {
  const words = new Set(sql.toLowerCase().match(/[a-z_][a-z0-9_]*/g) ?? []);
  const hit = columns.filter((c) => words.has(c.name.toLowerCase()));
  return hit.length > 0 ? hit : [...columns];
}

export const MOCK_FORMAT = 'gatehouse.mock.v1';

export interface PublishedDataset {
  readonly columns: readonly { readonly name: string; readonly type: string; readonly tags: readonly string[] }[];
  readonly rows: readonly MockRow[];
}

/** Mock data a data owner publishes for offline development (`gatehouse job mock-publish`). */
export interface PublishedMock {
  readonly format: typeof MOCK_FORMAT;
  readonly generatedAt: string;
  readonly seed: string;
  readonly datasets: Readonly<Record<string, PublishedDataset>>;
}
