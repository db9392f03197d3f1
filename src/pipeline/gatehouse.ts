/**
 * The one request path. Every interface (HTTP, CLI, and later the wire protocol, clean
 * rooms, jobs) calls these methods; nothing else reaches the policy engine, an engine or
 * the audit log.
 *
 *   authenticate → context → decide → plan (parse + bind) → enforce (obligation
 *   transformers) → execute (rendered SQL) → release → audit → respond
 *
 * Every request leaves exactly one audit entry, allowed, denied or failed (invariant 8),
 * and a request whose entry cannot be written fails (invariant 7). Decisions are made per
 * request against the current policy version and never cached (invariant 6).
 */
import { timingSafeEqual } from 'node:crypto';
import type { AuditDecision, AuditRecord, AuditSink } from '../audit/types.ts';
import { openEngines, type EngineRouter } from '../engine/router.ts';
import type { CellValue, Engine, ResultColumn } from '../engine/engine.ts';
import { asGatehouseError, GatehouseError } from '../errors.ts';
import type { Decision, RequestContext } from '../policy/engine.ts';
import { bindQuery, referencedDatasets, type BoundQuery } from '../query/bind.ts';
import type { Select } from '../query/ir.ts';
import { govern, type GovernedQuery } from '../query/govern/index.ts';
import { describeMask } from '../query/govern/mask.ts';
import { parseSql } from '../query/parse.ts';
import { quoteIdent, renderSelect } from '../query/render/sql.ts';
import { CLASSIFICATIONS, type AttributeValue, type DatasetDef, type DifferentialPrivacyDef, type ObligationDef, type PrincipalDef } from '../workspace/types.ts';
import type { OidcVerifier } from '../identity/oidc.ts';
import { loadWorkspace, type LoadedWorkspace } from '../workspace/validate.ts';
import { apiKeyDigest, resultDigest, sqlFingerprint } from './digest.ts';
import { IdentityService, looksLikeJwt } from '../identity/service.ts';
import type { IdentitySql } from '../identity/sql.ts';
import { IdentityError } from '../identity/password.ts';
import { ElevationError, type ElevationStore } from '../identity/elevation.ts';
import { evaluatePosture, postureContext } from '../identity/posture.ts';
import { scopesPermit, type ApiKeyScopes } from '../identity/api-keys.ts';
import { TokenBucketLimiter } from '../identity/lockout.ts';
import { MTLS_CREDENTIAL_PREFIX } from '../identity/mtls.ts';
import { CONNECTION_CREDENTIAL_PREFIX, type ScramVerifier } from '../identity/connection-passwords.ts';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BudgetStore, type ChargeAccepted } from '../privacy/accounting/budget-store.ts';
import type { BudgetLedger } from '../state/budget-ledger.ts';
import { budgetAuditReasons, describeDenial } from '../privacy/accounting/describe.ts';
import { rhoForEpsilonDelta } from '../privacy/accounting/zcdp.ts';
import { protectRelease } from '../privacy/disclosure.ts';
import { DifferencingMonitor, type DifferencingProbe } from '../privacy/differencing.ts';
import { applyDlp, indexedColumns, mergeDlp, SensitiveIndexCache } from '../privacy/dlp-release.ts';
import { describeNoise, planNoise, release, spentEpsilon, type NoisePlan, type PrivacyGovernance } from '../privacy/release.ts';
import type { DpReleasePlan } from '../query/govern/index.ts';
import { GovernanceRuntime } from './governance-runtime.ts';
import { governanceOp as findGovernanceOp, type AuditReader, type OpContext } from '../governance/service.ts';
import { GovernanceError } from '../governance/types.ts';
import type { GateResult } from '../governance/gate.ts';
import type { StoredAuditEntry } from '../audit/log.ts';

export interface RequestMeta {
  /** The caller's credential (an API key or session token), exactly as presented; null if none was. */
  readonly credential: string | null;
  /** A signed device-posture token (header `Gatehouse-Posture`), when the client sends one. */
  readonly posture?: string | null;
  readonly source: string;
  readonly channel: string;
}

export interface QueryRequest extends RequestMeta {
  readonly sql: string;
  readonly purpose: string;
  /** Keep the released result as an encrypted artefact (GET /v1/results/:id); destroyed with its agreement. */
  readonly save?: boolean;
  /** Text values of $1..$n (PostgreSQL wire protocol Bind); absent elsewhere, where $n is refused. */
  readonly params?: readonly (string | null)[];
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

export interface DatasetView {
  readonly name: string;
  readonly description: string | null;
  readonly classification: string;
  readonly region: string | null;
  readonly purposes: readonly string[];
  readonly privacyUnit: string | null;
  readonly rowFilter: boolean;
  readonly aggregationOnly: { readonly minGroupSize: number } | null;
  readonly rowCap: number;
  readonly columns: readonly {
    readonly name: string; readonly type: string; readonly classification: string; readonly tags: readonly string[];
    readonly masked: string | null; readonly joinOnly: boolean; readonly description: string | null;
  }[];
}

export interface GatehouseOptions {
  readonly workspaceDir: string;
  readonly audit: AuditSink;
  readonly engineOptions?: { readonly poolSize?: number; readonly threads?: number };
  /** Where Gatehouse keeps its own state (privacy budgets, users, sessions). Default: <workspace>/state. */
  readonly stateDir?: string;
  /** A demo workspace: the published demo passphrase may seal identity secrets. */
  readonly demo?: boolean;
  readonly now?: () => Date;
  /**
   * Privacy budgets kept elsewhere — PostgreSQL shared by several nodes (src/state/postgres.ts).
   * The caller closes it. Default: node:sqlite in the state directory.
   */
  readonly budgets?: BudgetLedger;
  /**
   * Identity state kept elsewhere — PostgreSQL shared by several nodes
   * (`(await openPostgresIdentity(state)).storage`, src/state/identity.ts): users, sessions,
   * session signing keys, API keys, connection passwords, elevations. The caller closes it.
   * Default: node:sqlite files in the state directory.
   */
  readonly identityStorage?: IdentitySql;
  /**
   * Contractor governance, data keys and saved results in PostgreSQL (several nodes share
   * them; src/state/governance-pg.ts). Every node needs the same keyring.json and passphrase.
   */
  readonly governanceState?: Pick<import('../state/postgres.ts').PostgresState, 'pool' | 'schema'>;
  /** Read access to the audit log (flows and compliance reports); the log itself when it is a TransparencyLog. */
  readonly auditReader?: { scan(filter: { from?: string; to?: string }): AsyncGenerator<{ leaf: { entry: StoredAuditEntry } }>; pseudonymsOf(principal: string): string[] };
}

interface State {
  readonly limiters: { readonly perAddress: TokenBucketLimiter | null; readonly perPrincipal: TokenBucketLimiter | null };
  readonly loaded: LoadedWorkspace;
  /** The engines holding the workspace's datasets (embedded DuckDB, PostgreSQL connections). */
  readonly engines: EngineRouter;
  readonly sensitive: SensitiveIndexCache;
  readonly engineKey: string;
  readonly keyIndex: ReadonlyMap<string, PrincipalDef>;
}

const PURPOSE = /^[a-z][a-z0-9_.-]{0,63}$/;
/** The principal the governance scheduler acts as (retention, close-out, daily reports). */
const SCHEDULER: PrincipalDef = { id: 'gatehouse-scheduler', kind: 'service', displayName: 'Gatehouse scheduler', groups: [], attributes: {}, apiKeySha256: [] };
/** Lifetime of a connection password for the PostgreSQL wire protocol. */
const CONNECTION_PASSWORD_HOURS = 8;
const BIND_CACHE_LIMIT = 2_000;

function engineKeyOf(l: LoadedWorkspace): string {
  const ws = l.workspace;
  return createHash('sha256').update(JSON.stringify([...ws.datasets.values()])).update(ws.hashKey).update(ws.defaults.memoryLimit).digest('hex');
}

function limitersOf(l: LoadedWorkspace): State['limiters'] {
  const rl = l.workspace.identity?.rateLimits;
  const make = (b: { burst: number; perMinute: number } | null | undefined): TokenBucketLimiter | null => (b ? new TokenBucketLimiter({ burst: b.burst, perMinute: b.perMinute, maxKeys: 100_000 }) : null);
  return { perAddress: make(rl?.perAddress), perPrincipal: make(rl?.perPrincipal) };
}

/** Store-issued service keys: "gh_" and 32 random bytes, base64url. */
const STORE_KEY = /^gh_[A-Za-z0-9_-]{43}$/;

function indexKeys(l: LoadedWorkspace): Map<string, PrincipalDef> {
  const m = new Map<string, PrincipalDef>();
  for (const p of l.workspace.principals.values()) for (const k of p.apiKeySha256) m.set(k, p);
  return m;
}

export class Gatehouse {
  #state: State;
  readonly #audit: AuditSink;
  readonly #options: GatehouseOptions;
  readonly #bindCache = new Map<string, BoundQuery>();
  readonly #parseCache = new Map<string, Select>();
  #retiredEngines: EngineRouter[] = [];
  #budgets!: BudgetLedger;
  #ownsBudgets = true;
  #stateDir!: string;
  #identityOpen: Promise<IdentityService> | null = null;
  #governance!: GovernanceRuntime;

  /** Users and sessions open on first use, so deployments without them need no key passphrase. */
  #ids(): Promise<IdentityService> {
    this.#identityOpen ??= IdentityService.open({
      stateDir: this.#stateDir, demo: this.#options.demo ?? false,
      sessionTtlSec: (this.#state.loaded.workspace.identity?.sessionTtlMinutes ?? 15) * 60,
      ...(this.#options.identityStorage ? { storage: this.#options.identityStorage } : {}),
    });
    this.#identityOpen.catch(() => { this.#identityOpen = null; });
    return this.#identityOpen;
  }
  readonly #differencing = new DifferencingMonitor();

  private constructor(state: State, options: GatehouseOptions) {
    this.#state = state;
    this.#audit = options.audit;
    this.#options = options;
  }

  static async open(options: GatehouseOptions): Promise<Gatehouse> {
    const loaded = await loadWorkspace(options.workspaceDir);
    const stateDir = options.stateDir ?? join(loaded.workspace.dir, 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const budgets: BudgetLedger = options.budgets ?? await BudgetStore.open(join(stateDir, 'budgets.sqlite'));
    try {
      const governance = new GovernanceRuntime(stateDir, { demo: options.demo ?? false, ...(options.governanceState ? { postgres: options.governanceState } : {}) });
      const engines = await openEngines(loaded.workspace, { duckdb: { ...(options.engineOptions ?? {}), dataKeyOf: (d) => governance.datasetKey(d) } });
      const gh = new Gatehouse({ limiters: limitersOf(loaded), loaded, engines, sensitive: new SensitiveIndexCache((d) => engines.engineOf(d)), engineKey: engineKeyOf(loaded), keyIndex: indexKeys(loaded) }, options);
      gh.#budgets = budgets;
      gh.#ownsBudgets = options.budgets === undefined;
      gh.#stateDir = stateDir;
      gh.#governance = governance;
      return gh;
    } catch (err) {
      await budgets.close();
      throw err;
    }
  }

  /** The contractor-governance records (agreements, grants, vendors, …) this node enforces. */
  get governanceStore(): import('../governance/store.ts').GovernanceStore { return this.#governance.store; }

  get policyVersion(): string { return this.#state.loaded.workspace.policyVersion; }
  get workspace(): LoadedWorkspace { return this.#state.loaded; }

  /**
   * Re-reads the workspace. On any problem the running version stays in force and the
   * problems are thrown (nothing half-applied). The next request uses the new version.
   */
  async reload(): Promise<{ policyVersion: string; changed: boolean }> {
    const loaded = await loadWorkspace(this.#options.workspaceDir);
    const old = this.#state;
    if (loaded.workspace.policyVersion === old.loaded.workspace.policyVersion) return { policyVersion: old.loaded.workspace.policyVersion, changed: false };
    const key = engineKeyOf(loaded);
    let engines = old.engines;
    let sensitive = old.sensitive;
    if (key !== old.engineKey) {
      const fresh = await openEngines(loaded.workspace, { duckdb: { ...(this.#options.engineOptions ?? {}), dataKeyOf: (d) => this.#governance.datasetKey(d) } });
      engines = fresh;
      sensitive = new SensitiveIndexCache((d) => fresh.engineOf(d));
      this.#retiredEngines.push(old.engines);
      old.sensitive.dispose();
    }
    this.#state = { limiters: limitersOf(loaded), loaded, engines, sensitive, engineKey: key, keyIndex: indexKeys(loaded) };
    this.#bindCache.clear();
    return { policyVersion: loaded.workspace.policyVersion, changed: true };
  }

  async close(): Promise<void> {
    this.#state.sensitive.dispose();
    for (const e of [this.#state.engines, ...this.#retiredEngines]) await e.close();
    this.#retiredEngines = [];
    if (this.#ownsBudgets) await this.#budgets.close();
    await this.#governance.close();
    if (this.#identityOpen) await (await this.#identityOpen.catch(() => null))?.close();
  }

  /**
   * Authentication. A session token (built-in users: password + TOTP) or an API key from
   * the workspace (matched by its SHA-256 digest) yields the principal. Members of the
   * workspace's `identity.mfa.requiredForGroups` reach nothing without an MFA session.
   * Re-evaluated on every request: a revoked session, key or disabled user fails at once.
   */
  async #authenticate(state: State, credential: string | null): Promise<PrincipalDef> {
    return (await this.#authenticateFull(state, credential)).principal;
  }

  async #authenticateFull(state: State, credential: string | null, source = ''): Promise<{ principal: PrincipalDef; mfaAt: number | null; scopes?: ApiKeyScopes }> {
    this.#limit(state, 'perAddress', source);
    const r = await this.#authenticateCredential(state, credential);
    this.#limit(state, 'perPrincipal', r.principal.id);
    return r;
  }

  /** Token buckets per source address and per principal (identity.rateLimits), on every request. */
  #limit(state: State, kind: 'perAddress' | 'perPrincipal', key: string): void {
    const limiter = state.limiters[kind];
    if (!limiter || key === '') return;
    const d = limiter.take(key);
    if (!d.allowed) throw new GatehouseError('RATE_LIMITED', `too many requests; retry in ${Math.ceil(d.retryAfterMs / 1000)} s`, { hint: 'slow down; the limits are per source address and per principal' });
  }

  async #authenticateCredential(state: State, credential: string | null): Promise<{ principal: PrincipalDef; mfaAt: number | null; scopes?: ApiKeyScopes }> {
    if (credential === null || credential.length === 0) {
      throw new GatehouseError('AUTH_REQUIRED', 'authentication required', { hint: 'send your API key or session token as "Authorization: Bearer <credential>"' });
    }
    if (credential.length > 4096) throw new GatehouseError('AUTH_INVALID', 'the credential is not valid');
    const ws = state.loaded.workspace;
    if (looksLikeJwt(credential)) {
      const oidc = state.loaded.oidc.get(unverifiedIssuer(credential) ?? '');
      if (oidc) return this.#oidcPrincipal(state, oidc, credential);
      let who;
      try {
        who = await (await this.#ids()).verify(credential);
      } catch (err) {
        throw identityError(err, 'the session token is not valid');
      }
      const p = ws.principals.get(who.principalId);
      if (!p) throw new GatehouseError('AUTH_INVALID', 'the session belongs to no principal of this workspace', { hint: 'sign in again' });
      if (this.#mfaRequired(state, p) && !who.amr.includes('otp')) throw mfaRequired(p.id);
      return { principal: await this.#withElevations(state, p), mfaAt: who.amr.includes('otp') ? who.mfaAt : null };
    }
    if (credential.startsWith(CONNECTION_CREDENTIAL_PREFIX)) {
      // Set by the wire front after SCRAM with a connection password (never from a client).
      let c;
      try { c = await (await this.#ids()).connectionPasswords.resolve(credential.slice(CONNECTION_CREDENTIAL_PREFIX.length)); } catch (err) { throw identityError(err, 'the connection password is no longer valid'); }
      const p = ws.principals.get(c.principalId);
      if (!p) throw new GatehouseError('AUTH_INVALID', 'the connection belongs to no principal of this workspace');
      if (this.#mfaRequired(state, p) && c.mfaAt === null) throw mfaRequired(p.id);
      return { principal: await this.#withElevations(state, p), mfaAt: c.mfaAt };
    }
    if (credential.startsWith(MTLS_CREDENTIAL_PREFIX)) {
      // Set by the server from a client certificate verified by the TLS layer (never from a header).
      const pid = ws.identity?.mtlsPrincipals[credential.slice(MTLS_CREDENTIAL_PREFIX.length)];
      const svc = pid ? ws.principals.get(pid) : undefined;
      if (!svc) throw new GatehouseError('AUTH_INVALID', 'the client certificate maps to no principal', { hint: 'an administrator maps certificate subjects in identity.mtls.principals' });
      if (this.#mfaRequired(state, svc)) throw mfaRequired(svc.id);
      return { principal: await this.#withElevations(state, svc), mfaAt: null };
    }
    const digest = apiKeyDigest(credential);
    const p = state.keyIndex.get(digest);
    // The map lookup is by digest of a high-entropy key; compare once more in constant time.
    if (p && p.apiKeySha256.some((k) => timingSafeEqual(Buffer.from(k, 'hex'), Buffer.from(digest, 'hex')))) {
      if (this.#mfaRequired(state, p)) throw mfaRequired(p.id);
      return { principal: await this.#withElevations(state, p), mfaAt: null };
    }
    if (STORE_KEY.test(credential)) {
      // A service key issued by an administrator: scoped, expiring, revocable.
      let v;
      try { v = await (await this.#ids()).apiKeys.verify(credential); } catch (err) { throw identityError(err, 'the credential is not valid'); }
      const owner = ws.principals.get(v.principalId);
      if (!owner) throw new GatehouseError('AUTH_INVALID', 'the key belongs to no principal of this workspace');
      if (this.#mfaRequired(state, owner)) throw mfaRequired(owner.id);
      return { principal: await this.#withElevations(state, owner), mfaAt: null, scopes: v.scopes };
    }
    throw new GatehouseError('AUTH_INVALID', 'the credential is not valid', { hint: 'check the API key; revoked keys stop working at once' });
  }

  /** Active privileged-role grants join the principal to Cedar group `elevated:<role>`. */
  async #withElevations(state: State, p: PrincipalDef): Promise<PrincipalDef> {
    if (Object.keys(state.loaded.workspace.identity?.elevationRoles ?? {}).length === 0) return p;
    const active = await (await this.#elevations()).activeElevations(p.id);
    return active.length === 0 ? p : { ...p, groups: [...p.groups, ...active.map((g) => `elevated:${g.role}`)] };
  }

  async #elevations(): Promise<ElevationStore> {
    return (await this.#ids()).elevation(() => {
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

  #role(role: unknown): { name: string; maxMinutes: number } {
    const roles = this.#state.loaded.workspace.identity?.elevationRoles ?? {};
    if (typeof role !== 'string' || !roles[role]) {
      throw new GatehouseError('REQUEST_INVALID', `there is no privileged role "${String(role)}"`, { hint: `roles: ${Object.keys(roles).join(', ') || '(none configured)'}` });
    }
    return { name: role, maxMinutes: roles[role]!.maxMinutes };
  }

  /** POST /v1/elevation/requests: ask for a privileged role for a purpose and a time window. */
  requestElevation(meta: RequestMeta, body: { role: string; purpose: string; minutes: number; justification: string }) {
    return this.#identityOp(meta, 'elevation.request', null, async (entry) => {
      const who = await this.#authenticate(this.#state, meta.credential);
      entry.principal = who.id;
      const role = this.#role(body.role);
      if (!Number.isInteger(body.minutes) || body.minutes < 1 || body.minutes > role.maxMinutes) {
        throw new GatehouseError('REQUEST_INVALID', `"${role.name}" may be granted for 1 to ${role.maxMinutes} minutes`);
      }
      try {
        const r = await (await this.#elevations()).request({ principalId: who.id, role: role.name, purpose: body.purpose, durationMinutes: body.minutes, justification: body.justification });
        entry.reasons = [`elevation requested: ${role.name} for ${body.minutes} min, purpose ${body.purpose}`];
        return { requestId: r.request.id, status: r.request.status };
      } catch (err) { throw identityError(err, 'the elevation request was refused'); }
    });
  }

  /** POST /v1/elevation/requests/:id/approve — by an approver of the role, never the requester. */
  approveElevation(meta: RequestMeta, requestId: string) {
    return this.#identityOp(meta, 'elevation.approve', null, async (entry) => {
      const who = await this.#authenticate(this.#state, meta.credential);
      entry.principal = who.id;
      try {
        const g = await (await this.#elevations()).approve(requestId, who.id);
        entry.reasons = [`elevation approved: ${g.grant.role} for ${g.grant.principalId} until ${g.grant.expiresAt}`];
        return { grantId: g.grant.id, principal: g.grant.principalId, role: g.grant.role, expiresAt: g.grant.expiresAt };
      } catch (err) { throw identityError(err, 'the approval was refused'); }
    });
  }

  /** POST /v1/elevation/requests/:id/deny */
  denyElevation(meta: RequestMeta, requestId: string, reason: string) {
    return this.#identityOp(meta, 'elevation.deny', null, async (entry) => {
      const who = await this.#authenticate(this.#state, meta.credential);
      entry.principal = who.id;
      try {
        await (await this.#elevations()).deny(requestId, who.id, reason);
        return { denied: true };
      } catch (err) { throw identityError(err, 'the denial was refused'); }
    });
  }

  /** POST /v1/elevation/break-glass: immediate, time-boxed, needs a written justification, raises an alert. */
  breakGlass(meta: RequestMeta, body: { role: string; justification: string }) {
    return this.#identityOp(meta, 'elevation.break-glass', null, async (entry) => {
      const who = await this.#authenticate(this.#state, meta.credential);
      entry.principal = who.id;
      const role = this.#role(body.role);
      try {
        const g = await (await this.#elevations()).breakGlass({ principalId: who.id, role: role.name, justification: body.justification });
        entry.reasons = [`alert: break-glass into ${role.name} until ${g.grant.expiresAt}`];
        return { grantId: g.grant.id, role: g.grant.role, expiresAt: g.grant.expiresAt, alert: true };
      } catch (err) {
        entry.reasons = [`alert: refused break-glass into ${role.name}`];
        throw identityError(err, 'break-glass was refused');
      }
    });
  }

  /** POST /v1/elevation/grants/:id/revoke — by an approver of the role or the holder; effective at once. */
  revokeElevation(meta: RequestMeta, grantId: string) {
    return this.#identityOp(meta, 'elevation.revoke', null, async (entry) => {
      const who = await this.#authenticate(this.#state, meta.credential);
      entry.principal = who.id;
      const store = await this.#elevations();
      const grant = await store.getGrant(grantId);
      if (!grant) throw new GatehouseError('NOT_FOUND', 'no such grant');
      const roles = this.#state.loaded.workspace.identity?.elevationRoles ?? {};
      const approver = who.groups.some((g) => roles[grant.role]?.approvers.includes(g));
      if (grant.principalId !== who.id && !approver) throw new GatehouseError('POLICY_DENIED', 'only the holder or an approver of the role may revoke a grant');
      try { await store.revoke(grantId, who.id); } catch (err) { throw identityError(err, 'the grant could not be revoked'); }
      entry.reasons = [`elevation ${grant.role} of ${grant.principalId} revoked`];
      return { revoked: grantId };
    });
  }

  /** GET /v1/elevation: the caller's active grants and the requests waiting for approval. */
  listElevations(meta: RequestMeta) {
    return this.#identityOp(meta, 'elevation.list', null, async (entry) => {
      const who = await this.#authenticate(this.#state, meta.credential);
      entry.principal = who.id;
      const store = await this.#elevations();
      return {
        active: (await store.activeElevations(who.id)).map((g) => ({ grantId: g.id, role: g.role, purpose: g.purpose, expiresAt: g.expiresAt, breakGlass: g.breakGlass })),
        pending: (await store.pendingRequests()).map((r) => ({ requestId: r.id, principal: r.principalId, role: r.role, purpose: r.purpose, minutes: r.durationMinutes, requestedAt: r.requestedAt })),
      };
    });
  }

  /**
   * A token from an external OpenID Connect provider: verified against its JWKS (issuer,
   * audience, expiry, algorithm allowlist); the principal is the workspace's if it exists,
   * else one built from the mapped claims (org, groups, clearance, region, ...).
   */
  async #oidcPrincipal(state: State, verifier: OidcVerifier, token: string): Promise<{ principal: PrincipalDef; mfaAt: number | null }> {
    let who;
    try {
      who = await verifier.verify(token);
    } catch (err) {
      throw identityError(err, 'the identity token is not valid');
    }
    const known = state.loaded.workspace.principals.get(who.principalId);
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(who.attributes)) {
      if (k === 'groups') continue;
      if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v))) attributes[k] = v;
      else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) attributes[k] = v as string[];
    }
    const p: PrincipalDef = known ?? { id: who.principalId, kind: 'user', displayName: null, groups: [...who.attributes.groups], attributes, apiKeySha256: [] };
    const mfa = who.amr.some((m) => m === 'mfa' || m === 'otp' || m === 'hwk' || m === 'swk');
    if (this.#mfaRequired(state, p) && !mfa) throw mfaRequired(p.id);
    return { principal: await this.#withElevations(state, p), mfaAt: mfa ? (who.authTime ?? Math.floor(Date.now() / 1000)) : null };
  }

  #mfaRequired(state: State, p: PrincipalDef): boolean {
    const groups = state.loaded.workspace.identity?.mfaRequiredForGroups ?? [];
    return p.groups.some((g) => groups.includes(g));
  }

  /** Audited identity operations: the entry names the principal claimed, never a secret. */
  async #identityOp<T>(meta: RequestMeta, action: string, principalId: string | null, op: (entry: Mutable<AuditRecord>) => Promise<T>): Promise<T> {
    const entry = this.#baseEntry(meta, action);
    entry.principal = principalId;
    let out: T;
    try {
      out = await op(entry);
      entry.decision = 'allow';
    } catch (err) {
      const e = err instanceof GatehouseError ? err : identityError(err, 'the request was refused');
      entry.decision = e.code === 'INTERNAL' ? 'error' : 'deny';
      entry.errorCode = e.code;
      entry.reasons = [...entry.reasons, e.message];
      await this.#record(entry);
      throw e;
    }
    await this.#record(entry);
    return out;
  }

  #knownPrincipal(principalId: unknown): string {
    if (typeof principalId !== 'string' || !this.#state.loaded.workspace.principals.has(principalId)) {
      // Same answer as a wrong password: which principals exist is not disclosed.
      throw new GatehouseError('AUTH_INVALID', 'the credentials are not valid');
    }
    return principalId;
  }

  /** POST /v1/auth/login: password (+ TOTP when enrolled) → session tokens. */
  login(meta: RequestMeta, body: { principal: string; password: string; code?: string | null }) {
    return this.#identityOp(meta, 'auth.login', typeof body.principal === 'string' ? body.principal : null, async () => {
      const id = this.#knownPrincipal(body.principal);
      const p = this.#state.loaded.workspace.principals.get(id)!;
      const status = await (await this.#ids()).users.status(id);
      if (this.#mfaRequired(this.#state, p) && status && !status.mfaEnrolled && !status.mfaEnrolmentPending) {
        // Check the password before telling the caller anything about enrolment.
        await (await this.#ids()).users.verifyPassword(id, body.password, { address: meta.source }).catch((err: unknown) => { throw identityError(err, 'the credentials are not valid'); });
        throw new GatehouseError('MFA_REQUIRED', 'this account must enrol an authenticator before its first sign-in', { hint: 'POST /v1/auth/totp/enrol, then /v1/auth/totp/confirm (gatehouse mfa enrol / confirm)' });
      }
      try {
        const t = await (await this.#ids()).login(id, body.password, body.code ?? null, meta.source);
        return { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: t.expiresAt, mfa: t.mfa };
      } catch (err) {
        throw identityError(err, 'the credentials are not valid');
      }
    });
  }

  /** POST /v1/auth/totp/enrol: begins TOTP enrolment (password required). */
  enrolTotp(meta: RequestMeta, body: { principal: string; password: string }) {
    return this.#identityOp(meta, 'auth.totp.enrol', typeof body.principal === 'string' ? body.principal : null, async () => {
      const id = this.#knownPrincipal(body.principal);
      try {
        await (await this.#ids()).users.verifyPassword(id, body.password, { address: meta.source });
        const e = await (await this.#ids()).users.beginTotpEnrolment(id);
        return { otpauthUri: e.otpauthUri, secret: e.secret };
      } catch (err) {
        throw identityError(err, 'the credentials are not valid');
      }
    });
  }

  /** POST /v1/auth/totp/confirm: a first code activates TOTP; recovery codes are shown once. */
  confirmTotp(meta: RequestMeta, body: { principal: string; password: string; code: string }) {
    return this.#identityOp(meta, 'auth.totp.confirm', typeof body.principal === 'string' ? body.principal : null, async () => {
      const id = this.#knownPrincipal(body.principal);
      try {
        await (await this.#ids()).users.verifyPassword(id, body.password, { address: meta.source });
        const r = await (await this.#ids()).users.confirmTotpEnrolment(id, body.code);
        return { recoveryCodes: r.recoveryCodes };
      } catch (err) {
        throw identityError(err, 'the code or credentials are not valid');
      }
    });
  }

  /** POST /v1/auth/step-up: a current TOTP code refreshes the session's MFA time (new access token). */
  stepUp(meta: RequestMeta, body: { code: string }) {
    return this.#identityOp(meta, 'auth.step-up', null, async (entry) => {
      if (!meta.credential || !looksLikeJwt(meta.credential)) throw new GatehouseError('AUTH_REQUIRED', 'step up with the session token you signed in with');
      const ids = await this.#ids();
      let who;
      try { who = await ids.verify(meta.credential); } catch (err) { throw identityError(err, 'the session token is not valid'); }
      entry.principal = who.principalId;
      try {
        await ids.users.verifySecondFactor(who.principalId, body.code, { address: meta.source });
        const t = await ids.sessions.stepUp(who.sessionId, Math.floor(Date.now() / 1000), { amr: ['pwd', 'otp'] });
        return { accessToken: t.accessToken, expiresAt: t.expiresAt };
      } catch (err) { throw identityError(err, 'the code is not valid'); }
    });
  }

  /** POST /v1/auth/refresh: a refresh token (single use, rotating) → new tokens. */
  refresh(meta: RequestMeta, body: { refreshToken: string }) {
    return this.#identityOp(meta, 'auth.refresh', null, async () => {
      try {
        const t = await (await this.#ids()).sessions.refresh(body.refreshToken);
        return { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: t.expiresAt };
      } catch (err) {
        throw identityError(err, 'the refresh token is not valid');
      }
    });
  }

  /**
   * POST /v1/auth/connection-password: a password for psql and other PostgreSQL clients
   * (src/identity/connection-passwords.ts). The caller authenticates as for a query (an
   * MFA session when their group requires one); the password carries that MFA time,
   * lasts at most CONNECTION_PASSWORD_HOURS, and replaces the caller's previous one.
   */
  issueConnectionPassword(meta: RequestMeta): Promise<{ username: string; password: string; expiresAt: string }> {
    return this.#identityOp(meta, 'auth.connection-password', null, async (entry) => {
      if (meta.credential?.startsWith(CONNECTION_CREDENTIAL_PREFIX)) throw new GatehouseError('POLICY_DENIED', 'a wire connection cannot issue connection passwords', { hint: 'ask over HTTPS or the CLI' });
      const { principal, mfaAt } = await this.#authenticateFull(this.#state, meta.credential, meta.source);
      entry.principal = principal.id;
      const expiresAt = Math.floor(Date.now() / 1000) + CONNECTION_PASSWORD_HOURS * 3600;
      const issued = await (await this.#ids()).connectionPasswords.issue(principal.id, { mfaAt, expiresAt });
      entry.reasons = [`connection password ${issued.id} issued until ${issued.expiresAt}; earlier ones revoked`];
      return { username: issued.username, password: issued.password, expiresAt: issued.expiresAt };
    });
  }

  /**
   * The SCRAM verifier of a principal's current connection password, and the credential
   * the wire front passes for that connection; null when there is none (the caller must
   * fail SCRAM exactly as for a wrong password).
   */
  async connectionVerifier(username: string): Promise<{ verifier: ScramVerifier; credential: string } | null> {
    if (typeof username !== 'string' || !this.#state.loaded.workspace.principals.has(username)) return null;
    const v = await (await this.#ids()).connectionPasswords.verifier(username);
    return v ? { verifier: v.verifier, credential: CONNECTION_CREDENTIAL_PREFIX + v.id } : null;
  }

  /** POST /v1/auth/logout: revokes the caller's session; its tokens fail from the next request. */
  logout(meta: RequestMeta) {
    return this.#identityOp(meta, 'auth.logout', null, async () => {
      if (!meta.credential || !looksLikeJwt(meta.credential)) throw new GatehouseError('AUTH_REQUIRED', 'log out with the session token you signed in with');
      let who;
      try { who = await (await this.#ids()).verify(meta.credential); } catch (err) { throw identityError(err, 'the session token is not valid'); }
      await (await this.#ids()).sessions.revokeSession(who.sessionId, { reason: 'logout' });
      await (await this.#ids()).connectionPasswords.revokeAll(who.principalId);
      return { revoked: true };
    });
  }

  /** The caller, who must be in one of identity.adminGroups. */
  async #admin(meta: RequestMeta, entry: Mutable<AuditRecord>): Promise<PrincipalDef> {
    const who = await this.#authenticate(this.#state, meta.credential);
    entry.principal = who.id;
    const admins = this.#state.loaded.workspace.identity?.adminGroups ?? ['admins'];
    if (!who.groups.some((g) => admins.includes(g))) throw new GatehouseError('POLICY_DENIED', 'identity administration is reserved to the administrator groups', { reasons: [`not a member of ${admins.join(', ')}`] });
    return who;
  }

  /** POST /v1/admin/users — create a built-in user for a workspace principal. */
  adminCreateUser(meta: RequestMeta, body: { principal: string; password: string }) {
    return this.#identityOp(meta, 'admin.user.create', null, async (entry) => {
      const admin = await this.#admin(meta, entry);
      this.#knownPrincipal(body.principal);
      try { await (await this.#ids()).users.createUser(body.principal, body.password, { by: admin.id }); } catch (err) { throw identityError(err, 'the user could not be created'); }
      entry.reasons = [`user created for ${body.principal}`];
      return { created: body.principal };
    });
  }

  /** POST /v1/admin/users/:id/disable|enable — takes effect on the user's next request. */
  adminSetUserEnabled(meta: RequestMeta, principalId: string, enabled: boolean) {
    return this.#identityOp(meta, enabled ? 'admin.user.enable' : 'admin.user.disable', null, async (entry) => {
      const admin = await this.#admin(meta, entry);
      const users = (await this.#ids()).users;
      try {
        if (enabled) await users.enableUser(principalId, { by: admin.id }); else await users.disableUser(principalId, { by: admin.id });
        if (!enabled) {
          await (await this.#ids()).sessions.revokeAllFor(principalId, { reason: 'user disabled' });
          await (await this.#ids()).connectionPasswords.revokeAll(principalId);
        }
      } catch (err) { throw identityError(err, 'the change was refused'); }
      entry.reasons = [`user ${principalId} ${enabled ? 'enabled' : 'disabled'}`];
      return { principal: principalId, enabled };
    });
  }

  /** POST /v1/admin/users/:id/mfa-reset (request) and /mfa-reset/approve (a second administrator). */
  adminMfaReset(meta: RequestMeta, principalId: string, step: 'request' | 'approve') {
    return this.#identityOp(meta, `admin.mfa-reset.${step}`, null, async (entry) => {
      const admin = await this.#admin(meta, entry);
      const users = (await this.#ids()).users;
      try {
        if (step === 'request') await users.requestMfaReset(principalId, admin.id); else await users.approveMfaReset(principalId, admin.id);
      } catch (err) { throw identityError(err, 'the MFA reset was refused'); }
      entry.reasons = [`MFA reset for ${principalId} ${step === 'request' ? 'requested' : 'approved'}`];
      return { principal: principalId, step };
    });
  }

  /** POST /v1/admin/keys — a scoped, optionally expiring service key, shown once. */
  adminCreateKey(meta: RequestMeta, body: { principal: string; datasets: string[]; actions?: string[]; expiresAt?: string | null }) {
    return this.#identityOp(meta, 'admin.key.create', null, async (entry) => {
      await this.#admin(meta, entry);
      this.#knownPrincipal(body.principal);
      try {
        const k = await (await this.#ids()).apiKeys.create({ principalId: body.principal, scopes: { datasets: body.datasets, actions: body.actions ?? ['query'] }, expiresAt: body.expiresAt ? new Date(body.expiresAt) : null });
        entry.reasons = [`service key ${k.id} for ${body.principal}, datasets ${body.datasets.join(', ')}`];
        return { id: k.id, key: k.key };
      } catch (err) { throw identityError(err, 'the key could not be created'); }
    });
  }

  /** DELETE /v1/admin/keys/:id — the key fails from the next request. */
  adminRevokeKey(meta: RequestMeta, id: string) {
    return this.#identityOp(meta, 'admin.key.revoke', null, async (entry) => {
      await this.#admin(meta, entry);
      try { await (await this.#ids()).apiKeys.revoke(id); } catch (err) { throw identityError(err, 'the key could not be revoked'); }
      entry.reasons = [`service key ${id} revoked`];
      return { revoked: id };
    });
  }

  /** GET /v1/admin/keys?principal= — metadata only, never the key. */
  adminListKeys(meta: RequestMeta, principalId: string) {
    return this.#identityOp(meta, 'admin.key.list', null, async (entry) => {
      await this.#admin(meta, entry);
      return { keys: await (await this.#ids()).apiKeys.list(principalId) };
    });
  }

  /** Creates a built-in user for a workspace principal (an administrator's act; audited). */
  createUser(meta: RequestMeta & { admin: string }, principalId: string, password: string) {
    return this.#identityOp(meta, 'admin.user.create', principalId, async () => {
      this.#knownPrincipal(principalId);
      try { await (await this.#ids()).users.createUser(principalId, password, { by: meta.admin }); } catch (err) { throw identityError(err, 'the user could not be created'); }
      return { created: principalId };
    });
  }

  /**
   * Seeds the demo's partners, agreements, grants, acknowledgements and training into an
   * empty governance store (src/demo/governance.ts); audited as one governance entry.
   */
  async setupDemoGovernance(): Promise<number> {
    const { seedDemoGovernance } = await import('../demo/governance.ts');
    const events = await seedDemoGovernance(this.#governance.store, { datasets: [...this.#state.loaded.workspace.datasets.keys()] });
    if (events.length > 0) {
      const entry = this.#baseEntry({ credential: null, source: 'cli', channel: 'cli' }, 'governance.demo-setup');
      entry.principal = 'demo-setup';
      entry.decision = 'allow';
      entry.reasons = events.map((e) => `${e.action} ${e.outcome}: ${e.detail}`);
      await this.#record(entry);
    }
    return events.length;
  }

  /** Whether a built-in user exists for a principal (demo set-up). */
  async hasUser(principalId: string): Promise<boolean> {
    return (await (await this.#ids()).users.status(principalId)) !== null;
  }

  /** The request context plus what identity knows: MFA age, device posture, network zone. */
  async #identityContext(state: State, req: RequestMeta & { purpose: string }, principal: PrincipalDef, mfaAt: number | null): Promise<RequestContext> {
    const base = this.#context(req);
    const now = base.time.getTime();
    const mfaAgeSeconds = mfaAt === null ? null : Math.max(0, Math.floor(now / 1000) - mfaAt);
    const posture = state.loaded.workspace.identity?.posture ?? null;
    if (!posture) return { ...base, mfaAgeSeconds };
    const r = await evaluatePosture({ principalId: principal.id, token: req.posture ?? null, sourceIp: base.sourceIp, now: base.time }, posture);
    const pc = postureContext(r);
    return { ...base, mfaAgeSeconds, deviceCompliant: pc.deviceCompliant, networkZone: pc.networkZone };
  }

  #context(req: RequestMeta & { purpose: string }): RequestContext {
    return { purpose: req.purpose, sourceIp: normaliseIp(req.source), channel: req.channel, time: (this.#options.now ?? (() => new Date()))() };
  }

  /** Parsed IR by SQL text (the IR is immutable and independent of policy). */
  #parse(sql: string): Select {
    const hit = this.#parseCache.get(sql);
    if (hit) return hit;
    const parsed = parseSql(sql);
    if (this.#parseCache.size >= BIND_CACHE_LIMIT) this.#parseCache.delete(this.#parseCache.keys().next().value!);
    this.#parseCache.set(sql, parsed);
    return parsed;
  }

  /** Bound IR by policy version + SQL text. Call only after the decision allowed every dataset. */
  #bind(state: State, sql: string, parsed: Select): BoundQuery {
    const key = `${state.loaded.workspace.policyVersion}\u0000${sql}`;
    const hit = this.#bindCache.get(key);
    if (hit) return hit;
    const ws = state.loaded.workspace;
    const bound = bindQuery(parsed, { dataset: (n) => ws.datasets.get(n) });
    if (this.#bindCache.size >= BIND_CACHE_LIMIT) this.#bindCache.delete(this.#bindCache.keys().next().value!);
    this.#bindCache.set(key, bound);
    return bound;
  }

  /**
   * authenticate → context → decide → plan → enforce, shared by query and estimate.
   * Datasets are decided before any column is bound, so a denied caller learns nothing
   * about a dataset's columns from binding errors. Fills the audit entry as it goes.
   */
  async #plan(state: State, req: QueryRequest, entry: Mutable<AuditRecord>): Promise<{ principal: PrincipalDef; decisions: Decision[]; bound: BoundQuery; governed: GovernedQuery; gates: GateResult[] }> {
    const ws = state.loaded.workspace;
    const { principal, mfaAt, scopes } = await this.#authenticateFull(state, req.credential, req.source);
    entry.principal = principal.id;
    if (typeof req.purpose !== 'string' || !PURPOSE.test(req.purpose)) {
      throw new GatehouseError('REQUEST_INVALID', 'a purpose is required: lower-case letters, digits, _ . - (at most 64 characters)', { hint: 'declare why you query, e.g. purpose "research"' });
    }
    const parsed = req.params !== undefined ? parseSql(req.sql, req.params) : this.#parse(req.sql);
    const names = referencedDatasets(parsed, { dataset: (n) => ws.datasets.get(n) });
    entry.datasets = names;
    if (scopes) {
      const outside = names.filter((n) => !scopesPermit(scopes, { dataset: n, action: 'query' }));
      if (outside.length > 0) {
        entry.decision = 'deny';
        throw new GatehouseError('POLICY_DENIED', `this service key is not scoped for ${outside.map((n) => `"${n}"`).join(', ')}`, { reasons: ['API key scope'], hint: 'ask an administrator for a key scoped to the datasets and action you need' });
      }
    }
    const ctx = await this.#identityContext(state, req, principal, mfaAt);
    // Classifications an administrator confirmed (gatehouse classify confirm) are as binding
    // as the declared ones: the stricter of the two decides from here on.
    const effective = await Promise.all(names.map((n) => this.#effectiveDataset(ws.datasets.get(n)!)));
    // Step-up: regulated data needs a recent MFA event from those who must use MFA.
    const stepUp = ws.identity?.stepUpMinutes ?? null;
    if (stepUp !== null && this.#mfaRequired(state, principal) && effective.some((d) => d.classification === 'regulated')) {
      if (ctx.mfaAgeSeconds === null || ctx.mfaAgeSeconds === undefined || ctx.mfaAgeSeconds > stepUp * 60) {
        throw new GatehouseError('MFA_REQUIRED', `regulated data needs a multi-factor check within the last ${stepUp} minutes`, { hint: 'POST /v1/auth/step-up with a current TOTP code (gatehouse mfa step-up), then retry' });
      }
    }
    // Contractor governance (agreements, grants, acknowledgements, training, vendor risk):
    // checked before Cedar, and its attributes join the Cedar context per dataset.
    const gates = await Promise.all(effective.map((d) => this.#gate(principal, d, req.purpose, ctx.time)));
    const refused = gates.flatMap((g) => g.denials);
    if (refused.length > 0) {
      entry.decision = 'deny';
      throw new GatehouseError('POLICY_DENIED', `access denied by contractor governance: ${refused[0]!.message}`, { reasons: refused.map((d) => `${d.code}: ${d.message}`), hint: refused[0]!.hint });
    }
    const decisions = effective.map((d, i) => state.loaded.policy.decide(principal, d, { ...ctx, governance: gates[i]!.context }));
    const denied = decisions.filter((d) => !d.allowed);
    if (denied.length > 0) {
      entry.decision = 'deny';
      throw new GatehouseError('POLICY_DENIED', `access denied to ${denied.map((d) => `"${d.dataset}"`).join(', ')}`, { reasons: denied.flatMap((d) => d.reasons) });
    }
    // Bound values make the tree differ per execution: only parameter-free SQL is cached.
    const bound = req.params !== undefined ? bindQuery(parsed, { dataset: (n) => ws.datasets.get(n) }) : this.#bind(state, req.sql, parsed);
    entry.columns = bound.columns;
    const governed = govern(bound, {
      principal, datasets: ws.datasets, defaultRowCap: ws.defaults.rowCap, rowFilters: state.loaded.rowFilters,
      obligations: new Map(decisions.map((d) => [d.dataset, d.obligations])), columnsUsed: new Set(bound.columns),
    });
    entry.obligations = governed.obligationsApplied;
    return { principal, decisions, bound, governed, gates };
  }

  /**
   * The dataset as decisions see it: each column at the stricter of its declared and its
   * confirmed classification (tags merged), and the dataset at least as strict as its
   * strictest column and its own confirmed level.
   */
  async #effectiveDataset(ds: DatasetDef): Promise<DatasetDef> {
    const confirmed = await this.#governance.store.classification.list({ status: 'confirmed', dataset: ds.name });
    if (confirmed.length === 0) return ds;
    const cls = this.#governance.store.classification;
    const columns = await Promise.all(ds.columns.map(async (c) => {
      const e = await cls.effectiveClassification(ds.name, c.name, c.classification, c.tags);
      return e.decision === null ? c : { ...c, classification: e.level, tags: e.tags };
    }));
    const own = await cls.effectiveClassification(ds.name, null, ds.classification, ds.tags);
    const level = columns.reduce((l, c) => (CLASSIFICATIONS.indexOf(c.classification) > CLASSIFICATIONS.indexOf(l) ? c.classification : l), own.level);
    return { ...ds, classification: level, tags: own.tags, columns };
  }

  #gate(principal: PrincipalDef, dataset: import('../workspace/types.ts').DatasetDef, purpose: string, now: Date): Promise<GateResult> {
    return this.#governance.store.evaluate({ principal, dataset, purpose, now });
  }

  /** Governed SQL: the whole path for one query. */
  async query(req: QueryRequest): Promise<QueryResponse> {
    const state = this.#state;
    const ws = state.loaded.workspace;
    const entry: Mutable<AuditRecord> = {
      time: new Date().toISOString(), principal: null, source: req.source, channel: req.channel, action: 'query',
      purpose: typeof req.purpose === 'string' ? req.purpose.slice(0, 64) : null, datasets: [], columns: [], decision: 'error', reasons: [],
      policyVersion: ws.policyVersion, obligations: [], sqlFingerprint: typeof req.sql === 'string' ? sqlFingerprint(req.sql) : null,
      rowsReturned: null, resultDigest: null, errorCode: null,
    };
    let response: QueryResponse;
    try {
      const { principal, decisions, bound, governed, gates } = await this.#plan(state, req, entry);
      // The one engine holding every dataset of the query (a mix of engines is refused).
      const engine = state.engines.forDatasets(bound.datasets);
      const sql = renderSelect(governed.query, engine.dialect);
      const governance = {
        policyVersion: ws.policyVersion, decision: 'allow' as const, datasets: bound.datasets,
        policies: [...new Set(decisions.flatMap((d) => d.policies))],
        obligationsApplied: governed.obligationsApplied, rowsSuppressed: 0, rowCap: governed.rowCap, auditId: '',
      };
      if (governed.dp) {
        // Differential privacy: price, charge (atomically, before running), run, release.
        const noise = planNoise(governed.dp);
        const charge = await this.#chargeBudget(principal, governed.dp, noise, entry);
        let result;
        try {
          result = await engine.run(sql, { timeoutMs: ws.defaults.statementTimeoutMs });
        } catch (err) {
          const refund = await this.#budgets.refund(charge.chargeId, 'the query failed before any result was released');
          entry.reasons = [...entry.reasons, ...budgetAuditReasons(refund)];
          throw err;
        }
        const out = release(noise, result, governed.rowLimit, governed.rowCap - (bound.query.offset ?? 0));
        await this.#budgets.markReleased(charge.chargeId);
        const budget = this.#budgetView(charge, governed.dp);
        entry.decision = 'allow';
        entry.reasons = [...decisions.flatMap((d) => d.reasons), ...entry.reasons];
        entry.rowsReturned = out.rows.length;
        entry.resultDigest = resultDigest(out.columns, out.rows);
        response = {
          columns: out.columns, rows: out.rows, intervals: out.intervals,
          governance: { ...governance, truncated: out.truncated, privacy: { ...describeNoise(noise), budget } },
        };
      } else if (governed.disclosure) {
        const probe = governed.disclosure.probe;
        if (probe) await this.#checkDifferencing(state, principal, probe, entry);
        const result = await engine.run(sql, { timeoutMs: ws.defaults.statementTimeoutMs });
        if (probe) this.#differencing.remember(principal.id, probe);
        const out = protectRelease(governed.disclosure, result, governed.rowLimit, governed.rowCap - (bound.query.offset ?? 0));
        entry.decision = 'allow';
        entry.reasons = decisions.flatMap((d) => d.reasons);
        entry.obligations = [...governed.obligationsApplied, out.label];
        entry.rowsReturned = out.rows.length;
        entry.resultDigest = resultDigest(out.columns, out.rows);
        response = { columns: out.columns, rows: out.rows, governance: { ...governance, obligationsApplied: entry.obligations, rowsSuppressed: out.withheld, truncated: out.truncated } };
      } else {
        const result = await engine.run(sql, { timeoutMs: ws.defaults.statementTimeoutMs });
        const truncated = result.rows.length > governed.rowLimit;
        const rows = truncated ? result.rows.slice(0, governed.rowLimit) : result.rows;
        entry.decision = 'allow';
        entry.reasons = decisions.flatMap((d) => d.reasons);
        entry.rowsReturned = rows.length;
        entry.resultDigest = resultDigest(result.columns, rows);
        response = { columns: result.columns, rows, governance: { ...governance, truncated } };
      }
      // Data-loss prevention: the last look at what leaves.
      const dlp = mergeDlp([ws.dlp, ...decisions.flatMap((d) => d.obligations.map((o) => o.dlp))]);
      if (dlp) {
        const obligationMap = new Map(decisions.map((d) => [d.dataset, d.obligations]));
        const index = state.sensitive.get(indexedColumns(bound.datasets.map((n) => ws.datasets.get(n)!), obligationMap));
        const out = await applyDlp(dlp, response.columns, response.rows, index);
        entry.obligations = [...entry.obligations, ...out.labels];
        entry.resultDigest = resultDigest(response.columns, out.rows);
        response = { ...response, rows: out.rows, governance: { ...response.governance, obligationsApplied: [...response.governance.obligationsApplied, ...out.labels] } };
      }
      if (req.save === true) {
        const resultId = await this.#saveResult(principal, req.purpose, gates, bound.datasets, response);
        entry.reasons = [...entry.reasons, `result saved encrypted as ${resultId}`];
        response = { ...response, governance: { ...response.governance, resultId } };
      }
    } catch (err) {
      const e = asGatehouseError(err);
      if (entry.decision !== 'deny') entry.decision = e.code === 'POLICY_DENIED' || e.code === 'OBLIGATION_VIOLATION' || e.code === 'ROW_CAP_EXCEEDED' || e.code === 'BUDGET_EXHAUSTED' || e.code === 'DLP_BLOCKED' || e.code === 'DIFFERENCING_DETECTED' || e.code === 'AUTH_INVALID' || e.code === 'AUTH_REQUIRED' || e.code === 'MFA_REQUIRED' || e.code === 'RATE_LIMITED' ? 'deny' : 'error';
      entry.errorCode = e.code;
      // Keep the ledger lines (charge, refund, denial) next to the user-facing reasons.
      entry.reasons = [...(e.reasons.length ? e.reasons : [e.message]), ...entry.reasons.filter((r) => r.startsWith('dp-budget'))];
      await this.#record(entry);
      throw e;
    }
    const { auditId } = await this.#record(entry);
    return { ...response, governance: { ...response.governance, auditId } };
  }

  /**
   * Keeps a released result as an encrypted artefact under its own data key, labelled with
   * the agreement that allowed it, so ending that agreement crypto-shreds it. Results kept
   * under an agreement with a result-retention clause expire after that many days.
   */
  async #saveResult(principal: PrincipalDef, purpose: string, gates: readonly GateResult[], datasets: readonly string[], response: QueryResponse): Promise<string> {
    const agreements = [...new Set(gates.map((g) => String(g.context.agreementId ?? '')).filter((a) => a !== ''))];
    if (agreements.length > 1) throw new GatehouseError('REQUEST_INVALID', 'this result draws on datasets shared under different agreements, so it cannot be kept as one artefact', { hint: 'run it without saving, or save one query per agreement' });
    const agreement = agreements[0] ?? null;
    const days = agreement ? (await this.#governance.store.agreements.get(agreement))?.clauses.resultRetentionDays ?? null : null;
    const org = typeof principal.attributes.org === 'string' ? principal.attributes.org : '';
    const { artefacts } = await this.#governance.vault();
    const content = Buffer.from(JSON.stringify({ columns: response.columns, rows: response.rows, ...(response.intervals ? { intervals: response.intervals } : {}), governance: { ...response.governance, auditId: undefined } }));
    const put = await artefacts.put({
      kind: 'result', owner: principal.id, mediaType: 'application/json', content,
      labels: { purpose, datasets: datasets.join(','), ...(datasets.length === 1 ? { dataset: datasets[0]! } : {}), ...(agreement ? { agreement } : {}), ...(org ? { org } : {}) },
      retainUntil: days !== null && days !== undefined ? new Date(Date.now() + days * 86_400_000).toISOString() : null,
    });
    return put.id;
  }

  /**
   * GET /v1/results/:id — a saved result, to its owner only, and only while the governance
   * that allowed it still holds (the agreement active, the grant current).
   */
  async getResult(meta: RequestMeta, id: string): Promise<{ id: string; createdAt: string; content: unknown }> {
    return this.#identityOp(meta, 'result.get', null, async (entry) => {
      const state = this.#state;
      const { principal } = await this.#authenticateFull(state, meta.credential, meta.source);
      entry.principal = principal.id;
      const { artefacts } = await this.#governance.vault();
      let meta2;
      try { meta2 = await artefacts.meta(String(id)); } catch { meta2 = null; }
      if (!meta2 || meta2.owner !== principal.id || meta2.kind !== 'result') throw new GatehouseError('NOT_FOUND', 'no saved result with this id is yours', { hint: 'list your saved results with GET /v1/results' });
      if (meta2.destroyedAt !== null) throw new GatehouseError('NOT_FOUND', `result ${meta2.id} was destroyed at ${meta2.destroyedAt} (${meta2.destroyReason ?? 'retention'})`, { hint: 'its data key was destroyed; the certificate is in the audit log' });
      const ws = state.loaded.workspace;
      const names = (meta2.labels.datasets ?? '').split(',').filter((n) => n !== '');
      entry.datasets = names;
      for (const n of names) {
        const ds = ws.datasets.get(n);
        if (!ds) throw new GatehouseError('POLICY_DENIED', `dataset "${n}" of this result is no longer shared`);
        const g = await this.#gate(principal, ds, meta2.labels.purpose ?? '', new Date());
        if (g.denials.length > 0) throw new GatehouseError('POLICY_DENIED', g.denials[0]!.message, { reasons: g.denials.map((d) => `${d.code}: ${d.message}`), hint: g.denials[0]!.hint });
        if (meta2.labels.agreement && g.context.governed === true && g.context.agreementId !== meta2.labels.agreement) {
          throw new GatehouseError('POLICY_DENIED', `the agreement this result was shared under (${meta2.labels.agreement}) is no longer in force`);
        }
      }
      const { content } = await artefacts.get(meta2.id);
      entry.rowsReturned = null;
      entry.reasons = [`saved result ${meta2.id} read`];
      return { id: meta2.id, createdAt: meta2.createdAt, content: JSON.parse(content.toString('utf8')) as unknown };
    });
  }

  /** GET /v1/results — the caller's saved results (metadata only). */
  async listResults(meta: RequestMeta): Promise<{ results: { id: string; createdAt: string; datasets: string[]; agreement: string | null; retainUntil: string | null; destroyedAt: string | null; bytes: number }[] }> {
    return this.#identityOp(meta, 'result.list', null, async (entry) => {
      const { principal } = await this.#authenticateFull(this.#state, meta.credential, meta.source);
      entry.principal = principal.id;
      const { artefacts } = await this.#governance.vault();
      const results = (await artefacts.list({ owner: principal.id, kind: 'result', includeDestroyed: true })).map((a) => ({
        id: a.id, createdAt: a.createdAt, datasets: (a.labels.datasets ?? '').split(',').filter((x) => x), agreement: a.labels.agreement ?? null,
        retainUntil: a.retainUntil, destroyedAt: a.destroyedAt, bytes: a.bytes,
      }));
      return { results };
    });
  }

  /**
   * One contractor-governance operation (src/governance/service.ts lists them): the caller
   * is authenticated, `who` enforced, and the op audited as `governance.<name>` with the
   * events it caused; each destruction certificate becomes its own audit entry.
   */
  async governanceOp(meta: RequestMeta, name: string, args: unknown): Promise<unknown> {
    return this.#runGovernanceOp(meta, name, args, async () => {
      const { principal } = await this.#authenticateFull(this.#state, meta.credential, meta.source);
      const adminGroups = this.#state.loaded.workspace.identity?.adminGroups ?? ['admins'];
      return { principal, isAdmin: principal.groups.some((g) => adminGroups.includes(g)) };
    });
  }

  /**
   * The scheduler's round (every few minutes while serving): close out ended agreements and
   * shred what retention says must go (never what is under legal hold), as the principal
   * `gatehouse-scheduler`, audited like any governance op. With `reportsDir`, also writes
   * the previous day's compliance report there once (HTML, for the compliance officer).
   */
  async runScheduledGovernance(options: { reportsDir?: string; now?: Date } = {}): Promise<{ retention: unknown; report: string | null }> {
    const meta: RequestMeta = { credential: null, source: 'scheduler', channel: 'scheduler' };
    const system = async () => ({ principal: SCHEDULER, isAdmin: true });
    const retention = await this.#runGovernanceOp(meta, 'retention.run', {}, system);
    let report: string | null = null;
    if (options.reportsDir) {
      const now = options.now ?? new Date();
      const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
      const from = new Date(day.getTime() - 86_400_000);
      const file = join(options.reportsDir, `compliance-${from.toISOString().slice(0, 10)}.html`);
      if (!existsSync(file)) {
        const r = await this.#runGovernanceOp(meta, 'report.build', { from: from.toISOString(), to: day.toISOString(), format: 'html' }, system) as { body: string };
        mkdirSync(options.reportsDir, { recursive: true, mode: 0o700 });
        writeFileSync(file, r.body, { mode: 0o600 });
        report = file;
      }
    }
    return { retention, report };
  }

  async #runGovernanceOp(meta: RequestMeta, name: string, args: unknown, who: () => Promise<{ principal: PrincipalDef; isAdmin: boolean }>): Promise<unknown> {
    const op = findGovernanceOp(name);
    const entry = this.#baseEntry(meta, `governance.${op ? op.name : 'unknown'}`);
    let out: unknown;
    const certificates: import('../keys/artefacts.ts').DestructionCertificate[] = [];
    try {
      if (!op) throw new GatehouseError('NOT_FOUND', `there is no governance operation "${String(name).slice(0, 64)}"`);
      const state = this.#state;
      const { principal, isAdmin } = await who();
      entry.principal = principal.id;
      const adminGroups = state.loaded.workspace.identity?.adminGroups ?? ['admins'];
      if (op.who === 'admin' && !isAdmin) throw new GatehouseError('POLICY_DENIED', `${op.name} is for administrators (${adminGroups.join(', ')})`, { hint: 'ask an administrator' });
      const r = await op.run(this.#opContext(state, principal, isAdmin), (args ?? {}) as never);
      certificates.push(...(r.certificates ?? []));
      entry.decision = 'allow';
      entry.reasons = (r.events ?? []).map((e) => `${e.action} ${e.outcome}: ${e.detail}`);
      out = r.result;
    } catch (err) {
      const e = err instanceof GovernanceError ? new GatehouseError(err.status === 404 ? 'NOT_FOUND' : err.status === 403 ? 'POLICY_DENIED' : 'REQUEST_INVALID', err.message, { hint: err.hint, reasons: [err.code] }) : asGatehouseError(err);
      entry.decision = e.code === 'INTERNAL' ? 'error' : 'deny';
      entry.errorCode = e.code;
      entry.reasons = [...e.reasons, e.message];
      await this.#record(entry);
      throw e;
    }
    await this.#record(entry);
    for (const c of certificates) {
      const ce = this.#baseEntry(meta, 'governance.destruction');
      ce.principal = entry.principal;
      ce.decision = 'allow';
      ce.reasons = [`destruction certificate ${c.certificateId}: ${c.count} artefact(s), ${c.totalBytes} bytes, ${c.method}; reason: ${c.reason}`, JSON.stringify({ certificateId: c.certificateId, digest: c.digest, destroyedAt: c.destroyedAt, artefacts: c.artefacts.map((a) => ({ id: a.id, owner: a.owner, ciphertextSha256: a.ciphertextSha256, keyId: a.keyId, wrappedKeyDigest: a.wrappedKeyDigest })) })];
      await this.#record(ce);
    }
    return out;
  }

  #opContext(state: State, principal: PrincipalDef, isAdmin: boolean): OpContext {
    const ws = state.loaded.workspace;
    const rt = this.#governance;
    const reader = this.#options.auditReader;
    let reverse: Map<string, string> | null = null;
    const audit: AuditReader | null = reader ? {
      async *entries(filter) { for await (const { leaf } of reader.scan(filter)) yield leaf.entry; },
      principalOf(pseudonym) {
        if (!reverse) {
          reverse = new Map();
          for (const id of ws.principals.keys()) for (const ps of reader.pseudonymsOf(id)) reverse.set(ps, id);
        }
        return reverse.get(pseudonym) ?? null;
      },
    } : null;
    return {
      caller: principal, isAdmin, workspace: ws, store: rt.store, vault: () => rt.vault(), now: new Date(), audit,
      budgetUse: async () => {
        const pairs = new Map<string, { subject: string; dataset: string }>();
        for (const e of await this.#budgets.history({ limit: 100_000 })) pairs.set(`${e.subject}\u0000${e.dataset}`, { subject: e.subject, dataset: e.dataset });
        const out: { subject: string; dataset: string; spentEpsilon: number; capEpsilon: number }[] = [];
        for (const { subject, dataset } of pairs.values()) {
          const st = await this.#budgets.status(subject, dataset);
          // ε at the smallest budget δ of the workspace's DP obligations (the conservative reading).
          const deltas = [...ws.obligations.values()].flatMap((o) => (o.differentialPrivacy ? [o.differentialPrivacy.budget.delta] : []));
          if (!st || deltas.length === 0) continue;
          const delta = Math.min(...deltas);
          out.push({ subject, dataset, spentEpsilon: spentEpsilon(st.spentRho, delta), capEpsilon: spentEpsilon(st.capRho, delta) });
        }
        return out;
      },
      isOwner: (principalId, dataset) => {
        const p = ws.principals.get(principalId);
        const ds = ws.datasets.get(dataset);
        if (!p || !ds) return false;
        const admins = ws.identity?.adminGroups ?? ['admins'];
        return p.groups.some((g) => admins.includes(g)) || (p.groups.includes('data-owners') && ds.owner !== null && p.attributes.org === ds.owner);
      },
      sample: async (dataset, columns, limit) => {
        const ds = ws.datasets.get(dataset);
        if (!ds) throw new GatehouseError('NOT_FOUND', `no dataset "${dataset}"`);
        const cols = columns.filter((c) => ds.columns.some((d) => d.name === c));
        const out = new Map<string, CellValue[]>();
        if (cols.length === 0) return out;
        const n = Math.max(1, Math.min(10_000, Math.floor(limit)));
        const engine = state.engines.engineOf(dataset);
        const sql = `SELECT ${cols.map((c) => quoteIdent(c)).join(', ')} FROM ${engine.dialect.source(dataset)} LIMIT ${n}`;
        const r = await engine.run(sql, { timeoutMs: ws.defaults.statementTimeoutMs });
        cols.forEach((c, i) => out.set(c, r.rows.map((row) => row[i] ?? null)));
        return out;
      },
    };
  }

  /** Refuses a query whose filter differs from a recent one by fewer than k units (tracker attack). */
  async #checkDifferencing(state: State, principal: PrincipalDef, probe: DifferencingProbe, entry: Mutable<AuditRecord>): Promise<void> {
    const previous = this.#differencing.recent(principal.id, probe);
    if (previous.length === 0) return;
    const engine = state.engines.engineOf(probe.dataset);
    const check = renderSelect(this.#differencing.checkQuery(probe, previous), engine.dialect);
    const r = await engine.run(check, { timeoutMs: state.loaded.workspace.defaults.statementTimeoutMs });
    const counts = (r.rows[0] ?? []).map((v) => Number(v ?? 0));
    const hit = counts.findIndex((n) => n > 0 && n < probe.threshold);
    if (hit >= 0) {
      entry.decision = 'deny';
      entry.reasons = [`alert: differencing — this query's filter differs from one of your last ${previous.length} queries on "${probe.dataset}" by fewer than ${probe.threshold} ${'distinct units'}`];
      throw new GatehouseError('DIFFERENCING_DETECTED', `refused: together with one of your recent queries on "${probe.dataset}", this query would isolate fewer than ${probe.threshold} individuals`, {
        hint: 'change the filter by a larger group, or ask for differentially private access', reasons: entry.reasons,
      });
    }
  }

  #budgetSubject(principal: PrincipalDef, def: DifferentialPrivacyDef): string {
    if (def.budget.per === 'org') {
      const org = principal.attributes.org;
      if (typeof org !== 'string' || org.length === 0) throw new GatehouseError('POLICY_DENIED', 'this dataset\'s privacy budget is per organisation, and your identity carries no "org" attribute');
      return `org:${org}`;
    }
    return principal.id;
  }

  async #defineBudget(subject: string, plan: DpReleasePlan): Promise<void> {
    const b = plan.def.budget;
    await this.#budgets.defineBudget({ subject, dataset: plan.dataset, capRho: rhoForEpsilonDelta(b.epsilon, b.delta), window: b.window });
  }

  async #chargeBudget(principal: PrincipalDef, plan: DpReleasePlan, noise: NoisePlan, entry: Mutable<AuditRecord>): Promise<ChargeAccepted> {
    const subject = this.#budgetSubject(principal, plan.def);
    await this.#defineBudget(subject, plan);
    const outcome = await this.#budgets.charge({ subject, dataset: plan.dataset, rho: noise.rho, queryId: randomUUID() });
    entry.reasons = budgetAuditReasons(outcome);
    if (!outcome.ok) {
      entry.decision = 'deny';
      throw new GatehouseError('BUDGET_EXHAUSTED', describeDenial(outcome, plan.def.budget.delta), {
        hint: outcome.resetsAt ? `the budget resets at ${outcome.resetsAt}; ask POST /v1/query/estimate what a query costs before running it` : 'ask the data owner for more budget',
        reasons: [describeDenial(outcome, plan.def.budget.delta)],
      });
    }
    return outcome;
  }

  #budgetView(o: { subject: string; spentRho: number; remainingRho: number; capRho: number; resetsAt: string | null }, plan: DpReleasePlan): PrivacyGovernance['budget'] {
    const b = plan.def.budget;
    return { subject: o.subject, epsilon: b.epsilon, delta: b.delta, spentEpsilon: spentEpsilon(o.spentRho, b.delta), remainingRho: o.remainingRho, capRho: o.capRho, resetsAt: o.resetsAt };
  }

  /**
   * What a query would cost and how accurate it would be — decided and planned exactly as
   * `query` would, but nothing runs and no budget is spent. Audited as query.estimate.
   */
  async estimate(req: QueryRequest): Promise<QueryEstimate> {
    const state = this.#state;
    const ws = state.loaded.workspace;
    const entry = this.#baseEntry(req, 'query.estimate');
    entry.purpose = typeof req.purpose === 'string' ? req.purpose.slice(0, 64) : null;
    entry.sqlFingerprint = typeof req.sql === 'string' ? sqlFingerprint(req.sql) : null;
    let out: Omit<QueryEstimate, 'auditId'>;
    try {
      const { principal, bound, governed } = await this.#plan(state, req, entry);
      let privacy: QueryEstimate['privacy'] = null;
      if (governed.dp) {
        const noise = planNoise(governed.dp);
        const subject = this.#budgetSubject(principal, governed.dp.def);
        await this.#defineBudget(subject, governed.dp);
        const status = await this.#budgets.status(subject, governed.dp.dataset);
        const budget = status ? this.#budgetView(status, governed.dp) : null;
        privacy = { ...describeNoise(noise), budget, affordable: status !== null && status.remainingRho >= noise.rho };
      }
      entry.decision = 'allow';
      out = { policyVersion: ws.policyVersion, datasets: bound.datasets, obligationsApplied: governed.obligationsApplied, privacy };
    } catch (err) {
      const e = asGatehouseError(err);
      if (entry.decision !== 'deny') entry.decision = e.code === 'POLICY_DENIED' || e.code === 'OBLIGATION_VIOLATION' || e.code.startsWith('AUTH') ? 'deny' : 'error';
      entry.errorCode = e.code;
      entry.reasons = e.reasons.length ? e.reasons : [e.message];
      await this.#record(entry);
      throw e;
    }
    const { auditId } = await this.#record(entry);
    return { ...out, auditId };
  }

  /** The datasets a principal may query (for a purpose, or for any declared purpose). */
  async datasets(req: RequestMeta & { purpose: string | null }): Promise<{ datasets: DatasetView[]; auditId: string; policyVersion: string }> {
    const state = this.#state;
    const ws = state.loaded.workspace;
    const entry: Mutable<AuditRecord> = {
      time: new Date().toISOString(), principal: null, source: req.source, channel: req.channel, action: 'datasets.list',
      purpose: req.purpose, datasets: [], columns: [], decision: 'error', reasons: [], policyVersion: ws.policyVersion,
      obligations: [], sqlFingerprint: null, rowsReturned: null, resultDigest: null, errorCode: null,
    };
    let views: DatasetView[];
    try {
      const principal = await this.#authenticate(state, req.credential);
      entry.principal = principal.id;
      if (req.purpose !== null && !PURPOSE.test(req.purpose)) throw new GatehouseError('REQUEST_INVALID', 'purpose must be lower-case letters, digits, _ . -');
      views = [];
      for (const declared of ws.datasets.values()) {
        const ds = await this.#effectiveDataset(declared);
        const purposes = req.purpose !== null ? [req.purpose] : ds.purposes;
        const allowed: { purpose: string; d: Decision }[] = [];
        for (const p of purposes) {
          const ctx = this.#context({ ...req, purpose: p });
          const g = await this.#gate(principal, ds, p, ctx.time);
          if (!g.allowed) continue;
          const d = state.loaded.policy.decide(principal, ds, { ...ctx, governance: g.context });
          if (d.allowed) allowed.push({ purpose: p, d });
        }
        if (allowed.length === 0) continue;
        views.push(this.#view(ds, allowed.map((a) => a.purpose), allowed[0]!.d.obligations, state));
      }
      entry.decision = 'allow';
      entry.datasets = views.map((v) => v.name);
      entry.rowsReturned = views.length;
    } catch (err) {
      const e = asGatehouseError(err);
      entry.decision = e.code.startsWith('AUTH') || e.code === 'MFA_REQUIRED' ? 'deny' : 'error';
      entry.errorCode = e.code;
      entry.reasons = [e.message];
      await this.#record(entry);
      throw e;
    }
    const { auditId } = await this.#record(entry);
    return { datasets: views, auditId, policyVersion: ws.policyVersion };
  }

  #view(ds: DatasetDef, purposes: string[], obligations: readonly ObligationDef[], state: State): DatasetView {
    const name = ds.name;
    const unmask = new Set(obligations.flatMap((o) => o.unmask));
    const joinOnly = new Set(obligations.flatMap((o) => o.joinOnly));
    const agg = obligations.filter((o) => o.aggregationOnly).map((o) => o.aggregationOnly!.minGroupSize);
    const caps = obligations.map((o) => o.rowCap).filter((c): c is number => c !== null);
    return {
      name, description: ds.description, classification: ds.classification, region: ds.region, purposes,
      privacyUnit: ds.privacyUnit,
      rowFilter: obligations.some((o) => o.rowFilter !== null),
      aggregationOnly: agg.length ? { minGroupSize: Math.max(...agg) } : null,
      rowCap: Math.min(state.loaded.workspace.defaults.rowCap, ...caps),
      columns: ds.columns.map((c) => {
        const extra = obligations.map((o) => o.masks[c.name]).find((m) => m !== undefined);
        const mask = extra ?? (unmask.has(c.name) ? null : c.mask);
        return {
          name: c.name, type: c.type, classification: c.classification, tags: c.tags, description: c.description,
          masked: mask ? describeMask(mask) : null, joinOnly: joinOnly.has(c.name),
        };
      }),
    };
  }

  /**
   * Reading the audit log: checkpoints and proofs are open to every authenticated
   * principal (partners verify the log themselves); entries, receipts and exports to the
   * group `auditors`. Each read is itself audited.
   */
  async authorizeAuditRead(meta: RequestMeta, what: 'proofs' | 'entries'): Promise<void> {
    const state = this.#state;
    const entry = this.#baseEntry(meta, `audit.read.${what}`);
    try {
      const principal = await this.#authenticate(state, meta.credential);
      entry.principal = principal.id;
      if (what === 'entries' && !principal.groups.includes('auditors')) {
        entry.decision = 'deny';
        throw new GatehouseError('POLICY_DENIED', 'reading audit entries is reserved to the auditors group', { hint: 'checkpoints and proofs are open to you; ask an auditor for entries or a receipt', reasons: ['not a member of group "auditors"'] });
      }
      entry.decision = 'allow';
    } catch (err) {
      const e = asGatehouseError(err);
      entry.decision = 'deny';
      entry.errorCode = e.code;
      entry.reasons = e.reasons.length ? e.reasons : [e.message];
      await this.#record(entry);
      throw e;
    }
    await this.#record(entry);
  }

  /** Audits a request an interface refused before it reached the path (malformed body, unknown route). */
  async rejectRequest(meta: RequestMeta, action: string, error: GatehouseError): Promise<void> {
    const entry = this.#baseEntry(meta, action);
    entry.decision = error.code.startsWith('AUTH') || error.code === 'POLICY_DENIED' || error.code === 'MFA_REQUIRED' || error.code === 'RATE_LIMITED' ? 'deny' : 'error';
    entry.errorCode = error.code;
    entry.reasons = [error.message];
    await this.#record(entry);
  }

  #baseEntry(meta: RequestMeta, action: string): Mutable<AuditRecord> {
    return {
      time: new Date().toISOString(), principal: null, source: meta.source, channel: meta.channel, action,
      purpose: null, datasets: [], columns: [], decision: 'error', reasons: [], policyVersion: this.#state.loaded.workspace.policyVersion,
      obligations: [], sqlFingerprint: null, rowsReturned: null, resultDigest: null, errorCode: null,
    };
  }

  /** Writes the audit entry; if it cannot be written the request fails (fail closed). */
  async #record(entry: AuditRecord): Promise<{ auditId: string }> {
    try {
      return await this.#audit.append(entry);
    } catch (err) {
      throw new GatehouseError('AUDIT_UNAVAILABLE', 'the audit log could not record this request, so it was not completed', { hint: 'retry later; operators: check the audit log storage', cause: err });
    }
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The `iss` claim of a JWT, read without verifying (only to choose the verifier). */
function unverifiedIssuer(token: string): string | null {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' ? payload.iss : null;
  } catch {
    return null;
  }
}

function mfaRequired(principalId: string): GatehouseError {
  return new GatehouseError('MFA_REQUIRED', `${principalId} must sign in with multi-factor authentication; API keys and password-only sessions are refused`, {
    hint: 'POST /v1/auth/login with password and TOTP code (gatehouse login), and use the session token',
  });
}

/** Identity library errors → the API's codes, without passing on any secret. */
function identityError(err: unknown, message: string): GatehouseError {
  if (err instanceof GatehouseError) return err;
  if (err instanceof ElevationError) {
    if (err.status === 403) return new GatehouseError('POLICY_DENIED', err.message, { reasons: [err.code] });
    if (err.status === 404) return new GatehouseError('NOT_FOUND', err.message);
    return new GatehouseError('REQUEST_INVALID', err.message, { reasons: [err.code] });
  }
  if (err instanceof IdentityError) {
    if (err.status === 429) return new GatehouseError('RATE_LIMITED', `too many attempts; try again in ${err.retryAfterSeconds ?? 60} s`, { hint: 'wait, then retry' });
    if (err.code === 'IDENTITY_MFA_CODE_REQUIRED') return new GatehouseError('MFA_REQUIRED', err.message, { hint: 'send the current code from your authenticator as "code"' });
    if (err.status === 403 && err.code !== 'IDENTITY_ACCOUNT_DISABLED') return new GatehouseError('POLICY_DENIED', err.message, { reasons: [err.code] });
    if (err.status === 401 || err.status === 403 || err.status === 404) return new GatehouseError('AUTH_INVALID', message, { reasons: [err.code] });
    if (err.status === 400) return new GatehouseError('REQUEST_INVALID', err.message);
    if (err.status === 409) return new GatehouseError('REQUEST_INVALID', err.message);
  }
  return new GatehouseError('INTERNAL', 'identity service error; the request was not completed', { cause: err });
}

function normaliseIp(source: string): string {
  const s = source.startsWith('::ffff:') ? source.slice(7) : source;
  return /^[0-9.]+$/.test(s) || s.includes(':') ? s : '127.0.0.1';
}

export type { AuditDecision };
