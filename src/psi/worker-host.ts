/**
 * The worker side of `PsiWorkers` (workers.ts): one thread that hashes elements to the curve
 * or computes Paillier randomisers, the two per-element costs of PSI and intersection-sum
 * that do not depend on the session (RFC 9380 hashing depends only on the element; r^n mod n²
 * only on the key). The code is the in-process code (hash-to-curve.ts, paillier.ts); only the
 * thread changes. Results go back transferred, so a million points are not copied twice.
 */
import { parentPort } from 'node:worker_threads';
import { PublicKey } from 'paillier-bigint';
import { hashToCurveBatch } from './hash-to-curve.ts';
import { RandomiserSource } from './paillier.ts';

export type WorkerTask =
  | { readonly kind: 'hash'; readonly seq: number; readonly elements: readonly string[]; readonly dst: string }
  | { readonly kind: 'randomisers'; readonly seq: number; readonly n: bigint; readonly p: bigint | null; readonly q: bigint | null; readonly count: number };

export type WorkerReply =
  | { readonly kind: 'done'; readonly seq: number; readonly bytes: Uint8Array; readonly width: number }
  | { readonly kind: 'failed'; readonly seq: number; readonly message: string };

const port = parentPort!;
// One randomiser source per key: its OpenSSL contexts and self-check are made once.
const sources = new Map<bigint, RandomiserSource>();

port.on('message', (task: WorkerTask) => {
  try {
    if (task.kind === 'hash') {
      const bytes = hashToCurveBatch(task.elements, task.dst);
      port.postMessage({ kind: 'done', seq: task.seq, bytes, width: 32 } satisfies WorkerReply, [bytes.buffer as ArrayBuffer]);
      return;
    }
    let source = sources.get(task.n);
    if (source === undefined) {
      source = new RandomiserSource(new PublicKey(task.n, task.n + 1n), task.p !== null && task.q !== null ? { p: task.p, q: task.q } : null);
      sources.set(task.n, source);
    }
    const bytes = source.packed(task.count);
    port.postMessage({ kind: 'done', seq: task.seq, bytes, width: source.width } satisfies WorkerReply, [bytes.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ kind: 'failed', seq: task.seq, message: (err as Error).message } satisfies WorkerReply);
  }
});
