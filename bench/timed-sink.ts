/**
 * An audit sink that times each append of the real log: the durable append is part of the
 * governed path, and the benches report how much of their in-process figure it is.
 */
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';

export class TimedSink implements AuditSink {
  readonly samples: number[] = [];
  readonly #inner: AuditSink;
  constructor(inner: AuditSink) { this.#inner = inner; }
  async append(r: AuditRecord) {
    const t = performance.now();
    const res = await this.#inner.append(r);
    this.samples.push(performance.now() - t);
    return res;
  }
  close() { return this.#inner.close(); }
}
