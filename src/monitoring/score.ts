/**
 * The anomaly score of one data request against its principal's baseline (or, while the
 * principal has too little history, its organisation's), with the explanation an analyst
 * reads: "3.1× the usual rows; first use of column patients.dob; 02:14 local".
 *
 * The score is a sum of independent, bounded contributions, each explained, so a score of
 * 4 always decomposes into reasons a person can check against the audit log:
 *
 *   rows     max(0, z − 2), z the z-score of log(1 + rows) (sd floored at 0.5), at most 2.5
 *   column   +1 for each column never touched before (at most 2)
 *   dataset  +1.5 for a dataset never touched before
 *   hour     +1 when under 2 % of past requests fell within an hour of this time of day
 *            (judged once the baseline holds 30 requests)
 *   source   +0.75 for a source address never seen before
 *   familiar ×0.5 when the exact query ran at least 3 times before (a routine report)
 *
 * No single contribution reaches the default threshold (3) alone: an alert needs two signals
 * that agree, which is what keeps a busy analyst's one large report from paging anyone.
 * Contributions only count once a baseline holds `MIN_HISTORY` requests (an organisation's,
 * `MIN_ORG_HISTORY`): a new principal is not anomalous for being new.
 */
import type { Baseline } from './baseline.ts';

export const MIN_HISTORY = 10;
export const MIN_ORG_HISTORY = 50;
const MIN_HOUR_HISTORY = 30;

export interface Score {
  readonly score: number;
  readonly reasons: readonly string[];
  /** Which baseline judged: the principal's, its organisation's, or none yet. */
  readonly against: 'principal' | 'org' | 'none';
}

export interface Scored {
  readonly rows: number;
  readonly columns: readonly string[];
  readonly datasets: readonly string[];
  readonly source: string;
  readonly fingerprint: string | null;
  readonly hour: number;
  /** "HH:MM" in the organisation's local time, for the explanation. */
  readonly clock: string;
}

const NONE: Score = { score: 0, reasons: [], against: 'none' };

export function scoreRequest(e: Scored, principal: Baseline | undefined, org: Baseline | undefined): Score {
  const b = principal && principal.n >= MIN_HISTORY ? principal : org && org.n >= MIN_ORG_HISTORY ? org : undefined;
  if (!b) return NONE;
  const against = b === principal ? 'principal' : 'org';
  let score = 0;
  const reasons: string[] = [];

  const z = (Math.log1p(e.rows) - b.meanLogRows) / Math.max(b.sdLogRows, 0.5);
  if (z > 2) {
    score += Math.min(z - 2, 2.5);
    reasons.push(`${((e.rows + 1) / (b.usualRows + 1)).toFixed(1)}× the usual rows`);
  }
  let newColumns = 0;
  for (const c of e.columns) {
    if (b.columns.has(c)) continue;
    if (newColumns < 2) { score += 1; reasons.push(`first use of column ${c}`); }
    newColumns++;
  }
  for (const d of e.datasets) {
    if (b.datasets.has(d)) continue;
    score += 1.5;
    reasons.push(`first use of dataset ${d}`);
  }
  if (b.n >= MIN_HOUR_HISTORY && (b.hours[(e.hour + 23) % 24]! + b.hours[e.hour]! + b.hours[(e.hour + 1) % 24]!) / b.n < 0.02) {
    score += 1;
    reasons.push(`${e.clock} local`);
  }
  if (!b.sources.has(e.source)) { score += 0.75; reasons.push(`first request from ${e.source}`); }
  if (score > 0 && e.fingerprint !== null && (b.fingerprints.get(e.fingerprint) ?? 0) >= 3) {
    score *= 0.5;
    reasons.push('a query run before (halved)');
  }
  if (against === 'org' && reasons.length > 0) reasons.push('judged against the organisation\'s baseline');
  return { score: Math.round(score * 100) / 100, reasons, against };
}

/** Hour of the day and "HH:MM" in the organisation's local time. */
export function localClock(at: number, utcOffsetMinutes: number): { hour: number; clock: string } {
  const minutes = Math.floor(at / 60_000) + utcOffsetMinutes;
  const inDay = ((minutes % 1440) + 1440) % 1440;
  const hour = Math.floor(inDay / 60);
  const min = inDay % 60;
  return { hour, clock: `${hour < 10 ? '0' : ''}${hour}:${min < 10 ? '0' : ''}${min}` };
}
