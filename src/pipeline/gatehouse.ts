/**
 * Gatehouse: the façade every face (HTTP, wire, CLI, and the ways in still to come) calls.
 * It holds no logic of its own: each method hands one request to an operation module
 * (src/operations/<family>/), and every operation runs inside the one audited envelope
 * (src/kernel/audited.ts) and, for data, the one executor (src/kernel/execute.ts).
 *
 *   authenticate → context → decide → plan (parse + bind) → enforce (obligation
 *   transformers) → execute (one engine run, output protections) → release → audit → respond
 *
 * Every request leaves exactly one audit entry, allowed, denied or failed (invariant 8), and
 * a request whose entry cannot be written fails (invariant 7). Decisions are made per
 * request against the current policy version and never cached (invariant 6).
 */
import type { GovernanceStore } from '../governance/store.ts';
import type { BudgetLedger } from '../state/budget-ledger.ts';
import type { ResultColumn } from '../engine/engine.ts';
import type { GatehouseError } from '../errors.ts';
import type { LoadedWorkspace } from '../workspace/validate.ts';
import { Runtime, type GatehouseOptions, type RecordObserver } from '../kernel/runtime.ts';
import { wasAudited } from '../kernel/audited.ts';
import type { DatasetView, QueryEstimate, QueryRequest, QueryResponse, RequestMeta } from '../kernel/types.ts';
import { authorizeAuditRead, rejectRequest, type AuditReadGrant } from '../operations/audit/read.ts';
import { ingestDataset, type Ingested, type IngestRequest } from '../operations/datasets/ingest.ts';
import { listDatasets } from '../operations/datasets/list.ts';
import { catalogQuery, describeCatalogQuery, type CatalogAnswer, type CatalogRequest } from '../operations/catalog/query.ts';
import { governanceOp, runScheduledGovernance, setupDemoGovernance } from '../operations/governance/run.ts';
import { recordErasure } from '../operations/governance/erasure.ts';
import { erasedCopiesOf } from '../governance/erasure/copies.ts';
import { erasureRegistry } from '../governance/erasure/registry.ts';
import * as admin from '../operations/identity/admin.ts';
import * as auth from '../operations/identity/auth.ts';
import * as elevation from '../operations/identity/elevation.ts';
import { describe } from '../operations/query/describe.ts';
import { estimate } from '../operations/query/estimate.ts';
import { query } from '../operations/query/query.ts';
import { getResult, listResults } from '../operations/results/results.ts';
import { crossRegion, type CrossRegionStep } from '../operations/residency/cross-region.ts';
import { simulateRequest, type SimulateRequest } from '../operations/policy/simulate-request.ts';
import * as monitoring from '../operations/monitoring/index.ts';
import { addSigner, submitJob } from '../operations/jobs/submit.ts';
import { approveJob, type ApproveBody } from '../operations/jobs/approve.ts';
import { mockJob, publishMock, type MockBody } from '../operations/jobs/mock.ts';
import { runJob, type Progress, type RunBody } from '../operations/jobs/run.ts';
import { jobLogs, jobStatus } from '../operations/jobs/status.ts';
import { attestChallenge, attestRelease } from '../operations/jobs/attest.ts';
import { closeJobs, configureJobs, type JobsConfig } from '../operations/jobs/context.ts';
import { airlockList, airlockRelease, airlockReview, airlockSubmit } from '../operations/airlock/airlock.ts';
import { depositRoomResult } from '../operations/cleanroom/deposit-result.ts';
import type { RoomDelivery } from '../model/room-delivery.ts';
import type { TeeFormat } from '../attestation/types.ts';
import * as fl from '../operations/fl/round.ts';
import { cleanroomMemberRead, type MemberReadRequest } from '../operations/cleanroom/member-read.ts';
import { authorizeCleanroom } from '../operations/cleanroom/authorize.ts';

export type { DatasetView, Governance, QueryEstimate, QueryRequest, QueryResponse, RequestMeta } from '../kernel/types.ts';
export type { GatehouseOptions } from '../kernel/runtime.ts';
export type { AuditDecision } from '../audit/types.ts';
export type { AuditReadGrant } from '../operations/audit/read.ts';
export type { CatalogAnswer, CatalogRequest } from '../operations/catalog/query.ts';
export type { ActivityAnswer } from '../operations/monitoring/activity.ts';

export class Gatehouse {
  readonly #rt: Runtime;

  private constructor(rt: Runtime) {
    this.#rt = rt;
  }

  static async open(options: GatehouseOptions): Promise<Gatehouse> {
    return new Gatehouse(await Runtime.open(options));
  }

  get policyVersion(): string { return this.#rt.state.loaded.workspace.policyVersion; }
  get workspace(): LoadedWorkspace { return this.#rt.state.loaded; }
  /** The contractor-governance records (agreements, grants, vendors, …) this node enforces. */
  get governanceStore(): GovernanceStore { return this.#rt.governance.store; }

  /** Watches every recorded audit entry (monitoring, live activity); returns the function that stops watching. */
  onRecorded(observer: RecordObserver): () => void { return this.#rt.onRecorded(observer); }

  /** Whether the node can serve: its state backend and its audit log, each with a reason when not. */
  readiness(): Promise<{ ready: boolean; parts: Record<string, { ready: boolean; reason: string | null }> }> { return this.#rt.readiness(); }

  /** Re-reads the workspace; on any problem the running version stays in force. */
  reload(): Promise<{ policyVersion: string; changed: boolean }> { return this.#rt.reload(); }
  close(): Promise<void> { return closeJobs(this.#rt).then(() => this.#rt.close()); }

  // Governed SQL and the catalog.
  query(req: QueryRequest): Promise<QueryResponse> { return query(this.#rt, req); }
  estimate(req: QueryRequest): Promise<QueryEstimate> { return estimate(this.#rt, req); }
  simulateRequest(meta: RequestMeta, req: SimulateRequest) { return simulateRequest(this.#rt, meta, req); }
  /** The result columns a query would return (names and types after every protection), without a row. */
  describe(req: QueryRequest): Promise<{ columns: readonly ResultColumn[]; auditId: string }> { return describe(this.#rt, req); }
  datasets(req: RequestMeta & { purpose: string | null }): Promise<{ datasets: DatasetView[]; auditId: string; policyVersion: string }> { return listDatasets(this.#rt, req); }

  /** Stores a file encrypted under a new data key (`gatehouse ingest`). */
  ingestDataset(meta: RequestMeta, req: IngestRequest): Promise<Ingested> { return ingestDataset(this.#rt, meta, req); }

  /** A PostgreSQL client's catalog query, answered from the data-free catalog of what the caller may see. */
  catalogQuery(req: CatalogRequest): Promise<CatalogAnswer> { return catalogQuery(this.#rt, req); }
  describeCatalogQuery(req: Omit<CatalogRequest, 'params' | 'timeoutMs'>) { return describeCatalogQuery(this.#rt, req); }

  /** The step of a query across regions (residency.forward), audited with the shared request id. */
  crossRegion<T>(req: QueryRequest, step: CrossRegionStep<T>): Promise<{ value: T; auditId: string }> { return crossRegion(this.#rt, req, step); }
  /** A clean-room result this node computed, deposited in each receiving member's workspace (issue 23). */
  depositRoomResult(node: string, d: RoomDelivery) { return depositRoomResult(this.#rt, node, d); }

  // Federated learning (issue 19): a participant's release, a coordinator's round, the stored model.
  flRelease<T>(meta: RequestMeta, step: fl.FlReleaseStep<T>) { return fl.flRelease(this.#rt, meta, step); }
  flRound<T>(meta: RequestMeta, job: string, round: number, run: () => Promise<{ value: T; outcome: fl.FlRoundOutcome }>) { return fl.flRound(this.#rt, meta, job, round, run); }
  flStoreModel(meta: RequestMeta, m: fl.FlModelExport) { return fl.flStoreModel(this.#rt, meta, m); }
  flReadModel(meta: RequestMeta, artefactId: string) { return fl.flReadModel(this.#rt, meta, artefactId); }
  flJoin(meta: RequestMeta, req: fl.FlJoinRequest) { return fl.flJoin(this.#rt, meta, req); }
  flControl<T>(meta: RequestMeta, action: fl.FlControlAction, why: string, run: (principal: string) => Promise<T>) { return fl.flControl(this.#rt, meta, action, why, run); }

  // Signing in and out.
  login(meta: RequestMeta, body: { principal: string; password: string; code?: string | null }) { return auth.login(this.#rt, meta, body); }
  enrolTotp(meta: RequestMeta, body: { principal: string; password: string }) { return auth.enrolTotp(this.#rt, meta, body); }
  confirmTotp(meta: RequestMeta, body: { principal: string; password: string; code: string }) { return auth.confirmTotp(this.#rt, meta, body); }
  stepUp(meta: RequestMeta, body: { code: string }) { return auth.stepUp(this.#rt, meta, body); }
  refresh(meta: RequestMeta, body: { refreshToken: string }) { return auth.refresh(this.#rt, meta, body); }
  logout(meta: RequestMeta) { return auth.logout(this.#rt, meta); }
  issueConnectionPassword(meta: RequestMeta, options: { name?: string } = {}) { return auth.issueConnectionPassword(this.#rt, meta, options); }
  listConnectionPasswords(meta: RequestMeta) { return auth.listConnectionPasswords(this.#rt, meta); }
  revokeConnectionPassword(meta: RequestMeta, name: string) { return auth.revokeConnectionPassword(this.#rt, meta, name); }
  connectionVerifier(username: string) { return auth.connectionVerifier(this.#rt, username); }

  // Privileged access.
  requestElevation(meta: RequestMeta, body: { role: string; purpose: string; minutes: number; justification: string }) { return elevation.requestElevation(this.#rt, meta, body); }
  approveElevation(meta: RequestMeta, requestId: string) { return elevation.approveElevation(this.#rt, meta, requestId); }
  denyElevation(meta: RequestMeta, requestId: string, reason: string) { return elevation.denyElevation(this.#rt, meta, requestId, reason); }
  breakGlass(meta: RequestMeta, body: { role: string; justification: string }) { return elevation.breakGlass(this.#rt, meta, body); }
  revokeElevation(meta: RequestMeta, grantId: string) { return elevation.revokeElevation(this.#rt, meta, grantId); }
  listElevations(meta: RequestMeta) { return elevation.listElevations(this.#rt, meta); }

  // Identity administration.
  adminCreateUser(meta: RequestMeta, body: { principal: string; password: string }) { return admin.adminCreateUser(this.#rt, meta, body); }
  adminSetUserEnabled(meta: RequestMeta, principalId: string, enabled: boolean) { return admin.adminSetUserEnabled(this.#rt, meta, principalId, enabled); }
  adminMfaReset(meta: RequestMeta, principalId: string, step: 'request' | 'approve') { return admin.adminMfaReset(this.#rt, meta, principalId, step); }
  adminCreateKey(meta: RequestMeta, body: { principal: string; datasets: string[]; actions?: string[]; expiresAt?: string | null }) { return admin.adminCreateKey(this.#rt, meta, body); }
  adminRevokeKey(meta: RequestMeta, id: string) { return admin.adminRevokeKey(this.#rt, meta, id); }
  adminListKeys(meta: RequestMeta, principalId: string) { return admin.adminListKeys(this.#rt, meta, principalId); }
  createUser(meta: RequestMeta & { admin: string }, principalId: string, password: string) { return admin.createUser(this.#rt, meta, principalId, password); }
  hasUser(principalId: string): Promise<boolean> { return admin.hasUser(this.#rt, principalId); }

  // Saved results.
  getResult(meta: RequestMeta, id: string) { return getResult(this.#rt, meta, id); }
  listResults(meta: RequestMeta) { return listResults(this.#rt, meta); }

  // Code to data: jobs, attestation and key release, the airlock (docs/code-to-data.md).
  configureJobs(config: JobsConfig): void { configureJobs(this.#rt, config); }
  addJobSigner(meta: RequestMeta, body: { keyId: string; org: string; publicKeyPem: string }) { return addSigner(this.#rt, meta, body); }
  submitJob(meta: RequestMeta, bundle: unknown) { return submitJob(this.#rt, meta, bundle); }
  approveJob(meta: RequestMeta, body: ApproveBody) { return approveJob(this.#rt, meta, body); }
  mockJob(meta: RequestMeta, body: MockBody, onProgress?: (p: Progress) => void) { return mockJob(this.#rt, meta, body, onProgress); }
  publishMock(meta: RequestMeta, body: { datasets: readonly string[]; rows?: number; seed?: string }) { return publishMock(this.#rt, meta, body); }
  runJob(meta: RequestMeta, body: RunBody, onProgress?: (p: Progress) => void) { return runJob(this.#rt, meta, body, onProgress); }
  jobStatus(meta: RequestMeta, jobId: string | null) { return jobStatus(this.#rt, meta, jobId); }
  jobLogs(meta: RequestMeta, runId: string) { return jobLogs(this.#rt, meta, runId); }
  attestChallenge(meta: RequestMeta, body: { jobId: string; format: TeeFormat }) { return attestChallenge(this.#rt, meta, body); }
  attestRelease(meta: RequestMeta, body: { challengeId: string; jobId: string; dataset: string; evidence: string }) { return attestRelease(this.#rt, meta, body); }
  airlockSubmit(meta: RequestMeta, body: { runId: string }) { return airlockSubmit(this.#rt, meta, body); }
  airlockReview(meta: RequestMeta, body: { id: string; decision: 'approve' | 'reject'; reason: string }) { return airlockReview(this.#rt, meta, body); }
  airlockRelease(meta: RequestMeta, body: { id: string }) { return airlockRelease(this.#rt, meta, body); }
  airlockList(meta: RequestMeta) { return airlockList(this.#rt, meta); }

  // Clean rooms (docs/cleanrooms.md): a member's read of its own columns as the internal clean-room principal; the admin check of the routes.
  cleanroomRead(req: MemberReadRequest): Promise<QueryResponse> { return cleanroomMemberRead(this.#rt, req); }
  authorizeCleanroom(meta: RequestMeta, route: string) { return authorizeCleanroom(this.#rt, meta, route); }
  /** The node's privacy-budget ledger: a clean room's compute node charges each querying member's DP budget on it. */
  get budgets(): BudgetLedger { return this.#rt.budgets; }

  // Contractor governance.
  governanceOp(meta: RequestMeta, name: string, args: unknown): Promise<unknown> { return governanceOp(this.#rt, meta, name, args); }
  runScheduledGovernance(options: { reportsDir?: string; now?: Date } = {}) { return runScheduledGovernance(this.#rt, options); }
  async setupDemoGovernance(): Promise<number> {
    const { seedDemoGovernance } = await import('../demo/governance.ts');
    return setupDemoGovernance(this.#rt, seedDemoGovernance);
  }

  // Monitoring: the four live questions, alerts, automatic responses (docs/monitoring.md).
  monitoring() { return monitoring.facade(this.#rt); }
  /** Records an erasure or opt-out of one data subject (issue 23); returns the receipt. */
  recordErasure(meta: RequestMeta, body: unknown) { return recordErasure(this.#rt, meta, body); }
  /** Waits until the engine reads copies for the erasures recorded now; returns whom each copied dataset lacks (operators, tests, bench). */
  /** The erasure registry's generation: moves whenever an erasure or opt-out is recorded (clean rooms key what they keep of a table on it). */
  erasureGeneration(): Promise<number> { return erasureRegistry(this.#rt).store.generation(); }
  async settleErasedCopies() { await this.#rt.refreshErasedCopies(); return erasedCopiesOf(this.#rt.state.engines.engines()); }

  // The audit log.
  authorizeAuditRead(meta: RequestMeta, what: 'proofs' | 'entries' | 'own-entries'): Promise<AuditReadGrant> { return authorizeAuditRead(this.#rt, meta, what); }
  rejectRequest(meta: RequestMeta, action: string, error: GatehouseError): Promise<void> { return rejectRequest(this.#rt, meta, action, error); }
  /** Whether a thrown error's request already has its audit entry (a front then records nothing more). */
  wasAudited(err: unknown): boolean { return wasAudited(err); }
}
