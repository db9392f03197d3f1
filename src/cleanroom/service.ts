/**
 * A node's clean-room service: the local operations a member's administrator or analyst
 * runs (create, invite, join, contribute, rules, approve, query, psi, leave, list) and the
 * node-to-node operations its peers call, all over the federation layer (src/federation:
 * pinned Ed25519 node keys, mutual TLS, signed envelopes with replay protection). Nothing a
 * peer sends is trusted for more than its own organisation's data (invariant 12):
 *
 * - the coordinator (the creating node) holds the authoritative collaboration and applies
 *   each change as the authenticated peer that sent it, never as whom the body names;
 * - a member accepts collaboration versions only from the coordinator, and only newer ones;
 * - before releasing a column to the compute node, a member re-checks the analysis against
 *   its own copy of the rules, reads the columns under its own Cedar policy and purpose
 *   (MemberData), and seals them to the compute node's key; under compute.requireAttestation
 *   it first appraises the compute node's fresh evidence, bound to its own nonce, the query
 *   and the sealing key (attested-release.ts), and seals under the key that release yields;
 * - results go only to members with the receive ability, each of which checks that itself.
 *
 * Every step that touches a member's data is one entry in that member's own transparency
 * log (CleanroomAudit); members fetch and verify each other's receipts.
 */
import { createHash, createPublicKey, randomUUID } from 'node:crypto';
import type { KeyPair } from 'paillier-bigint';
import { canonicalize } from '../audit/canonical.ts';
import type { CellValue } from '../engine/engine.ts';
import type { PrivacyGovernance } from '../privacy/release.ts';
import type { BudgetLedger } from '../state/budget-ledger.ts';
import { protectedTable } from './rules/dp-analysis.ts';
import { GatehouseError } from '../errors.ts';
import type { FederationClient, NodeCall, NodeHandler, NodeIdentity, PeerRegistry } from '../federation/index.ts';
import { generatePaillierKeys, PrecomputedRandomisers } from '../psi/paillier.ts';
import { paddedSize } from '../psi/padding.ts';
import { prepareSet, prepareSetInWorkers, type PreparedSet } from '../psi/prepared-set.ts';
import { PsiWorkers } from '../psi/workers.ts';
import { PsiClient, PsiServer } from '../psi/session.ts';
import { PsiRateLimiter, type PsiAllowance } from '../psi/rate-limit.ts';
import type { PsiMode } from '../psi/wire.ts';
import { runOnComputeNode, toCsvTable, type TableColumns, type TablePayload } from './compute.ts';
import { CleanroomError } from './errors.ts';
import { verifyInvitation, signInvitation, type Invitation } from './invitation.ts';
import * as life from './lifecycle.ts';
import { memberOf, requireAbility, type Ability, type Collaboration, type ContributedColumn } from './model.ts';
import { governAnalysis } from './rules/govern-analysis.ts';
import { openColumns, openReleasedKey, sealColumns, type SealingKeys } from './sealed-columns.ts';
import type { AttestationMode } from '../attestation/types.ts';
import { AttestationRefused } from '../attestation/errors.ts';
import { MemberAttestation } from './attested-release.ts';
import { analysisBinding, analysisCodeHash, analysisJobId, sealingKeySpki, type ComputeAttester } from './compute-attester.ts';
import type { CollaborationStore } from './store.ts';
import { findTemplate } from './templates.ts';
import { depositRoomResult } from './result-deposits.ts';

/** Reads this node's own data for a collaboration, under this node's own policy. */
export interface MemberData {
  read(dataset: string, columns: readonly string[], purpose: string, context: { readonly collaborationId: string; readonly requestId: string; /** The node the read is for (the compute node, the PSI peer, or this node). */ readonly peer?: string }): Promise<TableColumns>;
  /**
   * What a read would return changes when this moves (the member's erasure generation): a
   * PSI server built from an earlier read is dropped, so an erased subject is out of the next
   * PSI session as it is out of the next query. Without it, a PSI server lives as long as the
   * collaboration's version.
   */
  version?(): Promise<string>;
}

export interface CleanroomAuditEntry {
  readonly action: string;
  readonly collaborationId: string;
  readonly decision: 'allow' | 'deny' | 'error';
  readonly principal: string;
  readonly purpose?: string | null;
  readonly datasets?: readonly string[];
  readonly columns?: readonly string[];
  readonly reasons?: readonly string[];
  readonly obligations?: readonly string[];
  readonly sqlFingerprint?: string | null;
  readonly resultDigest?: string | null;
  readonly rowsReturned?: number | null;
  readonly errorCode?: string | null;
}

/** This node's transparency log, as the clean room uses it. */
export interface CleanroomAudit {
  record(entry: CleanroomAuditEntry): Promise<string>;
  receipt(auditId: string): Promise<unknown>;
  /** The C2SP vkeys that verify this log's checkpoints. */
  vkeys(): readonly string[];
  /** The recorded entry's reasons, to check a receipt asked for belongs to a collaboration. */
  reasonsOf(auditId: string): readonly string[];
}

export interface CleanroomServiceOptions {
  readonly identity: NodeIdentity;
  readonly peers: PeerRegistry;
  readonly client: FederationClient;
  readonly store: CollaborationStore & { require(id: string): Collaboration };
  readonly audit: CleanroomAudit;
  readonly data: MemberData;
  readonly sealing: SealingKeys;
  readonly now?: () => Date;
  readonly psiAllowance?: PsiAllowance;
  /** Paillier key size for intersection-sum (default 2048). */
  readonly paillierBits?: number;
  readonly statementTimeoutMs?: number;
  /** Progress of long PSI runs (CLI output). */
  readonly onProgress?: (phase: string, done: number, total: number) => void;
  /** This node's privacy-budget ledger, for analyses it computes under a rule that requires DP (each querying member's budget). */
  readonly budgets?: BudgetLedger;
  /**
   * How this node, as a member, checks a compute node's evidence under compute.requireAttestation:
   * `test` admits the local sandbox attester (the sample TEE, with its platform key); default production.
   */
  readonly attestation?: { readonly mode: AttestationMode; readonly samplePlatformKey?: import('node:crypto').KeyObject };
  /** This node's TEE, when it is a compute node that members may require attestation of. */
  readonly attester?: ComputeAttester;
}

export interface QueryOutcome {
  readonly queryId: string;
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly rows: readonly (readonly CellValue[])[];
  readonly rowsSuppressed: number;
  readonly resultDigest: string;
  readonly obligationsApplied: readonly string[];
  /** Audit ids per node: the compute node's and every contributing member's. */
  readonly receipts: Readonly<Record<string, string>>;
  /** Under a rule that requires DP: the noise and the querying member's budget after this release. */
  readonly privacy?: PrivacyGovernance;
}

export interface PsiOutcome {
  readonly mode: PsiMode;
  readonly cardinality: number;
  readonly sum: string | null;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly auditId: string;
}

function digest(value: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalize(value)).digest('hex')}`;
}

function fingerprint(text: string): string {
  return createHash('sha256').update(text.trim().replace(/\s+/g, ' ')).digest('hex');
}

const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');
/** A PSI message: bytes over the binary node channel (CBOR), base64 text over JSON. */
const unb64 = (s: unknown): Uint8Array => {
  if (s instanceof Uint8Array) return s;
  if (typeof s !== 'string' || s.length > 200_000_000) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'a PSI message must be bytes or base64 text');
  return new Uint8Array(Buffer.from(s, 'base64'));
};

function body<T>(call: NodeCall): T {
  if (typeof call.body !== 'object' || call.body === null) throw new GatehouseError('REQUEST_INVALID', 'a clean-room message is a JSON object');
  return call.body as T;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 100_000) throw new GatehouseError('REQUEST_INVALID', `${what} is required`);
  return v;
}

/** Tables of at least this many elements are hashed on worker threads (≈ 2 s of one core's hashing below it). */
export const PSI_WORKER_THRESHOLD = 8192;

export class CleanroomService {
  readonly #o: CleanroomServiceOptions;
  readonly #now: () => Date;
  readonly #psiLimiter: PsiRateLimiter;
  readonly #psiServers = new Map<string, PsiServer>();
  /** Hash-to-curve threads for large tables, started on first need (hashing 1M elements takes minutes of CPU). */
  #psiWorkers: PsiWorkers | null = null;
  /** Per large sum server: the store its sessions' randomisers are computed into ahead. */
  readonly #psiRandomisers = new WeakMap<PsiServer, { keys: KeyPair; store: PrecomputedRandomisers; size: number }>();
  readonly #attestation: MemberAttestation;
  #paillier: Promise<KeyPair> | null = null;

  constructor(options: CleanroomServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    const a = options.attestation;
    this.#attestation = new MemberAttestation({ mode: a?.mode ?? 'production', ...(a?.samplePlatformKey ? { samplePlatformKey: a.samplePlatformKey } : {}), now: this.#now });
    this.#psiLimiter = new PsiRateLimiter(options.psiAllowance, () => this.#now().getTime());
  }

  get nodeId(): string { return this.#o.identity.nodeId; }

  #audit(e: Omit<CleanroomAuditEntry, 'principal'> & { principal?: string }): Promise<string> {
    return this.#o.audit.record({ principal: `node:${this.nodeId}`, ...e, reasons: [`collaboration ${e.collaborationId}`, ...(e.reasons ?? [])] });
  }

  /** Runs a step and leaves one audit entry whatever happens (fail closed: no entry, no step). */
  async #audited<T>(base: Omit<CleanroomAuditEntry, 'decision'>, run: () => Promise<{ value: T; extra?: Partial<CleanroomAuditEntry> }>): Promise<T & { auditId?: string }> {
    let out: { value: T; extra?: Partial<CleanroomAuditEntry> };
    try {
      out = await run();
    } catch (err) {
      const e = err instanceof GatehouseError ? err : new GatehouseError('INTERNAL', 'the clean-room step failed; nothing was released', { cause: err });
      await this.#audit({ ...base, decision: e.outcome, errorCode: e.detail ?? e.code, reasons: [...(base.reasons ?? []), e.message] });
      throw e;
    }
    const auditId = await this.#audit({ ...base, ...out.extra, decision: 'allow' });
    return (typeof out.value === 'object' && out.value !== null ? { ...out.value, auditId } : out.value) as T & { auditId?: string };
  }

  // ───────────── local operations (this node's administrator or analyst) ─────────────

  list(): Collaboration[] { return this.#o.store.list(); }
  get(id: string): Collaboration { return this.#o.store.require(id); }
  pendingInvitations(): Invitation[] { return this.#o.store.invitations() as Invitation[]; }

  /** `compute.requireAttestation`: members release columns only to an attested compute node (fixed at creation). */
  async create(input: { id?: string; name: string; purpose: string; compute?: unknown }): Promise<Collaboration> {
    const c = life.createCollaboration({ ...input, creator: this.nodeId, creatorKey: this.#o.identity.publicKey, sealingKey: this.#sealingJwk() });
    if (this.#o.store.get(c.id)) throw new CleanroomError('CLEANROOM_CONFLICT', `collaboration "${c.id}" already exists`);
    await this.#audited({ action: 'cleanroom.create', collaborationId: c.id, principal: `node:${this.nodeId}`, purpose: c.purpose }, async () => {
      this.#o.store.put(c);
      return { value: {} };
    });
    return c;
  }

  #sealingJwk(): { kty: string; crv: string; x: string } {
    const j = this.#o.sealing.publicJwk;
    return { kty: String(j.kty), crv: String(j.crv), x: String(j.x) };
  }

  /** Signs an invitation and delivers it to the invitee's node. */
  async invite(collaborationId: string, invitee: string, abilities: readonly Ability[], ttlHours = 72): Promise<Invitation> {
    const pin = this.#o.peers.get(invitee);
    const c = this.#o.store.require(collaborationId);
    return this.#audited({ action: 'cleanroom.invite', collaborationId, principal: `node:${this.nodeId}`, reasons: [`invitee ${invitee}`, `abilities ${abilities.join(',')}`] }, async () => {
      const next = life.addInvitee(c, this.nodeId, { nodeId: invitee, publicKey: pin.publicKey }, abilities);
      const now = this.#now();
      const invitation = signInvitation({
        collaborationId, name: c.name, purpose: c.purpose, inviter: this.nodeId, invitee, inviteeKey: pin.publicKey, abilities: [...abilities],
        computeNode: c.computeNode, issuedAt: now.toISOString(), expiresAt: new Date(now.getTime() + ttlHours * 3_600_000).toISOString(),
      }, this.#o.identity.privateKey);
      this.#o.store.put(next);
      await this.#o.client.call(invitee, 'cleanroom-invite', { invitation });
      await this.#broadcast(next);
      return { value: invitation };
    });
  }

  /** Accepts a received invitation: the coordinator activates this node and sends the collaboration. */
  async join(collaborationId: string): Promise<Collaboration> {
    const inv = this.#o.store.takeInvitation(collaborationId) as Invitation | null;
    if (!inv) throw new CleanroomError('CLEANROOM_NOT_FOUND', `no invitation to "${collaborationId}" has been received`, 'ask the creator to invite this node');
    return this.#audited({ action: 'cleanroom.join', collaborationId, principal: `node:${this.nodeId}`, purpose: inv.purpose, reasons: [`invited by ${inv.inviter}`, `abilities ${inv.abilities.join(',')}`] }, async () => {
      const { result } = await this.#o.client.call<{ collaboration: Collaboration }>(inv.inviter, 'cleanroom-join', { invitation: inv, sealingKey: this.#sealingJwk() });
      this.#acceptVersion(result.collaboration, inv.inviter);
      this.#o.store.dropInvitation(collaborationId);
      return { value: result.collaboration };
    });
  }

  /** A change this node makes: applied locally when it coordinates, else sent to the coordinator. */
  async #change(collaborationId: string, change: Record<string, unknown>, action: string, reasons: string[]): Promise<Collaboration> {
    const c = this.#o.store.require(collaborationId);
    return this.#audited({ action, collaborationId, principal: `node:${this.nodeId}`, reasons }, async () => {
      if (c.creator === this.nodeId) return { value: await this.#apply(c, this.nodeId, change) };
      const { result } = await this.#o.client.call<{ collaboration: Collaboration }>(c.creator, 'cleanroom-change', { collaborationId, change });
      this.#acceptVersion(result.collaboration, c.creator, true);
      return { value: result.collaboration };
    });
  }

  contribute(collaborationId: string, input: { table: string; dataset: string; columns: readonly ContributedColumn[]; rule: unknown }): Promise<Collaboration> {
    return this.#change(collaborationId, { kind: 'contribute', ...input }, 'cleanroom.contribute', [`table ${input.table} from dataset ${input.dataset}`]);
  }

  setRule(collaborationId: string, table: string, rule: unknown): Promise<Collaboration> {
    return this.#change(collaborationId, { kind: 'rules', table, rule }, 'cleanroom.rules', [`table ${table}`, `rule ${digest(rule)}`]);
  }

  proposeTemplate(collaborationId: string, name: string, text: string): Promise<Collaboration> {
    return this.#change(collaborationId, { kind: 'template', name, text }, 'cleanroom.template', [`template ${name}`, `text ${digest(text)}`]);
  }

  approve(collaborationId: string, name: string, hash?: string): Promise<Collaboration> {
    const t = findTemplate(this.#o.store.require(collaborationId), name);
    return this.#change(collaborationId, { kind: 'approve', name, hash: hash ?? t.hash }, 'cleanroom.approve', [`template ${name}@${hash ?? t.hash}`]);
  }

  async leave(collaborationId: string): Promise<Collaboration> {
    const c = this.#o.store.require(collaborationId);
    const kind = c.creator === this.nodeId ? 'end' : 'leave';
    return this.#change(collaborationId, { kind }, kind === 'end' ? 'cleanroom.end' : 'cleanroom.leave', []);
  }

  async #apply(c: Collaboration, by: string, change: Record<string, unknown>): Promise<Collaboration> {
    let next: Collaboration;
    switch (change.kind) {
      case 'contribute':
        next = life.contribute(c, by, { table: str(change.table, 'table'), dataset: str(change.dataset, 'dataset'), columns: change.columns as ContributedColumn[], rule: change.rule });
        break;
      case 'rules': next = life.setRule(c, by, str(change.table, 'table'), change.rule); break;
      case 'template': next = life.proposeTemplate(c, by, str(change.name, 'name'), str(change.text, 'text')); break;
      case 'approve': next = life.approveTemplate(c, by, str(change.name, 'name'), str(change.hash, 'hash')); break;
      case 'leave': next = life.leave(c, by); break;
      case 'end': next = life.end(c, by); break;
      default: throw new GatehouseError('REQUEST_INVALID', 'unknown collaboration change');
    }
    this.#o.store.put(next);
    await this.#broadcast(next, by);
    return next;
  }

  /** Sends a new version to every other member (a member that left gets the version that removes it). */
  async #broadcast(c: Collaboration, except?: string): Promise<void> {
    const targets = c.members.filter((m) => m.nodeId !== this.nodeId && m.nodeId !== except && m.status !== 'invited');
    await Promise.all(targets.map(async (m) => {
      try {
        await this.#o.client.call(m.nodeId, 'cleanroom-sync', { collaboration: c });
      } catch {
        // An unreachable member catches up with the next version it receives; the version it
        // misses cannot widen anyone's access, since every data release re-checks its own copy.
      }
    }));
  }

  /**
   * Keeps a version the coordinator sent. The coordinator is trusted for the collaboration's
   * shape, never for this node's own parts: unless this node asked for the change itself
   * (`own`), its tables and rules and its template approvals must be as this node last had
   * them — a table may only disappear (leaving narrows access, it never widens it).
   */
  #acceptVersion(c: unknown, from: string, own = false): void {
    const next = c as Collaboration;
    if (typeof next !== 'object' || next === null || typeof next.id !== 'string' || typeof next.version !== 'number' || !Array.isArray(next.members) || !Array.isArray(next.contributions) || !Array.isArray(next.templates)) {
      throw new GatehouseError('REQUEST_INVALID', 'a collaboration version is malformed');
    }
    if (next.creator !== from) throw new CleanroomError('CLEANROOM_CONFLICT', 'only the coordinator sends collaboration versions');
    const mine = this.#o.store.get(next.id);
    if (mine && mine.creator !== from) throw new CleanroomError('CLEANROOM_CONFLICT', 'only the coordinator sends collaboration versions');
    if (mine && mine.version >= next.version) return;
    // What this node joined under about the compute node (attestation) never changes.
    if (mine && canonicalize(mine.compute ?? null) !== canonicalize(next.compute ?? null)) throw new CleanroomError('CLEANROOM_CONFLICT', 'the coordinator sent a version that changes the compute node\'s attestation requirement', 'the requirement is fixed when the collaboration is created; start a new collaboration to change it');
    if (mine && !own) {
      for (const t of next.contributions) {
        if (t.owner !== this.nodeId) continue;
        const before = mine.contributions.find((x) => x.table === t.table && x.owner === this.nodeId);
        if (!before || canonicalize(before) !== canonicalize(t)) throw new CleanroomError('CLEANROOM_CONFLICT', `the coordinator sent a version that changes this node's table "${t.table}"`, 'only this node changes its own tables and rules');
      }
      for (const t of next.templates) {
        const was = mine.templates.find((x) => x.name === t.name)?.approvals[this.nodeId];
        if (t.approvals[this.nodeId] !== undefined && t.approvals[this.nodeId] !== was) throw new CleanroomError('CLEANROOM_CONFLICT', `the coordinator sent an approval of "${t.name}" this node did not give`);
      }
    }
    this.#o.store.put(next);
  }

  /**
   * Runs an analysis. The compute node asks every contributing member for the columns it
   * needs, runs the governed analysis, deletes the columns, and sends the result to the
   * members that may receive it.
   */
  async query(collaborationId: string, input: { sql?: string; template?: string; params?: readonly string[] }): Promise<QueryOutcome> {
    const c = this.#o.store.require(collaborationId);
    requireAbility(c, this.nodeId, 'query');
    requireAbility(c, this.nodeId, 'receive');
    if (c.computeNode !== this.nodeId) {
      const { result } = await this.#o.client.call<QueryOutcome>(c.computeNode, 'cleanroom-query', { collaborationId, ...input }, randomUUID(), 120_000);
      return result;
    }
    return this.#runAsCompute(c, this.nodeId, input);
  }

  async #runAsCompute(c: Collaboration, querier: string, input: { sql?: string; template?: string; params?: readonly string[] }): Promise<QueryOutcome> {
    const queryId = randomUUID();
    const template = input.template ? findTemplate(c, input.template) : null;
    const sql = template?.text ?? input.sql ?? '';
    const base = { action: 'cleanroom.query', collaborationId: c.id, principal: `node:${querier}`, purpose: c.purpose, sqlFingerprint: fingerprint(sql), reasons: [`query ${queryId}`, `compute node ${this.nodeId}`] };
    return this.#audited(base, async () => {
      requireAbility(c, querier, 'query');
      const analysis = governAnalysis(c, { sql, ...(input.params ? { params: input.params } : {}), template, querier });
      // Refused before any member releases a column: a DP rule this node cannot honour.
      if (protectedTable(c, analysis.bound.datasets, querier) && !this.#o.budgets) {
        throw new CleanroomError('CLEANROOM_RULE_VIOLATION', 'a table of this analysis requires differential privacy, and this compute node keeps no privacy budgets', 'run the compute node as a served node (its state keeps the budget ledger)');
      }
      const receipts: Record<string, string> = {};
      const tables = new Map<string, TablePayload>();
      // Ask every owner for its columns (its own checks run there), then run here. The query id
      // is the request id of every node-to-node call it makes, so an auditor follows it through
      // each member's log.
      const owners = new Map<string, string[]>();
      for (const t of analysis.bound.datasets) {
        const owner = c.contributions.find((x) => x.table === t)!.owner;
        owners.set(owner, [...(owners.get(owner) ?? []), t]);
      }
      const required = c.compute?.requireAttestation ?? null;
      if (required && [...owners.keys()].some((o) => o !== this.nodeId) && this.#o.attester?.format !== required.format) {
        throw new AttestationRefused(`members release columns only to a compute node attested by ${required.format} evidence, and this node has no such attester`, 'ATTESTATION_NO_ATTESTER', ['the compute node cannot attest']);
      }
      await Promise.all([...owners].map(async ([owner, ts]) => {
        const request = { collaborationId: c.id, version: c.version, queryId, sql, params: input.params ?? null, template: template?.name ?? null, querier, tables: ts };
        let r: { sealed: Record<string, string>; key?: string; auditId: string };
        if (owner === this.nodeId) r = await this.#releaseColumns(this.nodeId, request);
        else {
          const attestation = required ? await this.#attest(owner, c.id, queryId, sql, input.params ?? null) : null;
          r = (await this.#o.client.call<typeof r>(owner, 'cleanroom-columns', { ...request, ...(attestation ? { attestation } : {}) }, queryId, 120_000)).result;
        }
        receipts[owner] = r.auditId;
        // Attested: the columns are sealed under a key the member's broker released to this node's sealing key.
        const opener = typeof r.key === 'string' ? await openReleasedKey(r.key, this.#o.sealing, analysisJobId(c.id, queryId)) : this.#o.sealing;
        try {
          for (const t of ts) tables.set(t, await openColumns(str(r.sealed[t], 'sealed columns'), opener, { collaborationId: c.id, queryId, table: t }));
        } finally {
          if (opener instanceof Uint8Array) opener.fill(0);
        }
      }));
      // Leaving mid-query revokes at once: re-read the collaboration before computing.
      const current = this.#o.store.require(c.id);
      for (const t of analysis.bound.datasets) {
        if (!current.contributions.some((x) => x.table === t)) throw new CleanroomError('CLEANROOM_ENDED', `table "${t}" left the collaboration during the query; its columns were deleted unused`, 'run the analysis again without it');
      }
      const out = await runOnComputeNode({ collaboration: current, sql, ...(input.params ? { params: input.params } : {}), template, querier, tables, timeoutMs: this.#o.statementTimeoutMs ?? 20_000, now: this.#now, ...(this.#o.budgets ? { budgets: this.#o.budgets } : {}) });
      receipts[this.nodeId] = await this.#audit({ action: 'cleanroom.delete', collaborationId: c.id, decision: 'allow', datasets: out.deletion.tables, rowsReturned: out.deletion.rows, reasons: [`query ${queryId}`, `deleted at ${out.deletion.deletedAt}`, ...Object.entries(out.deletion.digests).map(([t, d]) => `${t} held sha256:${d}`)] });
      const resultDigest = digest({ columns: out.release.columns, rows: out.release.rows });
      const outcome: QueryOutcome = { queryId, columns: out.release.columns, rows: out.release.rows, rowsSuppressed: out.release.rowsSuppressed, resultDigest, obligationsApplied: out.applied, receipts, ...(out.release.privacy ? { privacy: out.release.privacy } : {}) };
      await depositRoomResult(this, current, querier, analysis.bound.datasets, outcome);
      // Other receivers get the result; each checks its own copy of the abilities.
      const receivers = current.members.filter((m) => m.status === 'active' && m.abilities.includes('receive') && m.nodeId !== this.nodeId && m.nodeId !== querier);
      await Promise.all(receivers.map(async (m) => {
        try { await this.#o.client.call(m.nodeId, 'cleanroom-result', { collaborationId: c.id, ...outcome }, queryId); } catch { /* logged by the receiver when it arrives */ }
      }));
      return { value: outcome, extra: { resultDigest, rowsReturned: out.release.rows.length, obligations: out.applied, datasets: analysis.bound.datasets, columns: analysis.bound.columns } };
    });
  }

  /** The compute node's evidence for one member and query: the member's nonce, this node's sealing key, the analysis. */
  async #attest(owner: string, collaborationId: string, queryId: string, sql: string, params: readonly string[] | null): Promise<{ challengeId: string; evidence: string }> {
    const { result } = await this.#o.client.call<{ challengeId: string; nonce: string }>(owner, 'cleanroom-attest', { collaborationId, queryId }, queryId);
    const evidence = await this.#o.attester!.attest({
      nonce: new Uint8Array(Buffer.from(str(result.nonce, 'nonce'), 'base64url')),
      publicKey: sealingKeySpki(this.#o.sealing.publicJwk),
      userData: analysisBinding(collaborationId, queryId, sql, params),
    });
    return { challengeId: str(result.challengeId, 'challengeId'), evidence: Buffer.from(evidence).toString('base64') };
  }

  /** A member's side of a query: re-check, read under its own policy, seal to the compute node. */
  async #releaseColumns(requester: string, r: { collaborationId: string; queryId: string; sql: string; params: readonly string[] | null; template: string | null; querier: string; tables: readonly string[]; attestation?: { challengeId?: unknown; evidence?: unknown } }): Promise<{ sealed: Record<string, string>; key?: string; auditId: string }> {
    const c = this.#o.store.require(r.collaborationId);
    const base = { action: 'cleanroom.release-columns', collaborationId: c.id, principal: `node:${requester}`, purpose: c.purpose, sqlFingerprint: fingerprint(r.sql), reasons: [`query ${r.queryId}`, `for ${r.querier}`] };
    const out = await this.#audited(base, async () => {
      if (requester !== c.computeNode) throw new CleanroomError('CLEANROOM_ABILITY_MISSING', `node "${requester}" is not this collaboration's compute node`);
      requireAbility(c, r.querier, 'query');
      const template = r.template ? findTemplate(c, r.template) : null;
      // The member's own check of the analysis against its own copy of the rules.
      const analysis = governAnalysis(c, { sql: r.sql, ...(r.params ? { params: r.params } : {}), template, querier: r.querier });
      const compute = c.members.find((m) => m.nodeId === c.computeNode);
      if (!compute?.sealingKey) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'the compute node has published no sealing key');
      for (const t of r.tables) {
        const contribution = c.contributions.find((x) => x.table === t);
        if (!contribution || contribution.owner !== this.nodeId) throw new CleanroomError('CLEANROOM_ABILITY_MISSING', `table "${t}" is not this node's contribution`);
      }
      // Under compute.requireAttestation (this node's own copy), the compute node's evidence is
      // appraised before a single row is read; columns that stay on this node need none.
      const required = requester === this.nodeId ? null : c.compute?.requireAttestation ?? null;
      let attested: Awaited<ReturnType<MemberAttestation['release']>> | null = null;
      if (required) {
        const a = r.attestation;
        if (typeof a?.challengeId !== 'string' || typeof a.evidence !== 'string' || a.evidence.length === 0) {
          throw new AttestationRefused('this collaboration releases columns only to an attested compute node, and no evidence came with the request', 'ATTESTATION_MISSING', ['the compute node presented no evidence']);
        }
        if (a.evidence.length > 200_000) throw new GatehouseError('REQUEST_INVALID', 'evidence must be base64 of at most 150 kB');
        attested = await this.#attestation.release(required, {
          challengeId: a.challengeId, jobId: analysisJobId(c.id, r.queryId), codeHash: analysisCodeHash(r.sql, r.params), tables: r.tables,
          evidence: new Uint8Array(Buffer.from(a.evidence, 'base64')), sealingKeySpki: sealingKeySpki(compute.sealingKey),
        });
      }
      const sealed: Record<string, string> = {};
      const columns: string[] = [];
      try {
        for (const t of r.tables) {
          const contribution = c.contributions.find((x) => x.table === t)!;
          const needed = analysis.columnsNeeded.get(t) ?? [];
          const data = await this.#o.data.read(contribution.dataset, needed, c.purpose, { collaborationId: c.id, requestId: r.queryId, peer: requester });
          sealed[t] = await sealColumns(toCsvTable(contribution.columns.map((x) => x.name), data), attested ? attested.key : { ...compute.sealingKey }, { collaborationId: c.id, queryId: r.queryId, table: t });
          columns.push(...needed.map((n) => `${t}.${n}`));
        }
      } finally {
        attested?.key.fill(0);
      }
      const proof = attested ? [`attested ${attested.format} measurement ${attested.measurement.slice(0, 16)}…, evidence ${Math.round(attested.ageSeconds)} s old, sealed to the attested key`] : [];
      return { value: { sealed, ...(attested ? { key: attested.wrapped } : {}) }, extra: { columns, datasets: r.tables, reasons: [...base.reasons, ...proof] } };
    });
    return { sealed: out.sealed, ...(out.key ? { key: out.key } : {}), auditId: out.auditId! };
  }

  /** Verifies another member's receipt for a step of this collaboration against its log keys. */
  async fetchReceipt(collaborationId: string, member: string, auditId: string): Promise<{ receipt: unknown; vkeys: readonly string[] }> {
    const c = this.#o.store.require(collaborationId);
    if (memberOf(c, this.nodeId) === null) throw new CleanroomError('CLEANROOM_NOT_MEMBER', 'only members fetch receipts');
    if (member === this.nodeId) {
      if (!this.#o.audit.reasonsOf(auditId).includes(`collaboration ${c.id}`)) throw new GatehouseError('NOT_FOUND', 'no such entry of this collaboration');
      return { receipt: await this.#o.audit.receipt(auditId), vkeys: this.#o.audit.vkeys() };
    }
    const { result } = await this.#o.client.call<{ receipt: unknown; vkeys: string[] }>(member, 'cleanroom-receipt', { collaborationId, auditId });
    return result;
  }

  // ───────────── PSI between two members ─────────────

  async #paillierKeys(): Promise<KeyPair> {
    if (this.#paillier === null) {
      this.#paillier = generatePaillierKeys(this.#o.paillierBits ?? 2048);
    }
    return this.#paillier;
  }

  /**
   * Private set intersection of this node's table column with a peer's contributed table:
   * cardinality (how many shared), intersection (which of ours are shared; only against a
   * list-rule table) or sum (the total of the peer's value column over the shared elements).
   */
  async psi(collaborationId: string, input: { table: string; column: string; peerTable: string; mode: PsiMode; valueColumn?: string }): Promise<PsiOutcome> {
    const c = this.#o.store.require(collaborationId);
    requireAbility(c, this.nodeId, 'query');
    const mine = c.contributions.find((t) => t.table === input.table && t.owner === this.nodeId);
    if (!mine || !mine.rule.joinColumns.includes(input.column)) throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `PSI runs on a join column of one of this node's tables ("${input.table}.${input.column}" is not one)`);
    const theirs = c.contributions.find((t) => t.table === input.peerTable);
    if (!theirs || theirs.owner === this.nodeId) throw new CleanroomError('CLEANROOM_NOT_FOUND', `"${input.peerTable}" is not another member's table`);
    const base = { action: 'cleanroom.psi', collaborationId, principal: `node:${this.nodeId}`, purpose: c.purpose, datasets: [input.table], columns: [`${input.table}.${input.column}`], reasons: [`mode ${input.mode}`, `with ${theirs.owner}:${input.peerTable}`, 'role client'] };
    return this.#audited(base, async () => {
      const data = await this.#o.data.read(mine.dataset, [input.column], c.purpose, { collaborationId, requestId: randomUUID(), peer: this.nodeId });
      const set = await this.#prepare(data.rows.map((r) => String(r[0])), { onProgress: (d) => this.#o.onProgress?.('hash to curve', d, data.rows.length) });
      const client = new PsiClient(set, input.mode, this.#o.onProgress ? { onProgress: this.#o.onProgress } : {});
      let sent = 0, received = 0;
      const call = async (message: Uint8Array): Promise<Uint8Array | null> => {
        sent += message.length;
        // Binary body (application/cbor): 32-byte points travel as bytes, not base64.
        const { result } = await this.#o.client.callBinary<{ reply: Uint8Array | string | null }>(theirs.owner, 'cleanroom-psi', {
          collaborationId, table: input.peerTable, mode: input.mode, valueColumn: input.valueColumn ?? null, message,
        }, randomUUID(), 600_000);
        if (result.reply === null) return null;
        const reply = unb64(result.reply);
        received += reply.length;
        return reply;
      };
      let reply: Uint8Array | null = null;
      for (const m of client.hello(16_384)) reply = await call(m);
      if (reply === null) throw new CleanroomError('CLEANROOM_CONFLICT', 'the peer did not answer the PSI hello');
      const r = client.receiveReply(reply);
      let sum: string | null = null;
      if (r.sumMessage) {
        const result = await call(r.sumMessage);
        sum = client.receiveResult(result!).sum.toString();
      }
      const value: PsiOutcome = { mode: input.mode, cardinality: r.cardinality, sum, bytesSent: sent, bytesReceived: received, auditId: '' };
      return { value, extra: { reasons: [...base.reasons, `cardinality ${r.cardinality}`, `bytes ${sent}+${received}`] } };
    }).then((v) => ({ ...v, auditId: v.auditId ?? '' }));
  }

  /**
   * A table hashed to the curve. From PSI_WORKER_THRESHOLD elements on, the hashing runs on
   * worker threads (src/psi/workers.ts: the same code, the same points), so the node's event
   * loop keeps answering its other requests while a large table is hashed.
   */
  async #prepare(elements: readonly string[], options: { values?: readonly bigint[]; onProgress?: (done: number) => void } = {}): Promise<PreparedSet> {
    if (elements.length < PSI_WORKER_THRESHOLD) return prepareSet(elements, options);
    this.#psiWorkers ??= PsiWorkers.start();
    return prepareSetInWorkers(elements, this.#psiWorkers, options);
  }

  async #psiServe(peer: string, b: { collaborationId: string; table: string; mode: PsiMode; valueColumn: string | null; message: string | Uint8Array }): Promise<{ reply: string | Uint8Array | null }> {
    const c = this.#o.store.require(str(b.collaborationId, 'collaborationId'));
    requireAbility(c, peer, 'query');
    const t = c.contributions.find((x) => x.table === b.table && x.owner === this.nodeId);
    if (!t) throw new CleanroomError('CLEANROOM_NOT_FOUND', `"${b.table}" is not this node's table`);
    if (!['cardinality', 'intersection', 'sum'].includes(b.mode)) throw new GatehouseError('REQUEST_INVALID', 'unknown PSI mode');
    if (b.mode === 'intersection' && t.rule.kind !== 'list') throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `table "${t.table}" does not list overlap rows, so PSI may reveal only the size of the overlap`, 'use mode cardinality or sum');
    if (b.mode === 'sum') {
      const v = b.valueColumn;
      if (t.rule.kind !== 'aggregation' || !t.rule.aggregateColumns.some((a) => a.column === v && a.functions.includes('sum'))) {
        throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `the rule of "${t.table}" does not allow sum(${v ?? '?'})`, 'name a column the rule lets be summed');
      }
    }
    const column = t.rule.joinColumns[0];
    if (!column) throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `table "${t.table}" has no join column`);
    const base = `${c.id}\u0000${t.table}\u0000${b.mode}\u0000${b.valueColumn ?? ''}\u0000${c.version}`;
    const key = `${base}\u0000${this.#o.data.version ? await this.#o.data.version() : ''}`;
    let server = this.#psiServers.get(key);
    if (!server) {
      // The data moved on (an erasure): what was hashed from the earlier read is forgotten. A
      // session begun on it fails on its next message (unknown session) and is run again.
      for (const k of [...this.#psiServers.keys()]) if (k.startsWith(`${base}\u0000`)) this.#psiServers.delete(k);
      const cols = b.mode === 'sum' ? [column, b.valueColumn!] : [column];
      const data = await this.#o.data.read(t.dataset, cols, c.purpose, { collaborationId: c.id, requestId: randomUUID(), peer });
      const elements = data.rows.map((r) => String(r[0]));
      const set: PreparedSet = b.mode === 'sum'
        ? await this.#prepare(elements, { values: data.rows.map((r) => { const n = Number(r[1]); return BigInt(Number.isFinite(n) && n > 0 ? Math.round(n) : 0); }) })
        : await this.#prepare(elements);
      const paillier = b.mode === 'sum' ? await this.#paillierKeys() : null;
      const randomisers = paillier !== null && set.size >= PSI_WORKER_THRESHOLD ? new PrecomputedRandomisers(paillier.publicKey.n) : null;
      server = new PsiServer(set, {
        modes: [b.mode], ...(paillier ? { paillier } : {}), ...(randomisers ? { randomisers } : {}),
        admit: (_id, _mode, n) => this.#psiLimiter.charge(peer, n),
      });
      // A large sum session encrypts one value per padded element with a fresh randomiser
      // (r^n mod n², milliseconds each): one session's worth is computed on the worker threads
      // with the table's hashing, so the encryption that answers it does not hold the event
      // loop for minutes; the store is refilled after each answered session (below).
      if (paillier && randomisers) {
        await (this.#psiWorkers ??= PsiWorkers.start()).randomisers(paillier, paddedSize(set.size), { into: randomisers });
        this.#psiRandomisers.set(server, { keys: paillier, store: randomisers, size: set.size });
      }
      this.#psiServers.set(key, server);
    }
    const message = unb64(b.message);
    const isFirst = message.length > 28 && message[5] === 1 && new DataView(message.buffer, message.byteOffset).getUint32(23) === 1;
    try {
      const reply = server.receive(message);
      const pre = reply !== null && message[5] === 1 ? this.#psiRandomisers.get(server) : undefined;
      if (pre) {
        // Refilled only after a session the rate limit admitted and the server answered, so a
        // peer cannot make this node compute randomisers by opening sessions it never completes.
        const need = paddedSize(pre.size) - pre.store.available;
        if (need > 0) void this.#psiWorkers?.randomisers(pre.keys, need, { into: pre.store }).catch(() => undefined);
      }
      if (isFirst || (reply !== null && (b.mode !== 'sum' || message[5] === 3))) {
        await this.#audit({ action: 'cleanroom.psi', collaborationId: c.id, decision: 'allow', principal: `node:${peer}`, purpose: c.purpose, datasets: [t.table], columns: [`${t.table}.${column}`], reasons: [`mode ${b.mode}`, 'role server', reply === null ? 'session opened' : 'answered'] });
      }
      // Answer in the form asked: bytes to a binary request, base64 to a JSON one.
      return { reply: reply === null ? null : b.message instanceof Uint8Array ? reply : b64(reply) };
    } catch (err) {
      const e = err instanceof GatehouseError ? err : new GatehouseError('INTERNAL', 'PSI failed', { cause: err });
      await this.#audit({ action: 'cleanroom.psi', collaborationId: c.id, decision: e.outcome, principal: `node:${peer}`, errorCode: e.detail ?? e.code, reasons: [`mode ${b.mode}`, 'role server', e.message] });
      throw e;
    }
  }

  // ───────────── node-to-node operations ─────────────

  handlers(): Record<string, NodeHandler> {
    return {
      'cleanroom-invite': async (call) => {
        const { invitation } = body<{ invitation: unknown }>(call);
        const inv = verifyInvitation(invitation, call.peer.key, { nodeId: this.nodeId, publicKey: this.#o.identity.publicKey }, this.#now());
        if (inv.inviter !== call.peer.nodeId) throw new CleanroomError('CLEANROOM_INVITATION_INVALID', 'an invitation is delivered by the node that signed it');
        this.#o.store.putInvitation(inv.collaborationId, inv);
        await this.#audit({ action: 'cleanroom.invitation', collaborationId: inv.collaborationId, decision: 'allow', principal: `node:${call.peer.nodeId}`, purpose: inv.purpose, reasons: [`abilities ${inv.abilities.join(',')}`, `expires ${inv.expiresAt}`] });
        return { received: true };
      },
      'cleanroom-join': async (call) => {
        const b = body<{ invitation: Invitation; sealingKey: unknown }>(call);
        // This node signed it: verify with its own key, addressed to the authenticated peer.
        const inv = verifyInvitation(b.invitation, createPublicKey(this.#o.identity.privateKey), { nodeId: call.peer.nodeId, publicKey: call.peer.publicKey }, this.#now());
        if (inv.inviter !== this.nodeId) throw new CleanroomError('CLEANROOM_INVITATION_INVALID', 'this node did not issue that invitation');
        if (!this.#o.store.useNonce(inv.nonce)) throw new CleanroomError('CLEANROOM_INVITATION_INVALID', 'that invitation was already used');
        const c = this.#o.store.require(inv.collaborationId);
        const sk = b.sealingKey as { kty?: unknown; crv?: unknown; x?: unknown } | null;
        const sealingKey = sk && sk.kty === 'OKP' && sk.crv === 'X25519' && typeof sk.x === 'string' ? { kty: 'OKP', crv: 'X25519', x: sk.x } : null;
        const next = life.acceptInvitation(c, call.peer.nodeId, call.peer.publicKey, sealingKey);
        this.#o.store.put(next);
        await this.#audit({ action: 'cleanroom.member-joined', collaborationId: c.id, decision: 'allow', principal: `node:${call.peer.nodeId}`, reasons: [`version ${next.version}`] });
        await this.#broadcast(next, call.peer.nodeId);
        return { collaboration: next };
      },
      'cleanroom-sync': async (call) => {
        const { collaboration } = body<{ collaboration: Collaboration }>(call);
        const id = typeof collaboration?.id === 'string' ? collaboration.id : '';
        const before = this.#o.store.get(id)?.version ?? 0;
        try {
          this.#acceptVersion(collaboration, call.peer.nodeId);
        } catch (err) {
          const e = err instanceof GatehouseError ? err : new GatehouseError('INTERNAL', 'the version could not be kept', { cause: err });
          if (id) await this.#audit({ action: 'cleanroom.sync', collaborationId: id, decision: e.outcome, principal: `node:${call.peer.nodeId}`, errorCode: e.detail ?? e.code, reasons: [e.message] });
          throw e;
        }
        const after = this.#o.store.get(id)?.version ?? 0;
        if (after > before) {
          await this.#audit({ action: 'cleanroom.sync', collaborationId: id, decision: 'allow', principal: `node:${call.peer.nodeId}`, reasons: [`version ${after}`, `digest ${digest(collaboration)}`, `status ${collaboration.status}`] });
        }
        return { version: after };
      },
      'cleanroom-change': async (call) => {
        const b = body<{ collaborationId: string; change: Record<string, unknown> }>(call);
        const c = this.#o.store.require(str(b.collaborationId, 'collaborationId'));
        if (c.creator !== this.nodeId) throw new CleanroomError('CLEANROOM_CONFLICT', 'this node does not coordinate that collaboration');
        const before = { action: `cleanroom.${String(b.change?.kind ?? 'change')}`, collaborationId: c.id, principal: `node:${call.peer.nodeId}`, reasons: ['applied as coordinator'] };
        return this.#audited(before, async () => ({ value: { collaboration: await this.#apply(c, call.peer.nodeId, b.change ?? {}) } }));
      },
      'cleanroom-columns': async (call) => this.#releaseColumns(call.peer.nodeId, body(call)),
      'cleanroom-attest': async (call) => {
        const b = body<{ collaborationId: string; queryId: string }>(call);
        const c = this.#o.store.require(str(b.collaborationId, 'collaborationId'));
        const queryId = str(b.queryId, 'queryId');
        const base = { action: 'cleanroom.attest-challenge', collaborationId: c.id, principal: `node:${call.peer.nodeId}`, purpose: c.purpose, reasons: [`query ${queryId}`] };
        return this.#audited(base, async () => {
          if (call.peer.nodeId !== c.computeNode) throw new CleanroomError('CLEANROOM_ABILITY_MISSING', `node "${call.peer.nodeId}" is not this collaboration's compute node`);
          const required = c.compute?.requireAttestation;
          if (!required) throw new CleanroomError('CLEANROOM_CONFLICT', 'this collaboration requires no attestation of its compute node');
          return { value: await this.#attestation.challenge(required, analysisJobId(c.id, queryId)) };
        });
      },
      'cleanroom-query': async (call) => {
        const b = body<{ collaborationId: string; sql?: string; template?: string; params?: string[] }>(call);
        const c = this.#o.store.require(str(b.collaborationId, 'collaborationId'));
        if (c.computeNode !== this.nodeId) throw new CleanroomError('CLEANROOM_CONFLICT', 'this node is not the compute node');
        requireAbility(c, call.peer.nodeId, 'receive');
        return this.#runAsCompute(c, call.peer.nodeId, { ...(b.sql ? { sql: b.sql } : {}), ...(b.template ? { template: b.template } : {}), ...(b.params ? { params: b.params } : {}) });
      },
      'cleanroom-result': async (call) => {
        const b = body<QueryOutcome & { collaborationId: string }>(call);
        const c = this.#o.store.require(str(b.collaborationId, 'collaborationId'));
        if (call.peer.nodeId !== c.computeNode) throw new CleanroomError('CLEANROOM_ABILITY_MISSING', 'results come only from the compute node');
        requireAbility(c, this.nodeId, 'receive');
        const ok = digest({ columns: b.columns, rows: b.rows }) === b.resultDigest;
        await this.#audit({ action: 'cleanroom.result', collaborationId: c.id, decision: ok ? 'allow' : 'error', principal: `node:${call.peer.nodeId}`, resultDigest: b.resultDigest, rowsReturned: Array.isArray(b.rows) ? b.rows.length : null, reasons: [`query ${b.queryId}`, ok ? 'digest verified' : 'digest mismatch'] });
        this.#results.set(b.queryId, b);
        return { received: ok };
      },
      'cleanroom-receipt': async (call) => {
        const b = body<{ collaborationId: string; auditId: string }>(call);
        const c = this.#o.store.require(str(b.collaborationId, 'collaborationId'));
        if (!c.members.some((m) => m.nodeId === call.peer.nodeId && m.status !== 'invited')) throw new CleanroomError('CLEANROOM_NOT_MEMBER', 'only members fetch receipts');
        if (!this.#o.audit.reasonsOf(str(b.auditId, 'auditId')).includes(`collaboration ${c.id}`)) throw new GatehouseError('NOT_FOUND', 'no such entry of this collaboration');
        return { receipt: await this.#o.audit.receipt(b.auditId), vkeys: this.#o.audit.vkeys() };
      },
      'cleanroom-psi': async (call) => this.#psiServe(call.peer.nodeId, body(call)),
    };
  }

  readonly #results = new Map<string, QueryOutcome>();
  /** Results this node received as a receiver. */
  receivedResults(): QueryOutcome[] { return [...this.#results.values()]; }
}
