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
 * Cells are compared as well as whole filters: a grouped query publishes one cell per key
 * value, and "the Medicare cell" minus "Medicare, except one patient" is as bad as two
 * filters. For a remembered grouped filter P with keys K and the new filter Q (and the
 * other way round, with the new query's keys), the check counts, per key value v on which
 * both select rows, the units where P and Q disagree; 1..k−1 is a hit.
 *
 * Not detected here (docs/privacy.md): differences spread over three or more queries
 * (Q1 − Q2 − Q3) — release-audit.ts audits released cells for those — and colluding
 * principals. The refusal itself is one bit about the
 * data, so refusals are rationed (`maxRefusals`). Differential privacy is the general
 * answer; this is a tripwire.
 */
import { GatehouseError } from '../errors.ts';
import type { Expr, FromItem, Select } from '../query/ir.ts';
import { mapExpr, subqueriesOf } from '../query/ir.ts';
import { MemoryDifferencingHistory, type DifferencingHistory } from './differencing-history.ts';

import { PROBE_ALIAS, probeExpr, probePredicate, type DifferencingProbe } from '../query/govern/differencing-probe.ts';

export { PROBE_ALIAS, probeExpr, probePredicate, type DifferencingProbe };

const FALSE: Expr = { kind: 'literal', type: 'boolean', value: false };

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

export const DEFAULT_CAPACITY = 200;
export const DEFAULT_WINDOW_MS = 90 * 86_400_000;
export const DEFAULT_MAX_REFUSALS = 5;

function predicateKey(p: Expr, keys: readonly Expr[] | null | undefined = []): string {
  return JSON.stringify({ p, k: keys ?? null }, (key, v) => (key === 'lineage' ? undefined : v));
}

/** A remembered filter as the check compares it: its predicate and its group keys. */
export interface RememberedFilter {
  readonly predicate: Expr;
  readonly keys: readonly Expr[] | null;
}

const fn = (name: string, args: Expr[]): Expr => ({ kind: 'func', name, args, star: false, distinct: false, filter: null, over: null });
const countDistinct = (arg: Expr): Expr => ({ kind: 'func', name: 'count', args: [arg], star: false, distinct: true, filter: null, over: null });
const num = (n: number): Expr => ({ kind: 'literal', type: 'number', value: String(n) });
const col = (relation: string, name: string): Expr => ({ kind: 'column', relation, name, lineage: { sources: new Set() } });
const and = (l: Expr, r: Expr): Expr => ({ kind: 'binary', op: 'AND', left: l, right: r });
const cmp = (op: '<>' | '>' | '<', l: Expr, r: Expr): Expr => ({ kind: 'binary', op, left: l, right: r });
const when = (c: Expr, then: Expr): Expr => ({ kind: 'case', operand: null, whens: [{ when: c, then }], else: null });

/** A predicate as the query itself applies it: errors become NULL, NULL is false. TRY cannot hold a subquery; the renderer guards the parts around and inside one. */
function truth(p: Expr): Expr {
  return fn('coalesce', [subqueriesOf(p).length > 0 ? p : fn('try', [p]), FALSE]);
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
  admit(subject: string, probe: DifferencingProbe, now = Date.now()): RememberedFilter[] {
    const since = now - this.#windowMs;
    const days = Math.round(this.#windowMs / 86_400_000);
    if (this.#history.refusals(subject, probe.dataset, since) >= this.#maxRefusals) {
      throw new GatehouseError('DIFFERENCING_DETECTED', `refused: differencing detection has refused ${this.#maxRefusals} of your queries on "${probe.dataset}" in the last ${days} days, so no further queries on it are accepted in that window`, {
        hint: 'ask the data owner for differentially private access', reasons: [`alert: differencing — refusal limit reached on "${probe.dataset}"`],
      });
    }
    const key = predicateKey(probe.predicate, probe.keys);
    const entries = this.#history.recent(subject, probe.dataset, since);
    const known = entries.some((e) => e.key === key);
    if (!known && entries.length >= this.#capacity) {
      throw new GatehouseError('DIFFERENCING_DETECTED', `refused: you have used ${entries.length} distinct filters on "${probe.dataset}" in the last ${days} days, the most differencing detection can keep`, {
        hint: 'repeat a filter you used before, or ask the data owner for differentially private access', reasons: [`alert: differencing — filter history full on "${probe.dataset}"`],
      });
    }
    this.#history.record(subject, { dataset: probe.dataset, key, predicate: probe.predicate, keys: probe.keys ?? null, at: now });
    return entries.filter((e) => e.key !== key).map((e) => ({ predicate: e.predicate, keys: e.keys }));
  }

  /** The pipeline's current call: same as `admit` (records before the query runs). */
  recent(subject: string, probe: DifferencingProbe, now = Date.now()): RememberedFilter[] {
    return this.admit(subject, probe, now);
  }

  /**
   * One query that returns, per remembered filter, a number that lies in 1..k−1 when the
   * new filter differs from it — or from one of its published cells, or one of the new
   * query's cells differs from it — by fewer than k units and more than none.
   * Whole filters: distinct units over rows where the two predicates disagree (exact).
   * Cells: see below (an estimate that is exact when a filter lies inside one key value,
   * the row-minus-cell attack).
   */
  checkQuery(probe: DifferencingProbe, previous: readonly RememberedFilter[]): Select {
    const unit = col(PROBE_ALIAS, probe.unitColumn);
    const q = truth(probe.predicate);
    const k = probe.threshold;
    const scan = { ...probe.scan, alias: PROBE_ALIAS };
    const ps = previous.map((p) => truth(p.predicate));
    const keyId = (keys: readonly Expr[]): string => JSON.stringify(keys, (kk, v) => (kk === 'lineage' ? undefined : v));
    const boolOr = (e: Expr): Expr => fn('bool_or', [e]);
    const ones = (flag: Expr): Expr => fn('sum', [{ kind: 'case', operand: null, whens: [{ when: flag, then: num(1) }], else: num(0) }]);
    const block = (from: FromItem, targets: { alias: string; expr: Expr }[], groupBy: Expr[] = []): Select => ({
      kind: 'select', with: [], distinct: false, from, where: null, groupBy, having: null, orderBy: [], limit: null, offset: null, targets,
    });
    // Counting distinct units with one hash aggregate per unit (flags), not one DISTINCT set
    // per remembered filter: memory grows with units × filters bits, not sets × groups.
    const UNITS = '__gh_units', TOTALS = '__gh_totals';
    const withs: Select['with'][number][] = [
      {
        name: UNITS,
        query: block(scan, [
          { alias: 'q', expr: boolOr(q) },
          ...ps.flatMap((p, i) => [{ alias: `p${i}`, expr: boolOr(p) }, { alias: `d${i}`, expr: boolOr(cmp('<>', q, p)) }]),
        ], [unit]),
      },
    ];
    const u = (name: string): Expr => col(UNITS, name);
    withs.push({ name: TOTALS, query: block({ kind: 'cteRef', name: UNITS, alias: UNITS }, [{ alias: 'tq', expr: ones(u('q')) }, ...ps.map((_, i) => ({ alias: `tp${i}`, expr: ones(u(`p${i}`)) }))]) });
    // Cell comparisons, one grouped pass (a CTE) per key set. For key value v and filters A
    // (grouped by K, so A∧K=v was published) and B, the units that tell them apart are those
    // where A and B disagree at v (x) plus those B selects at other values, estimated as B's
    // total minus B's units at v — large unless B sits (almost) inside K=v.
    const cellHits: Expr[][] = previous.map(() => []);
    const byKeys = new Map<string, { keys: readonly Expr[]; members: number[] }>();
    const addKeys = (keys: readonly Expr[] | null | undefined, i: number): void => {
      if (!keys || keys.length === 0) return;
      const g = byKeys.get(keyId(keys)) ?? { keys, members: [] };
      if (!g.members.includes(i)) g.members.push(i);
      byKeys.set(keyId(keys), g);
    };
    previous.forEach((p, i) => { addKeys(p.keys, i); addKeys(probe.keys, i); });
    const hitTables: string[] = [];
    for (const { keys, members } of byKeys.values()) {
      const name = `__gh_cells${withs.length}`, inner = `__gh_cu${withs.length}`;
      const perUnit = block(scan, [
        ...keys.map((key, j) => ({ alias: `k${j}`, expr: key })),
        { alias: 'q', expr: boolOr(q) },
        ...members.flatMap((i) => [{ alias: `x${i}`, expr: boolOr(cmp('<>', q, ps[i]!)) }, { alias: `p${i}`, expr: boolOr(ps[i]!) }]),
      ], [...keys, unit]);
      const c = (n: string): Expr => col(inner, n);
      withs.push({
        name,
        query: block({ kind: 'derived', query: perUnit, alias: inner }, [
          { alias: 'q', expr: ones(c('q')) },
          ...members.flatMap((i) => [{ alias: `x${i}`, expr: ones(c(`x${i}`)) }, { alias: `p${i}`, expr: ones(c(`p${i}`)) }]),
        ], keys.map((_, j) => c(`k${j}`))),
      });
      const id = keyId(keys);
      // One row per key set: the smallest hit of each member and direction.
      const hits: { alias: string; expr: Expr }[] = [];
      for (const i of members) {
        const x = col(name, `x${i}`);
        const directions: [string, Expr, Expr][] = [];
        // The remembered query grouped by these keys: the new filter against each of its cells.
        if (previous[i]!.keys && keyId(previous[i]!.keys!) === id) directions.push(['o', col(name, 'q'), col(TOTALS, 'tq')]);
        // The new query groups by these keys: each of its cells against the remembered filter.
        if (probe.keys && keyId(probe.keys) === id) directions.push(['n', col(name, `p${i}`), col(TOTALS, `tp${i}`)]);
        for (const [dir, here, all] of directions) {
          const units: Expr = { kind: 'binary', op: '+', left: x, right: fn('greatest', [num(0), { kind: 'binary', op: '-', left: all, right: here }]) };
          hits.push({ alias: `h${dir}${i}`, expr: fn('min', [when(and(cmp('>', here, num(0)), and(cmp('>', units, num(0)), cmp('<', units, num(k)))), units)]) });
          cellHits[i]!.push(col(`${name}h`, `h${dir}${i}`));
        }
      }
      withs.push({ name: `${name}h`, query: block({ kind: 'join', type: 'cross', left: { kind: 'cteRef', name, alias: name }, right: { kind: 'cteRef', name: TOTALS, alias: TOTALS }, on: null }, hits) });
      hitTables.push(`${name}h`);
    }
    const WHOLE = '__gh_whole';
    withs.push({ name: WHOLE, query: block({ kind: 'cteRef', name: UNITS, alias: UNITS }, previous.map((_, i) => ({ alias: `w${i}`, expr: ones(u(`d${i}`)) }))) });
    // Every table joined here has exactly one row.
    const from = hitTables.reduce<FromItem>((l, t) => ({ kind: 'join', type: 'cross', left: l, right: { kind: 'cteRef', name: t, alias: t }, on: null }), { kind: 'cteRef', name: WHOLE, alias: WHOLE });
    return {
      kind: 'select', with: withs, distinct: false, from,
      where: null, groupBy: [], having: null, orderBy: [], limit: null, offset: null,
      // Whole filters: the units on whose rows the two predicates disagree (exact). A cell
      // hit, if any, else the whole-filter count (a hit or not).
      targets: previous.map((_, i) => ({ alias: `d${i}`, expr: fn('coalesce', [...cellHits[i]!, col(WHOLE, `w${i}`)]) })),
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
    this.#history.remove(subject, probe.dataset, predicateKey(probe.predicate, probe.keys));
  }

  /** Refreshes the filter's time after a successful run (admit already recorded it). */
  remember(subject: string, probe: DifferencingProbe, now = Date.now()): void {
    this.#history.record(subject, { dataset: probe.dataset, key: predicateKey(probe.predicate, probe.keys), predicate: probe.predicate, keys: probe.keys ?? null, at: now });
  }
}
