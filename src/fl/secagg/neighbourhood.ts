/**
 * SecAgg+ neighbourhoods (Bell, Bonawitz, Gascón, Lepoint, Raykova, "Secure Single-Server
 * Aggregation with (Poly)Logarithmic Overhead", CCS 2020, §3): instead of every pair of
 * participants agreeing masks (Bonawitz et al. 2017, O(n) keys and shares each), each
 * participant masks and shares only with its k neighbours in a random k-regular graph —
 * the Harary graph H(k, n) on a random permutation of the participants: each node is joined
 * to the k/2 nodes on either side of it on the ring.
 *
 * The permutation is derived from a public session seed with HMAC-SHA256 (a Fisher–Yates
 * shuffle driven by a keyed PRF), so every participant recomputes the same graph from the
 * session parameters and can refuse a coordinator that claims another one. With k ≥ n − 1
 * the graph is complete and the protocol is the original SecAgg.
 */
import { createHmac } from 'node:crypto';
import { FlError } from '../errors.ts';

export interface Neighbourhoods {
  /** Each participant's neighbours, sorted. */
  readonly of: ReadonlyMap<string, readonly string[]>;
  readonly degree: number;
}

function prfBelow(seed: string, counter: number, bound: number): number {
  // Rejection sampling over 48-bit outputs: uniform below `bound`.
  const limit = Math.floor(2 ** 48 / bound) * bound;
  for (let j = 0; ; j++) {
    const h = createHmac('sha256', seed).update(`${counter}/${j}`).digest();
    const v = h.readUIntBE(0, 6);
    if (v < limit) return v % bound;
  }
}

/** The neighbourhoods of `ids` for degree `k` (even, or n − 1 for the complete graph). */
export function harary(ids: readonly string[], k: number, seed: string): Neighbourhoods {
  const n = ids.length;
  if (new Set(ids).size !== n) throw new FlError('FL_PARAMETERS_INVALID', 'participant ids must be distinct');
  if (n < 2) throw new FlError('FL_PARAMETERS_INVALID', 'secure aggregation needs at least two participants');
  const complete = k >= n - 1;
  if (!complete && (!Number.isInteger(k) || k < 2 || k % 2 !== 0)) throw new FlError('FL_PARAMETERS_INVALID', 'the neighbourhood size must be an even integer ≥ 2, or at least the number of participants − 1');
  const ring = [...ids].sort();
  for (let i = n - 1; i > 0; i--) {
    const j = prfBelow(seed, i, i + 1);
    [ring[i], ring[j]] = [ring[j]!, ring[i]!];
  }
  const of = new Map<string, string[]>();
  for (let i = 0; i < n; i++) {
    const nb = new Set<string>();
    if (complete) for (const id of ring) { if (id !== ring[i]) nb.add(id); }
    else for (let d = 1; d <= k / 2; d++) { nb.add(ring[(i + d) % n]!); nb.add(ring[(i - d + n) % n]!); }
    of.set(ring[i]!, [...nb].sort());
  }
  return { of, degree: complete ? n - 1 : k };
}
