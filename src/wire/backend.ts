/**
 * What the wire front needs from Gatehouse: the one request path and nothing else.
 * `Gatehouse` (src/pipeline/gatehouse.ts) satisfies it; the front never reaches an engine,
 * a store or the policy engine directly.
 */
import type { GatehouseError } from '../errors.ts';
import type { DatasetView, QueryRequest, QueryResponse, RequestMeta } from '../pipeline/gatehouse.ts';

/** SCRAM-SHA-256 verifier (RFC 5802/7677), every field but `iterations` base64. */
export interface ScramVerifier {
  readonly salt: string;
  readonly iterations: number;
  readonly storedKey: string;
  readonly serverKey: string;
}

/**
 * A governed query as the wire sends it: the request plus its own bound. `timeoutMs` is the
 * session's statement_timeout (never above the workspace's) and `signal` aborts on a
 * CancelRequest, on that timeout or at shutdown; the executor passes both to the engine
 * (its interrupt), so the query really stops and its audit entry says QUERY_TIMEOUT.
 * Until QueryRequest declares them the governed path ignores them, and the wire still
 * answers 57014 (see `cancelGraceMs` in src/wire/server.ts).
 */
export type WireQueryRequest = QueryRequest & { readonly signal?: AbortSignal; readonly timeoutMs?: number };

export interface WireBackend {
  readonly policyVersion: string;
  /** The workspace's statement timeout (ms): a session may lower it, never raise it. */
  readonly workspace: { readonly workspace: { readonly defaults: { readonly statementTimeoutMs: number } } };
  /** Null for an unknown or expired user: SCRAM then runs to the end and fails the same way. */
  connectionVerifier(username: string): Promise<{ verifier: ScramVerifier; credential: string } | null>;
  query(req: WireQueryRequest): Promise<QueryResponse>;
  datasets(req: RequestMeta & { purpose: string | null }): Promise<{ datasets: DatasetView[]; auditId: string; policyVersion: string }>;
  rejectRequest(meta: RequestMeta, action: string, error: GatehouseError): Promise<void>;
}
