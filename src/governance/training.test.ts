import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';

test('training is current between completion and expiry, then expired, and a renewal makes it current again', async () => {
  const clock = { t: new Date('2026-03-01T00:00:00Z') };
  const gov = GovernanceStore.open(':memory:', { now: () => clock.t });
  assert.deepEqual(await gov.training.state('rhea', 'hipaa-privacy'), { state: 'missing' });
  await gov.training.record({ principalId: 'rhea', course: 'hipaa-privacy', completedAt: '2025-03-01', expiresAt: '2026-03-01T12:00:00Z', by: 'olivia' });
  assert.deepEqual(await gov.training.state('rhea', 'hipaa-privacy'), { state: 'current', expiresAt: '2026-03-01T12:00:00.000Z' });
  clock.t = new Date('2026-03-01T12:00:00Z');
  assert.deepEqual(await gov.training.state('rhea', 'hipaa-privacy'), { state: 'expired', expiredAt: '2026-03-01T12:00:00.000Z' });
  await gov.training.record({ principalId: 'rhea', course: 'hipaa-privacy', completedAt: '2026-03-01T11:00:00Z', expiresAt: '2027-03-01', by: 'olivia' });
  assert.equal((await gov.training.state('rhea', 'hipaa-privacy')).state, 'current');
  assert.equal((await gov.training.state('nadia', 'hipaa-privacy')).state, 'missing');
});

test('inverted, future or malformed training records are refused and nothing is stored', async () => {
  const gov = GovernanceStore.open(':memory:', { now: () => new Date('2026-03-01T00:00:00Z') });
  const bad = (input: Record<string, unknown>, msg: RegExp) => assert.rejects(async () => await gov.training.record({ principalId: 'rhea', course: 'hipaa', completedAt: '2026-01-01', expiresAt: '2027-01-01', by: 'olivia', ...input } as never),
    (e: unknown) => e instanceof GovernanceError && e.detail === 'GOV_INVALID' && msg.test(e.message));
  await bad({ expiresAt: '2025-01-01' }, /must be after completedAt/);
  await bad({ completedAt: '2026-06-01', expiresAt: '2027-06-01' }, /future/);
  await bad({ completedAt: '2026-02-29' }, /not a real date/);
  await bad({ course: '' }, /course is required/);
  await bad({ principalId: 42 }, /principalId is required/);
  assert.deepEqual(await gov.training.records('rhea'), []);
});
