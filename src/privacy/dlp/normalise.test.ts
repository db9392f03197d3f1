import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIndexableTag, normalise, normaliserForTag } from './normalise.ts';

test('tags choose the normaliser: e-mail, phone, digit identifiers, everything else as text', () => {
  assert.equal(normaliserForTag('pii.email'), 'email');
  assert.equal(normaliserForTag('pii.phone'), 'phone');
  assert.equal(normaliserForTag('pii.ssn'), 'digits');
  assert.equal(normaliserForTag('pii.national_id'), 'digits');
  assert.equal(normaliserForTag('pii.name'), 'text');
});

test('e-mails are trimmed and lower-cased; SSNs keep digits only; NANP phones lose a leading country code 1', () => {
  assert.equal(normalise('email', '  Jane.Doe@Example.COM '), 'jane.doe@example.com');
  assert.equal(normalise('digits', '078-05-1120'), '078051120');
  assert.equal(normalise('phone', '+1 (303) 449-2817'), normalise('phone', '303.449.2817'));
  assert.equal(normalise('text', '  Jane DOE '), 'jane doe');
});

test('birth dates and locations are not indexed by default; names, e-mails, SSNs and phones are', () => {
  assert.ok(!isIndexableTag('pii.dob'));
  assert.ok(!isIndexableTag('pii.location'));
  assert.ok(!isIndexableTag('phi.diagnosis'));
  for (const t of ['pii.name', 'pii.email', 'pii.ssn', 'pii.phone']) assert.ok(isIndexableTag(t), t);
});
