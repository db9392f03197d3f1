/**
 * What monitoring sees of one request: the audit entry once it is durable
 * (Runtime.onRecorded), reduced to the fields behaviour is judged on. Built from the audit
 * record alone, so monitoring sees exactly what an auditor sees and nothing more: no data
 * value, no secret (invariant 9). Columns "seen unmasked" are the columns the query touched
 * minus those the plan masked (`mask:<dataset>.<column>=…` obligations).
 */
import type { AuditRecord } from '../audit/types.ts';
import { queryShape } from './query-shape.ts';

export interface MonitorEvent {
  readonly at: number;
  readonly auditId: string;
  readonly principal: string;
  readonly org: string | null;
  readonly source: string;
  readonly channel: string;
  readonly action: string;
  readonly purpose: string | null;
  readonly datasets: readonly string[];
  readonly columns: readonly string[];
  readonly unmasked: readonly string[];
  readonly decision: 'allow' | 'deny' | 'error';
  /** Rows released to the caller (0 when nothing was). */
  readonly rows: number;
  readonly fingerprint: string | null;
  /** The literal-free shape of the SQL (query-shape.ts), when the request meta carried SQL. */
  readonly shape?: string | null;
  readonly errorCode: string | null;
}

/**
 * What the request meta carries beyond the audit entry, handed to monitoring by the kernel's
 * record hook (Runtime.onRecorded's third argument): the SQL text, only to derive its
 * literal-free shape here, and the device-posture token, verified off the request path
 * (posture-watch.ts). Neither is kept as it is.
 */
export interface RequestFacts {
  readonly sql?: string | null;
  readonly posture?: string | null;
}

/** Channels monitoring itself writes on (automatic responses): never fed back into detection. */
export const MONITOR_CHANNEL = 'monitor';

/** Actions that read data: they build baselines and feed the extraction rules. */
export function readsData(e: MonitorEvent): boolean {
  return e.datasets.length > 0 && (e.action === 'query' || e.action === 'result.get' || e.action === 'query.describe' || e.action === 'query.estimate');
}

export function toEvent(r: AuditRecord, auditId: string, orgOf: (principal: string) => string | null, facts?: RequestFacts): MonitorEvent | null {
  if (r.principal === null || r.channel === MONITOR_CHANNEL) return null;
  let unmasked = r.columns;
  if (r.obligations.length > 0 && r.columns.length > 0) {
    const masked = new Set<string>();
    for (const o of r.obligations) {
      if (!o.startsWith('mask:')) continue;
      const eq = o.indexOf('=');
      masked.add(o.slice(5, eq < 0 ? undefined : eq));
    }
    if (masked.size > 0) unmasked = r.columns.filter((c) => !masked.has(c));
  }
  const at = Date.parse(r.time);
  return {
    at: Number.isFinite(at) ? at : 0, auditId, principal: r.principal, org: orgOf(r.principal), source: r.source, channel: r.channel,
    action: r.action, purpose: r.purpose, datasets: r.datasets, columns: r.columns, unmasked, decision: r.decision,
    rows: r.decision === 'allow' && typeof r.rowsReturned === 'number' ? r.rowsReturned : 0, fingerprint: r.sqlFingerprint, errorCode: r.errorCode,
    shape: typeof facts?.sql === 'string' && r.sqlFingerprint !== null ? queryShape(facts.sql) : null,
  };
}
