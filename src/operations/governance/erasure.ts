/**
 * Recording an erasure or a consent withdrawal (issue 23), inside the one audited envelope:
 *
 *   authenticate (an administrator) → ingested datasets Gatehouse owns rewritten without the
 *   subject's rows under a new data key, old keys destroyed → record once in the state (erasure registry) → shred
 *   saved row-level results derived from the affected datasets (a destruction certificate,
 *   its own audit entry) → one audit entry `erasure.record` listing every place, with a
 *   salted commitment to the subject instead of its identifier → the receipt.
 *
 * From the next request on, every governed query on every path excludes the subject
 * (src/query/govern/erasure.ts). Source data Gatehouse does not own is never touched.
 */
import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../../errors.ts';
import { audited, draftEntry, record } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { erasureRegistry } from '../../governance/erasure/registry.ts';
import { rewriteWithout } from '../../governance/erasure/rekey.ts';
import { ENCRYPTED_DATASET_TABLE } from '../../engine/duckdb.ts';
import { datasetKeySubject } from '../../kernel/governance-runtime.ts';
import type { DestructionRecord } from '../../keys/data-keys.ts';
import type { Workspace } from '../../model/types.ts';
import { commitment, ERASURE_RECEIPT_FORMAT, erasureReasons, newSalt, type ErasurePlaces, type ErasureReceipt } from '../../governance/erasure/receipt.ts';

export interface ErasureRequest {
  /** The privacy-unit column (patient_id). */
  readonly unit: string;
  /** The subject's identifier in that column. */
  readonly value: string;
  /** 'erasure' (every purpose) or 'opt-out' (withdrawn consent for `purposes`). */
  readonly kind?: 'erasure' | 'opt-out';
  readonly purposes?: readonly string[];
}

const UNIT = /^[a-z_][a-z0-9_]{0,62}$/;
const PURPOSE = /^[a-z][a-z0-9_.-]{0,63}$/;

function parse(body: unknown): Required<ErasureRequest> {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof b.unit !== 'string' || !UNIT.test(b.unit)) throw new GatehouseError('REQUEST_INVALID', 'give the privacy unit column as "unit" (e.g. patient_id)');
  if (typeof b.value !== 'string' || b.value.length === 0 || b.value.length > 256) throw new GatehouseError('REQUEST_INVALID', 'give the subject\'s identifier in that column as "value" (a string of at most 256 characters)');
  const kind = b.kind === undefined ? 'erasure' : b.kind;
  if (kind !== 'erasure' && kind !== 'opt-out') throw new GatehouseError('REQUEST_INVALID', '"kind" is erasure or opt-out');
  const purposes = b.purposes === undefined ? [] : b.purposes;
  if (!Array.isArray(purposes) || purposes.some((p) => typeof p !== 'string' || !PURPOSE.test(p))) throw new GatehouseError('REQUEST_INVALID', '"purposes" is a list of purposes (lower-case letters, digits, _ . -)');
  if (kind === 'opt-out' && purposes.length === 0) throw new GatehouseError('REQUEST_INVALID', 'an opt-out names the purposes the subject withdrew consent from', { hint: 'e.g. {"kind": "opt-out", "purposes": ["research"]}; an erasure covers every purpose' });
  if (kind === 'erasure' && purposes.length > 0) throw new GatehouseError('REQUEST_INVALID', 'an erasure covers every purpose; for some purposes only, record an opt-out');
  return { unit: b.unit, value: b.value, kind, purposes: [...new Set(purposes as string[])].sort() };
}

export async function recordErasure(rt: Runtime, meta: RequestMeta, body: unknown): Promise<ErasureReceipt> {
  let certificate: { id: string; reason: string } | null = null;
  const { value: draft, auditId } = await audited(rt, meta, 'erasure.record', {}, async ({ state, entry, auth }) => {
    if (!rt.isAdmin(auth.principal)) throw new GatehouseError('POLICY_DENIED', `recording an erasure is for administrators (${rt.adminGroups().join(', ')})`, { hint: 'ask an administrator' });
    const req = parse(body);
    const datasets = [...state.loaded.workspace.datasets.values()].filter((d) => d.columns.some((c) => c.name === req.unit)).map((d) => d.name).sort();
    if (datasets.length === 0) throw new GatehouseError('REQUEST_INVALID', `no dataset has a column "${req.unit}"`, { hint: 'give the privacy unit column the datasets key their subjects by (gatehouse datasets lists them)' });
    entry.datasets = datasets;
    const now = rt.now();
    const id = `ers_${randomBytes(9).toString('base64url')}`;
    // Owned data first: if re-keying fails, nothing is recorded and the request can be retried.
    const rekeyed = req.kind === 'erasure' ? await rekeyOwnedDatasets(rt, state.loaded.workspace, req.unit, req.value, id) : [];
    const { row } = await erasureRegistry(rt).store.record({ id, unit: req.unit, value: req.value, kind: req.kind, purposes: req.purposes, recordedAt: now, recordedBy: auth.principal.id });
    const places = { ...await shredDerivedResults(rt, datasets, row.id), rekeyedDatasets: rekeyed.map((r) => r.dataset) };
    if (places.certificate) certificate = { id: places.certificate, reason: `erasure ${row.id}` };
    const salt = newSalt();
    const c = commitment(salt, row.unit, req.value);
    entry.reasons = [
      ...erasureReasons({ erasureId: row.id, kind: row.kind, unit: row.unit, purposes: row.purposes, commitment: c, places }),
      ...rekeyed.map((r) => `dataset ${r.dataset} sealed under data key ${r.newKey}; destroyed: ${r.destroyed.map((d) => `${d.keyId} (wrapped-key sha256 ${d.wrappedKeyDigest})`).join(', ')}`),
    ];
    return { format: ERASURE_RECEIPT_FORMAT, erasureId: row.id, kind: row.kind, unit: row.unit, purposes: row.purposes, recordedAt: row.recordedAt, commitment: c, salt, places, auditId: '', log: null } satisfies ErasureReceipt;
  });
  if (certificate) {
    const ce = draftEntry(rt, rt.state, meta, 'governance.destruction');
    ce.decision = 'allow';
    ce.reasons = [`destruction certificate ${(certificate as { id: string }).id}: saved results derived from erased subjects' data; reason: ${(certificate as { reason: string }).reason}`];
    await record(rt, ce);
  }
  const reader = rt.options.auditReader as { receipt?: (id: string) => Promise<unknown> } | undefined;
  const log = typeof reader?.receipt === 'function' ? await reader.receipt(auditId) : null;
  return { ...draft, auditId, log };
}

/**
 * Ingested datasets keyed by the unit: rewritten without every erased subject's rows (this
 * one and earlier ones), sealed under a new data key, then the old keys destroyed, so
 * every earlier copy of the file is unreadable (src/governance/erasure/rekey.ts).
 */
async function rekeyOwnedDatasets(rt: Runtime, ws: Workspace, unit: string, value: string, erasureId: string): Promise<{ dataset: string; newKey: string; destroyed: DestructionRecord[] }[]> {
  const owned = [...ws.datasets.values()].filter((d) => d.source.kind === 'encrypted' && d.columns.some((c) => c.name === unit)).sort((a, b) => (a.name < b.name ? -1 : 1));
  if (owned.length === 0) return [];
  const earlier = (await erasureRegistry(rt).rows()).filter((r) => r.kind === 'erasure' && r.unit === unit).map((r) => r.value);
  const values = [...new Set([...earlier, value])];
  const { dataKeys } = await rt.governance.vault();
  const out = [];
  for (const ds of owned) {
    if (ds.source.kind !== 'encrypted') continue;
    const subject = datasetKeySubject(ds.name);
    const old = await dataKeys.list({ kind: 'dataset', subject });
    const newest = old[old.length - 1];
    if (!newest) throw new GatehouseError('UNAVAILABLE', `the data key of ingested dataset "${ds.name}" is not in this node's state, so its rows cannot be removed; nothing was recorded`, { hint: 'record the erasure on the node that ingested it' });
    const { keyId } = await dataKeys.create({ subject, kind: 'dataset', labels: { dataset: ds.name, erasure: erasureId } });
    try {
      await rewriteWithout({ path: ds.source.path, table: ENCRYPTED_DATASET_TABLE, unit, values, oldKey: await dataKeys.unwrap(newest.keyId), newKey: await dataKeys.unwrap(keyId), newKeyId: keyId });
    } catch (err) {
      await dataKeys.destroy(keyId, `erasure ${erasureId}: re-keying failed, key unused`);
      throw err;
    }
    const destroyed: DestructionRecord[] = [];
    for (const k of old) destroyed.push(await dataKeys.destroy(k.keyId, `erasure ${erasureId}: dataset re-keyed without the subject's rows`));
    out.push({ dataset: ds.name, newKey: keyId, destroyed });
  }
  return out;
}

/**
 * Saved results derived from the affected datasets: row-level results are crypto-shredded
 * (they may carry the subject's rows, with or without the identifier column); differentially
 * private releases are kept, since DP bounds any one unit's contribution to them.
 */
async function shredDerivedResults(rt: Runtime, datasets: readonly string[], erasureId: string): Promise<ErasurePlaces> {
  const { artefacts } = await rt.governance.vault();
  const shred: string[] = [];
  const kept: string[] = [];
  const held: string[] = [];
  for (const a of await artefacts.list({ kind: 'result' })) {
    if (a.destroyedAt) continue;
    // Under legal hold: not destroyed here; the receipt says so (the hold's owner decides).
    const from = (a.labels.datasets ?? a.labels.dataset ?? '').split(',').filter(Boolean);
    if (!from.some((d) => datasets.includes(d))) continue;
    if (a.legalHold) { held.push(a.id); continue; }
    const { content } = await artefacts.get(a.id);
    const saved = JSON.parse(content.toString('utf8')) as { governance?: { privacy?: unknown } };
    (saved.governance?.privacy ? kept : shred).push(a.id);
  }
  let certificate: string | null = null;
  if (shred.length > 0) certificate = (await artefacts.destroy(shred, `erasure ${erasureId}`)).certificateId;
  return { datasets, shreddedResults: shred.sort(), keptReleases: kept.sort(), heldResults: held.sort(), certificate };
}
