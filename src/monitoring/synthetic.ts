/**
 * Synthetic activity streams with injected anomalies, and the precision and recall of each
 * rule on them (issue 21: "Synthetic activity streams with injected anomalies. Report
 * precision and recall per rule"). Seeded (mulberry32), so a run is reproducible and the
 * figures in docs/monitoring.md come from `npx node bench/monitoring.ts --eval`.
 *
 * Normal behaviour: analysts in three organisations work office hours from their home zone
 * (one day in ten from a second office a train ride away), re-run a pool of usual reports and now and
 * then write a new query; results are aggregate-sized (log-normal rows); a few requests are
 * denied (a wrong purpose), some work runs late, some queries are larger than usual. These
 * benign confounders are what the false positives are measured against.
 *
 * Injections, each labelled with the rule that should catch it and its time span:
 *   slow-exfiltration  30 different queries of ≤ 50 rows on one dataset over six hours
 *   enumeration        12 point lookups of one shape, a different key each, in five minutes
 *   new-dataset        a settled analyst reads a dataset it never read
 *   impossible-travel  a request from another continent ten minutes after one from home
 *   repeated-denials   six refused requests in five minutes
 * and two that are built to pass under the default thresholds, so recall shows the boundary:
 *   slow-exfiltration  15 different queries of 20 rows on claims over 20 hours (4 % of it)
 *   enumeration        30 lookups, one every two minutes (never 10 in a 10-minute window)
 */
import type { AuditRecord } from '../audit/types.ts';
import type { MonitoringConfig, RuleName } from './config.ts';
import { parseMonitoringConfig } from './config.ts';
import { Monitor } from './monitor.ts';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Injection {
  readonly rule: RuleName;
  readonly principal: string;
  readonly from: number;
  readonly to: number;
}

export interface SyntheticStream {
  readonly records: readonly { readonly record: AuditRecord; readonly auditId: string }[];
  readonly injections: readonly Injection[];
  readonly principals: ReadonlyMap<string, string>;
}

export const SYNTHETIC_CONFIG: MonitoringConfig = parseMonitoringConfig({
  datasetRows: { patients: 2000, claims: 8000, encounters: 20000, labs: 15000, pharmacy: 6000 },
  zones: {
    london: { cidrs: ['10.1.0.0/16'], lat: 51.51, lon: -0.13 },
    manchester: { cidrs: ['10.2.0.0/16'], lat: 53.48, lon: -2.24 },
    boston: { cidrs: ['10.3.0.0/16'], lat: 42.36, lon: -71.06 },
    sydney: { cidrs: ['10.9.0.0/16'], lat: -33.87, lon: 151.21 },
  },
  rules: {
    'slow-exfiltration': { windowMinutes: 1440, share: 0.2, maxRowsPerQuery: 100 },
    enumeration: { windowMinutes: 10, distinctQueries: 10, maxRows: 5 },
    'new-dataset': { minHistory: 20 },
    'impossible-travel': { maxKmh: 900 },
    'repeated-denials': { windowMinutes: 10, count: 5 },
  },
});

const DATASETS = ['patients', 'claims', 'encounters', 'labs', 'pharmacy'];
const COLUMNS: Record<string, string[]> = {
  patients: ['patient_id', 'region', 'birth_year', 'sex', 'dob', 'postcode'],
  claims: ['claim_id', 'patient_id', 'payer', 'amount', 'service_date'],
  encounters: ['encounter_id', 'patient_id', 'ward', 'admitted', 'discharged'],
  labs: ['lab_id', 'patient_id', 'test', 'value', 'taken'],
  pharmacy: ['rx_id', 'patient_id', 'drug', 'dose', 'dispensed'],
};
const HOME: Record<string, { zone: string; net: string; second: string }> = {
  'st-avery': { zone: 'london', net: '10.1', second: '10.2' },
  northwind: { zone: 'boston', net: '10.3', second: '10.3' },
  keystone: { zone: 'manchester', net: '10.2', second: '10.1' },
};

interface Analyst {
  readonly id: string;
  readonly org: string;
  readonly datasets: string[];
  readonly reports: { ds: string; cols: string[]; fp: string; rows: number }[];
  readonly host: string;
}

export function syntheticStream(seed = 21, options: { days?: number; analysts?: number } = {}): SyntheticStream {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const days = options.days ?? 6;
  const orgs = Object.keys(HOME);
  const analysts: Analyst[] = [];
  for (let i = 0; i < (options.analysts ?? 24); i++) {
    const org = orgs[i % orgs.length]!;
    const own = [pick(DATASETS)];
    if (rnd() < 0.6) own.push(pick(DATASETS.filter((d) => !own.includes(d))));
    const reports = Array.from({ length: 6 + Math.floor(rnd() * 6) }, (_, k) => {
      const ds = pick(own);
      const cols = COLUMNS[ds]!.filter(() => rnd() < 0.5).slice(0, 3);
      return { ds, cols: cols.length ? cols : [COLUMNS[ds]![1]!], fp: `fp-${i}-${k}`, rows: Math.max(1, Math.round(Math.exp(1.5 + rnd() * 2))) };
    });
    analysts.push({ id: `analyst-${i}`, org, datasets: own, reports, host: `${1 + Math.floor(rnd() * 250)}.${1 + Math.floor(rnd() * 250)}` });
  }
  const start = Date.UTC(2026, 2, 2, 0, 0, 0);
  const out: { at: number; record: AuditRecord }[] = [];
  const dayNet = new Map<string, string | undefined>();
  const rec = (a: Analyst, at: number, o: Partial<AuditRecord> & { ds: string; cols: string[]; fp: string | null; rows: number | null }, net?: string): void => {
    out.push({
      at, record: {
        time: new Date(at).toISOString(), principal: a.id, source: `${net ?? dayNet.get(`${a.id}/${Math.floor((at - start) / 86_400_000)}`) ?? HOME[a.org]!.net}.${a.host}`, channel: 'http', action: 'query',
        purpose: 'operations', datasets: [o.ds], columns: o.cols.map((c) => `${o.ds}.${c}`), decision: o.decision ?? 'allow', reasons: [], policyVersion: 'v1',
        obligations: [], sqlFingerprint: o.fp, rowsReturned: o.rows, resultDigest: null, errorCode: o.errorCode ?? null,
      },
    });
  };
  let novel = 0;
  for (let day = 0; day < days; day++) {
    for (const a of analysts) {
      const n = 25 + Math.floor(rnd() * 20);
      // One day in ten at the second office (a train ride away), never both within minutes.
      const net = rnd() < 0.1 ? HOME[a.org]!.second : undefined;
      dayNet.set(`${a.id}/${day}`, net);
      for (let k = 0; k < n; k++) {
        // Office hours, with one request in 25 late in the evening.
        const late = rnd() < 0.04;
        const hour = late ? 19 + rnd() * 3 : 8 + rnd() * 10;
        const at = start + day * 86_400_000 + Math.floor(hour * 3_600_000);
        const u = rnd();
        if (u < 0.03) { rec(a, at, { ds: pick(a.datasets), cols: [], fp: `fp-denied-${novel++}`, rows: null, decision: 'deny', errorCode: 'POLICY_DENIED' }, net); continue; }
        if (u < 0.80) {
          const r = pick(a.reports);
          rec(a, at, { ds: r.ds, cols: r.cols, fp: r.fp, rows: Math.max(1, Math.round(r.rows * (0.8 + rnd() * 0.4))) }, net);
        } else {
          // A new query on a usual dataset; now and then a larger one.
          const ds = pick(a.datasets);
          const rows = rnd() < 0.15 ? 100 + Math.floor(rnd() * 300) : Math.max(1, Math.round(Math.exp(1 + rnd() * 2.5)));
          rec(a, at, { ds, cols: COLUMNS[ds]!.filter(() => rnd() < 0.4).slice(0, 3), fp: `fp-novel-${novel++}`, rows }, net);
        }
      }
    }
  }

  // Injections from day 3 on, on distinct analysts, at distinct times.
  const injections: Injection[] = [];
  const day0 = start + 3 * 86_400_000;
  const victims = [...analysts];
  if (victims.length < 7 * Math.max(1, days - 3)) throw new RangeError('not enough analysts for the injections: raise analysts or lower days');
  const take = (): Analyst => victims.splice(Math.floor(rnd() * victims.length), 1)[0]!;
  for (let round = 0; round < Math.max(1, days - 3); round++) {
    const base = day0 + round * 86_400_000;
    { // slow exfiltration
      const a = take();
      const ds = 'patients';
      const t0 = base + 9 * 3_600_000;
      for (let k = 0; k < 30; k++) rec(a, t0 + k * 12 * 60_000, { ds, cols: ['patient_id', 'dob', 'postcode'], fp: `exfil-${round}-${k}`, rows: 35 + Math.floor(rnd() * 15) });
      injections.push({ rule: 'slow-exfiltration', principal: a.id, from: t0, to: t0 + 30 * 12 * 60_000 });
    }
    { // enumeration
      const a = take();
      const ds = a.datasets[0]!;
      const t0 = base + 11 * 3_600_000;
      for (let k = 0; k < 12; k++) rec(a, t0 + k * 25_000, { ds, cols: [COLUMNS[ds]![0]!, COLUMNS[ds]![2]!], fp: `enum-${round}-${k}`, rows: 1 });
      injections.push({ rule: 'enumeration', principal: a.id, from: t0, to: t0 + 12 * 25_000 });
    }
    { // new dataset
      const a = take();
      const ds = DATASETS.find((d) => !a.datasets.includes(d))!;
      const t0 = base + 14 * 3_600_000;
      rec(a, t0, { ds, cols: [COLUMNS[ds]![1]!], fp: `new-${round}`, rows: 20 });
      injections.push({ rule: 'new-dataset', principal: a.id, from: t0, to: t0 });
    }
    { // impossible travel
      const a = take();
      const t0 = base + 15 * 3_600_000;
      const r = a.reports[0]!;
      rec(a, t0, { ds: r.ds, cols: r.cols, fp: r.fp, rows: r.rows }, dayNet.get(`${a.id}/${3 + round}`));
      rec(a, t0 + 10 * 60_000, { ds: r.ds, cols: r.cols, fp: r.fp, rows: r.rows }, '10.9');
      injections.push({ rule: 'impossible-travel', principal: a.id, from: t0, to: t0 + 10 * 60_000 });
    }
    { // stealthy exfiltration: 15 different queries of 20 rows over 20 hours, under the 20 % share
      const a = take();
      const t0 = base + 1 * 3_600_000;
      for (let k = 0; k < 15; k++) rec(a, t0 + k * 80 * 60_000, { ds: 'claims', cols: ['claim_id', 'amount'], fp: `stealth-${round}-${k}`, rows: 20 });
      injections.push({ rule: 'slow-exfiltration', principal: a.id, from: t0, to: t0 + 15 * 80 * 60_000 });
    }
    { // slow enumeration: one lookup every two minutes for an hour, never 10 in one 10-minute window
      const a = take();
      const ds = a.datasets[0]!;
      const t0 = base + 12 * 3_600_000;
      for (let k = 0; k < 30; k++) rec(a, t0 + k * 120_000, { ds, cols: [COLUMNS[ds]![0]!, COLUMNS[ds]![3]!], fp: `slowenum-${round}-${k}`, rows: 1 });
      injections.push({ rule: 'enumeration', principal: a.id, from: t0, to: t0 + 30 * 120_000 });
    }
    { // repeated denials
      const a = take();
      const t0 = base + 16 * 3_600_000;
      for (let k = 0; k < 6; k++) rec(a, t0 + k * 50_000, { ds: pick(DATASETS), cols: [], fp: `deny-${round}-${k}`, rows: null, decision: 'deny', errorCode: 'POLICY_DENIED' });
      injections.push({ rule: 'repeated-denials', principal: a.id, from: t0, to: t0 + 6 * 50_000 });
    }
  }
  out.sort((x, y) => x.at - y.at);
  return {
    records: out.map((o, i) => ({ record: o.record, auditId: String(i) })),
    injections,
    principals: new Map(analysts.map((a) => [a.id, a.org])),
  };
}

export interface RuleQuality {
  readonly rule: RuleName;
  readonly injected: number;
  readonly detected: number;
  readonly alerts: number;
  readonly truePositives: number;
  readonly precision: number | null;
  readonly recall: number | null;
}

/**
 * Replays a stream through a fresh monitor and scores each rule: a detection is a true
 * positive when an injection of the same rule and principal spans it (up to 30 min after the
 * injection's end); recall counts injections detected at least once.
 */
export function evaluate(stream: SyntheticStream, config: MonitoringConfig = SYNTHETIC_CONFIG): RuleQuality[] {
  let now = new Date(0);
  const monitor = new Monitor({ config, orgOf: (p) => stream.principals.get(p) ?? null, now: () => now });
  const detections: { rule: RuleName; principal: string; at: number }[] = [];
  for (const { record, auditId } of stream.records) {
    now = new Date(record.time);
    const o = monitor.observe(record, auditId);
    for (const d of o?.detections ?? []) detections.push({ rule: d.rule, principal: d.principal, at: now.getTime() });
  }
  const rules: RuleName[] = ['slow-exfiltration', 'enumeration', 'new-dataset', 'impossible-travel', 'repeated-denials', 'anomaly'];
  return rules.map((rule) => {
    const mine = detections.filter((d) => d.rule === rule);
    const inj = stream.injections.filter((i) => i.rule === rule);
    const hits = (d: { principal: string; at: number }, i: Injection): boolean => d.principal === i.principal && d.at >= i.from && d.at <= i.to + 30 * 60_000;
    // A detection during any injected incident of that principal is no false alarm (the slow
    // exfiltration also reads a new dataset); recall counts only the rule's own injections.
    const tp = mine.filter((d) => stream.injections.some((i) => hits(d, i))).length;
    const detected = inj.filter((i) => mine.some((d) => hits(d, i))).length;
    return {
      rule, injected: inj.length, detected, alerts: mine.length, truePositives: tp,
      precision: mine.length === 0 ? null : tp / mine.length,
      recall: inj.length === 0 ? null : detected / inj.length,
    };
  });
}
