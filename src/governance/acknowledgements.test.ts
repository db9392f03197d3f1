import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';

const hash = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

test('publishing changed text creates a new version and makes earlier signatures stale; the same text is a no-op', async () => {
  const gov = GovernanceStore.open(':memory:', { now: () => new Date('2026-03-01T00:00:00Z') });
  const v1 = await gov.acknowledgements.publish({ name: 'acceptable-use', text: 'Use data only for the declared purpose.', by: 'olivia' });
  assert.equal(v1.document.version, 1);
  assert.equal(v1.document.sha256, hash('Use data only for the declared purpose.'));
  assert.deepEqual(await gov.acknowledgements.state('rhea', 'acceptable-use'), { state: 'missing', current: { version: 1, sha256: v1.document.sha256 } });
  const { signature, event } = await gov.acknowledgements.sign({ principalId: 'rhea', document: 'acceptable-use', sha256: v1.document.sha256 });
  assert.equal(signature.sha256, v1.document.sha256, 'the signature records the hash of what was acknowledged');
  assert.equal(event.refs.sha256, v1.document.sha256);
  assert.equal((await gov.acknowledgements.state('rhea', 'acceptable-use')).state, 'current');
  const same = await gov.acknowledgements.publish({ name: 'acceptable-use', text: 'Use data only for the declared purpose.', by: 'olivia' });
  assert.equal(same.changed, false);
  assert.equal((await gov.acknowledgements.state('rhea', 'acceptable-use')).state, 'current');
  // One changed character is a new text.
  const v2 = await gov.acknowledgements.publish({ name: 'acceptable-use', text: 'Use data only for the declared purpose!', by: 'olivia' });
  assert.equal(v2.document.version, 2);
  const s = await gov.acknowledgements.state('rhea', 'acceptable-use');
  assert.equal(s.state, 'stale');
  await gov.acknowledgements.sign({ principalId: 'rhea', document: 'acceptable-use', sha256: v2.document.sha256 });
  assert.equal((await gov.acknowledgements.state('rhea', 'acceptable-use')).state, 'current');
  assert.deepEqual((await gov.acknowledgements.signatures('rhea')).map((x) => x.version), [1, 2]);
});

test('signing a hash that is not the current text, a malformed hash or an unpublished document is refused', async () => {
  const gov = GovernanceStore.open(':memory:');
  await gov.acknowledgements.publish({ name: 'aup', text: 'v1', by: 'olivia' });
  const code = (c: string) => (e: unknown) => e instanceof GovernanceError && e.detail === c;
  await assert.rejects(async () => await gov.acknowledgements.sign({ principalId: 'rhea', document: 'aup', sha256: hash('something else') }), code('GOV_ACK_HASH_MISMATCH'));
  await assert.rejects(async () => await gov.acknowledgements.sign({ principalId: 'rhea', document: 'aup', sha256: hash('v1').toUpperCase() }), code('GOV_INVALID'));
  await assert.rejects(async () => await gov.acknowledgements.sign({ principalId: 'rhea', document: 'nda-text', sha256: hash('v1') }), code('GOV_NOT_FOUND'));
  await assert.rejects(async () => await gov.acknowledgements.publish({ name: 'aup', text: '   ', by: 'olivia' }), code('GOV_INVALID'));
  assert.equal((await gov.acknowledgements.state('rhea', 'aup')).state, 'missing');
  assert.deepEqual(await gov.acknowledgements.state('rhea', 'nda-text'), { state: 'unpublished' });
});
