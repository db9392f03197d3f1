/**
 * Data-loss prevention on the release path: every result a DLP obligation (or the
 * workspace baseline) covers is scanned before it leaves. Pattern detectors (SSNs, cards,
 * IBANs, emails, ...) plus the exact values of catalog columns the caller is meant to see
 * only masked — held as keyed fingerprints, never in clear (privacy/dlp). A finding blocks,
 * redacts or raises an alert by policy; the audit entry names the detector and column,
 * never the value.
 */
import type { CellValue, EngineResult, ResultColumn } from '../model/result.ts';
import { GatehouseError } from '../errors.ts';
import type { DatasetDef, ObligationDef } from '../model/types.ts';
import { createDlpPolicy, isIndexableTag, scanResult, SensitiveValueIndex, summariseFindings, type DlpConfig } from './dlp/index.ts';

const STRICTNESS = { alert: 0, redact: 1, block: 2 } as const;

/** The strictest combination of the baseline and every applicable obligation's `dlp`. */
export function mergeDlp(configs: readonly (DlpConfig | null | undefined)[]): DlpConfig | null {
  const present = configs.filter((c): c is DlpConfig => !!c);
  if (present.length === 0) return null;
  const actions: Record<string, 'alert' | 'redact' | 'block'> = {};
  let detectors: DlpConfig['detectors'] | undefined;
  let all = false;
  for (const c of present) {
    for (const [k, a] of Object.entries(c.actions ?? {})) {
      if (a && (actions[k] === undefined || STRICTNESS[a] > STRICTNESS[actions[k]!])) actions[k] = a;
    }
    if (c.detectors === undefined) all = true;
    else detectors = [...(detectors ?? []), ...c.detectors];
  }
  return { actions, ...(all ? {} : { detectors }) };
}

/** Columns whose raw values must not appear in this caller's results. */
export function indexedColumns(datasets: readonly DatasetDef[], obligations: ReadonlyMap<string, readonly ObligationDef[]>): { dataset: string; column: string; tag: string; classification: DatasetDef['classification'] }[] {
  const out: { dataset: string; column: string; tag: string; classification: DatasetDef['classification'] }[] = [];
  for (const ds of datasets) {
    const unmasked = new Set((obligations.get(ds.name) ?? []).flatMap((o) => o.unmask));
    for (const c of ds.columns) {
      const tag = c.tags.find(isIndexableTag);
      if (!tag || c.mask === null || unmasked.has(c.name)) continue;
      out.push({ dataset: ds.name, column: c.name, tag, classification: c.classification });
    }
  }
  return out;
}

/** Fingerprint indexes, built once per set of columns and engine, from the engine itself. */
export class SensitiveIndexCache {
  /**
   * Reads the distinct non-null values of one column as text where the dataset lives
   * (an internal IR query through the one executor: src/kernel/internal-queries.ts).
   */
  readonly #read: (dataset: string, column: string) => Promise<EngineResult>;
  readonly #cache = new Map<string, Promise<SensitiveValueIndex>>();
  constructor(read: (dataset: string, column: string) => Promise<EngineResult>) {
    this.#read = read;
  }

  get(columns: ReturnType<typeof indexedColumns>): Promise<SensitiveValueIndex> | null {
    if (columns.length === 0) return null;
    const key = JSON.stringify(columns.map((c) => `${c.dataset}.${c.column}`).sort());
    let p = this.#cache.get(key);
    if (!p) {
      p = this.#build(columns);
      p.catch(() => this.#cache.delete(key));
      this.#cache.set(key, p);
    }
    return p;
  }

  async #build(columns: ReturnType<typeof indexedColumns>): Promise<SensitiveValueIndex> {
    const index = new SensitiveValueIndex();
    for (const c of columns) {
      const r = await this.#read(c.dataset, c.column);
      for (const row of r.rows) index.add({ value: row[0] ?? null, tag: c.tag, classification: c.classification });
    }
    index.seal();
    return index;
  }

  dispose(): void {
    for (const p of this.#cache.values()) p.then((i) => i.dispose(), () => undefined);
    this.#cache.clear();
  }
}

export interface DlpOutcome {
  readonly rows: readonly (readonly CellValue[])[];
  /** Labels for the response and the audit entry (detector, column, action, row count). */
  readonly labels: readonly string[];
}

/** Scans a result; throws DLP_BLOCKED, or returns the (possibly redacted) rows and labels. */
export async function applyDlp(config: DlpConfig, columns: readonly ResultColumn[], rows: readonly (readonly CellValue[])[], index: Promise<SensitiveValueIndex> | null): Promise<DlpOutcome> {
  const scan = scanResult({ columns, rows }, createDlpPolicy(config), index ? await index : undefined);
  const summary = summariseFindings(scan.findings);
  const labels = summary.map((s) => `dlp:${s.action}(${s.detector} in "${s.column}", ${s.rows} row${s.rows === 1 ? '' : 's'})`);
  if (scan.action === 'block') {
    throw new GatehouseError('DLP_BLOCKED', 'the result was blocked by data-loss prevention: it contains data this request may not take out', {
      reasons: labels, hint: 'remove the flagged columns or aggregate them; the audit log records which detector fired (never the value)',
    });
  }
  return { rows: scan.rows, labels };
}
