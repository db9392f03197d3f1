/**
 * Worker threads for the two per-element costs of PSI that no session key enters: hashing a
 * table to the curve (RFC 9380 Elligator 2 in @noble/curves' BigInt arithmetic, ~4,400 per
 * second per core unloaded) and the key holder's Paillier randomisers r^n mod n² (a few ms
 * each). Both are embarrassingly parallel, so a pool of one thread per core divides their
 * wall time by the number of cores. The protocol, its messages and the primitives are
 * unchanged: the threads run the same hash-to-curve.ts and paillier.ts code.
 *
 * Work is cut into chunks handed to whichever thread is free, so a thread slowed down by other
 * load on the machine does not hold the others up, and progress is reported after each chunk.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { KeyPair } from 'paillier-bigint';
import { PsiError } from './errors.ts';
import { paillierFactors, PrecomputedRandomisers } from './paillier.ts';
import { PSI_DST } from './hash-to-curve.ts';
import type { WorkerReply, WorkerTask } from './worker-host.ts';

/** A task before the pool numbers it (Omit distributed over the union). */
type Unnumbered<T> = T extends unknown ? Omit<T, 'seq'> : never;
type Job = { task: WorkerTask; resolve: (r: { bytes: Uint8Array; width: number }) => void; reject: (e: unknown) => void };

export const HASH_CHUNK = 2048;
export const RANDOMISER_CHUNK = 16;

export class PsiWorkers {
  readonly #workers: Worker[];
  readonly #idle: Worker[];
  readonly #queue: Job[] = [];
  readonly #running = new Map<number, Job>();
  readonly #hashChunk: number;
  readonly #randomiserChunk: number;
  #seq = 0;
  #closed = false;

  private constructor(threads: number, chunks: { hash?: number; randomisers?: number }) {
    this.#hashChunk = chunks.hash ?? HASH_CHUNK;
    this.#randomiserChunk = chunks.randomisers ?? RANDOMISER_CHUNK;
    this.#workers = Array.from({ length: threads }, () => new Worker(new URL('./worker-host.ts', import.meta.url)));
    this.#idle = [...this.#workers];
    for (const w of this.#workers) {
      // An idle thread does not keep the process alive (a node's pool lives as long as the node,
      // a one-shot command's ends with it); a thread with work in hand does.
      w.unref();
      w.on('message', (m: WorkerReply) => {
        const job = this.#running.get(m.seq);
        this.#running.delete(m.seq);
        this.#idle.push(w);
        w.unref();
        if (job !== undefined) {
          if (m.kind === 'done') job.resolve({ bytes: m.bytes, width: m.width });
          else job.reject(new PsiError('PSI_MESSAGE_MALFORMED', `A PSI worker thread failed: ${m.message}`));
        }
        this.#pump();
      });
      w.on('error', (err) => {
        for (const job of [...this.#running.values(), ...this.#queue]) job.reject(err);
        this.#running.clear();
        this.#queue.length = 0;
      });
    }
  }

  /** One thread per core by default (this machine: 2). */
  static start(threads: number = availableParallelism(), chunks: { hash?: number; randomisers?: number } = {}): PsiWorkers {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('at least one PSI worker thread');
    return new PsiWorkers(threads, chunks);
  }

  get threads(): number {
    return this.#workers.length;
  }

  #pump(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const w = this.#idle.pop()!;
      const job = this.#queue.shift()!;
      this.#running.set(job.task.seq, job);
      w.ref();
      w.postMessage(job.task);
    }
  }

  #run(task: Unnumbered<WorkerTask>): Promise<{ bytes: Uint8Array; width: number }> {
    if (this.#closed) return Promise.reject(new PsiError('PSI_SESSION_UNKNOWN', 'The PSI worker threads were stopped; start new ones'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ task: { ...task, seq: ++this.#seq } as WorkerTask, resolve, reject });
      this.#pump();
    });
  }

  /** H(element_i) for every element: 32·n bytes, as hashToCurveBatch returns them. */
  async hashToCurve(elements: readonly string[], options: { dst?: string; onProgress?: (done: number) => void } = {}): Promise<Uint8Array> {
    const out = new Uint8Array(32 * elements.length);
    let done = 0;
    const chunks: Promise<void>[] = [];
    for (let start = 0; start < elements.length; start += this.#hashChunk) {
      const slice = elements.slice(start, start + this.#hashChunk);
      chunks.push(this.#run({ kind: 'hash', elements: slice, dst: options.dst ?? PSI_DST }).then(({ bytes }) => {
        out.set(bytes, 32 * start);
        done += slice.length;
        options.onProgress?.(done);
      }));
    }
    await Promise.all(chunks);
    return out;
  }

  /**
   * `count` fresh randomisers for intersection-sum under `keys` (the key holder's, so CRT
   * applies), in a store that hands each out once.
   */
  async randomisers(keys: KeyPair, count: number, options: { onProgress?: (done: number) => void; into?: PrecomputedRandomisers } = {}): Promise<PrecomputedRandomisers> {
    const n = keys.publicKey.n;
    const store = options.into ?? new PrecomputedRandomisers(n);
    if (store.n !== n) throw new RangeError('the randomiser store is for another Paillier key');
    const f = paillierFactors(keys);
    let done = 0;
    const chunks: Promise<void>[] = [];
    for (let start = 0; start < count; start += this.#randomiserChunk) {
      const c = Math.min(this.#randomiserChunk, count - start);
      chunks.push(this.#run({ kind: 'randomisers', n, p: f?.p ?? null, q: f?.q ?? null, count: c }).then(({ bytes, width }) => {
        store.addPacked(bytes, width);
        done += c;
        options.onProgress?.(done);
      }));
    }
    await Promise.all(chunks);
    return store;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
