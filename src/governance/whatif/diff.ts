/**
 * The what-if report's arithmetic: per principal × dataset, what the draft changes against
 * the version in force over the replayed requests — newly denied / allowed, columns newly
 * masked / unmasked (or masked differently), row filters and caps, DP cost per query, and
 * the privacy budget's exhaustion replayed in time order under each version.
 *
 * The budget replay follows the ledger's rules (src/kernel/protections/dp-budget.ts): each
 * allowed DP query charges its ρ against (subject, dataset) unless the charge would pass
 * the cap, in which case it is refused and charges nothing; calendar-month and rolling
 * windows start again as the ledger's do.
 */
import type { DatasetOutcome, DpCost, RequestOutcome } from './outcome.ts';
import type { LoggedRequest } from './logged-request.ts';

export interface ColumnChange {
  readonly column: string;
  readonly before: string | null;
  readonly after: string | null;
  /** The column is classified regulated (declared). */
  readonly regulated: boolean;
}

export interface BudgetRunOut {
  /** When the budget would first refuse a query, or null if it never would have. */
  readonly before: string | null;
  readonly after: string | null;
}

export interface PairChange {
  readonly principal: string;
  readonly dataset: string;
  readonly requests: number;
  readonly newlyDenied: number;
  readonly newlyAllowed: number;
  /** Up to three audit ids of the requests behind each count. */
  readonly examples: readonly string[];
  readonly deniedReasons: readonly string[];
  readonly newlyMasked: readonly ColumnChange[];
  readonly newlyUnmasked: readonly ColumnChange[];
  readonly maskChanged: readonly ColumnChange[];
  readonly rowFilters: { readonly before: readonly string[]; readonly after: readonly string[] } | null;
  readonly rowCap: { readonly before: number | null; readonly after: number | null } | null;
  readonly aggregationOnly: { readonly before: number | null; readonly after: number | null } | null;
  readonly dpCost: { readonly before: number | null; readonly after: number | null } | null;
  readonly budgetRunsOut: BudgetRunOut | null;
  /** The budget would have run out earlier under the draft (or where it never did before). */
  readonly budgetEarlier: boolean;
}

interface Acc {
  principal: string; dataset: string; requests: number; newlyDenied: number; newlyAllowed: number; examples: Set<string>; deniedReasons: Set<string>;
  masked: Map<string, ColumnChange>; unmasked: Map<string, ColumnChange>; remasked: Map<string, ColumnChange>;
  rowFilters: { before: readonly string[]; after: readonly string[] } | null;
  rowCap: { before: number | null; after: number | null } | null;
  agg: { before: number | null; after: number | null } | null;
  dp: { before: number | null; after: number | null } | null;
}

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export class WhatIfDiff {
  readonly #pairs = new Map<string, Acc>();
  readonly #regulated: (dataset: string, column: string) => boolean;
  readonly #budget = { before: new BudgetReplay(), after: new BudgetReplay() };
  readonly #runOut = new Map<string, { before: string | null; after: string | null }>();

  constructor(regulated: (dataset: string, column: string) => boolean) {
    this.#regulated = regulated;
  }

  add(r: LoggedRequest, before: RequestOutcome, after: RequestOutcome): void {
    for (const name of r.datasets) {
      const b = before.datasets.find((d) => d.dataset === name);
      const a = after.datasets.find((d) => d.dataset === name);
      if (!b || !a) continue;
      const key = `${r.principal}\u0000${name}`;
      let acc = this.#pairs.get(key);
      if (!acc) {
        acc = { principal: r.principal, dataset: name, requests: 0, newlyDenied: 0, newlyAllowed: 0, examples: new Set(), deniedReasons: new Set(), masked: new Map(), unmasked: new Map(), remasked: new Map(), rowFilters: null, rowCap: null, agg: null, dp: null };
        this.#pairs.set(key, acc);
      }
      acc.requests++;
      const note = (): void => { if (acc.examples.size < 3) acc.examples.add(r.auditId); };
      if (before.allowed && !after.allowed) { acc.newlyDenied++; note(); for (const x of a.reasons) if (acc.deniedReasons.size < 5) acc.deniedReasons.add(x); }
      if (!before.allowed && after.allowed) { acc.newlyAllowed++; note(); }
      if (before.allowed && after.allowed) this.#compareAccess(acc, b, a, note);
      this.#charge(r, key, before.allowed ? b.dp : null, after.allowed ? a.dp : null);
    }
  }

  #compareAccess(acc: Acc, b: DatasetOutcome, a: DatasetOutcome, note: () => void): void {
    for (const [col, mb] of Object.entries(b.columns)) {
      if (!(col in a.columns)) continue;
      const ma = a.columns[col]!;
      if (mb === ma) continue;
      const change: ColumnChange = { column: col, before: mb, after: ma, regulated: this.#regulated(acc.dataset, col) };
      if (mb === null) acc.masked.set(col, change);
      else if (ma === null) acc.unmasked.set(col, change);
      else acc.remasked.set(col, change);
      note();
    }
    if (!same(b.rowFilters, a.rowFilters)) { acc.rowFilters = { before: b.rowFilters, after: a.rowFilters }; note(); }
    if (b.rowCap !== a.rowCap) { acc.rowCap = { before: b.rowCap, after: a.rowCap }; note(); }
    if (b.aggregationOnly !== a.aggregationOnly) { acc.agg = { before: b.aggregationOnly, after: a.aggregationOnly }; note(); }
    if ((b.dp?.epsilon ?? null) !== (a.dp?.epsilon ?? null)) { acc.dp = { before: b.dp?.epsilon ?? null, after: a.dp?.epsilon ?? null }; note(); }
  }

  #charge(r: LoggedRequest, key: string, b: DpCost | null, a: DpCost | null): void {
    const ro = this.#runOut.get(key) ?? { before: null, after: null };
    if (b && !this.#budget.before.charge(b, r.principal, this.#datasetOf(key), r.time)) ro.before ??= r.time;
    if (a && !this.#budget.after.charge(a, r.principal, this.#datasetOf(key), r.time)) ro.after ??= r.time;
    this.#runOut.set(key, ro);
  }

  #datasetOf(key: string): string { return key.slice(key.indexOf('\u0000') + 1); }

  /** The pairs with at least one change, sorted by principal then dataset. */
  changes(): PairChange[] {
    const out: PairChange[] = [];
    for (const [key, acc] of this.#pairs) {
      const ro = this.#runOut.get(key) ?? { before: null, after: null };
      const budgetChanged = ro.before !== ro.after;
      const earlier = ro.after !== null && (ro.before === null || ro.after < ro.before);
      const c: PairChange = {
        principal: acc.principal, dataset: acc.dataset, requests: acc.requests, newlyDenied: acc.newlyDenied, newlyAllowed: acc.newlyAllowed,
        examples: [...acc.examples], deniedReasons: [...acc.deniedReasons],
        newlyMasked: [...acc.masked.values()], newlyUnmasked: [...acc.unmasked.values()], maskChanged: [...acc.remasked.values()],
        rowFilters: acc.rowFilters, rowCap: acc.rowCap, aggregationOnly: acc.agg, dpCost: acc.dp,
        budgetRunsOut: budgetChanged ? ro : null, budgetEarlier: earlier,
      };
      if (c.newlyDenied || c.newlyAllowed || c.newlyMasked.length || c.newlyUnmasked.length || c.maskChanged.length || c.rowFilters || c.rowCap || c.aggregationOnly || c.dpCost || c.budgetRunsOut) out.push(c);
    }
    return out.sort((x, y) => (x.principal === y.principal ? (x.dataset < y.dataset ? -1 : 1) : x.principal < y.principal ? -1 : 1));
  }
}

/** The budget ledger replayed in memory: spent ρ per (subject, dataset, window). */
export class BudgetReplay {
  readonly #spent = new Map<string, number>();

  /** Charges one query; false when the budget would refuse it (nothing is charged then). */
  charge(cost: DpCost, _principal: string, dataset: string, time: string): boolean {
    const key = `${cost.subject}\u0000${dataset}\u0000${windowOf(cost.window, time)}\u0000${cost.capRho}`;
    const spent = this.#spent.get(key) ?? 0;
    if (spent + cost.rho > cost.capRho * (1 + 1e-12)) return false;
    this.#spent.set(key, spent + cost.rho);
    return true;
  }
}

/** The window a charge at `time` falls in: the calendar month, or a rolling-day bucket. */
function windowOf(w: DpCost['window'], time: string): string {
  if (w === null) return 'all';
  if (w.kind === 'calendar-month') return time.slice(0, 7);
  return String(Math.floor(Date.parse(time) / (w.days * 86_400_000)));
}
