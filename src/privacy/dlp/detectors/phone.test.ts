import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { phone } from './phone.ts';

test('NANP numbers are found in the usual written forms', () => {
  for (const s of ['(303) 449-2817', '303-449-2817', '303.449.2817', '303 449 2817', '+1 303 449 2817', '1-303-449-2817', '+1 (303) 449-2817', 'call 303-449-2817 after 5', '3034492817']) {
    assert.ok(finds(phone, s), s);
  }
});

test('E.164 international numbers are found', () => {
  for (const s of ['+442079460958', '+44 20 7946 0958', 'tel +33 1 42 68 53 00', '+4915123456789', '+13034492817']) {
    assert.ok(finds(phone, s), s);
  }
});

test('near misses are not phone numbers: area code or exchange starting 0/1, N11 codes, fiction range, too short, dates, embedded digits', () => {
  for (const s of [
    '123-456-7890', '303-149-2817', '911-449-2817', '303-411-2817', '(212) 555-0173', '212-555-0142',
    '2023-10-15', '12/31/1999', '+1234567', 'order 3034492817x', 'id 30344928170', '+1 123 456 7890', '3.03449281',
    '1700000000', 'v303-449-2817-b',
  ]) {
    assert.ok(!finds(phone, s), s);
  }
});

test('a bare ten-digit run inside text is not a phone number (only a whole cell is)', () => {
  assert.ok(!finds(phone, 'invoice 3034492817 paid'));
  assert.ok(finds(phone, ' 3034492817 '));
});
