import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { usSsn, validSsn } from './us-ssn.ts';

test('SSNs are found with dashes or spaces anywhere, bare as a whole cell, or after an SSN label', () => {
  for (const s of ['078-05-1120', 'patient 219-09-9999 seen', '123 45 6789', '123456789', ' 772011234 ', 'SSN: 123456789', 'social security number 123456789']) {
    assert.ok(finds(usSsn, s), s);
  }
});

test('invalid areas, groups and serials are rejected: 000, 666, 9xx, group 00, serial 0000', () => {
  for (const s of ['000-12-3456', '666-12-3456', '900-12-3456', '987-65-4320', '123-00-4567', '123-45-0000', '000123456', '666123456']) {
    assert.ok(!finds(usSsn, s), s);
  }
  assert.ok(validSsn('899', '99', '9999'));
  assert.ok(!validSsn('999', '99', '9999'));
});

test('dates and other dashed numbers that look like SSNs are not SSNs', () => {
  for (const s of ['1999-12-31', '12-31-1999', '2023-01-1234', '20230115', '123-456-7890', '12-345-6789', '1234-56-7890', '123-45-67890', '123-45 6789', 'A123-45-6789', '123-45-6789-1']) {
    assert.ok(!finds(usSsn, s), s);
  }
});

test('a bare nine-digit number inside unlabelled text is not reported (too many false positives)', () => {
  assert.ok(!finds(usSsn, 'order 123456789 shipped'));
});
