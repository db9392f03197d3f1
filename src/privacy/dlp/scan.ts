/**
 * The DLP result transformer: every cell of an engine result is checked by the enabled
 * detectors and, if given, the catalog's SensitiveValueIndex; the policy turns findings
 * into an outcome. `block` wins over `redact`, `redact` over `alert`:
 *
 * - block  — no rows are released; the caller raises DlpResultBlocked and audits the
 *            findings (detector, column, classification, number of rows — never values);
 * - redact — each cell with a redact finding becomes `[REDACTED:<detector>]`;
 * - alert  — rows pass unchanged; the findings are for the audit entry and alerting.
 *
 * Strings are scanned by every detector; strings inside list and struct cells too (the
 * whole cell is redacted). Numbers are checked only against the catalog index: a bare
 * number has no formatting to tell an SSN from a quantity, so pattern detectors would
 * mostly produce noise there.
 */
import type { CellValue, EngineResult } from '../../model/result.ts';
import type { Classification } from '../../model/types.ts';
import { DlpInputInvalid, DlpResultBlocked, type BlockedReason } from './errors.ts';
import type { DlpPolicy } from './policy.ts';
import type { SensitiveValueIndex } from './sensitive-value-index.ts';
import { emptyFeatures, textFeatures } from './text-features.ts';
import type { DetectorId, DlpAction, Finding, TextFeatures } from './types.ts';

export type ScanAction = 'allow' | 'redact' | 'block';

/** A finding with what the policy decided for it. Still no value. */
export interface ScanFinding extends Finding {
  readonly classification: Classification;
  readonly action: DlpAction;
}

export interface DlpScanResult {
  readonly action: ScanAction;
  /** Every finding, in row order; one per (cell, detector). */
  readonly findings: readonly ScanFinding[];
  /** Rows to release: unchanged for allow, cells replaced for redact, none for block. */
  readonly rows: readonly (readonly CellValue[])[];
}

/** Per-detector hit mask for one cell: bit i = policy.detectors[i]; the catalog index uses the top bit. */
const CATALOG_BIT = 1 << 30;

interface CellScan {
  hits: number;
  catalog: number; // highest catalog classification rank, -1 if none
}

const BY_RANK: readonly Classification[] = ['public', 'internal', 'confidential', 'regulated'];

/** Per-scan state: the detectors' requirements flattened into one array so the per-cell gate is plain comparisons. */
interface ScanContext {
  readonly matchers: readonly ((text: string) => boolean)[];
  /** 8 minimums per detector: length, digits, letters, upper, at, dots, colons, plus. */
  readonly req: Int32Array;
  readonly index: SensitiveValueIndex | undefined;
  readonly f: TextFeatures;
}

function compile(policy: DlpPolicy, index: SensitiveValueIndex | undefined): ScanContext {
  const ds = policy.detectors;
  const req = new Int32Array(ds.length * 8);
  ds.forEach((e, i) => {
    const r = e.detector.requires;
    req.set([r.length ?? 0, r.digits ?? 0, r.letters ?? 0, r.upper ?? 0, r.at ?? 0, r.dots ?? 0, r.colons ?? 0, r.plus ?? 0], i * 8);
  });
  return { matchers: ds.map((e) => e.detector.matches), req, index, f: emptyFeatures() };
}

function scanText(text: string, ctx: ScanContext, into: CellScan): void {
  const f = textFeatures(text, ctx.f);
  const { length, digits, letters, upper, at, dots, colons, plus } = f;
  const req = ctx.req;
  const matchers = ctx.matchers;
  for (let i = 0, k = 0; i < matchers.length; i++, k += 8) {
    if (length < req[k]! || digits < req[k + 1]! || letters < req[k + 2]! || upper < req[k + 3]! || at < req[k + 4]! || dots < req[k + 5]! || colons < req[k + 6]! || plus < req[k + 7]!) continue;
    if ((into.hits & (1 << i)) === 0 && matchers[i]!(text)) into.hits |= 1 << i;
  }
  if (ctx.index !== undefined) catalogHit(ctx.index.rankOfText(text, digits), into);
}

function catalogHit(rank: number, into: CellScan): void {
  if (rank >= 0) {
    into.hits |= CATALOG_BIT;
    into.catalog = Math.max(into.catalog, rank);
  }
}

function scanValue(value: CellValue, ctx: ScanContext, into: CellScan, depth: number): void {
  if (typeof value === 'string') scanText(value, ctx, into);
  else if (typeof value === 'number') {
    if (ctx.index !== undefined && Number.isSafeInteger(value)) catalogHit(ctx.index.rankOfText(String(value), -1), into);
  } else if (value !== null && typeof value === 'object') {
    if (depth > 64) throw new DlpInputInvalid('result cell nests deeper than 64 levels');
    const items = Array.isArray(value) ? value : Object.values(value);
    for (const item of items) scanValue(item, ctx, into, depth + 1);
  }
}

function actionRank(a: DlpAction): number {
  return a === 'block' ? 2 : a === 'redact' ? 1 : 0;
}

/**
 * Scans a result against a DLP policy and, optionally, the catalog's sensitive values.
 * Row numbers in findings are 0-based indices into `result.rows`.
 */
export function scanResult(result: EngineResult, policy: DlpPolicy, index?: SensitiveValueIndex): DlpScanResult {
  if (result === null || typeof result !== 'object' || !Array.isArray(result.columns) || !Array.isArray(result.rows)) {
    throw new DlpInputInvalid('scanResult expects an engine result with columns and rows arrays');
  }
  if (policy.detectors.length > 30) throw new DlpInputInvalid('a DLP policy can enable at most 30 detectors');
  const ctx = compile(policy, index);
  const cell: CellScan = { hits: 0, catalog: -1 };
  const findings: ScanFinding[] = [];
  const ds = policy.detectors;
  const columns = result.columns;
  const rows = result.rows;
  let worst = 0;
  let redacted: (readonly CellValue[])[] | null = null;

  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    let newRow: CellValue[] | null = null;
    for (let c = 0; c < row.length; c++) {
      const value = row[c]!;
      if (value === null || typeof value === 'boolean') continue;
      cell.hits = 0;
      cell.catalog = -1;
      scanValue(value, ctx, cell, 0);
      if (cell.hits === 0) continue;
      const column = columns[c]?.name ?? `#${c}`;
      let redactWith: DetectorId | null = null;
      for (let i = 0; i < ds.length; i++) {
        if ((cell.hits & (1 << i)) === 0) continue;
        const e = ds[i]!;
        findings.push({ detector: e.detector.id, column, row: r, classification: e.classification, action: e.action });
        worst = Math.max(worst, actionRank(e.action));
        if (e.action === 'redact' && redactWith === null) redactWith = e.detector.id;
      }
      if ((cell.hits & CATALOG_BIT) !== 0) {
        const classification = BY_RANK[cell.catalog]!;
        const action = policy.actions[classification];
        findings.push({ detector: 'catalog_value', column, row: r, classification, action });
        worst = Math.max(worst, actionRank(action));
        if (action === 'redact' && redactWith === null) redactWith = 'catalog_value';
      }
      if (redactWith !== null) {
        const target: CellValue[] = newRow ?? row.slice();
        target[c] = `[REDACTED:${redactWith}]`;
        newRow = target;
      }
    }
    if (newRow !== null) {
      redacted ??= rows.slice(0, r);
      redacted.push(newRow);
    } else if (redacted !== null) redacted.push(row);
  }

  if (worst === 2) return { action: 'block', findings, rows: [] };
  if (worst === 1) return { action: 'redact', findings, rows: redacted ?? rows };
  return { action: 'allow', findings, rows };
}

/** Findings grouped by (detector, column, classification, action) with a row count: the audit form. */
export function summariseFindings(findings: readonly ScanFinding[]): BlockedReason[] {
  const groups = new Map<string, { reason: BlockedReason; rows: Set<number> }>();
  for (const f of findings) {
    const key = JSON.stringify([f.detector, f.column, f.classification, f.action]);
    let g = groups.get(key);
    if (g === undefined) {
      g = { reason: { detector: f.detector, column: f.column, classification: f.classification, action: f.action, rows: 0 }, rows: new Set() };
      groups.set(key, g);
    }
    g.rows.add(f.row);
  }
  return [...groups.values()].map((g) => ({ ...g.reason, rows: g.rows.size }));
}

/** The error a caller raises for a blocked scan; its reasons are the audit summary. */
export function blockedError(scan: DlpScanResult): DlpResultBlocked {
  return new DlpResultBlocked(summariseFindings(scan.findings));
}
