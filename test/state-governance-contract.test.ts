/**
 * The governance and key-store contract: the same cases against the embedded stores
 * (node:sqlite files, artefact blobs on disk) and against PostgreSQL (src/state/governance-pg.ts,
 * keys-pg.ts) on a real server. Same outcomes, same error codes.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GovernanceStore } from '../src/governance/store.ts';
import { GovernanceError } from '../src/governance/types.ts';
import { ArtefactStore, verifyCertificateDigest } from '../src/keys/artefacts.ts';
import { DataKeyStore } from '../src/keys/data-keys.ts';
import { LocalKeyring } from '../src/keys/keyring.ts';
import { openPgGovernance } from '../src/state/governance-pg.ts';
import { openPgArtefacts, openPgDataKeys } from '../src/state/keys-pg.ts';
import { openPostgresState, type PostgresState } from '../src/state/postgres.ts';
import type { DatasetDef, PrincipalDef } from '../src/model/types.ts';
import { NO_DURABILITY_SETTINGS, startPostgres, type PgCluster } from './support/postgres.ts';

const PASSPHRASE = 'contract-test passphrase, not a secret';
let cluster: PgCluster;
let schemas = 0;
const states: PostgresState[] = [];

// These tests are about semantics, not crashes: no fsync (support/postgres.ts NO_DURABILITY_SETTINGS).
before(async () => { cluster = await startPostgres({ settings: NO_DURABILITY_SETTINGS }); });
after(async () => {
  for (const s of states) await s.close();
  await cluster?.stop();
});

interface Stores { keys: DataKeyStore; artefacts: ArtefactStore; gov: GovernanceStore; keyring: LocalKeyring }
interface Impl { readonly name: string; open(t: TestContext, now?: () => Date): Promise<Stores> }

async function keyringFor(t: TestContext): Promise<{ dir: string; keyring: LocalKeyring }> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-gov-contract-'));
  const keyring = await LocalKeyring.openOrCreate(join(dir, 'keyring.json'), PASSPHRASE);
  t.after(() => { keyring.close(); rmSync(dir, { recursive: true, force: true }); });
  return { dir, keyring };
}

const IMPLS: Impl[] = [
  {
    name: 'sqlite (embedded)',
    async open(t, now) {
      const { dir, keyring } = await keyringFor(t);
      const keys = DataKeyStore.open(join(dir, 'data-keys.sqlite'), keyring, now ? { now } : {});
      const artefacts = ArtefactStore.open({ dir: join(dir, 'artefacts'), keys, ...(now ? { now } : {}) });
      const gov = GovernanceStore.open(join(dir, 'governance.sqlite'), now ? { now } : {});
      t.after(async () => { artefacts.close(); keys.close(); await gov.close(); });
      return { keys, artefacts, gov, keyring };
    },
  },
  {
    name: 'postgres (shared)',
    async open(t, now) {
      const { keyring } = await keyringFor(t);
      const state = await openPostgresState({ url: cluster.superuserUrl, schema: `gov_contract_${++schemas}`, maxConnections: 4, allowUnsafeDurability: true });
      states.push(state);
      const keys = openPgDataKeys(state, keyring, now ? { now } : {});
      const artefacts = openPgArtefacts(state, keys, now);
      const gov = openPgGovernance(state, now ? { now } : {});
      return { keys, artefacts, gov, keyring };
    },
  },
];

async function code(p: Promise<unknown>, expected: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => (e as { detail?: string }).detail === expected || assert.fail(`expected ${expected}, got ${String((e as Error)?.stack ?? e)}`));
}

const principal = (id: string, org: string): PrincipalDef => ({ id, groups: [], attributes: { org } } as unknown as PrincipalDef);
const dataset = (name: string): DatasetDef => ({ name, classification: 'confidential', purposes: ['research'], owner: 'st-avery', columns: [] } as unknown as DatasetDef);
const DATASETS = new Set(['patients', 'claims']);

for (const impl of IMPLS) {
  describe(impl.name, () => {
    test('a data key is stored wrapped, unwraps to the same 32 bytes, and is listed by kind, subject and label', async (t) => {
      const { keys } = await impl.open(t);
      const a = await keys.create({ subject: 'result:art_1', kind: 'result', labels: { owner: 'rhea', agreement: 'agr_1' } });
      const b = await keys.create({ subject: 'dataset:patients', kind: 'dataset' });
      const ka = await keys.unwrap(a.keyId);
      assert.equal(ka.length, 32);
      assert.deepEqual(await keys.unwrap(a.keyId), ka);
      assert.notDeepEqual(await keys.unwrap(b.keyId), ka);
      assert.deepEqual((await keys.info(a.keyId)).labels, { owner: 'rhea', agreement: 'agr_1' });
      assert.deepEqual((await keys.list({ kind: 'dataset' })).map((k) => k.keyId), [b.keyId]);
      assert.deepEqual((await keys.list({ subject: 'result:art_1' })).map((k) => k.keyId), [a.keyId]);
      assert.deepEqual((await keys.list({ label: { agreement: 'agr_1' } })).map((k) => k.keyId), [a.keyId]);
      await code(keys.create({ subject: '', kind: 'result' }), 'KEY_INPUT_INVALID');
      await code(keys.unwrap('dk_unknown'), 'DATA_KEY_NOT_FOUND');
    });

    test('a destroyed key leaves a tombstone, never unwraps again (even from the cache) and cannot be destroyed twice', async (t) => {
      const { keys } = await impl.open(t);
      const k = await keys.create({ subject: 'export:x', kind: 'export', labels: { owner: 'rhea' } });
      await keys.unwrap(k.keyId); // cached now
      const rec = await keys.destroy(k.keyId, 'agreement terminated');
      assert.match(rec.wrappedKeyDigest, /^[0-9a-f]{64}$/);
      assert.deepEqual({ subject: rec.subject, kind: rec.kind, labels: rec.labels, reason: rec.reason }, { subject: 'export:x', kind: 'export', labels: { owner: 'rhea' }, reason: 'agreement terminated' });
      await code(keys.unwrap(k.keyId), 'DATA_KEY_DESTROYED');
      await code(keys.info(k.keyId), 'DATA_KEY_DESTROYED');
      await code(keys.destroy(k.keyId, 'again'), 'DATA_KEY_DESTROYED');
      await code(keys.destroy('dk_unknown', 'x'), 'DATA_KEY_NOT_FOUND');
      await code(keys.destroy(k.keyId, ' '), 'KEY_INPUT_INVALID');
      assert.deepEqual(await keys.destruction(k.keyId), rec);
      assert.equal(await keys.destruction('dk_unknown'), null);
      assert.deepEqual((await keys.listDestroyed()).map((r) => r.keyId), [k.keyId]);
      const st = await keys.status();
      assert.deepEqual({ live: st.live, destroyed: st.destroyed }, { live: 0, destroyed: 1 });
    });

    test('rotating the key-encryption key and rewrapping moves every key to the new version with the same plaintext', async (t) => {
      const { keys, keyring } = await impl.open(t);
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await keys.create({ subject: `result:r${i}`, kind: 'result' })).keyId);
      const before = await Promise.all(ids.map((id) => keys.unwrap(id)));
      const old = keyring.activeVersion();
      const fresh = await keyring.rotate();
      await keys.destroy(ids[4]!, 'gone before the rewrap');
      const report = await keys.rewrapAll({ batchSize: 2, retire: true });
      assert.deepEqual({ rewrapped: report.rewrapped, active: report.activeKekVersion, retired: report.retired }, { rewrapped: 4, active: fresh, retired: [old] });
      assert.deepEqual((await keys.status()).byKekVersion, { [fresh]: 4 });
      for (let i = 0; i < 4; i++) assert.deepEqual(await keys.unwrap(ids[i]!), before[i]);
    });

    test('an artefact round-trips under its own key; a legal hold refuses its destruction; destroying it shreds its key', async (t) => {
      const { artefacts, keys } = await impl.open(t);
      const content = Buffer.from(JSON.stringify({ rows: [[1, 'a']] }));
      const put = await artefacts.put({ kind: 'result', owner: 'rhea', labels: { agreement: 'agr_1', dataset: 'patients' }, retainUntil: null, content, mediaType: 'application/json' });
      const other = await artefacts.put({ kind: 'export', owner: 'nadia', retainUntil: '2020-01-01T00:00:00Z', content: Buffer.alloc(0), mediaType: 'text/csv' });
      assert.deepEqual((await artefacts.get(put.id)).content, content);
      assert.equal((await artefacts.get(other.id)).content.length, 0);
      assert.deepEqual((await artefacts.list({ labels: { agreement: 'agr_1' } })).map((m) => m.id), [put.id]);
      assert.deepEqual((await artefacts.expired()).map((m) => m.id), [other.id]);
      await code(artefacts.meta('art_nope_nope_nope_nope'), 'ARTEFACT_NOT_FOUND');
      await artefacts.setLegalHold(put.id, 'LIT-7');
      await code(artefacts.destroy({ labels: { agreement: 'agr_1' } }, 'terminated'), 'LEGAL_HOLD_ACTIVE');
      assert.equal((await artefacts.get(put.id)).meta.legalHold, 'LIT-7');
      await artefacts.setLegalHold(put.id, null);
      const cert = await artefacts.destroy({ labels: { agreement: 'agr_1' } }, 'terminated');
      assert.ok(verifyCertificateDigest(cert));
      assert.deepEqual(cert.artefacts.map((a) => a.id), [put.id]);
      await code(artefacts.get(put.id), 'ARTEFACT_DESTROYED');
      await code(keys.unwrap(put.keyId), 'DATA_KEY_DESTROYED');
      const again = await artefacts.destroy([put.id, other.id], 'retention');
      assert.deepEqual({ count: again.count, already: again.alreadyDestroyed }, { count: 1, already: [put.id] });
      assert.equal((await artefacts.list({ includeDestroyed: true })).filter((m) => m.destroyedAt !== null).length, 2);
    });

    test('the gate allows a covered grant, and a termination denies the next evaluation; overlapping agreements are refused', async (t) => {
      const clock = { t: new Date('2026-03-01T00:00:00Z') };
      const { gov } = await impl.open(t, () => clock.t);
      await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
      const { agreement } = await gov.agreements.create({ kind: 'DPA', title: 'DPA', parties: { ours: 'st-avery', partner: 'northwind-research' }, effectiveFrom: '2026-01-01', endsOn: '2026-12-31', datasets: ['patients'], purposes: ['research'], clauses: { termination: { destruction: 'required', withinDays: 7 } }, by: 'olivia' }, { knownDatasets: DATASETS });
      await code(gov.agreements.create({ kind: 'DPA', title: 'again', parties: { ours: 'st-avery', partner: 'northwind-research' }, effectiveFrom: '2026-06-01', endsOn: null, datasets: ['patients', 'claims'], purposes: ['research'], by: 'olivia' }, { knownDatasets: DATASETS }), 'GOV_AGREEMENT_OVERLAP');
      const { request } = await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 30, justification: 'cohort study' });
      await code(gov.grants.approve(request.id, { approverId: 'rhea', isOwner: () => true }), 'GOV_SELF_APPROVAL');
      const approved = await gov.grants.approve(request.id, { approverId: 'olivia', isOwner: () => true });
      assert.equal(approved.grant.agreementId, agreement.id);
      const ok = await gov.evaluate({ principal: principal('rhea', 'northwind-research'), dataset: dataset('patients'), purpose: 'research' });
      assert.deepEqual({ allowed: ok.allowed, grantId: ok.context.grantId, agreementActive: ok.context.agreementActive }, { allowed: true, grantId: approved.grant.id, agreementActive: true });
      const end = await gov.agreements.terminate(agreement.id, { by: 'olivia', reason: 'breach' });
      assert.deepEqual(end.revokedGrants.map((g) => g.id), [approved.grant.id]);
      assert.deepEqual(end.destruction.principals, ['rhea']);
      await code(gov.agreements.terminate(agreement.id, { by: 'olivia', reason: 'again' }), 'GOV_AGREEMENT_ALREADY_ENDED');
      const denied = await gov.evaluate({ principal: principal('rhea', 'northwind-research'), dataset: dataset('patients'), purpose: 'research' });
      assert.deepEqual(denied.denials.map((d) => d.code), ['GOV_AGREEMENT_TERMINATED']);
      assert.ok((await gov.grants.list({ all: true }))[0]!.revoked);
    });

    test('governance records of every kind read back the same: documents, training, holds, findings, classification, requirements', async (t) => {
      const clock = { t: new Date('2026-03-01T00:00:00Z') };
      const { gov } = await impl.open(t, () => clock.t);
      const doc = (await gov.acknowledgements.publish({ name: 'aup', text: 'v1', by: 'olivia' })).document;
      assert.equal((await gov.acknowledgements.publish({ name: 'aup', text: 'v1', by: 'olivia' })).changed, false);
      await gov.acknowledgements.sign({ principalId: 'rhea', document: 'aup', sha256: doc.sha256 });
      await gov.acknowledgements.sign({ principalId: 'rhea', document: 'aup', sha256: doc.sha256 }); // idempotent (ON CONFLICT DO NOTHING)
      assert.equal((await gov.acknowledgements.state('rhea', 'aup')).state, 'current');
      await gov.training.record({ principalId: 'rhea', course: 'hipaa', completedAt: '2026-01-01', expiresAt: '2026-02-01', by: 'olivia' });
      assert.equal((await gov.training.state('rhea', 'hipaa')).state, 'expired');
      const { hold } = await gov.retention.placeHold({ subject: { kind: 'dataset', id: 'patients' }, reason: 'LIT-7', placedBy: 'counsel' });
      assert.deepEqual((await gov.retention.activeHolds()).map((h) => h.id), [hold.id]);
      await gov.retention.releaseHold(hold.id, 'counsel');
      await code(gov.retention.releaseHold(hold.id, 'counsel'), 'GOV_HOLD_ALREADY_RELEASED');
      const { finding } = await gov.findings.create({ title: 'bridge letter', severity: 'medium', owner: 'olivia', dueDate: '2026-03-10', by: 'audrey' });
      clock.t = new Date('2026-03-20T00:00:00Z');
      assert.deepEqual((await gov.findings.list({ overdue: true })).map((f) => f.id), [finding.id]);
      const p = await gov.classification.propose({ dataset: 'patients', column: 'email', level: 'confidential', tags: ['pii.email'], evidence: ['name'], confidence: 0.75, proposedBy: 'classifier' });
      await gov.classification.confirm(p.proposal.id, 'olivia');
      await code(gov.classification.confirm(p.proposal.id, 'olivia'), 'GOV_ALREADY_DECIDED');
      assert.equal((await gov.classification.effectiveClassification('patients', 'email', 'internal')).level, 'confidential');
      assert.equal((await gov.classification.list({ status: 'confirmed' }))[0]!.confidence, 0.75);
      await gov.gate.setRequirements('regulated', { maxVendorTier: 1, courses: ['hipaa'], documents: ['aup'], by: 'olivia' });
      assert.deepEqual(await gov.gate.requirements('regulated'), { maxVendorTier: 1, courses: ['hipaa'], documents: ['aup'] });
      assert.ok(gov.now() instanceof Date);
      assert.ok(GovernanceError);
    });
  });
}
