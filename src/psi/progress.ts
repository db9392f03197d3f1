/**
 * Progress of a long PSI run: elements done, rate and time left, for CLI output and logs.
 * The clock is injected so tests do not sleep.
 */
export interface ProgressReport {
  readonly phase: string;
  readonly done: number;
  readonly total: number;
  readonly ratePerSecond: number;
  readonly secondsLeft: number | null;
}

export type ProgressSink = (report: ProgressReport) => void;

export class ProgressMeter {
  readonly #sink: ProgressSink;
  readonly #now: () => number;
  #phase = '';
  #total = 0;
  #started = 0;
  #lastEmit = -Infinity;
  readonly #intervalMs: number;

  constructor(sink: ProgressSink, options: { now?: () => number; intervalMs?: number } = {}) {
    this.#sink = sink;
    this.#now = options.now ?? (() => performance.now());
    this.#intervalMs = options.intervalMs ?? 1000;
  }

  start(phase: string, total: number): (done: number) => void {
    this.#phase = phase;
    this.#total = total;
    this.#started = this.#now();
    this.#lastEmit = -Infinity;
    return (done) => this.#update(done);
  }

  #update(done: number): void {
    const t = this.#now();
    if (done < this.#total && t - this.#lastEmit < this.#intervalMs) return;
    this.#lastEmit = t;
    const elapsed = (t - this.#started) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const left = rate > 0 ? (this.#total - done) / rate : null;
    this.#sink({ phase: this.#phase, done, total: this.#total, ratePerSecond: rate, secondsLeft: left });
  }
}

export function formatProgress(r: ProgressReport): string {
  const pct = r.total === 0 ? 100 : Math.floor((100 * r.done) / r.total);
  const left = r.secondsLeft === null ? '?' : `${r.secondsLeft.toFixed(1)} s`;
  return `${r.phase}: ${r.done}/${r.total} (${pct}%), ${Math.round(r.ratePerSecond)}/s, ${left} left`;
}
