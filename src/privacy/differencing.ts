/**
 * Differencing ("tracker") detection for aggregation-only datasets.
 *
 * A threshold on group size does not stop an analyst from subtracting two large answers:
 * "all patients" minus "all patients except the one born on D" is one patient. Before an
 * aggregation-only query runs, Gatehouse compares its WHERE predicate with the caller's
 * recent predicates on the same dataset: if the rows on which the two disagree (the
 * symmetric difference) cover at least one and fewer than `k` distinct privacy units, the
 * query is refused and an alert is written to the audit log. One extra engine scan checks
 * against all remembered predicates at once.
 *
 * Detected: pairs of single-dataset queries whose filters differ by a small set of units
 * (including through row filters and masks, which apply inside the governed scan).
 * Queries with joins or correlated subqueries are compared as "the units the query
 * selects" (aggregation-only.ts builds `unit IN (SELECT unit FROM ... WHERE ...)`), so a
 * join or a `NOT IN (SELECT ...)` does not step around the check. The history is kept
 * behind `DifferencingHistory` (node:sqlite survives restarts), is bounded by refusing new
 * filters rather than evicting old ones (so it cannot be flushed), and a filter is
 * recorded before its query runs (so a failed query counts).
 *
 * Not detected here (docs/privacy.md): differences spread over three or more queries
 * (Q1 − Q2 − Q3) and differences between GROUP BY cells — release-audit.ts audits released
 * cells for those — and colluding principals. The refusal itself is one bit about the
 * data, so refusals are rationed (`maxRefusals`). Differential privacy is the general
 * answer; this is a tripwire.
 */
import { GatehouseError } from '../errors.ts';
import type { Expr, FromItem, Select } from '../query/ir.ts';
import { mapExpr, subqueriesOf } from '../query/ir.ts';
import { MemoryDifferencingHistory, type DifferencingHistory } from './differencing-history.ts';

export const PROBE_ALIAS = '__gh_d';

export interface DifferencingProbe {
  readonly dataset: string;
  /** The governed scan (row filters, masks, unit column) under the alias PROBE_ALIAS. */
  readonly scan: Extract<FromItem, { kind: 'dataset' }>;
  /** The query's WHERE over PROBE_ALIAS (TRUE when absent). */
  readonly predicate: Expr;
  readonly unitColumn: string;
  readonly threshold: number;
  /**
   * The row predicate (over PROBE_ALIAS) of one released cell, from the values of the
   * result's group-key columns in order; null when the cell cannot be written back as a
   * filter (a group key that is not selected, or a value with no literal form).
   */
  readonly cell?: (keyValues: readonly unknown[]) => Expr | null;
}

const TRUE: Expr = { kind: 'literal', type: 'boolean', value: true };
const FALSE: Expr = { kind: 'literal', type: 'boolean', value: false };

/**
 * Rebinds a predicate from the query's alias to the probe alias; null if it reads anything
 * else. Uncorrelated subqueries (the caller checks) move as they are.
 */
export function probePredicate(where: Expr | null, alias: string): Expr | null {
  if (where === null) return TRUE;
  let foreign = false;
  const out = mapExpr(where, (x) => {
    if (x.kind === 'column') {
      if (x.relation !== alias) foreign = true;
      return { ...x, relation: PROBE_ALIAS };
    }
    return x;
  });
  return foreign ? null : out;
}

export interface DifferencingOptions {
  /** Where filters and refusals are kept (default: in memory, lost at restart). */
  readonly history?: DifferencingHistory;
  /** Distinct filters per principal and dataset in the window; past it, new filters are refused (not evicted). */
  readonly capacity?: number;
  /** How long a filter is remembered (default 90 days). */
  readonly windowMs?: number;
  /** Refusals per principal and dataset in the window after which every further query there is refused. */
  readonly maxRefusals?: number;
}

export const DEFAULT_CAPACITY = 500;
export const DEFAULT_WINDOW_MS = 90 * 86_400_000;
export const DEFAULT_MAX_REFUSALS = 5;

function predicateKey(p: Expr): string {
  return JSON.stringify(p, (key, v) => (key === 'lineage' ? undefined : v));
}

export class DifferencingMonitor {
  readonly #history: DifferencingHistory;
  readonly #capacity: number;
  readonly #windowMs: number;
  readonly #maxRefusals: number;

  constructor(options: DifferencingOptions = {}) {
    this.#history = options.history ?? new MemoryDifferencingHistory();
    this.#capacity = options.capacity ?? DEFAULT_CAPACITY;
    this.#windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.#maxRefusals = options.maxRefusals ?? DEFAULT_MAX_REFUSALS;
  }

  /**
   * Admits a query's filter before it runs and returns the remembered filters to compare
   * it with. The filter is recorded *now*, so a query that later fails or times out still
   * counts (a failure must not be a free probe). Refuses when the principal's history on
   * the dataset is full (it is never flushed to make room) or when the check has already
   * refused too many of the principal's queries there (each refusal tells one bit).
   */
  admit(subject: string, probe: DifferencingProbe, now = Date.now()): Expr[] {
    const since = now - this.#windowMs;
    const days = Math.round(this.#windowMs / 86_400_000);
    if (this.#history.refusals(subject, probe.dataset, since) >= this.#maxRefusals) {
      throw new GatehouseError('DIFFERENCING_DETECTED', `refused: differencing detection has refused ${this.#maxRefusals} of your queries on "${probe.dataset}" in the last ${days} days, so no further queries on it are accepted in that window`, {
        hint: 'ask the data owner for differentially private access', reasons: [`alert: differencing — refusal limit reached on "${probe.dataset}"`],
      });
    }
    const key = predicateKey(probe.predicate);
    const entries = this.#history.recent(subject, probe.dataset, since);
    const known = entries.some((e) => e.key === key);
    if (!known && entries.length >= this.#capacity) {
      throw new GatehouseError('DIFFERENCING_DETECTED', `refused: you have used ${entries.length} distinct filters on "${probe.dataset}" in the last ${days} days, the most differencing detection can keep`, {
        hint: 'repeat a filter you used before, or ask the data owner for differentially private access', reasons: [`alert: differencing — filter history full on "${probe.dataset}"`],
      });
    }
    this.#history.record(subject, { dataset: probe.dataset, key, predicate: probe.predicate, at: now });
    return entries.filter((e) => e.key !== key).map((e) => e.predicate);
  }

  /** The pipeline's current call: same as `admit` (records before the query runs). */
  recent(subject: string, probe: DifferencingProbe, now = Date.now()): Expr[] {
    return this.admit(subject, probe, now);
  }

  /** One query counting, per remembered predicate, the distinct units where the two disagree. */
  checkQuery(probe: DifferencingProbe, previous: readonly Expr[]): Select {
    const unit: Expr = { kind: 'column', relation: PROBE_ALIAS, name: probe.unitColumn, lineage: { sources: new Set() } };
    // Each predicate as the query itself applies it: errors become NULL, NULL is false.
    // TRY cannot hold a subquery; the renderer guards the parts around and inside one.
    const truth = (p: Expr): Expr => ({
      kind: 'func', name: 'coalesce', star: false, distinct: false, filter: null, over: null,
      args: [subqueriesOf(p).length > 0 ? p : { kind: 'func', name: 'try', args: [p], star: false, distinct: false, filter: null, over: null }, FALSE],
    });
    return {
      kind: 'select', with: [], distinct: false, from: { ...probe.scan, alias: PROBE_ALIAS },
      where: null, groupBy: [], having: null, orderBy: [], limit: null, offset: null,
      targets: previous.map((p, i) => ({
        alias: `d${i}`,
        expr: {
          kind: 'func', name: 'count', star: false, distinct: true, filter: null, over: null,
          args: [{ kind: 'case', operand: null, whens: [{ when: { kind: 'binary', op: '<>', left: truth(probe.predicate), right: truth(p) }, then: unit }], else: null }],
        },
      })),
    };
  }

  /** Index of the first remembered filter that differs from this one by 1 to threshold−1 units, or −1. */
  static firstHit(probe: DifferencingProbe, counts: readonly unknown[]): number {
    return counts.map((v) => Number(v ?? 0)).findIndex((n) => n > 0 && n < probe.threshold);
  }

  /**
   * Counts a refusal against the principal (see `admit`) and drops the refused filter from
   * the history: it released nothing, and keeping it would refuse later honest queries.
   */
  refused(subject: string, probe: DifferencingProbe, now = Date.now()): void {
    this.#history.recordRefusal(subject, probe.dataset, now);
    this.#history.remove(subject, probe.dataset, predicateKey(probe.predicate));
  }

  /** Refreshes the filter's time after a successful run (admit already recorded it). */
  remember(subject: string, probe: DifferencingProbe, now = Date.now()): void {
    this.#history.record(subject, { dataset: probe.dataset, key: predicateKey(probe.predicate), predicate: probe.predicate, at: now });
  }
}
