// Vectors: 943 476 5919 is the example NHS number in NHS Digital's documentation; the others
// were generated with the modulus 11 rule from the NHS Data Dictionary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { ukNhsNumber, validNhsNumber } from './uk-nhs-number.ts';

test('NHS numbers with a valid modulus 11 check digit are found spaced, dashed or as a bare cell', () => {
  for (const s of ['943 476 5919', 'NHS no. 401-023-2137', '4505577104', 'patient 450 557 7104 admitted']) {
    assert.ok(finds(ukNhsNumber, s), s);
  }
});

test('a wrong check digit, a check digit of 10, and a bare number inside text are not NHS numbers', () => {
  for (const s of ['943 476 5918', '943 476 5910', '0101010000', 'ref 9434765919 sent', '943 476 59191', '943-476 5919']) {
    assert.ok(!finds(ukNhsNumber, s), s);
  }
  // 123 456 789x: weighted sum 210 ≡ 1 (mod 11) → check 10 → no valid number with this prefix.
  for (let d = 0; d <= 9; d++) assert.ok(!validNhsNumber(`123456789${d}`));
});
