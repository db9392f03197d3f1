/**
 * A logged partner request as the what-if replay sees it: who asked, for what purpose, when,
 * over which channel, and what the bound query touched. This is exactly what every audit
 * entry of a query already holds (src/audit/types.ts: principal, purpose, datasets, the
 * bound query's "dataset.column" references, the SQL fingerprint), so a replay needs no
 * second log; the SQL text joins it by fingerprint only where the workspace keeps it
 * (query-texts.ts, opt-in because literals may be personal data).
 *
 * Audit entries name principals by pseudonym (src/audit/log.ts); the replay maps them back
 * with the log's pseudonym keys for the principals the workspaces declare, and skips the
 * rest (a principal neither version knows cannot change outcome).
 */
import type { StoredAuditEntry } from '../../audit/log.ts';

export interface LoggedRequest {
  /** The audit entry's id (its index in the log), so a report links back to it. */
  readonly auditId: string;
  readonly time: string;
  readonly principal: string;
  readonly purpose: string;
  readonly channel: string;
  readonly source: string;
  readonly datasets: readonly string[];
  /** "dataset.column" for every column the bound query referenced (the bound IR's shape). */
  readonly columns: readonly string[];
  readonly sqlFingerprint: string | null;
  /** The logged decision, for the record; the replay re-decides both versions itself. */
  readonly decision: string;
}

/** What the replay reads from the audit log (the TransparencyLog implements it). */
export interface AuditLogReader {
  scan(filter: { from?: string; to?: string; action?: string }): AsyncGenerator<{ index: number; leaf: { entry: StoredAuditEntry } }>;
  pseudonymsOf(principal: string): string[];
}

/**
 * The query requests of [from, to) with a known principal and a purpose. Requests that
 * failed before the datasets were known (a syntax error, no credential) cannot be replayed
 * and are counted as skipped.
 */
export async function readLoggedRequests(log: AuditLogReader, principals: Iterable<string>, window: { from: Date; to: Date }): Promise<{ requests: LoggedRequest[]; skipped: number }> {
  const byPseudonym = new Map<string, string>();
  for (const p of principals) {
    byPseudonym.set(p, p);
    for (const ps of log.pseudonymsOf(p)) byPseudonym.set(ps, p);
  }
  const requests: LoggedRequest[] = [];
  let skipped = 0;
  for await (const { index, leaf } of log.scan({ from: window.from.toISOString(), to: window.to.toISOString(), action: 'query' })) {
    const e = leaf.entry;
    const principal = e.principal === null ? undefined : byPseudonym.get(e.principal);
    if (principal === undefined || e.purpose === null || e.datasets.length === 0) { skipped++; continue; }
    requests.push({
      auditId: String(index), time: e.time, principal, purpose: e.purpose, channel: e.channel, source: e.source,
      datasets: e.datasets, columns: e.columns, sqlFingerprint: e.sqlFingerprint, decision: e.decision,
    });
  }
  return { requests, skipped };
}
