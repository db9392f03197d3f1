/**
 * The request and response shapes of the one path. The faces (HTTP, wire, CLI) and the
 * operation modules import these; none of them depends on an implementation.
 */
import type { CellValue, ResultColumn } from '../model/result.ts';
import type { PresentedCredential } from '../identity/credentials.ts';
import type { PrivacyGovernance } from '../privacy/release.ts';

export interface RequestMeta {
  /**
   * What the caller presented: a bearer string (API key, session or OIDC token) from HTTP
   * and the CLI, or a typed credential a front verified itself (a wire connection password,
   * a TLS client certificate); null if none was.
   */
  readonly credential: PresentedCredential;
  /** A signed device-posture token (header `Gatehouse-Posture`), when the client sends one. */
  readonly posture?: string | null;
  readonly source: string;
  readonly channel: string;
  /** The statement a request carried (wire catalog queries, refused messages): its fingerprint is audited. */
  readonly sql?: string;
}

export interface QueryRequest extends RequestMeta {
  readonly sql: string;
  readonly purpose: string;
  /** Keep the released result as an encrypted artefact (GET /v1/results/:id); destroyed with its agreement. */
  readonly save?: boolean;
  /** Text values of $1..$n (PostgreSQL wire protocol Bind); absent elsewhere, where $n is refused. */
  readonly params?: readonly (string | null)[];
  /** The caller's own statement timeout (wire `SET statement_timeout`), never above the workspace's. */
  readonly timeoutMs?: number;
  /** Cancels the query (wire CancelRequest, a client that went away): the engine is interrupted. */
  readonly signal?: AbortSignal;
}

export interface Governance {
  readonly policyVersion: string;
  readonly decision: 'allow';
  readonly datasets: readonly string[];
  readonly policies: readonly string[];
  readonly obligationsApplied: readonly string[];
  readonly rowsSuppressed: number;
  readonly truncated: boolean;
  readonly rowCap: number;
  readonly auditId: string;
  /** Present when the result was released with differential privacy. */
  readonly privacy?: PrivacyGovernance;
  /** Present when the request asked to save the result. */
  readonly resultId?: string;
}

export interface QueryResponse {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly CellValue[])[];
  /** Differentially private results only: the 95 % interval of each noisy value (null for keys). */
  readonly intervals?: readonly (readonly ((readonly [number, number]) | null)[])[];
  readonly governance: Governance;
}

export interface QueryEstimate {
  readonly policyVersion: string;
  readonly datasets: readonly string[];
  readonly obligationsApplied: readonly string[];
  /** Null when the query runs without differential privacy (it spends no budget). */
  readonly privacy: (Omit<PrivacyGovernance, 'budget'> & { readonly budget: PrivacyGovernance['budget']; readonly affordable: boolean }) | null;
  readonly auditId: string;
}

export type { DatasetView } from '../model/dataset-view.ts';

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };
