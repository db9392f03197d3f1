/**
 * What a running node holds for the one path: the loaded workspace (swapped whole on
 * reload), its engines, the audit sink, the state stores (budgets, identity, governance),
 * parse and bind caches, and the clock. Operation modules receive a Runtime; none of them
 * keeps state of its own.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AuditRecord, AuditSink } from '../audit/types.ts';
import type { StoredAuditEntry } from '../audit/log.ts';
import { openEngines, type EngineRouter } from '../engine/router.ts';
import type { ElevationStore } from '../identity/elevation.ts';
import { TokenBucketLimiter } from '../identity/lockout.ts';
import { IdentityService } from '../identity/service.ts';
import { DifferencingMonitor } from '../privacy/differencing.ts';
import { SqliteDifferencingHistory } from '../privacy/differencing-history.ts';
import { ReleaseAuditor, SqliteReleaseLedger } from '../privacy/release-audit.ts';
import { DatabaseSync } from 'node:sqlite';
import { SensitiveIndexCache } from '../privacy/dlp-release.ts';
import type { BudgetLedger } from '../state/budget-ledger.ts';
import { loadWorkspace, restrictingMerge, WorkspacePartlyApplied, type LoadedWorkspace } from '../workspace/validate.ts';
import { WorkspaceInvalid } from '../model/problems.ts';
import type { PrincipalDef } from '../model/types.ts';
import type { RequestMeta } from './types.ts';
import type { Select } from '../query/ir.ts';
import type { BoundQuery } from '../query/bind.ts';
import { GovernanceRuntime } from './governance-runtime.ts';
import { openEmbeddedState, type StateBackend } from '../state/backend.ts';
import { Admission } from './admission.ts';
import { CatalogCache } from '../engine/catalog-db.ts';
import { internalRead } from './execute.ts';
import { distinctTextQuery } from './internal-queries.ts';
import { reconcileBudgets } from './reconcile-budgets.ts';
import { guardPolicyReload } from '../governance/whatif/reload-guard.ts';
import { closeErasureRegistry, erasureRegistry } from '../governance/erasure/registry.ts';
import { ErasedCopyStore } from '../governance/erasure/copies.ts';

export interface GatehouseOptions {
  readonly workspaceDir: string;
  /**
   * The workspace already loaded from `workspaceDir` (the CLI validates it before creating
   * anything): used instead of loading it a second time, which would compile every Cedar
   * policy again. Reloads read the directory as usual.
   */
  readonly loaded?: LoadedWorkspace;
  readonly audit: AuditSink;
  readonly engineOptions?: { readonly poolSize?: number; readonly threads?: number };
  /** Where Gatehouse keeps its own state (privacy budgets, users, sessions). Default: <workspace>/state. */
  readonly stateDir?: string;
  /** A demo workspace: the published demo passphrase may seal identity secrets. */
  readonly demo?: boolean;
  /** The clock every decision, token and audit entry reads (tests inject one). */
  readonly now?: () => Date;
  /**
   * Where the node keeps its state — privacy budgets, identity, governance, data keys and
   * saved results (src/state/backend.ts): `openPostgresState(...)` to share it between nodes.
   * The caller closes it. Default: the embedded state in the state directory, closed here.
   */
  readonly state?: StateBackend;
  /** Read access to the audit log (flows and compliance reports). */
  readonly auditReader?: { scan(filter: { from?: string; to?: string }): AsyncGenerator<{ leaf: { entry: StoredAuditEntry } }>; pseudonymsOf(principal: string): string[] };
}

/**
 * Refuses an authenticated principal before its operation runs (monitoring's automatic
 * responses: a suspension, a required step-up); throws a GatehouseError to refuse.
 */
export type AccessGate = (principal: string, mfaAt: number | null, action: string) => void;

/** Sees each audit entry once it is recorded. */
/** `meta` is the request's (absent for entries written outside a request): what monitoring reads beyond the entry. */
export type RecordObserver = (entry: AuditRecord, auditId: string, meta?: RequestMeta) => void;

/** One consistent view of the workspace: a request reads it once and uses it throughout. */
export interface WorkspaceState {
  readonly limiters: { readonly perAddress: TokenBucketLimiter | null; readonly perPrincipal: TokenBucketLimiter | null };
  readonly loaded: LoadedWorkspace;
  /** The engines holding the workspace's datasets (embedded DuckDB, PostgreSQL connections). */
  readonly engines: EngineRouter;
  readonly sensitive: SensitiveIndexCache;
  readonly engineKey: string;
  readonly keyIndex: ReadonlyMap<string, PrincipalDef>;
}

const CACHE_LIMIT = 2_000;

function engineKeyOf(l: LoadedWorkspace): string {
  const ws = l.workspace;
  return createHash('sha256').update(JSON.stringify([...ws.datasets.values()])).update(ws.hashKey).update(ws.defaults.memoryLimit).digest('hex');
}

function limitersOf(l: LoadedWorkspace): WorkspaceState['limiters'] {
  const rl = l.workspace.identity?.rateLimits;
  const make = (b: { burst: number; perMinute: number } | null | undefined): TokenBucketLimiter | null => (b ? new TokenBucketLimiter({ burst: b.burst, perMinute: b.perMinute, maxKeys: 100_000 }) : null);
  return { perAddress: make(rl?.perAddress), perPrincipal: make(rl?.perPrincipal) };
}

function indexKeys(l: LoadedWorkspace): Map<string, PrincipalDef> {
  const m = new Map<string, PrincipalDef>();
  for (const p of l.workspace.principals.values()) for (const k of p.apiKeySha256) m.set(k, p);
  return m;
}

/** DLP's index of sensitive catalog values, read through the executor as internal IR queries. */
function sensitiveIndex(l: LoadedWorkspace, engines: EngineRouter): SensitiveIndexCache {
  return new SensitiveIndexCache((dataset, column) => internalRead(engines, distinctTextQuery(l.workspace.datasets.get(dataset)!, column), dataset, INDEX_TIMEOUT_MS));
}

/** The DLP index reads every distinct value of a column once; it may take longer than a query. */
const INDEX_TIMEOUT_MS = 120_000;

/** A bounded map that forgets its oldest entry first. */
export class BoundedCache<V> {
  readonly #m = new Map<string, V>();
  get(k: string): V | undefined { return this.#m.get(k); }
  set(k: string, v: V): void {
    if (this.#m.size >= CACHE_LIMIT) this.#m.delete(this.#m.keys().next().value!);
    this.#m.set(k, v);
  }
  clear(): void { this.#m.clear(); }
}

export class Runtime {
  #state: WorkspaceState;
  readonly options: GatehouseOptions;
  readonly audit: AuditSink;
  readonly budgets: BudgetLedger;
  readonly governance: GovernanceRuntime;
  readonly stateDir: string;
  readonly parseCache = new BoundedCache<Select>();
  readonly bindCache = new BoundedCache<BoundQuery>();
  /**
   * The differencing history and the release-audit ledger (issue 12): persistent in the
   * node's state directory, so neither restarts nor filler queries flush them. Per node: a
   * partner spreading queries over several nodes is checked per node (docs/privacy.md).
   */
  readonly differencing: DifferencingMonitor;
  /** Data-free catalogs of what principals may see (wire clients' pg_catalog), by content. */
  readonly catalogs = new CatalogCache('gatehouse');
  readonly releaseAuditor: ReleaseAuditor;
  readonly #privacyDb: DatabaseSync;
  /** Fair admission of queries to the engines (defaults.concurrency). */
  admission: Admission;
  readonly backend: StateBackend;
  readonly #ownsBackend: boolean;
  /** How many requests hold each engine set (through the WorkspaceState they read). */
  readonly #engineHolds = new Map<EngineRouter, number>();
  /** Engine sets a reload replaced, with their DLP index: closed when the last holder ends. */
  readonly #retired = new Map<EngineRouter, SensitiveIndexCache>();
  readonly #closing = new Set<Promise<void>>();
  #identityOpen: Promise<IdentityService> | null = null;

  private constructor(state: WorkspaceState, options: GatehouseOptions, parts: { backend: StateBackend; ownsBackend: boolean; governance: GovernanceRuntime; stateDir: string }) {
    this.#state = state;
    this.admission = new Admission(state.loaded.workspace.defaults.concurrency ?? {});
    this.options = options;
    this.audit = options.audit;
    this.backend = parts.backend;
    this.#privacyDb = new DatabaseSync(join(parts.stateDir, 'privacy.sqlite'), { timeout: 5000 });
    this.#privacyDb.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
    this.differencing = new DifferencingMonitor({ history: new SqliteDifferencingHistory(this.#privacyDb) });
    this.releaseAuditor = new ReleaseAuditor({ ledger: new SqliteReleaseLedger(this.#privacyDb) });
    this.budgets = parts.backend.budgets;
    this.#ownsBackend = parts.ownsBackend;
    this.governance = parts.governance;
    this.stateDir = parts.stateDir;
  }

  static async open(options: GatehouseOptions): Promise<Runtime> {
    const loaded = options.loaded !== undefined && options.loaded.workspace.dir === resolve(options.workspaceDir) ? options.loaded : await loadWorkspace(options.workspaceDir);
    const stateDir = options.stateDir ?? join(loaded.workspace.dir, 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const backend = options.state ?? await openEmbeddedState({ dir: stateDir, ...(options.now ? { clock: options.now } : {}) });
    let rt: Runtime;
    try {
      const governance = new GovernanceRuntime(stateDir, { demo: options.demo ?? false, state: backend });
      const engines = await openEngines(loaded.workspace, { duckdb: { ...(options.engineOptions ?? {}), dataKeyOf: (d) => governance.datasetKey(d) } });
      const state: WorkspaceState = { limiters: limitersOf(loaded), loaded, engines, sensitive: sensitiveIndex(loaded, engines), engineKey: engineKeyOf(loaded), keyIndex: indexKeys(loaded) };
      rt = new Runtime(state, options, { backend, ownsBackend: options.state === undefined, governance, stateDir });
    } catch (err) {
      if (options.state === undefined) await backend.close();
      throw err;
    }
    rt.#watchErasures();
    // Budget charges a crash left open are settled before the first request (reconcile-budgets.ts).
    try { await reconcileBudgets(rt); } catch (err) { await rt.close().catch(() => {}); throw err; }
    return rt;
  }

  /** The current workspace state; a request reads this once. */
  get state(): WorkspaceState { return this.#state; }

  /**
   * The current workspace state for one request, held until `release()`. A reload that
   * replaces the engines retires the old ones; they close when the last request holding them
   * ends, so a query running during a reload finishes on the engine it started on, and no
   * reload leaves an engine (and its memory: ~110 MB for the demo) open for ever.
   */
  lease(): { readonly state: WorkspaceState; release(): void } {
    const state = this.#state;
    const engines = state.engines;
    this.#engineHolds.set(engines, (this.#engineHolds.get(engines) ?? 0) + 1);
    let released = false;
    return {
      state,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.#engineHolds.get(engines) ?? 1) - 1;
        if (n > 0) { this.#engineHolds.set(engines, n); return; }
        this.#engineHolds.delete(engines);
        if (this.#retired.has(engines)) this.#closeRetired(engines);
      },
    };
  }

  /** Engine sets open now: the current one and retired ones still held by a request (for operators and tests). */
  get openEngineSets(): number { return 1 + this.#retired.size; }

  #retire(engines: EngineRouter, sensitive: SensitiveIndexCache): void {
    this.#retired.set(engines, sensitive);
    if (!this.#engineHolds.has(engines)) this.#closeRetired(engines);
  }

  #closeRetired(engines: EngineRouter): void {
    const sensitive = this.#retired.get(engines);
    this.#retired.delete(engines);
    sensitive?.dispose();
    const closing = engines.close().catch(() => undefined).finally(() => { this.#closing.delete(closing); });
    this.#closing.add(closing);
  }

  now(): Date {
    return (this.options.now ?? (() => new Date()))();
  }

  /**
   * Re-reads the workspace; the next request uses the new version. If the workspace is
   * invalid, the version in force stays except for the changes that only remove access
   * (principals, API keys, datasets, mTLS mappings removed; a complete policy set), which
   * apply at once (`restrictingMerge`); the problems are thrown either way, as
   * WorkspacePartlyApplied when something was applied.
   */
  async reload(): Promise<{ policyVersion: string; changed: boolean }> {
    let loaded: LoadedWorkspace;
    try {
      loaded = await loadWorkspace(this.options.workspaceDir);
    } catch (err) {
      if (!(err instanceof WorkspaceInvalid)) throw err;
      const merged = await restrictingMerge(this.options.workspaceDir, this.#state.loaded, err.problems);
      if (!merged) throw err;
      // Same engines: a removed dataset is unreachable once the catalog lacks it.
      const old = this.#state;
      this.#state = { ...old, loaded: merged.loaded, keyIndex: indexKeys(merged.loaded) };
      this.bindCache.clear();
      throw new WorkspacePartlyApplied(err.problems, merged.applied);
    }
    const old = this.#state;
    if (loaded.workspace.policyVersion === old.loaded.workspace.policyVersion) return { policyVersion: old.loaded.workspace.policyVersion, changed: false };
    guardPolicyReload(old.loaded, loaded, { at: this.now() }); // a new regulated column unmasked needs a second admin's signed acknowledgement
    const key = engineKeyOf(loaded);
    let engines = old.engines;
    let sensitive = old.sensitive;
    if (key !== old.engineKey) {
      const fresh = await openEngines(loaded.workspace, { duckdb: { ...(this.options.engineOptions ?? {}), dataKeyOf: (d) => this.governance.datasetKey(d), erasedCopies: this.erasedCopies.currentFor(loaded.workspace) } });
      engines = fresh;
      sensitive = sensitiveIndex(loaded, fresh);
    }
    this.#state = { limiters: limitersOf(loaded), loaded, engines, sensitive, engineKey: key, keyIndex: indexKeys(loaded) };
    if (engines !== old.engines) this.#retire(old.engines, old.sensitive);
    if (JSON.stringify(loaded.workspace.defaults.concurrency) !== JSON.stringify(old.loaded.workspace.defaults.concurrency)) {
      // Queries admitted under the old limits release their slots into the old admission.
      this.admission = new Admission(loaded.workspace.defaults.concurrency ?? {});
    }
    this.bindCache.clear();
    if (key !== old.engineKey) void this.refreshErasedCopies(); // datasets changed: their copies too
    return { policyVersion: loaded.workspace.policyVersion, changed: true };
  }

  // ── Erased copies (issue 23, src/governance/erasure/copies.ts) ──────────────────────────
  /** Copies of file datasets without fully erased subjects' rows, read by the DuckDB engine. */
  get erasedCopies(): ErasedCopyStore { return this.#copies ??= new ErasedCopyStore(this.stateDir); }
  #copies: ErasedCopyStore | null = null;
  #copyRefresh: Promise<void> | null = null;
  #copyAgain = false;
  #stopWatching: (() => void) | null = null;

  #watchErasures(): void {
    this.#stopWatching = erasureRegistry(this).onChange(() => { void this.refreshErasedCopies(); });
    void this.refreshErasedCopies();
  }

  /**
   * Rebuilds the copies for the erasures recorded now and, when they changed, swaps in a
   * DuckDB engine over them as a reload does (old engines close when their last request
   * ends). Until it is swapped in, requests filter the new subjects per row (erasureOver),
   * so an erasure holds from the very next request. Failures leave the per-row filter.
   */
  refreshErasedCopies(): Promise<void> {
    if (this.#copyRefresh) { this.#copyAgain = true; return this.#copyRefresh; }
    this.#copyRefresh = (async () => {
      try {
        do {
          this.#copyAgain = false;
          const loaded = this.#state.loaded;
          const copies = await this.erasedCopies.update(loaded.workspace, await erasureRegistry(this).rows());
          if (copies === null || this.#closed) continue;
          const fresh = await openEngines(loaded.workspace, { duckdb: { ...(this.options.engineOptions ?? {}), dataKeyOf: (d) => this.governance.datasetKey(d), erasedCopies: copies } });
          const old = this.#state;
          if (old.loaded !== loaded || this.#closed) { await fresh.close(); this.#copyAgain = !this.#closed; continue; }
          this.#state = { ...old, engines: fresh, sensitive: sensitiveIndex(loaded, fresh) };
          this.#retire(old.engines, old.sensitive);
        } while (this.#copyAgain);
      } catch { /* the per-row filter stays in force */ } finally {
        this.#copyRefresh = null;
      }
    })();
    return this.#copyRefresh;
  }

  #closed = false;

  async close(): Promise<void> {
    this.#closed = true;
    this.#stopWatching?.();
    await this.#copyRefresh;
    this.#state.sensitive.dispose();
    // Shutdown drains requests first; whatever is still retired closes now.
    for (const e of [...this.#retired.keys()]) this.#closeRetired(e);
    await Promise.all([...this.#closing]);
    await this.#state.engines.close();
    await this.governance.close();
    if (this.#identityOpen) await (await this.#identityOpen.catch(() => null))?.close();
    await closeErasureRegistry(this);
    this.#copies?.close();
    if (this.#ownsBackend) await this.backend.close();
    try { this.#privacyDb.close(); } catch { /* closed */ }
    await this.catalogs.close();
  }

  /** Users and sessions open on first use, so deployments without them need no key passphrase. */
  identity(): Promise<IdentityService> {
    this.#identityOpen ??= IdentityService.open({
      stateDir: this.stateDir, demo: this.options.demo ?? false,
      sessionTtlSec: (this.#state.loaded.workspace.identity?.sessionTtlMinutes ?? 15) * 60,
      ...(this.backend.identity ? { storage: this.backend.identity } : {}),
    });
    this.#identityOpen.catch(() => { this.#identityOpen = null; });
    return this.#identityOpen;
  }

  async elevations(): Promise<ElevationStore> {
    return (await this.identity()).elevation(() => {
      const ws = this.#state.loaded.workspace;
      const roles = ws.identity?.elevationRoles ?? {};
      return {
        roles: Object.keys(roles),
        maxMinutes: 10080,
        isApprover: (approverId, role) => {
          const a = ws.principals.get(approverId);
          return !!a && !!roles[role] && a.groups.some((g) => roles[role]!.approvers.includes(g));
        },
        canBreakGlass: (_p, role) => roles[role]?.breakGlass === true,
      };
    });
  }

  readonly #observers = new Set<RecordObserver>();

  /**
   * Watches every recorded audit entry (monitoring, live activity). Observers run after the
   * entry is durable, synchronously and must be cheap; one that throws is isolated.
   * Returns the function that stops watching.
   */
  onRecorded(observer: RecordObserver): () => void {
    this.#observers.add(observer);
    return () => { this.#observers.delete(observer); };
  }

  readonly #gates = new Set<AccessGate>();

  /** Adds a check every authenticated request passes (src/kernel/audited.ts); returns the function that removes it. */
  gate(gate: AccessGate): () => void {
    this.#gates.add(gate);
    return () => { this.#gates.delete(gate); };
  }

  checkGates(principal: string, mfaAt: number | null, action: string): void {
    for (const g of this.#gates) g(principal, mfaAt, action);
  }

  readonly #timings = new Set<(stage: string, seconds: number) => void>();

  /** Watches how long each stage of a request took (metrics); returns the function that stops watching. */
  onTiming(observer: (stage: string, seconds: number) => void): () => void {
    this.#timings.add(observer);
    return () => { this.#timings.delete(observer); };
  }

  timing(stage: string, startedAt: number): void {
    if (this.#timings.size === 0) return;
    const seconds = (performance.now() - startedAt) / 1000;
    for (const t of this.#timings) { try { t(stage, seconds); } catch { /* metrics never fail a request */ } }
  }

  observe(entry: AuditRecord, auditId: string, meta?: RequestMeta): void {
    for (const o of this.#observers) {
      try { o(entry, auditId, meta); } catch { /* an observer never fails a request that is already recorded */ }
    }
  }

  /** Readiness of what every request needs: the state backend and the audit log (when it reports health). */
  async readiness(): Promise<{ ready: boolean; parts: Record<string, { ready: boolean; reason: string | null }> }> {
    const parts: Record<string, { ready: boolean; reason: string | null }> = {};
    parts.state = await this.backend.health().catch((err: unknown) => ({ ready: false, reason: (err as Error)?.message ?? 'health check failed' }));
    const audit = this.audit as { health?: () => { ready: boolean; reason: string | null } | Promise<{ ready: boolean; reason: string | null }> };
    if (typeof audit.health === 'function') parts.audit = await Promise.resolve(audit.health()).catch((err: unknown) => ({ ready: false, reason: (err as Error)?.message ?? 'health check failed' }));
    return { ready: Object.values(parts).every((p) => p.ready), parts };
  }

  /** Members of identity.adminGroups (default `admins`). */
  adminGroups(): readonly string[] {
    return this.#state.loaded.workspace.identity?.adminGroups ?? ['admins'];
  }

  isAdmin(p: PrincipalDef): boolean {
    const admins = this.adminGroups();
    return p.groups.some((g) => admins.includes(g));
  }
}
