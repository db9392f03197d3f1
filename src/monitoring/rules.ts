/**
 * Detection rules as code, one small class per rule, each configured from the workspace's
 * `monitoring.rules` (config.ts) and fed every request in order. A rule keeps only the
 * sliding-window state it needs (timestamps and counts, never a value) and returns a
 * Detection when its condition is met:
 *
 *   slow-exfiltration  many small results (≤ maxRowsPerQuery rows each) of *different*
 *                      queries on one dataset adding up, within the window, to `share` of
 *                      its rows (datasetRows) or to `rows` — the pattern that stays under
 *                      every per-query cap (re-running a report releases nothing new)
 *   enumeration        ≥ distinctQueries different queries of the same literal-free shape
 *                      (query-shape.ts; datasets and columns when the SQL is not known) each
 *                      returning ≤ maxRows, within the window: a sweep of a key range one
 *                      value at a time
 *   new-dataset        a principal with ≥ minHistory data requests reads a dataset it never read
 *   impossible-travel  two requests from zones farther apart than maxKmh allows in the time between
 *   repeated-denials   ≥ count denied requests within the window (probing the policy)
 *
 * The anomaly score (score.ts) is the sixth rule: a request scoring at least the threshold.
 * After it fires, a window rule starts counting afresh, so one burst gives one detection.
 */
import type { MonitoringConfig, RuleConfig, RuleName } from './config.ts';
import type { Baseline } from './baseline.ts';
import type { MonitorEvent } from './event.ts';
import { distanceKm, type ZoneMap } from './zones.ts';

export interface Detection {
  readonly rule: RuleName;
  readonly principal: string;
  readonly dataset: string | null;
  readonly summary: string;
  readonly reasons: readonly string[];
  readonly auditIds: readonly string[];
}

/** What a rule may read besides the event: the principal's baseline before this request. */
export interface RuleContext {
  readonly baseline: Baseline | undefined;
  readonly zones: ZoneMap;
}

export interface Rule {
  readonly name: RuleName;
  observe(e: MonitorEvent, ctx: RuleContext): Detection | null;
}

/** A time-ordered window of (time, weight, audit id), summed as it slides. */
class Window {
  #t: number[] = [];
  #w: number[] = [];
  #ids: string[] = [];
  #head = 0;
  sum = 0;
  push(t: number, w: number, id: string): void { this.#t.push(t); this.#w.push(w); this.#ids.push(id); this.sum += w; }
  prune(before: number): void {
    while (this.#head < this.#t.length && this.#t[this.#head]! < before) { this.sum -= this.#w[this.#head]!; this.#head++; }
    if (this.#head > 64 && this.#head * 2 > this.#t.length) {
      this.#t = this.#t.slice(this.#head); this.#w = this.#w.slice(this.#head); this.#ids = this.#ids.slice(this.#head); this.#head = 0;
    }
  }
  get length(): number { return this.#t.length - this.#head; }
  ids(max = 20): string[] { return this.#ids.slice(Math.max(this.#head, this.#ids.length - max)); }
  clear(): void { this.#t = []; this.#w = []; this.#ids = []; this.#head = 0; this.sum = 0; }
}

const minutes = (m: number): number => m * 60_000;

class SlowExfiltration implements Rule {
  readonly name = 'slow-exfiltration' as const;
  readonly #c: RuleConfig;
  readonly #sizes: Readonly<Record<string, number>>;
  readonly #w = new Map<string, Window>();
  /** Per principal × dataset: when each exact query last counted (a re-run releases the same rows again, not new ones). */
  readonly #counted = new Map<string, Map<string, number>>();
  constructor(c: RuleConfig, sizes: Readonly<Record<string, number>>) { this.#c = c; this.#sizes = sizes; }
  observe(e: MonitorEvent): Detection | null {
    if (e.decision !== 'allow' || e.rows === 0 || e.rows > this.#c.maxRowsPerQuery || e.action !== 'query') return null;
    const from = e.at - minutes(this.#c.windowMinutes);
    for (const d of e.datasets) {
      const key = `${e.principal}\u0000${d}`;
      let w = this.#w.get(key);
      if (!w) { w = new Window(); this.#w.set(key, w); }
      w.prune(from);
      let counted = this.#counted.get(key);
      if (!counted) { counted = new Map(); this.#counted.set(key, counted); }
      if (e.fingerprint !== null) {
        const last = counted.get(e.fingerprint);
        if (last !== undefined && last >= from) continue;
        if (counted.size >= 4096) for (const [fp, t] of counted) if (t < from) counted.delete(fp);
        counted.set(e.fingerprint, e.at);
      }
      w.push(e.at, e.rows, e.auditId);
      const size = this.#sizes[d];
      const limit = size !== undefined ? Math.ceil(size * this.#c.share) : this.#c.rows;
      if (w.sum >= limit && w.length >= 2) {
        const share = size !== undefined ? ` (${Math.round((w.sum / size) * 100)} % of ${d})` : '';
        const det: Detection = {
          rule: this.name, principal: e.principal, dataset: d,
          summary: `${e.principal} took ${w.sum} rows of ${d} in ${w.length} small queries within ${this.#c.windowMinutes} min${share}`,
          reasons: [`${w.length} different queries of at most ${this.#c.maxRowsPerQuery} rows each`, `${w.sum} rows ≥ limit ${limit}`], auditIds: w.ids(),
        };
        w.clear();
        counted.clear();
        return det;
      }
    }
    return null;
  }
}

class Enumeration implements Rule {
  readonly name = 'enumeration' as const;
  readonly #c: RuleConfig;
  readonly #shapes = new Map<string, { w: Window; fps: Map<string, number>; order: string[]; head: number; times: number[] }>();
  constructor(c: RuleConfig) { this.#c = c; }
  observe(e: MonitorEvent): Detection | null {
    if (e.decision !== 'allow' || e.action !== 'query' || e.rows > this.#c.maxRows || e.fingerprint === null || e.datasets.length === 0) return null;
    // Sharpest with the literal-free shape: the same query with different constants. Without
    // it (no SQL in the request meta), the datasets and columns touched stand in for the shape.
    const shape = e.shape ? `${e.principal}\u0000${e.shape}` : `${e.principal}\u0000${e.datasets.join(',')}\u0000${e.columns.join(',')}`;
    let s = this.#shapes.get(shape);
    if (!s) { s = { w: new Window(), fps: new Map(), order: [], head: 0, times: [] }; this.#shapes.set(shape, s); }
    const from = e.at - minutes(this.#c.windowMinutes);
    while (s.head < s.order.length && s.times[s.head]! < from) {
      const fp = s.order[s.head]!;
      const n = (s.fps.get(fp) ?? 1) - 1;
      if (n <= 0) s.fps.delete(fp); else s.fps.set(fp, n);
      s.head++;
    }
    s.w.prune(from);
    if (s.head > 64 && s.head * 2 > s.order.length) { s.order = s.order.slice(s.head); s.times = s.times.slice(s.head); s.head = 0; }
    s.order.push(e.fingerprint); s.times.push(e.at); s.fps.set(e.fingerprint, (s.fps.get(e.fingerprint) ?? 0) + 1);
    s.w.push(e.at, 1, e.auditId);
    if (s.fps.size >= this.#c.distinctQueries) {
      const det: Detection = {
        rule: this.name, principal: e.principal, dataset: e.datasets[0] ?? null,
        summary: `${e.principal} ran ${s.fps.size} different queries of one shape on ${e.datasets.join(', ')} within ${this.#c.windowMinutes} min, each returning at most ${this.#c.maxRows} rows`,
        reasons: ['same datasets and columns, different literals: a sweep across a key range', `columns ${e.columns.join(', ') || '(none)'}`], auditIds: s.w.ids(),
      };
      this.#shapes.delete(shape);
      return det;
    }
    return null;
  }
}

class NewDataset implements Rule {
  readonly name = 'new-dataset' as const;
  readonly #c: RuleConfig;
  constructor(c: RuleConfig) { this.#c = c; }
  observe(e: MonitorEvent, ctx: RuleContext): Detection | null {
    const b = ctx.baseline;
    if (e.decision !== 'allow' || !b || b.n < this.#c.minHistory) return null;
    const fresh = e.datasets.filter((d) => !b.datasets.has(d));
    if (fresh.length === 0) return null;
    return {
      rule: this.name, principal: e.principal, dataset: fresh[0]!,
      summary: `${e.principal} read ${fresh.join(', ')} for the first time after ${b.n} requests that never did`,
      reasons: [`usual datasets: ${[...b.datasets].sort().join(', ')}`], auditIds: [e.auditId],
    };
  }
}

class ImpossibleTravel implements Rule {
  readonly name = 'impossible-travel' as const;
  readonly #c: RuleConfig;
  readonly #last = new Map<string, { at: number; zone: string; lat: number; lon: number; auditId: string }>();
  constructor(c: RuleConfig) { this.#c = c; }
  observe(e: MonitorEvent, ctx: RuleContext): Detection | null {
    const z = ctx.zones.zoneOf(e.source);
    if (!z) return null;
    const prev = this.#last.get(e.principal);
    this.#last.set(e.principal, { at: e.at, zone: z.name, lat: z.lat, lon: z.lon, auditId: e.auditId });
    if (!prev || prev.zone === z.name) return null;
    const km = distanceKm(prev, z);
    const hours = Math.max(e.at - prev.at, 0) / 3_600_000;
    const kmh = hours === 0 ? Infinity : km / hours;
    if (kmh <= this.#c.maxKmh) return null;
    const mins = Math.round(hours * 60);
    return {
      rule: this.name, principal: e.principal, dataset: null,
      summary: `${e.principal} came from ${prev.zone} and then ${z.name}, ${Math.round(km)} km apart, ${mins} min later`,
      reasons: [`${Number.isFinite(kmh) ? Math.round(kmh) : '∞'} km/h > ${this.#c.maxKmh} km/h`], auditIds: [prev.auditId, e.auditId],
    };
  }
}

class RepeatedDenials implements Rule {
  readonly name = 'repeated-denials' as const;
  readonly #c: RuleConfig;
  readonly #w = new Map<string, Window>();
  constructor(c: RuleConfig) { this.#c = c; }
  observe(e: MonitorEvent): Detection | null {
    if (e.decision !== 'deny') return null;
    let w = this.#w.get(e.principal);
    if (!w) { w = new Window(); this.#w.set(e.principal, w); }
    w.prune(e.at - minutes(this.#c.windowMinutes));
    w.push(e.at, 1, e.auditId);
    if (w.length < this.#c.count) return null;
    const det: Detection = {
      rule: this.name, principal: e.principal, dataset: e.datasets[0] ?? null,
      summary: `${e.principal} was denied ${w.length} times within ${this.#c.windowMinutes} min`,
      reasons: [`last refusal: ${e.errorCode ?? 'denied'} on ${e.action}`], auditIds: w.ids(),
    };
    w.clear();
    return det;
  }
}

/** The enabled window rules of a configuration (the anomaly rule is applied by the monitor). */
export function buildRules(config: MonitoringConfig): Rule[] {
  const r = config.rules;
  const rules: Rule[] = [];
  if (r['slow-exfiltration'].enabled) rules.push(new SlowExfiltration(r['slow-exfiltration'], config.datasetRows));
  if (r.enumeration.enabled) rules.push(new Enumeration(r.enumeration));
  if (r['new-dataset'].enabled) rules.push(new NewDataset(r['new-dataset']));
  if (r['impossible-travel'].enabled) rules.push(new ImpossibleTravel(r['impossible-travel']));
  if (r['repeated-denials'].enabled) rules.push(new RepeatedDenials(r['repeated-denials']));
  return rules;
}
