import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ElevationError, ElevationStore, type ElevationOptions } from './elevation.ts';

const T0 = new Date('2025-06-01T09:00:00Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const APPROVERS: Record<string, readonly string[]> = { 'dataset-admin': ['olga', 'ada'], 'audit-admin': ['olga'] };
const options: ElevationOptions = { path: ':memory:', isApprover: (who, role) => (APPROVERS[role] ?? []).includes(who), maxDurationMinutes: 120 };

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function refused(fn: () => unknown, code: string): Promise<ElevationError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ElevationError, `expected ElevationError, got ${String(err)}`);
    assert.equal(err.detail, code);
    assert.equal(err.audit.outcome, 'refused');
    assert.equal(err.audit.errorCode, code);
    return err;
  }
  assert.fail(`expected ${code}`);
}

async function requestFor(store: ElevationStore, principalId = 'rhea', durationMinutes = 30) {
  return await store.request({ principalId, role: 'dataset-admin', purpose: 'incident-review', durationMinutes, justification: 'investigate ticket INC-1234' }, T0);
}

describe('elevation by request and approval', () => {
  it('a request approved by a different approver grants the role until it expires by itself', async () => {
    const store = ElevationStore.open(options);
    const { request, audit } = await requestFor(store);
    assert.equal(request.status, 'pending');
    assert.deepEqual([audit.action, audit.actor, audit.outcome, audit.role], ['elevation.request', 'rhea', 'requested', 'dataset-admin']);
    assert.deepEqual(await store.activeElevations('rhea', at(1)), []);

    const { grant, audit: a2 } = await store.approve(request.id, 'olga', at(5));
    assert.deepEqual([a2.action, a2.actor, a2.subject, a2.outcome, a2.alert], ['elevation.approve', 'olga', 'rhea', 'approved', false]);
    assert.equal(grant.expiresAt, at(35).toISOString());
    assert.equal((await store.getRequest(request.id))!.status, 'approved');
    assert.deepEqual((await store.activeElevations('rhea', at(6))).map((g) => g.id), [grant.id]);
    assert.equal(await store.hasRole('rhea', 'dataset-admin', at(34)), true);
    assert.equal(await store.hasRole('rhea', 'dataset-admin', at(35)), false, 'a grant past its expiry is no longer active');
    assert.deepEqual(await store.activeElevations('rhea', at(600)), []);
    await store.close();
  });

  it('audit descriptions never carry the justification text', async () => {
    const store = ElevationStore.open(options);
    const { request, audit } = await requestFor(store);
    const { audit: a2 } = await store.approve(request.id, 'olga', at(1));
    assert.ok(!JSON.stringify([audit, a2]).includes('INC-1234'));
    await store.close();
  });

  it('refuses a self-approved elevation, audits it, and leaves the request pending', async () => {
    const store = ElevationStore.open(options);
    const { request } = await requestFor(store, 'ada');
    const err = await refused(() => store.approve(request.id, 'ada', at(1)), 'ELEVATION_SELF_APPROVAL');
    assert.equal(err.status, 403);
    assert.deepEqual([err.audit.actor, err.audit.subject, err.audit.action], ['ada', 'ada', 'elevation.approve']);
    assert.equal((await store.getRequest(request.id))!.status, 'pending');
    assert.deepEqual(await store.activeElevations('ada', at(2)), []);
    await store.close();
  });

  it('refuses approval by someone who is not an approver for the role', async () => {
    const store = ElevationStore.open(options);
    const { request } = await requestFor(store);
    assert.equal((await refused(() => store.approve(request.id, 'ivan', at(1)), 'ELEVATION_NOT_APPROVER')).status, 403);
    const audit = (await store.request({ principalId: 'rhea', role: 'audit-admin', purpose: 'audit', justification: 'quarterly audit' }, T0)).request;
    await refused(() => store.approve(audit.id, 'ada', at(1)), 'ELEVATION_NOT_APPROVER');
    assert.deepEqual(await store.activeElevations('rhea', at(2)), []);
    await store.close();
  });

  it('refuses a second approval of the same request, and grants only once', async () => {
    const store = ElevationStore.open(options);
    const { request } = await requestFor(store);
    await store.approve(request.id, 'olga', at(1));
    assert.equal((await refused(() => store.approve(request.id, 'ada', at(2)), 'ELEVATION_ALREADY_DECIDED')).status, 409);
    await refused(() => store.deny(request.id, 'ada', 'too late', at(2)), 'ELEVATION_ALREADY_DECIDED');
    assert.equal((await store.activeElevations('rhea', at(3))).length, 1);
    await store.close();
  });

  it('two processes approving the same request on one database file: exactly one grant', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-elev-'));
    dirs.push(dir);
    const path = join(dir, 'elevation.sqlite');
    const a = ElevationStore.open({ ...options, path });
    const b = ElevationStore.open({ ...options, path });
    const { request } = await requestFor(a);
    const outcomes: string[] = [];
    for (const [store, who] of [[a, 'olga'], [b, 'ada']] as const) {
      try { await store.approve(request.id, who, at(1)); outcomes.push('approved'); } catch (err) { outcomes.push((err as ElevationError).detail); }
    }
    assert.deepEqual(outcomes, ['approved', 'ELEVATION_ALREADY_DECIDED']);
    assert.equal((await b.activeElevations('rhea', at(2))).length, 1);
    await a.close();
    await b.close();
  });

  it('a denial records the reason and grants nothing', async () => {
    const store = ElevationStore.open(options);
    const { request } = await requestFor(store);
    const { request: denied, audit } = await store.deny(request.id, 'olga', 'use the read-only role', at(1));
    assert.deepEqual([denied.status, denied.decidedBy, denied.decisionReason, audit.outcome], ['denied', 'olga', 'use the read-only role', 'denied']);
    await refused(() => store.approve(request.id, 'ada', at(2)), 'ELEVATION_ALREADY_DECIDED');
    assert.deepEqual(await store.activeElevations('rhea', at(2)), []);
    await store.close();
  });

  it('refuses durations beyond the configured maximum and stale requests', async () => {
    const store = ElevationStore.open(options);
    await refused(() => requestFor(store, 'rhea', 121), 'ELEVATION_INVALID');
    await refused(() => requestFor(store, 'rhea', 0), 'ELEVATION_INVALID');
    await refused(() => store.request({ principalId: 'rhea', role: 'dataset-admin', purpose: 'x', justification: '   ' }, T0), 'ELEVATION_JUSTIFICATION_REQUIRED');
    const { request } = await requestFor(store);
    await refused(() => store.approve(request.id, 'olga', at(25 * 60)), 'ELEVATION_REQUEST_EXPIRED');
    await refused(() => store.approve('elr_nope', 'olga', at(1)), 'ELEVATION_NOT_FOUND');
    await store.close();
  });

  it('a request without a duration gets the default maximum of 60 minutes', async () => {
    const store = ElevationStore.open({ ...options, maxDurationMinutes: undefined });
    const { request } = await store.request({ principalId: 'rhea', role: 'dataset-admin', purpose: 'ops', justification: 'rotate keys' }, T0);
    assert.equal(request.durationMinutes, 60);
    await store.close();
  });
});

describe('break-glass', () => {
  it('is active immediately, flagged as an alert, and expires by itself', async () => {
    const store = ElevationStore.open({ ...options, breakGlassMinutes: 30 });
    const { grant, audit } = await store.breakGlass({ principalId: 'ada', role: 'dataset-admin', justification: 'production outage: patients table unreadable, INC-9' }, T0);
    assert.deepEqual([grant.breakGlass, grant.alert, grant.grantedBy, grant.requestId], [true, true, 'ada', null]);
    assert.deepEqual([audit.action, audit.outcome, audit.alert], ['elevation.break-glass', 'granted', true]);
    assert.ok(!audit.detail.includes('INC-9'));
    assert.equal(await store.hasRole('ada', 'dataset-admin', T0), true);
    assert.equal(await store.hasRole('ada', 'dataset-admin', at(30)), false);
    await store.close();
  });

  it('without a written justification of at least 20 characters is refused and still alerts', async () => {
    const store = ElevationStore.open(options);
    for (const justification of [undefined, '', 'urgent', '   short but padded    ']) {
      const err = await refused(() => store.breakGlass({ principalId: 'ada', role: 'dataset-admin', justification: justification as string }, T0), 'ELEVATION_JUSTIFICATION_REQUIRED');
      assert.equal(err.status, 400);
      assert.equal(err.audit.alert, true);
    }
    assert.deepEqual(await store.activeElevations('ada', T0), []);
    await store.close();
  });

  it('is refused for principals the predicate excludes', async () => {
    const store = ElevationStore.open({ ...options, canBreakGlass: (who) => who !== 'rhea' });
    await refused(() => store.breakGlass({ principalId: 'rhea', role: 'dataset-admin', justification: 'contractor wants in during an outage' }, T0), 'ELEVATION_BREAK_GLASS_NOT_ALLOWED');
    await store.close();
  });
});

describe('revocation', () => {
  it('ends a grant at once; a second revocation is refused', async () => {
    const store = ElevationStore.open(options);
    const { request } = await requestFor(store);
    const { grant } = await store.approve(request.id, 'olga', at(1));
    const { grant: revoked, audit } = await store.revoke(grant.id, 'olga', 'work finished', at(10));
    assert.deepEqual([revoked.revokedBy, revoked.revokedAt, audit.outcome, audit.subject], ['olga', at(10).toISOString(), 'revoked', 'rhea']);
    assert.deepEqual(await store.activeElevations('rhea', at(10)), []);
    await refused(() => store.revoke(grant.id, 'olga', null, at(11)), 'ELEVATION_ALREADY_REVOKED');
    await refused(() => store.revoke('elg_nope', 'olga', null, at(11)), 'ELEVATION_NOT_FOUND');
    await store.close();
  });

  it('state survives reopening the database file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-elev-'));
    dirs.push(dir);
    const path = join(dir, 'e.sqlite');
    const a = ElevationStore.open({ ...options, path });
    const { request } = await requestFor(a);
    const { grant } = await a.approve(request.id, 'olga', at(1));
    await a.close();
    const b = ElevationStore.open({ ...options, path });
    assert.deepEqual((await b.activeElevations('rhea', at(2))).map((g) => g.id), [grant.id]);
    await b.close();
  });
});
