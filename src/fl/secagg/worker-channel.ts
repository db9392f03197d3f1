/**
 * Simulated participants spread over worker threads, for the benchmark and tests that run a
 * whole SecAgg+ round on one machine: the participants' work (k + 1 AES-CTR mask expansions
 * and a SHA-256 over a 4 MB vector each, for 1M parameters) is independent per participant,
 * so on a machine with c cores, c − 1 workers carry the participants while the coordinator
 * runs on the main thread. The participant and coordinator code is the same as in process
 * (simulate.ts); only where each participant runs changes. Messages cross threads by
 * structured clone (KeyObjects included); the masked vector is transferred.
 */
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { FlError } from '../errors.ts';
import type { SessionParams, Stage } from './messages.ts';
import type { SecAggChannel } from './round.ts';

type Op = 'advertise' | 'share' | 'masked' | 'consistency' | 'unmask';
type Reply = { kind: 'ready' } | { kind: 'result'; seq: number; result: unknown } | { kind: 'error'; seq: number; detail: string; message: string };

const STAGES: Stage[] = ['advertise', 'share', 'masked', 'consistency', 'unmask'];

export class SecAggWorkers {
  readonly #workers: Worker[];
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  #ready: (() => void)[] = [];
  #seq = 0;

  private constructor(workers: Worker[]) {
    this.#workers = workers;
    for (const w of workers) {
      w.on('message', (m: Reply) => {
        if (m.kind === 'ready') { this.#ready.shift()?.(); return; }
        const p = this.#pending.get(m.seq);
        if (!p) return;
        this.#pending.delete(m.seq);
        if (m.kind === 'result') p.resolve(m.result);
        else p.reject(new FlError(m.detail as never, m.message));
      });
      w.on('error', (err) => { for (const p of this.#pending.values()) p.reject(err); this.#pending.clear(); });
    }
  }

  static start(threads: number): SecAggWorkers {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('at least one worker thread');
    return new SecAggWorkers(Array.from({ length: threads }, () => new Worker(new URL('./worker-host.ts', import.meta.url))));
  }

  /**
   * A session's participants, dealt round-robin to the workers, and the channel to them;
   * `dropAt.get(id)` is the first stage a participant no longer answers (as localChannel).
   */
  async session(params: SessionParams, keys: ReadonlyMap<string, KeyObject>, pins: ReadonlyMap<string, KeyObject>, inputs: ReadonlyMap<string, Uint32Array>, dropAt: ReadonlyMap<string, Stage> = new Map()): Promise<SecAggChannel> {
    const home = new Map<string, Worker>();
    const hosted = this.#workers.map(() => new Map<string, KeyObject>());
    params.roster.forEach((id, i) => { hosted[i % this.#workers.length]!.set(id, keys.get(id)!); home.set(id, this.#workers[i % this.#workers.length]!); });
    await Promise.all(this.#workers.map((w, i) => new Promise<void>((resolve) => {
      this.#ready.push(resolve);
      const mine = new Map([...hosted[i]!.keys()].map((id) => [id, inputs.get(id)!]));
      w.postMessage({ kind: 'session', params, keys: hosted[i], pins, inputs: mine });
    })));
    const call = <R>(op: Op, id: string, arg: unknown): Promise<R> => {
      const d = dropAt.get(id);
      if (d !== undefined && STAGES.indexOf(op) >= STAGES.indexOf(d)) return Promise.reject(new FlError('FL_TOO_FEW_PARTICIPANTS', `${id} dropped out`));
      const seq = ++this.#seq;
      return new Promise<R>((resolve, reject) => {
        this.#pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
        home.get(id)!.postMessage({ kind: 'call', seq, op, id, arg });
      });
    };
    return {
      advertise: (id) => call('advertise', id, null),
      share: (id, adverts) => call('share', id, adverts),
      masked: (id, shares) => call('masked', id, shares),
      consistency: (id, survivors) => call('consistency', id, survivors),
      unmask: (id, req) => call('unmask', id, req),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
