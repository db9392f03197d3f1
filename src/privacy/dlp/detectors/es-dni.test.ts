// Vectors computed with the mod-23 letter table of the Ministerio del Interior:
// 12345678 mod 23 = 14 → Z; NIE X1234567 → 01234567 mod 23 = 19 → L.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { esDni } from './es-dni.ts';

test('DNI and NIE numbers with the right control letter are found', () => {
  for (const s of ['12345678Z', 'DNI 12345678-Z', '12345678 z', 'X1234567L', 'NIE: Y-1234567-X', 'Z1234567R']) {
    assert.ok(finds(esDni, s), s);
  }
});

test('a wrong control letter, wrong digit count or an embedded token is not a DNI', () => {
  for (const s of ['12345678A', '1234567Z', 'X12345678L', 'X1234567A', 'AB12345678Z', '12345678Z9', 'SKU-12345678Z']) {
    assert.ok(!finds(esDni, s), s);
  }
});
