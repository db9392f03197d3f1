/**
 * Input rows streamed into a running job (worker side). The host sends each input as batches
 * while the job runs, never the whole input in one message; the job pulls a batch through a
 * synchronous bridge call, so this side must be able to wait for the next batch while QuickJS
 * (or a WebAssembly module) is on the stack. It does so with a blocking read of its own stdin
 * (fd 0, a pipe the worker never hands to Node's event loop), which costs no CPU while it waits:
 * the job's CPU budget counts only the job.
 *
 * Flow control is credit-based, as in HTTP/2 stream windows (RFC 9113 §5.2): the host sends up
 * to a window of batches per input ahead of the job, and one more for each `credit` the worker
 * returns when the job has taken a batch. However large the input, at most a window of batches
 * per input sits in the pipe or in this process, and a slow job slows the host's serialisation
 * instead of filling memory.
 *
 * Imported by the worker, which may read only its own folder: imports nothing outside it.
 */
import { readSync } from 'node:fs';
import type { BatchMessage, InputBatch } from './protocol.ts';

const NAP = new Int32Array(new SharedArrayBuffer(4));

/** Newline-delimited lines from a file descriptor, read synchronously. */
export class SyncLines {
  readonly #fd: number;
  readonly #chunk = Buffer.alloc(1 << 16);
  #parts: Buffer[] = [];
  #pending: Buffer = Buffer.alloc(0);
  #eof = false;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** The next line (without its newline), or null at the end of input. */
  line(): string | null {
    for (;;) {
      const nl = this.#pending.indexOf(10);
      if (nl >= 0) {
        const head = this.#pending.subarray(0, nl);
        const line = this.#parts.length === 0 ? head.toString('utf8') : Buffer.concat([...this.#parts, head]).toString('utf8');
        this.#parts = [];
        this.#pending = this.#pending.subarray(nl + 1);
        return line;
      }
      if (this.#pending.length > 0) this.#parts.push(Buffer.from(this.#pending));
      this.#pending = Buffer.alloc(0);
      if (this.#eof) return null;
      const n = this.#read();
      if (n === 0) { this.#eof = true; continue; }
      this.#pending = this.#chunk.subarray(0, n);
    }
  }

  #read(): number {
    for (;;) {
      try {
        return readSync(this.#fd, this.#chunk, 0, this.#chunk.length, null);
      } catch (err) {
        // A non-blocking descriptor with nothing to read yet: nap a millisecond and try again.
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') { Atomics.wait(NAP, 0, 0, 1); continue; }
        throw err;
      }
    }
  }
}

/** The batches of one job's inputs as they arrive; `take` hands one to the job and returns a credit. */
export class BatchFeed {
  readonly #id: string;
  readonly #lines: SyncLines;
  readonly #credit: (input: string) => void;
  readonly #queues = new Map<string, InputBatch[]>();
  readonly #ended = new Set<string>();

  constructor(id: string, names: readonly string[], lines: SyncLines, credit: (input: string) => void) {
    this.#id = id;
    this.#lines = lines;
    this.#credit = credit;
    for (const n of names) this.#queues.set(n, []);
  }

  /** The next batch of `name` without taking it (null at its end, or for an input the job does not have). */
  peek(name: string): InputBatch | null {
    const q = this.#queues.get(name);
    if (!q) return null;
    while (q.length === 0 && !this.#ended.has(name)) this.#pump();
    return q[0] ?? null;
  }

  take(name: string): InputBatch | null {
    const b = this.peek(name);
    if (b === null) return null;
    this.#queues.get(name)!.shift();
    this.#credit(name);
    return b;
  }

  #pump(): void {
    const line = this.#lines.line();
    // The host closed the pipe mid-job: it is gone, so is anyone to release outputs to.
    if (line === null) process.exit(1);
    let m: BatchMessage;
    try { m = JSON.parse(line) as BatchMessage; } catch { return; }
    if (m?.type !== 'batch' || m.id !== this.#id) return; // a finished job's leftovers
    const q = this.#queues.get(m.input);
    if (!q) return;
    if (m.json === null) this.#ended.add(m.input);
    else q.push({ json: m.json, rows: m.rows });
  }
}
