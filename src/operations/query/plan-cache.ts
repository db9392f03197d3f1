/**
 * The governed-plan cache (issue 15, "a thin request path"). Rewriting a bound query by its
 * obligations (src/query/govern/) is a pure function of the workspace state, the principal
 * as decided, the decision's obligations per dataset and the SQL text, so its result is
 * kept under exactly those inputs and the next identical request skips the rewrite (and,
 * through execute.ts, the render: the cached tree is the same object).
 *
 * What is never cached is everything a revocation changes (invariant 6), so the next request
 * after one still sees it:
 *   - authentication: API key, session, user status, elevations — read on every request
 *     (src/kernel/authenticate.ts); an elevation that ends changes the principal's groups,
 *     which are part of the key;
 *   - the governance gate (agreements, grants, acknowledgements, training, vendor risk) and
 *     confirmed classifications — read on every request (plan.ts);
 *   - the Cedar decision — taken on every request (the policy engine memoises only exact
 *     inputs, time included); its obligations are part of the key, so a decision that
 *     changes its obligations cannot reuse a plan made for others;
 *   - the workspace: entries live under the WorkspaceState object a request leased, and a
 *     reload (or a restricting merge) installs a new one, so nothing made under the old
 *     policy version is reachable afterwards;
 *   - erasures and opt-outs: the erasure set of the request (one per erasure generation) is part
 *     of the key, so a subject erased between two identical requests is gone from the second.
 * Differentially private plans are not kept at all: each draws its own seed.
 */
import type { Decision } from '../../policy/engine.ts';
import type { GovernedQuery } from '../../query/govern/index.ts';
import type { PrincipalDef } from '../../model/types.ts';
import { BoundedCache, type WorkspaceState } from '../../kernel/runtime.ts';

const TOTALS = { hits: 0, misses: 0 };

/** Hits and misses of every plan cache in this process (metrics, tests). */
export function planCacheTotals(): { hits: number; misses: number } {
  return { ...TOTALS };
}

export class PlanCache {
  readonly #byState = new WeakMap<WorkspaceState, BoundedCache<GovernedQuery>>();
  /** Obligations fingerprints by decision object (the policy engine hands back the same object for the same inputs). */
  readonly #obligationKeys = new WeakMap<Decision, string>();
  readonly #principalKeys = new WeakMap<PrincipalDef, string>();
  #hits = 0;
  #misses = 0;

  /** The governed plan for these inputs: kept, or computed by `govern` and kept. */
  governed(state: WorkspaceState, inputs: { principal: PrincipalDef; purpose: string; decisions: readonly Decision[]; sql: string; erasures: number }, govern: () => GovernedQuery): GovernedQuery {
    let cache = this.#byState.get(state);
    if (!cache) { cache = new BoundedCache<GovernedQuery>(); this.#byState.set(state, cache); }
    const key = `${inputs.erasures}\u0000${this.#principalKey(inputs.principal)}\u0000${inputs.purpose}\u0000${inputs.decisions.map((d) => this.#obligationsKey(d)).join('\u0001')}\u0000${inputs.sql}`;
    const hit = cache.get(key);
    if (hit) { this.#hits++; TOTALS.hits++; return hit; }
    this.#misses++;
    TOTALS.misses++;
    const governed = govern();
    // A DP plan carries a fresh per-query seed for contribution bounding
    // (differential-privacy.ts): it is made anew for every query, never reused.
    if (governed.dp === null) cache.set(key, governed);
    return governed;
  }

  /**
   * The principal as decided, as JSON, kept per principal object: a PrincipalDef is immutable
   * (the workspace's own, or a fresh object per request when elevations add groups), so the
   * same object always has the same JSON (the policy engine's memo relies on the same rule).
   */
  #principalKey(p: PrincipalDef): string {
    let k = this.#principalKeys.get(p);
    if (k === undefined) { k = JSON.stringify(p); this.#principalKeys.set(p, k); }
    return k;
  }

  #obligationsKey(d: Decision): string {
    let k = this.#obligationKeys.get(d);
    if (k === undefined) {
      k = JSON.stringify([d.dataset, d.obligations]);
      this.#obligationKeys.set(d, k);
    }
    return k;
  }

  /** Hits and misses since the node started (operators, tests). */
  stats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }
}

const CACHES = new WeakMap<object, PlanCache>();

/** The plan cache of one runtime (kept beside it, so the kernel knows nothing of it). */
export function planCacheOf(rt: object): PlanCache {
  let c = CACHES.get(rt);
  if (!c) { c = new PlanCache(); CACHES.set(rt, c); }
  return c;
}
