/**
 * A differentially private charge is marked released only once the release's audit entry is
 * durable: if the entry cannot be written, the caller gets AUDIT_UNAVAILABLE and the charge
 * is refunded at once — no budget is spent on an answer nobody received.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';
import { codeOf, demoFixture, KEYS } from './helpers/workspace.ts';

test('when the audit entry of a DP release cannot be written, the charge is refunded and nothing is spent', async () => {
  let failing = false;
  let inner: AuditSink | null = null;
  const sink: AuditSink = {
    append: (r: AuditRecord) => (failing ? Promise.reject(new Error('disk full')) : inner!.append(r)),
    close: async () => {},
  };
  const f = await demoFixture({ patients: 300, audit: sink });
  inner = f.log;
  try {
    const req = { credential: KEYS.rhea, sql: 'SELECT count(*) AS n FROM encounters', purpose: 'research', source: '127.0.0.1', channel: 'test' };
    const before = (await f.gh.estimate(req)).privacy!.budget!.remainingRho;
    failing = true;
    assert.equal(await codeOf(f.gh.query(req)), 'AUDIT_UNAVAILABLE');
    failing = false;
    const after = (await f.gh.estimate(req)).privacy!.budget!.remainingRho;
    assert.equal(after, before, 'the charge was refunded');
    const ok = await f.gh.query(req);
    const spent = (await f.gh.estimate(req)).privacy!.budget!.remainingRho;
    assert.equal(ok.rows.length, 1, 'an ungrouped DP count always releases its one row');
    assert.ok(spent < before, 'a release whose entry is written does spend');
  } finally {
    await f.close();
  }
});
