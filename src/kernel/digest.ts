/** Fingerprints and digests recorded in audit entries. */
import { createHash, hash } from 'node:crypto';

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

/**
 * SHA-256 over the canonical JSON of the column names, then per row a newline and the row's
 * canonical JSON. The bytes are written in chunks of about 64 KiB and hashed in one call when
 * they fit one chunk (most answers): one hash object and one update per chunk instead of two
 * per row. A row of scalars is its `JSON.stringify` (the same text canonicalJson writes).
 */
export function resultDigest(columns: readonly { name: string }[], rows: readonly (readonly unknown[])[]): string {
  let text = canonicalJson(columns.map((c) => c.name));
  let h: ReturnType<typeof createHash> | null = null;
  for (const r of rows) {
    text += '\n' + rowJson(r);
    if (text.length >= CHUNK) { (h ??= createHash('sha256')).update(text); text = ''; }
  }
  return `sha256:${h ? h.update(text).digest('hex') : hash('sha256', text, 'hex')}`;
}

const CHUNK = 64 * 1024;

function rowJson(r: readonly unknown[]): string {
  for (let i = 0; i < r.length; i++) {
    const v = r[i];
    if ((typeof v === 'object' && v !== null) || v === undefined) return canonicalJson(r);
  }
  return JSON.stringify(r);
}
