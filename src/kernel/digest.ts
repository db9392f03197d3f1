/** Fingerprints and digests recorded in audit entries. */
import { createHash } from 'node:crypto';

/** SHA-256 of the SQL text with whitespace runs collapsed (identifies the exact query). */
export function sqlFingerprint(sql: string): string {
  return `sha256:${createHash('sha256').update(sql.trim().replace(/\s+/g, ' ')).digest('hex')}`;
}

/** Deterministic JSON (sorted keys) for hashing. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export function resultDigest(columns: readonly { name: string }[], rows: readonly (readonly unknown[])[]): string {
  const h = createHash('sha256');
  h.update(canonicalJson(columns.map((c) => c.name)));
  for (const r of rows) { h.update('\n'); h.update(canonicalJson(r)); }
  return `sha256:${h.digest('hex')}`;
}
