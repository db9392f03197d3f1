/**
 * What the wire front needs from Gatehouse: the one request path and nothing else.
 * `Gatehouse` (src/pipeline/gatehouse.ts) satisfies it; the front never reaches an engine,
 * a store or the policy engine directly.
 */
import type { GatehouseError } from '../errors.ts';
import type { Credential } from '../identity/credentials.ts';
import type { ResultColumn } from '../model/result.ts';
import type { CatalogAnswer, CatalogRequest, DatasetView, QueryRequest, QueryResponse, RequestMeta } from '../pipeline/gatehouse.ts';

/** SCRAM-SHA-256 verifier (RFC 5802/7677), every field but `iterations` base64. */
export interface ScramVerifier {
  readonly salt: string;
  readonly iterations: number;
  readonly storedKey: string;
  readonly serverKey: string;
}

export interface WireBackend {
  readonly policyVersion: string;
  /** The workspace's statement timeout (ms): a session may lower it, never raise it. */
  readonly workspace: { readonly workspace: { readonly defaults: { readonly statementTimeoutMs: number } } };
  /** Null for an unknown or expired user: SCRAM then runs to the end and fails the same way. */
  connectionVerifier(username: string): Promise<{
    readonly salt: string;
    readonly iterations: number;
    /** One per active connection password of the principal; the client proof is checked against each. */
    readonly candidates: readonly { readonly storedKey: string; readonly serverKey: string; readonly credential: Credential }[];
  } | null>;
  /** `timeoutMs` (the session's statement_timeout) and `signal` (CancelRequest, shutdown) reach the engine's interrupt. */
  query(req: QueryRequest): Promise<QueryResponse>;
  /** A governed query's result columns (after masks and protections) without a row; audited as query.describe. */
  describe(req: QueryRequest): Promise<{ columns: readonly ResultColumn[]; auditId: string }>;
  datasets(req: RequestMeta & { purpose: string | null }): Promise<{ datasets: DatasetView[]; auditId: string; policyVersion: string }>;
  rejectRequest(meta: RequestMeta, action: string, error: GatehouseError): Promise<void>;
  /** A catalog query (pg_catalog, information_schema, version(), …), parsed, allowlisted and answered on the path. */
  catalogQuery(req: CatalogRequest): Promise<CatalogAnswer>;
  describeCatalogQuery(req: Omit<CatalogRequest, 'params' | 'timeoutMs'>): Promise<readonly { readonly name: string; readonly type: string }[] | null>;
}
