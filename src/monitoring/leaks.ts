/**
 * Leak tracing for row-level results (issue 21): when an extract turns up where it should
 * not, name the partner, the query and the audit entry that most likely released it.
 *
 * Three kinds of evidence, each keyed per partner with K_P = HMAC-SHA256(node key,
 * "gatehouse-watermark-v1" ‖ principal), the node key a secret in the state directory:
 *
 * 1. A registry of releases: for each row-level result, keyed hashes of its *stable* rows —
 *    the cells of columns that neither the watermark nor rounding changes (text, integers,
 *    dates) — with the audit entry. Reordering and taking a subset change nothing here.
 * 2. A watermark in the columns the workspace lets vary (monitoring.leakTracing.<dataset>.vary):
 *    each fractional value is moved by at most one unit in its last released decimal so
 *    that the parity of value/quantum equals a keyed bit of (K_P, column, the row's stable
 *    cells) — the parity ("quantisation index") scheme of R. Agrawal and J. Kiernan,
 *    "Watermarking Relational Databases", VLDB 2002, simplified to every row. For the right
 *    partner every checked value agrees; for another each agrees with probability ½, so n
 *    agreeing values give a p-value of 2⁻ⁿ against chance. It survives reordering, subsets
 *    and rounding to the released precision; coarser rounding erases it (then 1 and 3 remain).
 * 3. Canary rows (honeytokens, L. Spitzner, "Honeytokens: The Other Honeypot", 2003):
 *    synthetic rows built from the result's own values with keyed new identifiers, added only
 *    to one partner's plain scans (no filter the canary might not satisfy, no ORDER BY,
 *    LIMIT, grouping or join). A leaked canary names its partner outright.
 *
 * The ledger is kept in memory, bounded (the newest MAX_RELEASES releases); entries are
 * tied to their audit id when the audit entry is recorded. Releases leave the ledger as
 * `SavedRelease` records (keyed row hashes, never a value) that the node appends to its state
 * directory and reloads at start (persist.ts), so a restart does not forget who received what. Every row-level result (marked or
 * not) also reports its privacy units to the live tallies, so "what can they extract" counts
 * distinct individuals, not only rows.
 */
import { createHmac } from 'node:crypto';
import type { CellValue, ResultColumn } from '../engine/engine.ts';
import type { AuditRecord } from '../audit/types.ts';

export interface LeakTracingConfig {
  /** Per dataset: columns whose last digit may carry the watermark, and canary rows per release. */
  readonly [dataset: string]: { readonly vary: readonly string[]; readonly canaries: number };
}

/** A release as the node's state keeps it: identifiers, keyed row hashes and canary hashes only. */
export interface SavedRelease {
  readonly principal: string;
  readonly datasets: readonly string[];
  readonly auditId: string | null;
  readonly sqlFingerprint: string | null;
  readonly at: string;
  readonly stable: readonly string[];
  readonly marked: readonly (readonly [string, number])[];
  readonly rows: readonly string[];
  readonly canaries: readonly string[];
}

interface Release {
  readonly principal: string;
  readonly datasets: readonly string[];
  readonly entry: object;
  readonly at: string;
  readonly stable: readonly string[];
  /** Watermarked columns and their quantum (10^-decimals). */
  readonly marked: ReadonlyMap<string, number>;
  readonly rows: ReadonlySet<string>;
  readonly canaries: ReadonlySet<string>;
}

/**
 * A marked result and the bookkeeping to run once it is known to be released (its audit
 * entry recorded with decision "allow"): a later protection may still refuse it.
 */
export interface MarkedRelease {
  /** The rows to release instead, or null when nothing was marked. */
  readonly rows: (readonly CellValue[])[] | null;
  commit(): void;
}

/** Where a release's privacy units are counted (every row-level result, marked or not). */
export interface UnitHooks {
  unitColumnOf(dataset: string): string | null;
  released(principal: string, dataset: string, values: readonly string[], at: number): void;
}

export interface TraceCandidate {
  readonly principal: string;
  readonly auditId: string | null;
  readonly at: string;
  readonly datasets: readonly string[];
  readonly sqlFingerprint: string | null;
  /** Leaked rows found in this release. */
  readonly matchedRows: number;
  readonly canaryRows: number;
  readonly watermark: { readonly checked: number; readonly agreeing: number };
  readonly confidence: number;
  /** The partner's results the rows were found in, most rows first (the first is `auditId`). */
  readonly releases: readonly { readonly auditId: string | null; readonly at: string; readonly matchedRows: number }[];
  readonly evidence: readonly string[];
}

export interface TraceResult {
  readonly rows: number;
  readonly verdict: string;
  readonly candidates: readonly TraceCandidate[];
}

const MAX_RELEASES = 2000;
const MAX_ROWS_PER_RELEASE = 100_000;
const NUMERIC = /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i;

/** The text a cell has in any faithful copy: numbers normalised, strings trimmed. */
export function canonical(v: CellValue | undefined): string {
  if (v === null || v === undefined || v === '') return '\u0000';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    const s = v.trim();
    if (NUMERIC.test(s)) { const n = Number(s); if (Number.isInteger(n) && Math.abs(n) < 2 ** 53) return String(n); }
    return s;
  }
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

const isFraction = (v: CellValue): boolean => typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v);
const decimalsOf = (v: number): number => { const s = String(v); const i = s.indexOf('.'); return i < 0 || s.includes('e') ? 0 : Math.min(6, s.length - i - 1); };

export class LeakLedger {
  readonly #nodeKey: Buffer;
  #config: LeakTracingConfig;
  readonly #releases: Release[] = [];
  readonly #auditIds = new WeakMap<object, string>();

  readonly #units: UnitHooks | null;

  constructor(nodeKey: Buffer, config: LeakTracingConfig, units: UnitHooks | null = null) {
    if (nodeKey.length < 32) throw new RangeError('the watermark node key must be at least 32 bytes');
    this.#nodeKey = nodeKey;
    this.#config = config;
    this.#units = units;
  }

  reconfigure(config: LeakTracingConfig): void { this.#config = config; }

  readonly #unsaved: Release[] = [];

  /** Releases committed since the last call, for the node's state (their audit ids are bound by then). */
  takeUnsaved(): SavedRelease[] {
    const out = this.#unsaved.splice(0).map((r) => this.#save(r));
    return out;
  }

  /** Every release in the ledger, for compacting the saved registry. */
  saved(): SavedRelease[] { return this.#releases.map((r) => this.#save(r)); }

  #save(r: Release): SavedRelease {
    const entry = r.entry as Partial<AuditRecord>;
    return {
      principal: r.principal, datasets: r.datasets, auditId: this.#auditIds.get(r.entry) ?? null, sqlFingerprint: entry.sqlFingerprint ?? null,
      at: r.at, stable: r.stable, marked: [...r.marked], rows: [...r.rows], canaries: [...r.canaries],
    };
  }

  /** Restores saved releases at start-up (oldest first), keeping the newest MAX_RELEASES. */
  restore(saved: readonly SavedRelease[]): void {
    for (const x of saved.slice(-MAX_RELEASES)) {
      const entry = { sqlFingerprint: x.sqlFingerprint };
      if (x.auditId !== null) this.#auditIds.set(entry, x.auditId);
      this.#releases.push({ principal: x.principal, datasets: x.datasets, entry, at: x.at, stable: x.stable, marked: new Map(x.marked), rows: new Set(x.rows), canaries: new Set(x.canaries) });
    }
    while (this.#releases.length > MAX_RELEASES) this.#releases.shift();
  }

  #partnerKey(principal: string): Buffer {
    return createHmac('sha256', this.#nodeKey).update('gatehouse-watermark-v1\u0000').update(principal).digest();
  }

  #rowHash(stableRaw: string): string {
    return createHmac('sha256', this.#nodeKey).update('row\u0000').update(stableRaw).digest('base64url').slice(0, 22);
  }

  static #stableRaw(columns: readonly string[], stable: readonly string[], row: readonly CellValue[]): string {
    return stable.map((c) => `${c}=${canonical(row[columns.indexOf(c)])}`).join('\u001f');
  }

  /** Watermarks (and, for plain scans, adds canaries to) one partner's row-level result, and remembers the release. */
  mark(input: { principal: string; datasets: readonly string[]; plainScan: boolean; entry: object; at: Date; columns: readonly ResultColumn[]; rows: readonly (readonly CellValue[])[] }): MarkedRelease {
    const names = input.columns.map((c) => c.name);
    const countUnits = (): void => {
      if (!this.#units || input.rows.length === 0) return;
      for (const d of input.datasets) {
        const u = this.#units.unitColumnOf(d);
        const j = u === null ? -1 : names.indexOf(u);
        if (j >= 0) this.#units.released(input.principal, d, input.rows.map((r) => canonical(r[j])), input.at.getTime());
      }
    };
    const specs = input.datasets.map((d) => this.#config[d]).filter((s) => s !== undefined);
    if (specs.length === 0 || input.rows.length === 0) return { rows: null, commit: countUnits };
    const vary = new Set(specs.flatMap((s) => s.vary));
    const fractional = new Set(names.filter((_, j) => input.rows.some((r) => isFraction(r[j]!))));
    const marked = new Map<string, number>();
    for (const c of names) if (vary.has(c) && fractional.has(c)) marked.set(c, 10 ** -Math.max(1, ...input.rows.map((r) => (isFraction(r[names.indexOf(c)]!) ? decimalsOf(r[names.indexOf(c)] as number) : 0))));
    const stable = names.filter((c) => !fractional.has(c) && !vary.has(c)).sort();
    if (stable.length === 0) return { rows: null, commit: countUnits };
    const key = this.#partnerKey(input.principal);
    const out: (readonly CellValue[])[] = input.rows.map((r) => this.#embed(key, names, stable, marked, r));
    const canaries = new Set<string>();
    const wanted = input.plainScan && input.datasets.length === 1 && input.rows.length >= 5 ? specs[0]!.canaries : 0;
    for (let i = 0; i < wanted; i++) {
      const c = this.#canary(key, input.datasets[0]!, i, names, stable, input.rows);
      const marked2 = this.#embed(key, names, stable, marked, c);
      canaries.add(this.#rowHash(LeakLedger.#stableRaw(names, stable, marked2)));
      const at = createHmac('sha256', key).update(`pos\u0000${i}`).digest().readUInt32BE(0) % (out.length + 1);
      out.splice(at, 0, marked2);
    }
    const rows = new Set<string>();
    for (const r of out) { if (rows.size >= MAX_ROWS_PER_RELEASE) break; rows.add(this.#rowHash(LeakLedger.#stableRaw(names, stable, r))); }
    return {
      rows: out,
      commit: () => {
        countUnits();
        const release: Release = { principal: input.principal, datasets: input.datasets, entry: input.entry, at: input.at.toISOString(), stable, marked, rows, canaries };
        this.#releases.push(release);
        if (this.#unsaved.length < MAX_RELEASES) this.#unsaved.push(release);
        if (this.#releases.length > MAX_RELEASES) this.#releases.shift();
      },
    };
  }

  #bit(key: Buffer, column: string, stableRaw: string): number {
    return createHmac('sha256', key).update(`bit\u0000${column}\u0000`).update(stableRaw).digest()[0]! & 1;
  }

  #embed(key: Buffer, names: readonly string[], stable: readonly string[], marked: ReadonlyMap<string, number>, row: readonly CellValue[]): CellValue[] {
    const out = [...row];
    if (marked.size === 0) return out;
    const raw = LeakLedger.#stableRaw(names, stable, row);
    for (const [c, q] of marked) {
      const j = names.indexOf(c);
      const v = row[j];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      let k = Math.round(v / q);
      if ((((k % 2) + 2) % 2) !== this.#bit(key, c, raw)) k += (createHmac('sha256', key).update(`dir\u0000${c}\u0000`).update(raw).digest()[0]! & 1) ? 1 : -1;
      const decimals = Math.round(-Math.log10(q));
      out[j] = Number((k * q).toFixed(decimals));
    }
    return out;
  }

  /** A plausible synthetic row: each cell from another row of the result, digits of text and identifiers redrawn. */
  #canary(key: Buffer, dataset: string, i: number, names: readonly string[], stable: readonly string[], rows: readonly (readonly CellValue[])[]): CellValue[] {
    const prf = createHmac('sha256', key).update(`canary\u0000${dataset}\u0000${i}`).digest();
    let p = 0;
    const next = (): number => { const b = prf[p % 32]! ^ (p >> 5); p++; return b; };
    return names.map((name, j) => {
      const src = rows[((next() << 8) | next()) % rows.length]![j]!;
      const idLike = /(^id$|_id$|_no$|number$|_code$)/i.test(name);
      if (typeof src === 'string') return src.replace(/\d/g, () => String(next() % 10));
      if (typeof src === 'number' && Number.isInteger(src) && idLike && stable.includes(name)) {
        const digits = String(Math.abs(src)).length;
        let n = 1 + (next() % 9);
        for (let d = 1; d < digits; d++) n = n * 10 + (next() % 10);
        return src < 0 ? -n : n;
      }
      return src;
    });
  }

  /** Ties a release to its audit id once the audit entry is recorded (Runtime.onRecorded sees the same entry object). */
  bindAudit(entry: AuditRecord, auditId: string): void {
    this.#auditIds.set(entry, auditId);
  }

  /**
   * Names the partner a leaked extract most likely came from, with a confidence, and the
   * releases (queries, audit entries) its rows were found in. Evidence is summed per partner
   * over all its releases: a slow exfiltration leaks rows of many small results together.
   */
  trace(extract: { columns: readonly string[]; rows: readonly (readonly CellValue[])[] }): TraceResult {
    const names = extract.columns;
    const perPartner = new Map<string, { rows: Set<number>; canaryRows: number; checked: number; agreeing: number; releases: { r: Release; matched: number }[] }>();
    for (const r of this.#releases) {
      if (!r.stable.every((c) => names.includes(c))) continue;
      const key = r.marked.size > 0 ? this.#partnerKey(r.principal) : null;
      let p = perPartner.get(r.principal);
      let matched = 0;
      extract.rows.forEach((row, index) => {
        const raw = LeakLedger.#stableRaw(names, r.stable, row);
        const h = this.#rowHash(raw);
        if (!r.rows.has(h)) return;
        matched++;
        if (!p) { p = { rows: new Set(), canaryRows: 0, checked: 0, agreeing: 0, releases: [] }; perPartner.set(r.principal, p); }
        // A row found in several releases of one partner counts once.
        if (p.rows.has(index)) return;
        p.rows.add(index);
        if (r.canaries.has(h)) p.canaryRows++;
        if (!key) return;
        for (const [c, q] of r.marked) {
          const j = names.indexOf(c);
          if (j < 0) continue;
          const cell = row[j];
          const v = typeof cell === 'number' ? cell : typeof cell === 'string' && NUMERIC.test(cell.trim()) ? Number(cell) : NaN;
          if (!Number.isFinite(v)) continue;
          p.checked++;
          const k = Math.round(v / q);
          if ((((k % 2) + 2) % 2) === this.#bit(key, c, raw)) p.agreeing++;
        }
      });
      if (matched > 0) p!.releases.push({ r, matched });
    }
    const candidates: TraceCandidate[] = [];
    for (const [principal, p] of perPartner) {
      const evidence: string[] = [`${p.rows.size} of ${extract.rows.length} rows were released to ${principal}, in ${p.releases.length} result(s)`];
      let confidence: number;
      if (p.canaryRows > 0) {
        confidence = 1 - 2 ** (-40 * p.canaryRows);
        evidence.push(`${p.canaryRows} canary row(s) made only for ${principal}`);
      } else if (p.checked >= 4) {
        const chance = binomialTail(p.checked, p.agreeing);
        confidence = p.agreeing / p.checked >= 0.9 ? 1 - chance : 0;
        evidence.push(`watermark: ${p.agreeing} of ${p.checked} values carry ${principal}'s mark (chance ${chance < 1e-12 ? '< 1e-12' : chance.toPrecision(2)})`);
      } else {
        confidence = 0.5 * (p.rows.size / extract.rows.length);
        evidence.push('no watermark or canary to tell partners apart: the rows alone');
      }
      p.releases.sort((a, b) => b.matched - a.matched);
      const top = p.releases[0]!.r;
      const entry = top.entry as Partial<AuditRecord>;
      candidates.push({
        principal, auditId: this.#auditIds.get(top.entry) ?? null, at: top.at, datasets: top.datasets, sqlFingerprint: entry.sqlFingerprint ?? null,
        matchedRows: p.rows.size, canaryRows: p.canaryRows, watermark: { checked: p.checked, agreeing: p.agreeing }, confidence: Math.round(confidence * 1e6) / 1e6,
        releases: p.releases.slice(0, 20).map((x) => ({ auditId: this.#auditIds.get(x.r.entry) ?? null, at: x.r.at, matchedRows: x.matched })),
        evidence,
      });
    }
    candidates.sort((a, b) => b.confidence - a.confidence || b.matchedRows - a.matchedRows);
    const best = candidates[0];
    const verdict = !best ? 'no release matches this extract: it names nobody'
      : best.confidence >= 0.99 ? `most likely released to ${best.principal} (audit entry ${best.auditId ?? 'unknown'}${best.releases.length > 1 ? ` and ${best.releases.length - 1} more` : ''}), confidence ${best.confidence}`
      : `inconclusive: the rows match releases to ${candidates.map((c) => c.principal).join(', ')} but no mark tells them apart`;
    return { rows: extract.rows.length, verdict, candidates: candidates.slice(0, 10) };
  }
}

/** P(X ≥ k) for X ~ Binomial(n, ½), in log space so large n does not underflow to a wrong 0. */
export function binomialTail(n: number, k: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  const lf = new Float64Array(n + 1);
  for (let i = 2; i <= n; i++) lf[i] = lf[i - 1]! + Math.log(i);
  let max = -Infinity;
  const terms: number[] = [];
  for (let i = k; i <= n; i++) { const t = lf[n]! - lf[i]! - lf[n - i]! - n * Math.LN2; terms.push(t); if (t > max) max = t; }
  return Math.min(1, Math.exp(max) * terms.reduce((s, t) => s + Math.exp(t - max), 0));
}

/** Parses a leaked extract: JSON (array of objects, or {columns, rows}) or CSV with a header row (RFC 4180 quoting). */
export function parseExtract(text: string): { columns: string[]; rows: CellValue[][] } {
  const t = text.trim();
  if (t.startsWith('[') || t.startsWith('{')) {
    const j = JSON.parse(t) as unknown;
    if (Array.isArray(j)) {
      const columns = [...new Set(j.flatMap((o) => (o && typeof o === 'object' ? Object.keys(o as object) : [])))];
      return { columns, rows: j.map((o) => columns.map((c) => ((o as Record<string, CellValue>)[c] ?? null))) };
    }
    const o = j as { columns?: unknown; rows?: unknown };
    if (Array.isArray(o.columns) && Array.isArray(o.rows)) {
      return { columns: o.columns.map((c) => (typeof c === 'string' ? c : String((c as { name?: unknown }).name))), rows: o.rows as CellValue[][] };
    }
    throw new SyntaxError('JSON extracts must be an array of row objects or {columns, rows}');
  }
  const records: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < t.length; i++) {
    const ch = t[i]!;
    if (quoted) {
      if (ch === '"' && t[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { row.push(field); field = ''; }
    else if (ch === '\n' || ch === '\r') { if (ch === '\r' && t[i + 1] === '\n') i++; row.push(field); records.push(row); row = []; field = ''; }
    else field += ch;
  }
  row.push(field);
  records.push(row);
  const [header, ...rows] = records;
  if (!header || header.length === 0) throw new SyntaxError('the CSV extract has no header row');
  return { columns: header.map((h) => h.trim()), rows: rows.filter((r) => r.length > 1 || r[0] !== '').map((r) => r.map((c) => (c === '' ? null : c))) };
}
