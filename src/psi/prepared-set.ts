/**
 * A party's set, hashed to the curve once. H(x) depends only on the element and the domain
 * separation tag, never on a session key, so a node may hash a table once and keep the
 * result (as sensitive as the table itself) for many sessions; each session still blinds
 * with a fresh key. Duplicates are removed first: PSI is over sets.
 */
import { hashToCurveBatch, PSI_DST } from './hash-to-curve.ts';

export interface PreparedSet {
  /** Distinct elements, in the order of `points`. */
  readonly size: number;
  /** 32·size bytes: H(element_i). */
  readonly points: Uint8Array;
  /** Associated values for intersection-sum, aligned with `points` (sum of duplicates). */
  readonly values: readonly bigint[] | null;
}

const BATCH = 1024;

export function prepareSet(
  elements: readonly string[],
  options: { values?: readonly bigint[]; dst?: string; onProgress?: (done: number) => void } = {},
): PreparedSet {
  const index = new Map<string, number>();
  const distinct: string[] = [];
  const values: bigint[] = [];
  elements.forEach((e, i) => {
    const at = index.get(e);
    const v = options.values?.[i] ?? 0n;
    if (at === undefined) {
      index.set(e, distinct.length);
      distinct.push(e);
      values.push(v);
    } else {
      values[at] = values[at]! + v;
    }
  });
  const points = new Uint8Array(32 * distinct.length);
  for (let start = 0; start < distinct.length; start += BATCH) {
    const chunk = distinct.slice(start, start + BATCH);
    points.set(hashToCurveBatch(chunk, options.dst ?? PSI_DST), 32 * start);
    options.onProgress?.(start + chunk.length);
  }
  if (distinct.length === 0) options.onProgress?.(0);
  return { size: distinct.length, points, values: options.values === undefined ? null : values };
}
