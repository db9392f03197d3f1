/**
 * The automatic checks an output passes before a person sees it, reusing the pipeline's own
 * protections rather than copies:
 *
 *  - disclosure control (src/privacy/sdc): a table that declares a count column is checked
 *    cell by cell against the small-count threshold (primary suppression, counted in the
 *    count column), and secondary suppression must not be needed to protect it — the
 *    airlock does not rewrite outputs, it refuses them;
 *  - dominance (the (n,k) rule with n = 1, Hundepool et al., *Statistical Disclosure
 *    Control*, Wiley 2012, §4.2.2): where the manifest pairs a sum column with the column
 *    holding the largest single contribution to it, no row's largest contribution may
 *    exceed `dominanceK` (default 50 %) of its sum;
 *  - rounding: counts must already be rounded as the rule says (`nearest5` / `midpoint6`),
 *    checked by rounding them again (src/privacy/sdc roundCount);
 *  - DLP (src/privacy/dlp): every cell is scanned with the workspace's DLP policy; any
 *    finding that would redact or block fails the check;
 *  - row caps: at most `maxRows` rows per table.
 *
 * Findings name the output, the check, the column and the row, never a value.
 */
import type { CheckedOutput } from '../jobs/outputs.ts';
import { createDlpPolicy, scanResult, type DlpConfig } from '../privacy/dlp/index.ts';
import { DEFAULT_THRESHOLD, protectOneWay, roundCount, type Rounding } from '../privacy/sdc/index.ts';

export interface CheckOptions {
  readonly threshold?: number;
  /** Largest share one contributor may hold of a sum (0..1). Default 0.5. */
  readonly dominanceK?: number;
  readonly rounding?: Rounding;
  readonly maxRows?: number;
  readonly dlp?: DlpConfig | null;
}

export interface CheckFinding {
  readonly output: string;
  readonly check: 'small-count' | 'secondary' | 'dominance' | 'rounding' | 'dlp' | 'row-cap';
  readonly detail: string;
}

export interface CheckReport {
  readonly passed: boolean;
  readonly findings: readonly CheckFinding[];
  readonly threshold: number;
  readonly rounding: Rounding;
  readonly maxRows: number;
}

/** Per output: its count column and its dominance pairs, from the manifest. */
export interface OutputRules {
  readonly countColumn?: string;
  readonly dominance?: { readonly sum: string; readonly largest: string };
}

export function runChecks(outputs: readonly CheckedOutput[], rules: Readonly<Record<string, OutputRules | undefined>>, options: CheckOptions = {}): CheckReport {
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const rounding = options.rounding ?? 'none';
  const maxRows = options.maxRows ?? 1_000;
  const findings: CheckFinding[] = [];
  const policy = createDlpPolicy(options.dlp ?? {});
  for (const o of outputs) {
    const rows = o.kind === 'table' ? o.rows : [[JSON.stringify(o.value ?? null)]];
    const columns = o.kind === 'table' ? o.columns : ['value'];
    if (rows.length > maxRows) findings.push({ output: o.name, check: 'row-cap', detail: `${rows.length} rows, more than the cap of ${maxRows}` });
    const countCol = rules[o.name]?.countColumn;
    const dom = rules[o.name]?.dominance;
    if (o.kind === 'table' && dom) {
      const si = columns.indexOf(dom.sum), li = columns.indexOf(dom.largest);
      const k = options.dominanceK ?? 0.5;
      rows.forEach((r, i) => {
        const sum = r[si], largest = r[li];
        if (si < 0 || li < 0 || typeof sum !== 'number' || typeof largest !== 'number') {
          findings.push({ output: o.name, check: 'dominance', detail: `row ${i}: ${dom.sum} and ${dom.largest} must be numbers` });
        } else if (Math.abs(largest) > k * Math.abs(sum)) {
          findings.push({ output: o.name, check: 'dominance', detail: `row ${i}: one contributor holds more than ${Math.round(k * 100)} % of ${dom.sum}` });
        }
      });
    }
    if (o.kind === 'table' && countCol !== undefined) {
      const ci = columns.indexOf(countCol);
      const counts = rows.map((r) => r[ci]);
      const bad = counts.findIndex((c) => typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0);
      if (ci < 0 || bad >= 0) {
        findings.push({ output: o.name, check: 'small-count', detail: `count column ${countCol} must hold non-negative integers${bad >= 0 ? ` (row ${bad})` : ''}` });
      } else {
        const published = protectOneWay({ measures: [{ name: countCol, kind: 'count' }], cells: counts.map((c) => ({ units: c as number, values: [c as number] })) }, { threshold, margins: 'published-only' });
        for (const i of published.suppressedPrimary) findings.push({ output: o.name, check: 'small-count', detail: `row ${String(i)}: ${countCol} is below the threshold of ${threshold}` });
        for (const i of published.suppressedSecondary) findings.push({ output: o.name, check: 'secondary', detail: `row ${String(i)} would let a small count be recovered by subtraction` });
        if (rounding !== 'none') {
          counts.forEach((c, i) => { if (roundCount(c as number, rounding) !== c) findings.push({ output: o.name, check: 'rounding', detail: `row ${i}: ${countCol} is not rounded (${rounding})` }); });
        }
      }
    }
    const scan = scanResult({ columns: columns.map((name) => ({ name, type: 'VARCHAR' })), rows: rows as never }, policy);
    for (const f of scan.findings) {
      if (f.action === 'block' || f.action === 'redact') findings.push({ output: o.name, check: 'dlp', detail: `row ${f.row}, column ${f.column}: ${f.detector}` });
    }
  }
  return { passed: findings.length === 0, findings, threshold, rounding, maxRows };
}
