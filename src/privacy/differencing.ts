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
 * Not detected (docs/privacy.md): differences spread over three or more queries
 * (Q1 − Q2 − Q3), differences between groups of GROUP BY rather than filters, queries
 * with joins or subqueries in WHERE (skipped), history older than the window or lost at
 * restart (it is kept in memory), and colluding principals. Differential privacy is the
 * general answer; this is a tripwire for the obvious attack.
 */
import type { Expr, FromItem, Select } from '../query/ir.ts';
import { mapExpr } from '../query/ir.ts';

export const PROBE_ALIAS = '__gh_d';

export interface DifferencingProbe {
  readonly dataset: string;
  /** The governed scan (row filters, masks, unit column) under the alias PROBE_ALIAS. */
  readonly scan: Extract<FromItem, { kind: 'dataset' }>;
  /** The query's WHERE over PROBE_ALIAS (TRUE when absent). */
  readonly predicate: Expr;
  readonly unitColumn: string;
  readonly threshold: number;
}

interface Remembered { readonly predicate: Expr; readonly key: string; readonly at: number }

const TRUE: Expr = { kind: 'literal', type: 'boolean', value: true };
const FALSE: Expr = { kind: 'literal', type: 'boolean', value: false };

/** Rebinds a predicate from the query's alias to the probe alias; null if it reads anything else. */
export function probePredicate(where: Expr | null, alias: string): Expr | null {
  if (where === null) return TRUE;
  let foreign = false;
  const out = mapExpr(where, (x) => {
    if (x.kind === 'inQuery' || x.kind === 'exists' || x.kind === 'scalarQuery') foreign = true;
    if (x.kind === 'column') {
      if (x.relation !== alias) foreign = true;
      return { ...x, relation: PROBE_ALIAS };
    }
    return x;
  });
  return foreign ? null : out;
}

export class DifferencingMonitor {
  readonly #history = new Map<string, Remembered[]>();
  readonly #depth: number;
  readonly #windowMs: number;

  constructor(options: { depth?: number; windowMs?: number } = {}) {
    this.#depth = options.depth ?? 20;
    this.#windowMs = options.windowMs ?? 30 * 86_400_000;
  }

  #key(subject: string, dataset: string): string {
    return `${subject}\u0000${dataset}`;
  }

  /** The remembered predicates to compare a new one with (distinct, recent, not identical). */
  recent(subject: string, probe: DifferencingProbe, now = Date.now()): Expr[] {
    const k = JSON.stringify(probe.predicate, (key, v) => (key === 'lineage' ? undefined : v));
    return (this.#history.get(this.#key(subject, probe.dataset)) ?? []).filter((r) => now - r.at <= this.#windowMs && r.key !== k).map((r) => r.predicate);
  }

  /** One query counting, per remembered predicate, the distinct units where the two disagree. */
  checkQuery(probe: DifferencingProbe, previous: readonly Expr[]): Select {
    const unit: Expr = { kind: 'column', relation: PROBE_ALIAS, name: probe.unitColumn, lineage: { sources: new Set() } };
    // Each predicate as the query itself applies it: errors become NULL, NULL is false.
    const truth = (p: Expr): Expr => ({
      kind: 'func', name: 'coalesce', star: false, distinct: false, filter: null, over: null,
      args: [{ kind: 'func', name: 'try', args: [p], star: false, distinct: false, filter: null, over: null }, FALSE],
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

  remember(subject: string, probe: DifferencingProbe, now = Date.now()): void {
    const key = this.#key(subject, probe.dataset);
    const k = JSON.stringify(probe.predicate, (kk, v) => (kk === 'lineage' ? undefined : v));
    const list = (this.#history.get(key) ?? []).filter((r) => r.key !== k && now - r.at <= this.#windowMs);
    list.unshift({ predicate: probe.predicate, key: k, at: now });
    this.#history.set(key, list.slice(0, this.#depth));
  }
}
