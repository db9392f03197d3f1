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
        x = { principal: e.principal, dataset: d, requests: 0, rowsReleased: 0, firstAt: e.at, lastAt: e.at, purposes: new Set(), columnsUnmasked: new Set() };
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

  principals(filter: (principal: string) => boolean): PrincipalActivity[] {
    return [...this.#principals.values()].filter((p) => filter(p.principal)).sort((a, b) => b.lastAt - a.lastAt);
  }

  extraction(filter: (principal: string) => boolean): Extraction[] {
    return [...this.#extraction.values()].filter((x) => filter(x.principal)).sort((a, b) => b.rowsReleased - a.rowsReleased);
  }
}
