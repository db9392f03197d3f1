/**
 * Contractor governance on the one request path: the demo's agreements, grants,
 * acknowledgements, training and vendor risk decide before Cedar, and ending an agreement
 * stops the partner at once and crypto-shreds what was shared with it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoFixture, KEYS, codeOf, type Fixture } from './helpers/workspace.ts';
import { decryptFile } from '../src/keys/blob.ts';

const META = { source: '127.0.0.1', channel: 'test' } as const;
const rheaQuery = (f: Fixture, sql = 'SELECT region, count(*) AS n FROM patients GROUP BY region') => f.gh.query({ credential: KEYS.rhea, sql, purpose: 'research', ...META });

describe('the governance gate', () => {
  let f: Fixture;
  before(async () => { f = await demoFixture({ patients: 600, governance: true }); });
  after(async () => { await f.close(); });

  it('lets a partner with an active agreement, a grant, a signed acknowledgement and current training query', async () => {
    const r = await rheaQuery(f);
    assert.ok(r.rows.length > 0);
    const ivan = await f.gh.query({ credential: KEYS.ivan, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', ...META });
    assert.equal(ivan.rows.length, 1);
  });

  it('refuses a purpose the partner\'s agreement does not cover, naming what is missing', async () => {
    const err = await f.gh.query({ credential: KEYS.ivan, sql: 'SELECT count(*) AS n FROM claims', purpose: 'research', ...META }).then(() => null, (e: unknown) => e as { code: string; reasons: string[] });
    assert.ok(err);
    assert.equal(err.code, 'POLICY_DENIED');
    assert.ok(err.reasons.some((r) => r.startsWith('GOV_')), err.reasons.join('; '));
  });

  it('requires re-acknowledgement when the policy text changes, and accepts the new signature', async () => {
    const store = f.gh.governanceStore;
    const doc = (await store.acknowledgements.publish({ name: 'acceptable-use', text: 'Version 2: also no screenshots of results.\n', by: 'olivia' })).document;
    const err = await rheaQuery(f).then(() => null, (e: unknown) => e as { code: string; reasons: string[] });
    assert.ok(err && err.reasons.some((r) => r.startsWith('GOV_ACK_STALE')), err?.reasons.join('; '));
    const entries = await f.log.search({ action: 'query', decision: 'deny' });
    assert.ok(entries.some((h) => h.entry.reasons.some((r) => r.startsWith('GOV_ACK_STALE'))), 'the refusal is audited with its governance reason');
    await store.acknowledgements.sign({ principalId: 'rhea', document: 'acceptable-use', sha256: doc.sha256 });
    assert.ok((await rheaQuery(f)).rows.length > 0);
  });

  it('narrows access automatically when a partner\'s certification expires', async () => {
    const store = f.gh.governanceStore;
    const risk = await store.vendors.risk('keystone-mutual');
    assert.ok(risk.tier <= 2);
    await store.vendors.addIncident({ org: 'keystone-mutual', date: new Date(Date.now() - 3600_000).toISOString(), severity: 'critical', summary: 'credential leak under investigation', by: 'olivia' });
    assert.ok((await store.vendors.risk('keystone-mutual')).tier > 2);
    assert.equal(await codeOf(f.gh.query({ credential: KEYS.ivan, sql: 'SELECT count(*) AS n FROM patients', purpose: 'claims-processing', ...META })), 'POLICY_DENIED');
    const listed = await f.gh.datasets({ credential: KEYS.ivan, purpose: null, ...META });
    assert.ok(!listed.datasets.some((d) => d.name === 'patients'), 'a dataset the gate refuses is not listed');
  });

  it('terminating the contractor\'s agreement denies its next query, shreds its saved results and certifies it in the audit log', async () => {
    const saved = await f.gh.query({ credential: KEYS.rhea, sql: 'SELECT region, count(*) AS n FROM patients GROUP BY region', purpose: 'research', save: true, ...META });
    const id = saved.governance.resultId!;
    assert.match(id, /\S/);
    assert.ok(await f.gh.getResult({ credential: KEYS.rhea, ...META }, id));
    const file = readdirFileOf(f, id);
    const ciphertext = readFileSync(file);

    const listed = await f.gh.governanceOp({ credential: KEYS.olivia, ...META }, 'agreement.list', { partner: 'northwind-research' }) as { agreements: { id: string }[] };
    const dpa = listed.agreements[0]!.id;
    assert.equal(await codeOf(f.gh.governanceOp({ credential: KEYS.audrey, ...META }, 'agreement.terminate', { id: dpa, reason: 'not mine to end' })), 'POLICY_DENIED', 'only administrators terminate agreements');
    assert.ok((await rheaQuery(f)).rows.length > 0, 'a refused termination changes nothing');
    await f.gh.governanceOp({ credential: KEYS.olivia, ...META }, 'agreement.terminate', { id: dpa, reason: 'contract ended early' });

    const err = await rheaQuery(f).then(() => null, (e: unknown) => e as { code: string; reasons: string[] });
    assert.ok(err && err.code === 'POLICY_DENIED' && err.reasons.some((r) => r.includes('GOV_')), err?.reasons.join('; '));
    assert.equal(await codeOf(f.gh.getResult({ credential: KEYS.rhea, ...META }, id)), 'NOT_FOUND');
    await assert.rejects(decryptFile(file, Buffer.alloc(32)), 'the ciphertext on disk is unreadable without its destroyed key');
    assert.ok(ciphertext.length > 0);
    const certs = await f.log.search({ action: 'governance.destruction' });
    assert.equal(certs.length, 1);
    assert.ok(certs[0]!.entry.reasons.some((r) => r.includes(id)), 'the certificate names the destroyed artefact');
  });
});

function readdirFileOf(f: Fixture, id: string): string {
  return join(f.wsDir, 'state', 'artefacts', 'blobs', `${id}.ghb`);
}

describe('the governance scheduler', () => {
  it('enforces retention as gatehouse-scheduler and writes yesterday\'s compliance report once', async () => {
    const f = await demoFixture({ patients: 300, governance: true });
    try {
      await f.gh.query({ credential: KEYS.ivan, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', ...META });
      await f.gh.query({ credential: KEYS.rhea, sql: 'SELECT department, count(*) AS n FROM encounters GROUP BY department', purpose: 'research', ...META });
      const reportsDir = join(f.dir, 'reports');
      const tomorrow = new Date(Date.now() + 86_400_000);
      const first = await f.gh.runScheduledGovernance({ reportsDir, now: tomorrow });
      assert.ok(first.report, 'a report was written');
      const html = readFileSync(first.report, 'utf8');
      assert.match(html, /<html/i);
      assert.match(html, /keystone-mutual|Keystone/);
      assert.match(html, /org:northwind-research/, 'the privacy budget the contractor spent is in the report');
      const again = await f.gh.runScheduledGovernance({ reportsDir, now: tomorrow });
      assert.equal(again.report, null, 'the same day\'s report is not written twice');
      const runs = await f.log.search({ action: 'governance.retention.run' });
      assert.equal(runs.length, 2);
      assert.ok(runs.every((h) => h.entry.decision === 'allow' && h.entry.channel === 'scheduler'));
    } finally {
      await f.close();
    }
  });
});

describe('confirmed classifications', () => {
  it('bind decisions once an administrator confirms them: a stricter column makes the dataset stricter for the gate and Cedar', async () => {
    const f = await demoFixture({
      patients: 300, governance: true,
      edit: (ws) => {
        const file = join(ws, 'gatehouse.yaml');
        const yaml = readFileSync(file, 'utf8');
        const at = yaml.indexOf('\n  claims:');
        const fixed = yaml.slice(0, at) + yaml.slice(at).replace('    classification: regulated', '    classification: confidential');
        writeFileSync(file, fixed);
      },
    });
    try {
      const store = f.gh.governanceStore;
      // Keystone's posture slips to tier 3: allowed for confidential data (≤ 3), not for regulated (≤ 2).
      await store.vendors.addAuditReport({ org: 'keystone-mutual', title: 'Q4 audit', date: new Date().toISOString(), outcome: 'fail', by: 'olivia' });
      await store.vendors.addIncident({ org: 'keystone-mutual', date: new Date(Date.now() - 3600_000).toISOString(), severity: 'high', summary: 'phishing under investigation', by: 'olivia' });
      assert.equal((await store.vendors.risk('keystone-mutual')).tier, 3);
      const q = () => f.gh.query({ credential: KEYS.ivan, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', ...META });
      assert.equal((await q()).rows.length, 1);

      const { proposal } = await store.classification.propose({ dataset: 'claims', column: 'amount_paid', level: 'regulated', tags: ['phi.financial'], evidence: ['name: amount_paid'], confidence: 0.8, proposedBy: 'classifier' });
      assert.equal((await q()).rows.length, 1, 'a proposal changes nothing until it is confirmed');
      await store.classification.confirm(proposal.id, 'olivia');
      const err = await q().then(() => null, (e: unknown) => e as { code: string; reasons: string[] });
      assert.ok(err && err.code === 'POLICY_DENIED' && err.reasons.some((r) => r.startsWith('GOV_VENDOR_RISK_TOO_HIGH')), err?.reasons.join('; '));
      const listed = await f.gh.datasets({ credential: KEYS.ada, purpose: null, ...META });
      const claims = listed.datasets.find((d) => d.name === 'claims')!;
      assert.equal(claims.classification, 'regulated');
      assert.equal(claims.columns.find((c) => c.name === 'amount_paid')!.classification, 'regulated');
    } finally {
      await f.close();
    }
  });
});
