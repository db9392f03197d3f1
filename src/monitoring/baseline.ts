/**
 * Behavioural baselines, one per principal and one per organisation: how many data requests,
 * how many rows each releases (mean and variance of log(1 + rows), Welford's online
 * algorithm: B. P. Welford, "Note on a method for calculating corrected sums of squares and
 * products", Technometrics 4(3), 1962), which columns and datasets it touches, at which hours
 * of the day, which query shapes (by fingerprint), from which source addresses.
 *
 * Rows are judged on a log scale because result sizes are heavy-tailed: "10× the usual" is
 * what an analyst means, not "+900 rows". Memory is bounded per baseline (sets and maps stop
 * growing at their caps; the oldest fingerprints are forgotten first), and the number of
 * baselines is bounded by the number of principals and organisations the workspace declares.
 */

const MAX_FINGERPRINTS = 512;
const MAX_SOURCES = 64;
const MAX_COLUMNS = 2048;

export interface BaselineState {
  readonly n: number;
  readonly mean: number;
  readonly m2: number;
  readonly hours: readonly number[];
  readonly columns: readonly string[];
  readonly datasets: readonly string[];
  readonly sources: readonly string[];
  readonly fingerprints: readonly (readonly [string, number])[];
}

export class Baseline {
  /** Data requests observed (allowed ones: denials build no behaviour). */
  n = 0;
  #mean = 0;
  #m2 = 0;
  readonly hours = new Uint32Array(24);
  readonly columns = new Set<string>();
  readonly datasets = new Set<string>();
  readonly sources = new Set<string>();
  readonly fingerprints = new Map<string, number>();

  /** Geometric mean of (1 + rows), i.e. exp(mean of log1p(rows)). */
  get usualRows(): number { return Math.expm1(this.#mean); }
  get meanLogRows(): number { return this.#mean; }
  get sdLogRows(): number { return this.n > 1 ? Math.sqrt(this.#m2 / (this.n - 1)) : 0; }

  add(e: { rows: number; hour: number; columns: readonly string[]; datasets: readonly string[]; source: string; fingerprint: string | null }): void {
    this.n++;
    const x = Math.log1p(e.rows);
    const d = x - this.#mean;
    this.#mean += d / this.n;
    this.#m2 += d * (x - this.#mean);
    this.hours[e.hour]!++;
    for (const c of e.columns) if (this.columns.size < MAX_COLUMNS) this.columns.add(c);
    for (const ds of e.datasets) this.datasets.add(ds);
    if (this.sources.size < MAX_SOURCES) this.sources.add(e.source);
    if (e.fingerprint !== null) {
      const seen = this.fingerprints.get(e.fingerprint);
      if (seen !== undefined) this.fingerprints.set(e.fingerprint, seen + 1);
      else {
        if (this.fingerprints.size >= MAX_FINGERPRINTS) this.fingerprints.delete(this.fingerprints.keys().next().value!);
        this.fingerprints.set(e.fingerprint, 1);
      }
    }
  }

  /** Everything the baseline has learnt, as plain JSON (persisted in the node's state: detection-state.ts). */
  toState(): BaselineState {
    return { n: this.n, mean: this.#mean, m2: this.#m2, hours: [...this.hours], columns: [...this.columns], datasets: [...this.datasets], sources: [...this.sources], fingerprints: [...this.fingerprints] };
  }

  static fromState(s: BaselineState): Baseline {
    const b = new Baseline();
    b.n = s.n; b.#mean = s.mean; b.#m2 = s.m2;
    s.hours.slice(0, 24).forEach((h, i) => { b.hours[i] = h; });
    for (const c of s.columns.slice(0, MAX_COLUMNS)) b.columns.add(c);
    for (const d of s.datasets) b.datasets.add(d);
    for (const x of s.sources.slice(0, MAX_SOURCES)) b.sources.add(x);
    for (const [fp, n] of s.fingerprints.slice(-MAX_FINGERPRINTS)) b.fingerprints.set(fp, n);
    return b;
  }

  /** A JSON view for the activity answer: no values, only shapes of behaviour. */
  toJSON(): object {
    let busiest = 0;
    for (let h = 1; h < 24; h++) if (this.hours[h]! > this.hours[busiest]!) busiest = h;
    return {
      requests: this.n, usualRows: Math.round(this.usualRows * 10) / 10, columns: this.columns.size, datasets: [...this.datasets].sort(),
      sources: this.sources.size, queryShapes: this.fingerprints.size, busiestHour: this.n > 0 ? busiest : null,
    };
  }
}

export class Baselines {
  readonly #m = new Map<string, Baseline>();
  get(key: string): Baseline | undefined { return this.#m.get(key); }
  of(key: string): Baseline {
    let b = this.#m.get(key);
    if (!b) { b = new Baseline(); this.#m.set(key, b); }
    return b;
  }
  get size(): number { return this.#m.size; }
  toState(): Record<string, BaselineState> { return Object.fromEntries([...this.#m].map(([k, b]) => [k, b.toState()])); }
  restore(s: Readonly<Record<string, BaselineState>>): void { for (const [k, b] of Object.entries(s)) this.#m.set(k, Baseline.fromState(b)); }
}
