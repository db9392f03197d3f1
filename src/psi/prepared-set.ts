/**
 * A party's set, hashed to the curve once. H(x) depends only on the element and the domain
 * separation tag, never on a session key, so a node may hash a table once and keep the
 * result (as sensitive as the table itself) for many sessions; each session still blinds
 * with a fresh key. Duplicates are removed first: PSI is over sets.
 *
 * `prepareSet` hashes on the calling thread; `prepareSetInWorkers` spreads the same hashing
 * over worker threads (workers.ts) and gives the same points.
 */
import { hashToCurveBatch, PSI_DST } from './hash-to-curve.ts';
import type { PsiWorkers } from './workers.ts';

export interface PreparedSet {
  /** Distinct elements, in the order of `points`. */
  readonly size: number;
  /** 32·size bytes: H(element_i). */
  readonly points: Uint8Array;
  /** Associated values for intersection-sum, aligned with `points` (sum of duplicates). */
  readonly values: readonly bigint[] | null;
}

export interface PrepareOptions {
  readonly values?: readonly bigint[];
  readonly dst?: string;
  readonly onProgress?: (done: number) => void;
}

const BATCH = 1024;

/** Distinct elements in first-seen order, with the values of duplicates summed. */
function distinctElements(elements: readonly string[], given: readonly bigint[] | undefined): { distinct: string[]; values: bigint[] } {
  const index = new Map<string, number>();
  const distinct: string[] = [];
  const values: bigint[] = [];
  elements.forEach((e, i) => {
    const at = index.get(e);
    const v = given?.[i] ?? 0n;
    if (at === undefined) {
      index.set(e, distinct.length);
      distinct.push(e);
      values.push(v);
    } else {
      values[at] = values[at]! + v;
    }
  });
  return { distinct, values };
}

export function prepareSet(elements: readonly string[], options: PrepareOptions = {}): PreparedSet {
  const { distinct, values } = distinctElements(elements, options.values);
  const points = new Uint8Array(32 * distinct.length);
  for (let start = 0; start < distinct.length; start += BATCH) {
    const chunk = distinct.slice(start, start + BATCH);
    points.set(hashToCurveBatch(chunk, options.dst ?? PSI_DST), 32 * start);
    options.onProgress?.(start + chunk.length);
  }
  if (distinct.length === 0) options.onProgress?.(0);
  return { size: distinct.length, points, values: options.values === undefined ? null : values };
}

/** The same prepared set as `prepareSet`, hashed by the pool's threads. */
export async function prepareSetInWorkers(elements: readonly string[], workers: PsiWorkers, options: PrepareOptions = {}): Promise<PreparedSet> {
  const { distinct, values } = distinctElements(elements, options.values);
  const points = await workers.hashToCurve(distinct, { dst: options.dst ?? PSI_DST, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  if (distinct.length === 0) options.onProgress?.(0);
  return { size: distinct.length, points, values: options.values === undefined ? null : values };
}
