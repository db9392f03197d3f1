/**
 * The one audited request envelope. Every operation — query, estimate, datasets, identity,
 * elevation, administration, saved results, governance, audit reads, and whatever comes
 * next (clean rooms, jobs, training rounds, airlock reviews) — runs inside `audited`:
 *
 *   build the entry → (authenticate) → run the operation → classify the outcome → record
 *   exactly one entry → answer
 *
 * The outcome of a failure comes from the one error table (src/errors.ts): the same code
 * gives the audit decision, the HTTP status and the SQLSTATE. If the entry cannot be
 * written, the request fails (invariant 7); every request leaves exactly one entry
 * (invariant 8).
 */
import type { AuditRecord } from '../audit/types.ts';
import { asGatehouseError, GatehouseError } from '../errors.ts';
import { authenticate, type Authenticated } from './authenticate.ts';
import { sqlFingerprint } from './digest.ts';
import type { Runtime, WorkspaceState } from './runtime.ts';
import type { Mutable, RequestMeta } from './types.ts';

export type AuditDraft = Mutable<AuditRecord>;

/** Errors whose request already has its audit entry, so a front never records a second one. */
const AUDITED = new WeakSet<object>();

export function wasAudited(err: unknown): boolean {
  return typeof err === 'object' && err !== null && AUDITED.has(err);
}

export interface Envelope {
  readonly state: WorkspaceState;
  readonly entry: AuditDraft;
  /** A reason that stays in the entry whatever the outcome (ledger lines, alerts). */
  keep(reason: string): void;
  /**
   * Bookkeeping that must follow the audit entry, never precede it: `recorded` runs once the
   * entry is durable (a DP charge is marked released only then), `unrecorded` if it could
   * not be written (the charge is refunded: nothing reached the caller).
   */
  onRecord(hook: RecordHook): void;
}

export interface RecordHook {
  recorded(): Promise<void>;
  unrecorded(): Promise<void>;
}

export interface AuthenticatedEnvelope extends Envelope {
  readonly auth: Authenticated;
}

/**
 * What a request forwarded by another node carries into its one entry (residency, issue 20).
 * The data's node runs a forwarded query as one ordinary request; its entry must also say
 * who forwarded it and what crossed the border, without a second entry. `reasons` stay in the
 * entry whatever the outcome. `release` sees the answer before the entry is written: it
 * returns more reasons, or throws to refuse the answer (the refusal is then the entry).
 * The first envelope opened for the request takes the note, so exactly one entry carries it.
 */
export interface AuditNote {
  readonly reasons: readonly string[];
  readonly release?: (value: unknown, entry: AuditDraft) => Promise<readonly string[]>;
}

const NOTES = new WeakMap<object, AuditNote>();

/** Attaches a note to a request before it enters the path (see AuditNote). */
export function noteRequest(meta: RequestMeta, note: AuditNote): void {
  NOTES.set(meta, note);
}

export interface AuditedOptions {
  /** The principal the request claims before it is verified (sign-in). */
  readonly principal?: string | null;
  readonly purpose?: string | null;
  readonly sqlFingerprint?: string | null;
}

export interface AuditedResult<T> {
  readonly value: T;
  readonly auditId: string;
}

export function draftEntry(rt: Runtime, state: WorkspaceState, meta: Pick<RequestMeta, 'source' | 'channel'>, action: string): AuditDraft {
  return {
    time: rt.now().toISOString(), principal: null, source: meta.source, channel: meta.channel, action,
    purpose: null, datasets: [], columns: [], decision: 'error', reasons: [], policyVersion: state.loaded.workspace.policyVersion,
    obligations: [], sqlFingerprint: null, rowsReturned: null, resultDigest: null, errorCode: null,
  };
}

/** Writes an entry; if it cannot be written the request fails (fail closed). Observers see it once recorded. */
export async function record(rt: Runtime, entry: AuditRecord, meta?: RequestMeta): Promise<{ auditId: string }> {
  let r: { auditId: string };
  const t0 = performance.now();
  try {
    r = await rt.audit.append(entry);
  } catch (err) {
    throw new GatehouseError('AUDIT_UNAVAILABLE', 'the audit log could not record this request, so it was not completed', { hint: 'retry later; operators: check the audit log storage', cause: err });
  }
  rt.timing('audit', t0);
  rt.observe(entry, r.auditId, meta);
  return r;
}

async function envelope<T>(rt: Runtime, meta: RequestMeta, action: string, options: AuditedOptions, run: (env: Envelope) => Promise<T>): Promise<AuditedResult<T>> {
  // The state read here holds its engines until the request ends (a reload closes them after).
  const lease = rt.lease();
  try {
    return await leased(rt, lease.state, meta, action, options, run);
  } finally {
    lease.release();
  }
}

async function leased<T>(rt: Runtime, state: WorkspaceState, meta: RequestMeta, action: string, options: AuditedOptions, run: (env: Envelope) => Promise<T>): Promise<AuditedResult<T>> {
  const entry = draftEntry(rt, state, meta, action);
  entry.principal = options.principal ?? null;
  entry.purpose = options.purpose ?? null;
  entry.sqlFingerprint = options.sqlFingerprint ?? (typeof meta.sql === 'string' ? sqlFingerprint(meta.sql) : null);
  const note = NOTES.get(meta);
  if (note) NOTES.delete(meta);
  const kept: string[] = [...(note?.reasons ?? [])];
  const hooks: RecordHook[] = [];
  let value: T;
  const t0 = performance.now();
  try {
    value = await run({ state, entry, keep: (r) => { kept.push(r); }, onRecord: (h) => { hooks.push(h); } });
    if (note?.release) kept.push(...(await note.release(value, entry)));
    entry.decision = 'allow';
    entry.reasons = [...entry.reasons, ...kept];
    rt.timing('operation', t0);
  } catch (err) {
    const e = asGatehouseError(err);
    entry.decision = e.outcome;
    entry.errorCode = e.code;
    entry.reasons = [...(e.reasons.length ? e.reasons : []), ...(e.reasons.includes(e.message) ? [] : [e.message]), ...kept];
    try {
      await record(rt, entry, meta);
    } catch (recordErr) {
      await settle(hooks, false);
      throw recordErr;
    }
    await settle(hooks, true);
    AUDITED.add(e);
    throw e;
  }
  let auditId: string;
  try {
    ({ auditId } = await record(rt, entry, meta));
  } catch (err) {
    await settle(hooks, false);
    throw err;
  }
  await settle(hooks, true);
  return { value, auditId };
}

/** Runs the record hooks; a hook that fails leaves its bookkeeping to the start-up reconciliation. */
async function settle(hooks: readonly RecordHook[], recorded: boolean): Promise<void> {
  for (const h of hooks) {
    try { await (recorded ? h.recorded() : h.unrecorded()); } catch { /* reconciled at the next start (src/kernel/reconcile-budgets.ts) */ }
  }
}

/** An operation open to anyone (sign-in, refresh): the entry names the principal claimed. */
export function auditedOpen<T>(rt: Runtime, meta: RequestMeta, action: string, options: AuditedOptions, run: (env: Envelope) => Promise<T>): Promise<AuditedResult<T>> {
  return envelope(rt, meta, action, options, run);
}

/** An operation for an authenticated principal: authentication runs inside the envelope. */
export function audited<T>(rt: Runtime, meta: RequestMeta, action: string, options: AuditedOptions, run: (env: AuthenticatedEnvelope) => Promise<T>): Promise<AuditedResult<T>> {
  return envelope(rt, meta, action, options, async (env) => {
    const t0 = performance.now();
    const auth = await authenticate(rt, env.state, meta.credential, meta.source);
    rt.timing('authenticate', t0);
    env.entry.principal = auth.principal.id;
    rt.checkGates(auth.principal.id, auth.mfaAt, action);
    return run({ ...env, auth });
  });
}
