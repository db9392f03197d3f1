/**
 * Fair admission of queries to the engines. One partner sending many heavy queries at once
 * must not starve everyone else: at most `total` queries run at once, at most `perPrincipal`
 * for one principal and `perOrganisation` for one organisation; the rest wait in one queue
 * per principal, and a freed slot goes to the next principal in round-robin order (not to
 * whoever queued most). A principal whose queue is full, or a request that waited longer than
 * `maxWaitMs`, is refused with RATE_LIMITED and a Retry-After.
 *
 * Waiting is bounded and does not depend on any data value: only on how many queries the
 * caller and everyone else have in flight.
 */
import { GatehouseError } from '../errors.ts';

export interface AdmissionLimits {
  readonly total: number;
  readonly perPrincipal: number;
  readonly perOrganisation: number;
  /** Queries one principal may have waiting (beyond those running) before it is refused at once. */
  readonly queuePerPrincipal: number;
  readonly maxWaitMs: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = { total: 8, perPrincipal: 4, perOrganisation: 6, queuePerPrincipal: 8, maxWaitMs: 30_000 };

interface Waiter {
  readonly org: string | null;
  readonly grant: () => void;
}

export interface Slot {
  release(): void;
}

export class Admission {
  readonly #limits: AdmissionLimits;
  #running = 0;
  readonly #byPrincipal = new Map<string, number>();
  readonly #byOrg = new Map<string, number>();
  /** Waiting queues in round-robin order (a Map keeps insertion order; served principals move to the back). */
  readonly #queues = new Map<string, Waiter[]>();

  constructor(limits: Partial<AdmissionLimits> = {}) {
    this.#limits = { ...DEFAULT_ADMISSION, ...limits };
  }

  get limits(): AdmissionLimits { return this.#limits; }

  /** Queries running now (for health and tests). */
  get running(): number { return this.#running; }

  #fits(principal: string, org: string | null): boolean {
    return this.#running < this.#limits.total
      && (this.#byPrincipal.get(principal) ?? 0) < this.#limits.perPrincipal
      && (org === null || (this.#byOrg.get(org) ?? 0) < this.#limits.perOrganisation);
  }

  #take(principal: string, org: string | null): Slot {
    this.#running++;
    this.#byPrincipal.set(principal, (this.#byPrincipal.get(principal) ?? 0) + 1);
    if (org !== null) this.#byOrg.set(org, (this.#byOrg.get(org) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#running--;
        const p = this.#byPrincipal.get(principal)! - 1;
        if (p === 0) this.#byPrincipal.delete(principal); else this.#byPrincipal.set(principal, p);
        if (org !== null) {
          const o = this.#byOrg.get(org)! - 1;
          if (o === 0) this.#byOrg.delete(org); else this.#byOrg.set(org, o);
        }
        this.#dispatch();
      },
    };
  }

  /** Grants freed slots to waiting principals, one per principal per turn. */
  #dispatch(): void {
    let progressed = true;
    while (progressed && this.#running < this.#limits.total) {
      progressed = false;
      for (const [principal, queue] of this.#queues) {
        const next = queue[0];
        if (!next || !this.#fits(principal, next.org)) continue;
        queue.shift();
        // The served principal goes to the back of the round.
        this.#queues.delete(principal);
        if (queue.length > 0) this.#queues.set(principal, queue);
        next.grant();
        progressed = true;
        break;
      }
    }
  }

  /** Waits for a slot (fairly), or refuses with RATE_LIMITED. */
  acquire(principal: string, org: string | null, signal?: AbortSignal): Promise<Slot> {
    const queue = this.#queues.get(principal);
    if ((!queue || queue.length === 0) && this.#fits(principal, org)) return Promise.resolve(this.#take(principal, org));
    if ((queue?.length ?? 0) >= this.#limits.queuePerPrincipal) {
      return Promise.reject(busy(`you have ${this.#limits.perPrincipal} queries running and ${this.#limits.queuePerPrincipal} waiting`));
    }
    return new Promise<Slot>((resolve, reject) => {
      const q = this.#queues.get(principal) ?? [];
      const remove = (): void => {
        const i = q.indexOf(waiter);
        if (i >= 0) q.splice(i, 1);
        if (q.length === 0 && this.#queues.get(principal) === q) this.#queues.delete(principal);
      };
      const timer = setTimeout(() => { remove(); reject(busy(`no query slot freed within ${Math.round(this.#limits.maxWaitMs / 1000)} s`)); }, this.#limits.maxWaitMs);
      const onAbort = (): void => { clearTimeout(timer); remove(); reject(new GatehouseError('QUERY_TIMEOUT', 'the query was cancelled while it waited for a slot')); };
      const waiter: Waiter = {
        org,
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(this.#take(principal, org));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      q.push(waiter);
      if (!this.#queues.has(principal)) this.#queues.set(principal, q);
      this.#dispatch();
    });
  }
}

function busy(why: string): GatehouseError {
  return new GatehouseError('RATE_LIMITED', `too many concurrent queries: ${why}`, { hint: 'wait for your running queries to finish, then retry', retryAfterSeconds: 1 });
}
