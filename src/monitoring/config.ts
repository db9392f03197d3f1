/**
 * The workspace's `monitoring:` section: detection rules as code, network zones, contacts,
 * webhooks and the automatic responses policy allows. Parsed here, by the monitoring part,
 * so the workspace loader only has to let the key through.
 *
 * Where it is read from: the `monitoring:` key of gatehouse.yaml (the workspace loader lets
 * the key through and leaves it to this parser), or a `monitoring.yaml` beside it holding the
 * same `monitoring:` mapping. Invalid configuration is refused whole with every problem listed
 * (invariant 10): a typo must not silently switch a rule off.
 *
 *   monitoring:
 *     recentMinutes: 15                  # "who queried in the last N minutes"
 *     anomalyThreshold: 3                # score at which a request raises an anomaly alert
 *     utcOffsetMinutes: 0                # the organisation's local time, for "hours of the day"
 *     datasetRows: { patients: 2000 }    # sizes for "a share of a dataset" (slow exfiltration)
 *     zones:                             # source networks → zone with a location (impossible travel)
 *       office-london: { cidrs: [10.1.0.0/16], lat: 51.5, lon: -0.12 }
 *     contacts:                          # escalation order: the rule's contact, then the next
 *       - { name: security-oncall, webhook: https://hooks.example/sec, secretEnv: GH_HOOK_SECRET }
 *       - { name: ciso, webhook: https://hooks.example/ciso, secretEnv: GH_HOOK_SECRET }
 *     escalateAfterMinutes: 15
 *     rules:
 *       slow-exfiltration: { windowMinutes: 1440, share: 0.2, maxRowsPerQuery: 100, contact: security-oncall, respond: suspend-sessions }
 *       enumeration:       { windowMinutes: 10, distinctQueries: 10, maxRows: 5 }
 *       new-dataset:       { minHistory: 20 }
 *       impossible-travel: { maxKmh: 900 }
 *       repeated-denials:  { windowMinutes: 10, count: 5, respond: require-step-up }
 *       anomaly:           { }
 *     incidents:                         # a confirmed alert opens an incident; an active SLA
 *       owner: security-team             # agreement with the partner starts its clock
 *       terms:
 *         keystone-mutual: { responseMinutes: 60, remediationMinutes: 4320 }
 *     leakTracing:                       # row-level results of these datasets are marked per partner
 *       claims: { vary: [amount_billed, amount_paid], canaries: 2 }
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { GatehouseError } from '../errors.ts';

export const RULE_NAMES = ['slow-exfiltration', 'enumeration', 'new-dataset', 'impossible-travel', 'repeated-denials', 'anomaly'] as const;
export type RuleName = typeof RULE_NAMES[number];
export const RESPONSES = ['suspend-sessions', 'require-step-up'] as const;
export type ResponseKind = typeof RESPONSES[number];
export type Severity = 'low' | 'medium' | 'high';

export interface RuleConfig {
  readonly enabled: boolean;
  readonly severity: Severity;
  /** The first contact to notify; escalation moves down `contacts` from there. */
  readonly contact: string | null;
  readonly respond: ResponseKind | null;
  readonly windowMinutes: number;
  /** slow-exfiltration: share of the dataset (with datasetRows) or absolute rows. */
  readonly share: number;
  readonly rows: number;
  readonly maxRowsPerQuery: number;
  /** enumeration */
  readonly distinctQueries: number;
  readonly maxRows: number;
  /** new-dataset */
  readonly minHistory: number;
  /** impossible-travel */
  readonly maxKmh: number;
  /** repeated-denials */
  readonly count: number;
}

export interface Zone {
  readonly name: string;
  readonly cidrs: readonly string[];
  readonly lat: number;
  readonly lon: number;
}

export interface Contact {
  readonly name: string;
  readonly webhook: string | null;
  /** The environment variable holding the webhook's signing secret (never the secret itself in YAML). */
  readonly secretEnv: string | null;
}

export interface SlaTerms {
  readonly responseMinutes: number;
  readonly remediationMinutes: number;
}

export interface MonitoringConfig {
  readonly recentMinutes: number;
  readonly anomalyThreshold: number;
  readonly utcOffsetMinutes: number;
  readonly datasetRows: Readonly<Record<string, number>>;
  readonly zones: readonly Zone[];
  readonly contacts: readonly Contact[];
  readonly escalateAfterMinutes: number;
  readonly rules: Readonly<Record<RuleName, RuleConfig>>;
  /** Who owns the findings a missed SLA deadline opens, and the SLA terms per partner organisation. */
  readonly incidents: { readonly owner: string; readonly terms: Readonly<Record<string, SlaTerms>> };
  /** Per dataset: the columns whose last digit may carry a watermark, and canary rows per plain scan. */
  readonly leakTracing: Readonly<Record<string, { readonly vary: readonly string[]; readonly canaries: number }>>;
}

const RULE_DEFAULTS: Record<RuleName, RuleConfig> = {
  'slow-exfiltration': base({ severity: 'high', windowMinutes: 1440, share: 0.2, rows: 1000, maxRowsPerQuery: 100 }),
  enumeration: base({ severity: 'medium', windowMinutes: 10, distinctQueries: 10, maxRows: 5 }),
  'new-dataset': base({ severity: 'low', minHistory: 20 }),
  'impossible-travel': base({ severity: 'high', maxKmh: 900 }),
  'repeated-denials': base({ severity: 'medium', windowMinutes: 10, count: 5 }),
  anomaly: base({ severity: 'low' }),
};

function base(o: Partial<RuleConfig>): RuleConfig {
  return {
    enabled: true, severity: 'medium', contact: null, respond: null, windowMinutes: 60, share: 0.2, rows: 1000, maxRowsPerQuery: 100,
    distinctQueries: 10, maxRows: 5, minHistory: 20, maxKmh: 900, count: 5, ...o,
  };
}

export const DEFAULT_MONITORING: MonitoringConfig = {
  recentMinutes: 15, anomalyThreshold: 3, utcOffsetMinutes: 0, datasetRows: {}, zones: [], contacts: [], escalateAfterMinutes: 15, rules: RULE_DEFAULTS,
  incidents: { owner: 'security-team', terms: {} },
  leakTracing: {},
};

export class MonitoringConfigInvalid extends GatehouseError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('WORKSPACE_INVALID', `the monitoring section is invalid: ${problems.join('; ')}`, { hint: 'fix the monitoring: section (docs/monitoring.md lists every key), then reload' });
    this.problems = problems;
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const CIDR4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const ENV = /^[A-Z_][A-Z0-9_]*$/;

/** Validates a `monitoring:` mapping; every problem is listed, nothing is half-applied. */
export function parseMonitoringConfig(value: unknown): MonitoringConfig {
  if (value === undefined || value === null) return DEFAULT_MONITORING;
  const problems: string[] = [];
  if (!isObj(value)) throw new MonitoringConfigInvalid(['monitoring must be a mapping']);
  const keys = (o: Obj, path: string, allowed: readonly string[]): void => {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) problems.push(`${path}: unknown key "${k}" (expected one of: ${allowed.join(', ')})`);
  };
  const num = (o: Obj, k: string, path: string, dflt: number, min: number, max: number): number => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) { problems.push(`${path}.${k}: must be a number from ${min} to ${max}`); return dflt; }
    return v;
  };
  keys(value, 'monitoring', ['recentMinutes', 'anomalyThreshold', 'utcOffsetMinutes', 'datasetRows', 'zones', 'contacts', 'escalateAfterMinutes', 'rules', 'incidents', 'leakTracing']);

  const datasetRows: Record<string, number> = {};
  if (value.datasetRows !== undefined) {
    if (!isObj(value.datasetRows)) problems.push('monitoring.datasetRows: must map dataset names to row counts');
    else for (const [d, n] of Object.entries(value.datasetRows)) {
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) problems.push(`monitoring.datasetRows.${d}: must be a positive integer`);
      else datasetRows[d] = n;
    }
  }

  const zones: Zone[] = [];
  if (value.zones !== undefined) {
    if (!isObj(value.zones)) problems.push('monitoring.zones: must map zone names to {cidrs: [a.b.c.d/n], lat, lon}');
    else for (const [name, z] of Object.entries(value.zones)) {
      const path = `monitoring.zones.${name}`;
      if (!isObj(z)) { problems.push(`${path}: must be {cidrs, lat, lon}`); continue; }
      keys(z, path, ['cidrs', 'lat', 'lon']);
      const cidrs = Array.isArray(z.cidrs) ? z.cidrs : [];
      if (!Array.isArray(z.cidrs) || cidrs.length === 0) problems.push(`${path}.cidrs: must be a non-empty list of IPv4 CIDR blocks`);
      for (const c of cidrs) {
        const m = typeof c === 'string' ? CIDR4.exec(c) : null;
        if (!m || [m[1], m[2], m[3], m[4]].some((o) => Number(o) > 255) || Number(m[5]) > 32) problems.push(`${path}.cidrs: "${String(c).slice(0, 40)}" is not an IPv4 CIDR block such as 10.1.0.0/16`);
      }
      zones.push({ name, cidrs: cidrs.map(String), lat: num(z, 'lat', path, 0, -90, 90), lon: num(z, 'lon', path, 0, -180, 180) });
    }
  }

  const contacts: Contact[] = [];
  if (value.contacts !== undefined) {
    if (!Array.isArray(value.contacts)) problems.push('monitoring.contacts: must be a list of {name, webhook, secretEnv} in escalation order');
    else value.contacts.forEach((c, i) => {
      const path = `monitoring.contacts[${i}]`;
      if (!isObj(c) || typeof c.name !== 'string' || c.name === '') { problems.push(`${path}: needs a name`); return; }
      keys(c, path, ['name', 'webhook', 'secretEnv']);
      let webhook: string | null = null;
      if (c.webhook !== undefined) {
        try {
          const u = new URL(String(c.webhook));
          if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('scheme');
          webhook = u.toString();
        } catch { problems.push(`${path}.webhook: must be an http(s) URL`); }
      }
      const secretEnv = c.secretEnv === undefined ? null : String(c.secretEnv);
      if (secretEnv !== null && !ENV.test(secretEnv)) problems.push(`${path}.secretEnv: must name an environment variable (A-Z, 0-9, _)`);
      if (webhook !== null && secretEnv === null) problems.push(`${path}: a webhook needs secretEnv, the variable holding its signing secret`);
      if (contacts.some((o) => o.name === c.name)) problems.push(`${path}: contact "${c.name}" is listed twice`);
      contacts.push({ name: c.name, webhook, secretEnv });
    });
  }

  const rules = { ...RULE_DEFAULTS };
  if (value.rules !== undefined) {
    if (!isObj(value.rules)) problems.push(`monitoring.rules: must map rule names (${RULE_NAMES.join(', ')}) to settings`);
    else for (const [name, r] of Object.entries(value.rules)) {
      const path = `monitoring.rules.${name}`;
      if (!(RULE_NAMES as readonly string[]).includes(name)) { problems.push(`${path}: unknown rule (expected one of: ${RULE_NAMES.join(', ')})`); continue; }
      const d = RULE_DEFAULTS[name as RuleName];
      if (r === false) { rules[name as RuleName] = { ...d, enabled: false }; continue; }
      if (!isObj(r)) { problems.push(`${path}: must be a mapping of settings, or false to switch the rule off`); continue; }
      keys(r, path, ['enabled', 'severity', 'contact', 'respond', 'windowMinutes', 'share', 'rows', 'maxRowsPerQuery', 'distinctQueries', 'maxRows', 'minHistory', 'maxKmh', 'count']);
      const severity = r.severity === undefined ? d.severity : r.severity;
      if (severity !== 'low' && severity !== 'medium' && severity !== 'high') problems.push(`${path}.severity: must be low, medium or high`);
      const respond = r.respond === undefined ? null : r.respond;
      if (respond !== null && !(RESPONSES as readonly unknown[]).includes(respond)) problems.push(`${path}.respond: must be one of ${RESPONSES.join(', ')}`);
      const contact = r.contact === undefined ? null : String(r.contact);
      if (contact !== null && !contacts.some((c) => c.name === contact)) problems.push(`${path}.contact: "${contact}" is not in monitoring.contacts`);
      rules[name as RuleName] = {
        enabled: r.enabled === undefined ? true : r.enabled === true,
        severity: severity as Severity, contact, respond: respond as ResponseKind | null,
        windowMinutes: num(r, 'windowMinutes', path, d.windowMinutes, 1, 60 * 24 * 31),
        share: num(r, 'share', path, d.share, 0.0001, 1),
        rows: num(r, 'rows', path, d.rows, 1, 1e12),
        maxRowsPerQuery: num(r, 'maxRowsPerQuery', path, d.maxRowsPerQuery, 1, 1e9),
        distinctQueries: num(r, 'distinctQueries', path, d.distinctQueries, 2, 1e6),
        maxRows: num(r, 'maxRows', path, d.maxRows, 0, 1e6),
        minHistory: num(r, 'minHistory', path, d.minHistory, 1, 1e6),
        maxKmh: num(r, 'maxKmh', path, d.maxKmh, 1, 1e6),
        count: num(r, 'count', path, d.count, 1, 1e6),
      };
    }
  }

  let incidents = DEFAULT_MONITORING.incidents;
  if (value.incidents !== undefined) {
    const i = value.incidents;
    if (!isObj(i)) problems.push('monitoring.incidents: must be {owner, terms: {partner: {responseMinutes, remediationMinutes}}}');
    else {
      keys(i, 'monitoring.incidents', ['owner', 'terms']);
      const owner = i.owner === undefined ? incidents.owner : String(i.owner);
      if (!/^[A-Za-z0-9_.@-]{1,100}$/.test(owner)) problems.push('monitoring.incidents.owner: must be a name (letters, digits, _ . @ -)');
      const terms: Record<string, SlaTerms> = {};
      if (i.terms !== undefined && !isObj(i.terms)) problems.push('monitoring.incidents.terms: must map partner organisations to {responseMinutes, remediationMinutes}');
      else for (const [partner, t] of Object.entries(i.terms ?? {})) {
        const path = `monitoring.incidents.terms.${partner}`;
        if (!isObj(t)) { problems.push(`${path}: must be {responseMinutes, remediationMinutes}`); continue; }
        keys(t, path, ['responseMinutes', 'remediationMinutes']);
        terms[partner] = { responseMinutes: num(t, 'responseMinutes', path, 60, 1, 60 * 24 * 90), remediationMinutes: num(t, 'remediationMinutes', path, 4320, 1, 60 * 24 * 365) };
      }
      incidents = { owner, terms };
    }
  }

  const leakTracing: Record<string, { vary: string[]; canaries: number }> = {};
  if (value.leakTracing !== undefined) {
    if (!isObj(value.leakTracing)) problems.push('monitoring.leakTracing: must map datasets to {vary: [columns], canaries: N}');
    else for (const [d, t] of Object.entries(value.leakTracing)) {
      const path = `monitoring.leakTracing.${d}`;
      if (!isObj(t)) { problems.push(`${path}: must be {vary: [columns], canaries: N}`); continue; }
      keys(t, path, ['vary', 'canaries']);
      const vary = t.vary === undefined ? [] : t.vary;
      if (!Array.isArray(vary) || !vary.every((c) => typeof c === 'string' && /^[a-z_][a-z0-9_]*$/.test(c))) { problems.push(`${path}.vary: must be a list of column names`); continue; }
      const canaries = num(t, 'canaries', path, 0, 0, 10);
      if (!Number.isInteger(canaries)) problems.push(`${path}.canaries: must be a whole number from 0 to 10`);
      leakTracing[d] = { vary: vary as string[], canaries };
    }
  }

  const config: MonitoringConfig = {
    recentMinutes: num(value, 'recentMinutes', 'monitoring', DEFAULT_MONITORING.recentMinutes, 1, 24 * 60),
    anomalyThreshold: num(value, 'anomalyThreshold', 'monitoring', DEFAULT_MONITORING.anomalyThreshold, 0.5, 100),
    utcOffsetMinutes: num(value, 'utcOffsetMinutes', 'monitoring', 0, -14 * 60, 14 * 60),
    datasetRows, zones, contacts,
    escalateAfterMinutes: num(value, 'escalateAfterMinutes', 'monitoring', DEFAULT_MONITORING.escalateAfterMinutes, 1, 7 * 24 * 60),
    rules, incidents, leakTracing,
  };
  if (problems.length > 0) throw new MonitoringConfigInvalid(problems);
  return config;
}

/** Reads the workspace's monitoring section (gatehouse.yaml `monitoring:`, else monitoring.yaml). */
export function loadMonitoringConfig(workspaceDir: string): MonitoringConfig {
  for (const file of ['gatehouse.yaml', 'monitoring.yaml']) {
    const path = join(workspaceDir, file);
    if (!existsSync(path)) continue;
    let doc: unknown;
    try { doc = parse(readFileSync(path, 'utf8')); } catch { throw new MonitoringConfigInvalid([`${file} is not valid YAML`]); }
    if (isObj(doc) && doc.monitoring !== undefined) return parseMonitoringConfig(doc.monitoring);
  }
  return DEFAULT_MONITORING;
}
