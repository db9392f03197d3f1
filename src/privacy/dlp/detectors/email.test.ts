import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { email } from './email.ts';

test('addresses are found alone, in sentences and with plus tags, subdomains and mixed case', () => {
  for (const s of ['jane.doe@example.com', 'Contact: Jane.Doe+billing@Mail.Example.co.uk, thanks', '<ops_team@st-avery.org>', 'x@y.io']) {
    assert.ok(finds(email, s), s);
  }
});

test('near misses are not addresses: no TLD, numeric TLD, bare @handles, versions, doubled dots at the edge', () => {
  for (const s of ['root@localhost', 'pkg@1.2.3', '@scope/pkg@2.0.0', 'follow @gatehouse', 'a@b.c1', 'user@', '@example.com', 'price 5 @ 3.50', 'name@example.c']) {
    assert.ok(!finds(email, s), s);
  }
});

test('a retina asset name is a documented false positive', () => {
  assert.ok(finds(email, 'logo@2x.png'));
});

test('a long run without an address stays fast (no catastrophic backtracking)', () => {
  const s = 'a@' + 'a-'.repeat(50_000);
  const start = performance.now();
  assert.ok(!finds(email, s));
  assert.ok(performance.now() - start < 500);
});
