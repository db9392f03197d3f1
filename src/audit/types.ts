/**
 * The contract between the request pipeline and the audit log.
 *
 * The pipeline builds exactly one AuditRecord per request (allowed, denied or failed)
 * and awaits `append`; the request fails if `append` rejects (invariant 7, fail closed).
 * Storage, hashing and proofs live behind this interface so the log's implementation
 * can change without touching the pipeline.
 */

export type AuditDecision = 'allow' | 'deny' | 'error';

export interface AuditRecord {
  /** ISO-8601 time the request was received. */
  readonly time: string;
  /** Stable principal id (the log may store it pseudonymised). */
  readonly principal: string | null;
  /** Remote address or interface label ("cli", "127.0.0.1"). */
  readonly source: string;
  /** Interface the request came in on: "http", "cli", "pgwire", ... */
  readonly channel: string;
  /** What was attempted: "query", "datasets.list", "login", ... */
  readonly action: string;
  readonly purpose: string | null;
  readonly datasets: readonly string[];
  /** "dataset.column" for every column the query touched. */
  readonly columns: readonly string[];
  readonly decision: AuditDecision;
  /** Human-readable reasons; never contain data values or secrets. */
  readonly reasons: readonly string[];
  readonly policyVersion: string | null;
  readonly obligations: readonly string[];
  /** SHA-256 of the normalised SQL text (literals kept: the fingerprint identifies the exact query). */
  readonly sqlFingerprint: string | null;
  readonly rowsReturned: number | null;
  /** SHA-256 over the canonical JSON of the released columns and rows. */
  readonly resultDigest: string | null;
  /** Stable error code when decision is "error" or "deny". */
  readonly errorCode: string | null;
}

export interface AuditAppendResult {
  /** Position of the entry in the log (0-based), as a decimal string for JSON safety. */
  readonly auditId: string;
}

export interface AuditSink {
  /** Resolves only once the entry is durable. Rejects if it cannot be recorded. */
  append(record: AuditRecord): Promise<AuditAppendResult>;
  close(): Promise<void>;
}
