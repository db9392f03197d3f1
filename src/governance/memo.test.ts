/**
 * The governance store memoises its reads per state generation (core.ts, issue 15). Written
 * as an attacker who wants a revoked grant, a terminated agreement or a raised requirement to
 * keep answering from memory: every change — through the node's own store, through a second
 * store on the same file (the CLI, another process), through a bare SQLite connection — must
 * be seen by the very next evaluation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { GovernanceStore } from './store.ts';
import type { DatasetDef, PrincipalDef } from '../model/types.ts';

const DATASETS = new Set(['patients']);
const isOwner = (who: string): boolean => who === 'olivia';
const rhea: PrincipalDef = { id: 'rhea', kind: 'user', displayName: null, groups: [], attributes: { org: 'northwind-research', region: 'us-east' }, apiKeySha256: [] };
const patients: DatasetDef = { name: 'patients', description: null, source: { kind: 'parquet', path: 'patients.parquet' }, classification: 'confidential', tags: [], privacyUnit: null, region: null, owner: 'st-avery', purposes: ['research'], columns: [] };
const NOW = new Date('2026-03-01T00:00:00Z');

/** A file-backed store with a partner that holds an approved grant under a DPA. */
async function setup(t: { after(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-gov-memo-'));
  const path = join(dir, 'governance.sqlite');
  const gov = GovernanceStore.open(path, { now: () => NOW });
  t.after(async () => { await gov.close(); rmSync(dir, { recursive: true, force: true }); });
  await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
  const agreement = (await gov.agreements.create({
    kind: 'DPA', title: 'Northwind DPA', parties: { ours: 'st-avery', partner: 'northwind-research' }, effectiveFrom: '2026-01-01', endsOn: '2026-12-31',
    datasets: ['patients'], purposes: ['research'], clauses: {}, by: 'olivia',
  }, { knownDatasets: DATASETS })).agreement;
  const { request } = await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 60, justification: 'study' });
  const { grant } = await gov.grants.approve(request.id, { approverId: 'olivia', isOwner });
  return { gov, path, agreement, grant };
}

const evaluate = (gov: GovernanceStore) => gov.evaluate({ principal: rhea, dataset: patients, purpose: 'research', now: NOW });

test('repeated evaluations with nothing changed are answered from the memo, with the same result', async (t) => {
  const { gov } = await setup(t);
  const first = await evaluate(gov);
  const before = gov.readsFromMemo;
  const second = await evaluate(gov);
  assert.equal(first.allowed, true);
  assert.deepEqual(second, first);
  assert.ok(gov.readsFromMemo > before, 'the second evaluation read nothing from the file');
});

test('a grant revoked through the same store denies the very next evaluation', async (t) => {
  const { gov, grant } = await setup(t);
  assert.equal((await evaluate(gov)).allowed, true);
  assert.equal((await evaluate(gov)).allowed, true); // now memoised
  await gov.grants.revoke(grant.id, { by: 'olivia', reason: 'study ended' });
  const r = await evaluate(gov);
  assert.equal(r.allowed, false);
  assert.equal(r.context.grantActive, false);
});

test('an agreement terminated by another process (a second store on the same file) denies the very next evaluation', async (t) => {
  const { gov, path, agreement } = await setup(t);
  await evaluate(gov);
  assert.equal((await evaluate(gov)).allowed, true);
  const cli = GovernanceStore.open(path, { now: () => NOW });
  try {
    await cli.agreements.terminate(agreement.id, { by: 'olivia', reason: 'breach' });
  } finally {
    await cli.close();
  }
  const r = await evaluate(gov);
  assert.equal(r.allowed, false);
  assert.ok(r.denials.some((d) => d.code === 'GOV_AGREEMENT_TERMINATED'), r.denials.map((d) => d.code).join());
});

test('a row changed by a bare SQLite connection to the file is seen by the very next evaluation', async (t) => {
  const { gov, path } = await setup(t);
  await evaluate(gov);
  assert.equal((await evaluate(gov)).allowed, true);
  // Someone with the file raises the bar for confidential data behind the store's back.
  const raw = new DatabaseSync(path, { timeout: 5000 });
  try {
    raw.prepare('INSERT INTO gov_settings (key, value, set_at, set_by) VALUES (?, ?, ?, ?)').run('requirements.confidential', JSON.stringify({ maxVendorTier: 1, courses: ['hipaa-privacy'], documents: [] }), NOW.toISOString(), 'olivia');
  } finally {
    raw.close();
  }
  const r = await evaluate(gov);
  assert.equal(r.allowed, false);
  assert.ok(r.denials.some((d) => d.code === 'GOV_TRAINING_MISSING'), r.denials.map((d) => d.code).join());
});

test('a requirement changed through the store is seen at once, and reads inside a transaction are never memoised', async (t) => {
  const { gov } = await setup(t);
  assert.deepEqual((await gov.gate.requirements('confidential')).courses, []);
  await gov.gate.setRequirements('confidential', { maxVendorTier: 2, courses: ['gdpr-basics'], documents: [], by: 'olivia' });
  assert.deepEqual((await gov.gate.requirements('confidential')).courses, ['gdpr-basics']);
  const before = gov.readsFromMemo;
  // A transaction's reads see its own uncommitted writes and must not leak them to the memo.
  await assert.rejects(gov.agreements.create({
    kind: 'DPA', title: 'x', parties: { ours: 'st-avery', partner: 'nobody-registered' }, effectiveFrom: '2026-01-01', endsOn: '2026-12-31',
    datasets: ['patients'], purposes: ['research'], clauses: {}, by: 'olivia',
  }, { knownDatasets: DATASETS }));
  assert.equal(gov.readsFromMemo, before);
  assert.deepEqual((await gov.gate.requirements('confidential')).courses, ['gdpr-basics']);
});
