/**
 * The literal-free shape of a query: its SQL with every constant replaced by `?`, hashed.
 * Two queries have the same shape when they differ only in their constants, which is exactly
 * what an enumeration looks like (`WHERE patient_id = 1001`, `= 1002`, `= 1003`, ...), while
 * the audit entry's fingerprint (src/kernel/digest.ts) keeps literals and tells them apart.
 * The same idea as pg_stat_statements' query normalisation and libpg_query's fingerprints
 * (https://github.com/pganalyze/libpg_query/wiki/Fingerprinting), done with one linear scan
 * rather than a second parse, because monitoring runs inline on the request path (≤ 50 µs).
 *
 * Normalised away: string literals ('…', E'…', with doubled quotes), dollar-quoted strings,
 * numbers (integers, decimals, exponents, a sign), bind parameters ($1), comments, letter case outside
 * quoted identifiers, whitespace; and lists of constants collapse (`IN (?, ?, ?)` = `IN (?)`),
 * so a sweep by growing IN-lists is one shape too. Identifiers and keywords are kept. Only the
 * hash leaves this module: no constant of the query (a data value) reaches monitoring state.
 */
import { createHash } from 'node:crypto';

const MAX_SQL = 100_000;

function isIdentChar(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_' || c === '$' || c > '\u007f';
}

/** The normalised text (exported for tests; monitoring keeps only `queryShape`). */
export function normaliseSql(sql: string): string {
  const s = sql.length > MAX_SQL ? sql.slice(0, MAX_SQL) : sql;
  let out = '';
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s[i]!;
    if (c === '-' && s[i + 1] === '-') { while (i < n && s[i] !== '\n') i++; continue; }
    if (c === '/' && s[i + 1] === '*') { const end = s.indexOf('*/', i + 2); i = end < 0 ? n : end + 2; continue; }
    if (c === "'" || ((c === 'E' || c === 'e') && s[i + 1] === "'" && !isIdentChar(s[i - 1] ?? ' '))) {
      i += c === "'" ? 1 : 2;
      while (i < n) {
        if (s[i] === '\\' && c !== "'") { i += 2; continue; }
        if (s[i] === "'") { if (s[i + 1] === "'") { i += 2; continue; } i++; break; }
        i++;
      }
      out += '?';
      continue;
    }
    if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(s.slice(i, i + 66));
      if (tag && !isIdentChar(s[i - 1] ?? ' ')) {
        const end = s.indexOf(tag[0], i + tag[0].length);
        i = end < 0 ? n : end + tag[0].length;
        out += '?';
        continue;
      }
      if (/[0-9]/.test(s[i + 1] ?? '')) { i++; while (i < n && s[i]! >= '0' && s[i]! <= '9') i++; out += '?'; continue; }
    }
    if (c === '"') {
      const end = s.indexOf('"', i + 1);
      const stop = end < 0 ? n : end + 1;
      out += s.slice(i, stop);
      i = stop;
      continue;
    }
    // A minus right after an operator, a comma or an opening parenthesis is a negative constant's sign.
    if (c === '-' && /[0-9.]/.test(s[i + 1] ?? '') && /[=<>(,+\-*/]$/.test(out.trimEnd() || '(')) { i++; continue; }
    if (((c >= '0' && c <= '9') || (c === '.' && /[0-9]/.test(s[i + 1] ?? ''))) && !isIdentChar(s[i - 1] ?? ' ')) {
      i++;
      while (i < n && /[0-9.eE]/.test(s[i]!) || (i < n && (s[i] === '+' || s[i] === '-') && (s[i - 1] === 'e' || s[i - 1] === 'E'))) i++;
      out += '?';
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      while (i < n && /\s/.test(s[i]!)) i++;
      out += ' ';
      continue;
    }
    out += c.toLowerCase();
    i++;
  }
  // A list of constants is one constant.
  return out.replace(/\?(?:\s?,\s?\?)+/g, '?').replace(/\s*([(),=<>])\s*/g, '$1').trim();
}

/**
 * `shape:` + SHA-256 (first 32 hex digits) of the normalised SQL. A pure function of the text,
 * and most traffic repeats a few texts: the last SHAPES_KEPT are kept (the scan and the hash
 * were ≈ 8 µs of each request's inline monitoring, issue 15). The texts are held only in this
 * process's memory, as the parse cache holds them.
 */
export function queryShape(sql: string): string {
  const hit = SHAPES.get(sql);
  if (hit !== undefined) return hit;
  const shape = `shape:${createHash('sha256').update(normaliseSql(sql)).digest('hex').slice(0, 32)}`;
  if (sql.length <= 4096) {
    if (SHAPES.size >= SHAPES_KEPT) SHAPES.delete(SHAPES.keys().next().value!);
    SHAPES.set(sql, shape);
  }
  return shape;
}

const SHAPES_KEPT = 1_000;
const SHAPES = new Map<string, string>();
