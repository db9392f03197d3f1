/**
 * The live tallies behind "who is accessing this data right now, for what purpose, and what
 * have they extracted": per principal, the last request (when, from where, on which channel,
 * for which purpose) and, per principal × dataset, the requests, rows released and columns
 * seen unmasked. Fed by every recorded audit entry (the same facts an auditor can read), so
 * the answer is the running system's, not a nightly batch's. Bounded by the workspace's
 * principals × datasets.
 */
import type { MonitorEvent } from './event.ts';

export interface PrincipalActivity {
  principal: string;
  org: string | null;
  lastAt: number;
  lastSource: string;
  lastZone: string | null;
  lastChannel: string;
  lastPurpose: string | null;
  lastAction: string;
  requests: number;
  denials: number;
  /** The last anomaly score and its explanation. */
  lastScore: number;
  lastReasons: readonly string[];
}

export interface Extraction {
  principal: string;
  dataset: string;
  requests: number;
  rowsReleased: number;
  firstAt: number;
  lastAt: number;
  readonly purposes: Set<string>;
  readonly columnsUnmasked: Set<string>;
  /** 53-bit hashes of the privacy units seen in row-level results (null: none identifiable yet). */
  units: Set<number> | null;
}

/** Distinct units counted per principal × dataset before the count is reported as "at least". */
export const MAX_UNITS = 200_000;

/** cyrb53 (bryc, public domain): a fast 53-bit string hash; a collision undercounts by one. */
export function hash53(s: string): number {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export class LiveActivity {
  readonly #principals = new Map<string, PrincipalActivity>();
  readonly #extraction = new Map<string, Extraction>();

  record(e: MonitorEvent, zone: string | null, score: number, reasons: readonly string[]): void {
    let p = this.#principals.get(e.principal);
    if (!p) {
      p = { principal: e.principal, org: e.org, lastAt: 0, lastSource: '', lastZone: null, lastChannel: '', lastPurpose: null, lastAction: '', requests: 0, denials: 0, lastScore: 0, lastReasons: [] };
      this.#principals.set(e.principal, p);
    }
    p.lastAt = e.at; p.lastSource = e.source; p.lastZone = zone; p.lastChannel = e.channel; p.lastAction = e.action;
    if (e.purpose !== null) p.lastPurpose = e.purpose;
    p.requests++;
    if (e.decision === 'deny') p.denials++;
    p.lastScore = score; p.lastReasons = reasons;
    if (e.decision !== 'allow') return;
    for (const d of e.datasets) {
      const key = `${e.principal}\u0000${d}`;
      let x = this.#extraction.get(key);
      if (!x) {
        x = { principal: e.principal, dataset: d, requests: 0, rowsReleased: 0, firstAt: e.at, lastAt: e.at, purposes: new Set(), columnsUnmasked: new Set(), units: null };
        this.#extraction.set(key, x);
      }
      x.requests++;
      x.rowsReleased += e.rows;
      x.lastAt = e.at;
      if (e.purpose !== null && x.purposes.size < 32) x.purposes.add(e.purpose);
      const prefix = `${d}.`;
      for (const c of e.unmasked) if (c.startsWith(prefix) && x.columnsUnmasked.size < 512) x.columnsUnmasked.add(c.slice(prefix.length));
    }
  }

  /**
   * Privacy units released in a row-level result (the unit column's values, hashed at once:
   * only their count is kept). Called by the release marker before the audit entry exists.
   */
  releasedUnits(principal: string, dataset: string, values: readonly string[], at: number): void {
    const key = `${principal}\u0000${dataset}`;
    let x = this.#extraction.get(key);
    if (!x) {
      x = { principal, dataset, requests: 0, rowsReleased: 0, firstAt: at, lastAt: at, purposes: new Set(), columnsUnmasked: new Set(), units: null };
      this.#extraction.set(key, x);
    }
    x.units ??= new Set();
    for (const v of values) { if (x.units.size >= MAX_UNITS) break; x.units.add(hash53(v)); }
  }

  principals(filter: (principal: string) => boolean): PrincipalActivity[] {
    return [...this.#principals.values()].filter((p) => filter(p.principal)).sort((a, b) => b.lastAt - a.lastAt);
  }

  extraction(filter: (principal: string) => boolean): Extraction[] {
    return [...this.#extraction.values()].filter((x) => filter(x.principal)).sort((a, b) => b.rowsReleased - a.rowsReleased);
  }
}
