/**
 * Who may hold a socket on the wire front, and for how long before authenticating.
 *
 * A connection that has not authenticated costs the server a socket, a timer and a little
 * memory, and costs the attacker nothing: the attack run of issue 12 held 110 such
 * connections from one host and locked every user out. PostgreSQL bounds the same window
 * with `authentication_timeout` and counts the waiting connections against
 * `max_connections`; here the waiting ones are counted apart from the sessions, so a flood
 * of them never takes a session's place:
 *
 * - at most `maxUnauthenticatedPerAddress` waiting connections from one source (an IPv4
 *   address, or an IPv6 /64: one host usually holds a whole /64),
 * - at most `maxUnauthenticated` waiting connections in all,
 * - at most `maxSessions` authenticated sessions,
 *
 * and each waiting connection has a deadline (the caller's timer). Excess is refused with
 * FATAL 53300 too_many_connections, as PostgreSQL does.
 */
import { isIPv6 } from 'node:net';

export interface AdmissionLimits {
  readonly maxSessions: number;
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerAddress: number;
}

/** One admitted connection: it waits unauthenticated until `authenticated()` or `release()`. */
export interface AdmissionTicket {
  /** The connection authenticated: it leaves the waiting count and takes a session, or gets the reason there is none. */
  authenticated(): string | null;
  /** The connection ended (idempotent). */
  release(): void;
}

export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #waitingBySource = new Map<string, number>();
  #waiting = 0;
  #sessions = 0;

  constructor(limits: AdmissionLimits) {
    for (const [k, v] of Object.entries(limits)) if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
    this.#limits = limits;
  }

  get waiting(): number { return this.#waiting; }
  get sessions(): number { return this.#sessions; }

  /** Admits a new connection from `address`, or returns why not. */
  admit(address: string): AdmissionTicket | string {
    const source = sourceOf(address);
    const fromSource = this.#waitingBySource.get(source) ?? 0;
    if (fromSource >= this.#limits.maxUnauthenticatedPerAddress) return `too many connections from this address are waiting to authenticate (at most ${this.#limits.maxUnauthenticatedPerAddress})`;
    if (this.#waiting >= this.#limits.maxUnauthenticated) return `too many connections are waiting to authenticate (at most ${this.#limits.maxUnauthenticated})`;
    this.#waitingBySource.set(source, fromSource + 1);
    this.#waiting++;
    let state: 'waiting' | 'session' | 'gone' = 'waiting';
    const leaveWaiting = (): void => {
      const n = (this.#waitingBySource.get(source) ?? 1) - 1;
      if (n <= 0) this.#waitingBySource.delete(source); else this.#waitingBySource.set(source, n);
      this.#waiting--;
    };
    return {
      authenticated: () => {
        if (state !== 'waiting') return null;
        leaveWaiting();
        if (this.#sessions >= this.#limits.maxSessions) { state = 'gone'; return `too many sessions are open (at most ${this.#limits.maxSessions})`; }
        this.#sessions++;
        state = 'session';
        return null;
      },
      release: () => {
        if (state === 'waiting') leaveWaiting();
        else if (state === 'session') this.#sessions--;
        state = 'gone';
      },
    };
  }
}

/** The unit a per-address limit counts: the IPv4 address, or the /64 of an IPv6 address. */
export function sourceOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => (g || '0').toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
