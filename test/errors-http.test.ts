/**
 * The one error model, seen from an HTTP caller: a conflict with the current state answers
 * 409 CONFLICT and an unavailable store 503 UNAVAILABLE (not 400 or 500), a lockout 429
 * with Retry-After, each with the part's detailed code in `reasons` and the same code in
 * the request's one audit entry. Real server (buildApp + inject), real stores, no mocks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { openTransparencyLog, type TransparencyLog } from '../src/audit/index.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { ERRORS } from '../src/errors.ts';
import { GOVERNANCE_OPS } from '../src/governance/service.ts';
import { Gatehouse } from '../src/pipeline/gatehouse.ts';
import { openEmbeddedState, type StateBackend } from '../src/state/backend.ts';
import { buildApp } from '../src/server/app.ts';
import { KEYS, type Who } from './helpers/workspace.ts';

type Json = Record<string, any>;

const ROLES = `\nidentity:\n  elevation:\n    roles:\n      claims-auditor: { approvers: [data-owners], maxMinutes: 120 }\n`;

let dir: string;
let log: TransparencyLog;
let state: StateBackend;
let budgets: StateBackend['budgets'];
let gh: Gatehouse;
let app: FastifyInstance;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-errors-http-'));
  const ws = join(dir, 'ws');
  await createTestDemoWorkspace(ws, { patients: 400, keys: KEYS });
  writeFileSync(join(ws, 'gatehouse.yaml'), `${readFileSync(join(ws, 'gatehouse.yaml'), 'utf8')}${ROLES}`);
  log = openTransparencyLog(join(dir, 'audit'), { demo: true });
  // The privacy-budget store is the real node:sqlite one, opened here so a test can take it away.
  state = await openEmbeddedState({ dir: join(dir, 'state') });
  budgets = state.budgets;
  gh = await Gatehouse.open({ workspaceDir: ws, audit: log, auditReader: log, state, engineOptions: { poolSize: 2 }, demo: true });
  app = await buildApp({ gatehouse: gh, auditLog: log, version: 'test' });
});
after(async () => {
  await app.close();
  await gh.close();
  await state.close();
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (who: Who) => ({ authorization: `Bearer ${KEYS[who]}` });

async function op(who: Who, name: string, args: Json) {
  const o = GOVERNANCE_OPS.find((x) => x.name === name)!;
  const r = await app.inject({ method: o.http.method, url: o.http.path, headers: auth(who), ...(o.http.method === 'GET' ? { query: args } : { payload: args }) });
  return { status: r.statusCode, body: r.json() as Json };
}

/** Runs one request and returns its response with the single audit entry it left. */
async function audited<T>(run: () => Promise<T>) {
  const before = log.size;
  const res = await run();
  assert.equal(log.size, before + 1, 'exactly one audit entry per request');
  return { res, entry: log.leaf(before).entry };
}

describe('errors over HTTP keep the status of the one error table', () => {
  // First: later tests sign rhea's organisation to an agreement, which puts encounters behind a grant.
  it('a query whose privacy-budget store is unavailable answers 503 UNAVAILABLE, audited as an error, and releases nothing', async () => {
    const sql = 'SELECT count(*) FROM encounters';
    const fine = await app.inject({ method: 'POST', url: '/v1/query', headers: auth('rhea'), payload: { sql, purpose: 'research' } });
    assert.equal(fine.statusCode, 200, fine.body);
    await budgets.close();
    const { res, entry } = await audited(() => app.inject({ method: 'POST', url: '/v1/query', headers: auth('rhea'), payload: { sql, purpose: 'research' } }));
    assert.equal(res.statusCode, ERRORS.UNAVAILABLE.status, res.body);
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'UNAVAILABLE');
    assert.ok(res.json().error.reasons.includes('BUDGET_STORE_UNAVAILABLE'), res.body);
    assert.equal(res.json().rows, undefined, 'no rows without a budget charge');
    assert.equal(entry.errorCode, 'UNAVAILABLE');
    assert.equal(entry.decision, 'error');
  });
  it('approving an already approved governance request answers 409 CONFLICT naming GOV_ALREADY_DECIDED, audited as a deny', async () => {
    const from = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    assert.equal((await op('olivia', 'vendor.register', { name: 'northwind-research' })).status, 200);
    const agreement = await op('olivia', 'agreement.create', {
      kind: 'DPA', title: 'DPA', partner: 'northwind-research', effectiveFrom: from, endsOn: null,
      datasets: ['patients'], purposes: ['research'], destruction: 'required', destroyWithinDays: 0, resultRetentionDays: 90,
    });
    assert.equal(agreement.status, 200, JSON.stringify(agreement.body));
    const req = await op('rhea', 'grant.request', { dataset: 'patients', purpose: 'research', days: 30, justification: 'readmission study' });
    assert.equal(req.status, 200, JSON.stringify(req.body));
    const id = req.body.request.id as string;
    assert.equal((await op('olivia', 'grant.approve', { id })).status, 200);

    const { res: again, entry } = await audited(() => op('olivia', 'grant.approve', { id }));
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'CONFLICT');
    assert.deepEqual(again.body.error.reasons, ['GOV_ALREADY_DECIDED']);
    assert.ok(again.body.error.hint, 'a conflict says what to do next');
    assert.equal(entry.errorCode, 'CONFLICT');
    assert.equal(entry.decision, 'deny');
    assert.ok(entry.reasons.includes('GOV_ALREADY_DECIDED'), entry.reasons.join('; '));
    // Still exactly one grant: the refused approval changed nothing.
    const grants = await op('olivia', 'grant.list', { dataset: 'patients' });
    assert.equal(grants.body.grants.filter((g: Json) => g.requestId === id).length, 1, JSON.stringify(grants.body));
  });

  it('approving an already approved elevation request answers 409 CONFLICT naming ELEVATION_ALREADY_DECIDED', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/elevation/requests', headers: auth('ivan'), payload: { role: 'claims-auditor', purpose: 'claims-audit', minutes: 60, justification: 'Q3 claims audit, ticket AUD-114' } });
    assert.equal(r.statusCode, 200, r.body);
    const url = `/v1/elevation/requests/${r.json().requestId}/approve`;
    assert.equal((await app.inject({ method: 'POST', url, headers: auth('olivia') })).statusCode, 200);
    const { res: again, entry } = await audited(() => app.inject({ method: 'POST', url, headers: auth('olivia') }));
    assert.equal(again.statusCode, 409, again.body);
    assert.equal(again.json().error.code, 'CONFLICT');
    assert.ok(again.json().error.reasons.includes('ELEVATION_ALREADY_DECIDED'));
    assert.equal(entry.errorCode, 'CONFLICT');
  });

  it('a sign-in lockout answers 429 RATE_LIMITED with Retry-After in whole seconds', async () => {
    let locked: Awaited<ReturnType<FastifyInstance['inject']>> | null = null;
    for (let i = 0; i < 10 && locked === null; i++) {
      const r = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { principal: 'audrey', password: `wrong password number ${i}` } });
      if (r.statusCode === 429) locked = r;
      else assert.equal(r.statusCode, 401, r.body);
    }
    assert.ok(locked, 'repeated failures lock the account');
    assert.equal(locked.json().error.code, 'RATE_LIMITED');
    const retry = Number(locked.headers['retry-after']);
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 3600, `Retry-After: ${String(locked.headers['retry-after'])}`);
  });

});
