/**
 * Per-peer allowance for PSI: each session reveals a little about the server's set (its
 * padded size and, to the client, the overlap), so a peer that may run unlimited sessions
 * can probe membership one candidate set at a time. A token bucket per peer bounds the
 * elements a peer may submit per window, and a second one the number of sessions.
 */
import { PsiError } from './errors.ts';

export interface PsiAllowance {
  readonly sessionsPerHour: number;
  readonly elementsPerHour: number;
  readonly maxElementsPerSession: number;
}

export const DEFAULT_ALLOWANCE: PsiAllowance = { sessionsPerHour: 20, elementsPerHour: 20_000_000, maxElementsPerSession: 4_194_304 };

interface Bucket {
  sessions: number;
  elements: number;
  at: number;
}

export class PsiRateLimiter {
  readonly #allowance: PsiAllowance;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(allowance: PsiAllowance = DEFAULT_ALLOWANCE, now: () => number = Date.now) {
    this.#allowance = allowance;
    this.#now = now;
  }

  /** Charge one session of `elements` padded elements to `peer`, or throw PSI_RATE_LIMITED. */
  charge(peer: string, elements: number): void {
    const a = this.#allowance;
    if (elements > a.maxElementsPerSession) {
      throw new PsiError('PSI_SET_TOO_LARGE', `A PSI session may carry at most ${a.maxElementsPerSession} elements`, { hint: 'Split the set or ask the peer to raise its allowance.' });
    }
    const t = this.#now();
    const b = this.#buckets.get(peer) ?? { sessions: a.sessionsPerHour, elements: a.elementsPerHour, at: t };
    const refill = (t - b.at) / 3_600_000;
    b.sessions = Math.min(a.sessionsPerHour, b.sessions + refill * a.sessionsPerHour);
    b.elements = Math.min(a.elementsPerHour, b.elements + refill * a.elementsPerHour);
    b.at = t;
    if (b.sessions < 1 || b.elements < elements) {
      const needS = b.sessions < 1 ? (1 - b.sessions) / a.sessionsPerHour : 0;
      const needE = b.elements < elements ? (elements - b.elements) / a.elementsPerHour : 0;
      const wait = Math.ceil(Math.max(needS, needE) * 3600);
      this.#buckets.set(peer, b);
      throw new PsiError('PSI_RATE_LIMITED', `This peer has used its PSI allowance; retry in ${wait} s`, { retryAfterSeconds: wait });
    }
    b.sessions -= 1;
    b.elements -= elements;
    this.#buckets.set(peer, b);
  }
}
