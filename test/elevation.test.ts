/**
 * Privileged access management on the one path: an insurer requests a time-boxed role, a
 * data owner approves (never the requester), the next query is decided with the role;
 * break-glass needs a justification and alerts; every step is audited.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { codeOf, demoFixture, type Fixture } from './helpers/workspace.ts';
import { createDemoWorkspace } from '../src/demo/workspace.ts';

let fx: Fixture;
let olivia = '';
const as = (credential: string) => ({ credential, source: '127.0.0.1', channel: 'test' });
const IVAN = 'test-key-ivan-0123456789abcdef';

before(async () => {
  fx = await demoFixture({
    patients: 400,
    edit: (ws) => {
      const y = join(ws, 'gatehouse.yaml');
      writeFileSync(y, `${readFileSync(y, 'utf8')}\nidentity:\n  elevation:\n    roles:\n      claims-auditor: { approvers: [data-owners], maxMinutes: 120 }\n      incident-responder: { approvers: [data-owners], maxMinutes: 30, breakGlass: true }\n`);
    },
  });
  olivia = JSON.parse(readFileSync(join(fx.wsDir, 'demo-keys.json'), 'utf8')).olivia;
  void createDemoWorkspace;
});
after(async () => { await fx.close(); });

describe('privileged-access elevation', () => {
  let requestId = '';

  it('denies the privileged purpose before any elevation', async () => {
    assert.equal(await codeOf(fx.query('ivan', 'SELECT count(*) FROM encounters', 'claims-audit')), 'POLICY_DENIED');
  });

  it('records a request, and refuses self-approval and approval by a non-approver', async () => {
    const before = fx.log.size;
    const r = await fx.gh.requestElevation(as(IVAN), { role: 'claims-auditor', purpose: 'claims-audit', minutes: 60, justification: 'Q3 claims audit, ticket AUD-114' });
    requestId = r.requestId;
    assert.equal(r.status, 'pending');
    assert.equal(fx.log.leaf(before).entry.action, 'elevation.request');
    assert.equal(await codeOf(fx.gh.approveElevation(as(IVAN), requestId)), 'POLICY_DENIED');
    assert.equal(await codeOf(fx.gh.approveElevation(as('test-key-ada-0123456789abcdef0'), requestId)), 'POLICY_DENIED');
    assert.equal(await codeOf(fx.gh.requestElevation(as(IVAN), { role: 'claims-auditor', purpose: 'claims-audit', minutes: 500, justification: 'too long' })), 'REQUEST_INVALID');
    assert.equal(await codeOf(fx.gh.requestElevation(as(IVAN), { role: 'god-mode', purpose: 'x', minutes: 5, justification: 'no such role' })), 'REQUEST_INVALID');
  });

  it('grants the role when a data owner approves: the very next query is allowed, governed by its obligations', async () => {
    const g = await fx.gh.approveElevation(as(olivia), requestId);
    assert.equal(g.role, 'claims-auditor');
    const r = await fx.query('ivan', 'SELECT facility_region, count(*) FROM encounters GROUP BY facility_region', 'claims-audit');
    assert.deepEqual(r.rows.map((x) => x[0]), ['us-east']);
    assert.ok(r.governance.policies.includes('insurer-claims-audit'));
    assert.equal(await codeOf(fx.gh.approveElevation(as(olivia), requestId)), 'CONFLICT');
  });

  it('refuses break-glass where the role does not allow it, and alerts either way', async () => {
    const before = fx.log.size;
    assert.equal(await codeOf(fx.gh.breakGlass(as(IVAN), { role: 'claims-auditor', justification: 'urgent: regulator on the phone right now' })), 'POLICY_DENIED');
    assert.ok(fx.log.leaf(before).entry.reasons.some((x) => x.startsWith('alert: refused break-glass')));
  });

  it('breaks glass with a written justification, immediately and with an alert', async () => {
    assert.equal(await codeOf(fx.gh.breakGlass(as(IVAN), { role: 'incident-responder', justification: 'short' })), 'REQUEST_INVALID');
    const before = fx.log.size;
    const g = await fx.gh.breakGlass(as(IVAN), { role: 'incident-responder', justification: 'suspected breach INC-7, containment needs claims view' });
    assert.equal(g.alert, true);
    assert.ok(fx.log.leaf(before).entry.reasons.some((x) => x.startsWith('alert: break-glass into incident-responder')));
    const list = await fx.gh.listElevations(as(IVAN));
    assert.deepEqual(list.active.map((a) => a.role).sort(), ['claims-auditor', 'incident-responder']);
  });
});
