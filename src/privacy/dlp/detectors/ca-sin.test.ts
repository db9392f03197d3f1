// Vectors: 130 692 544 is the sample SIN used in ESDC/CRA forms; others pass the Luhn check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { caSin } from './ca-sin.ts';

test('SINs with a valid Luhn digit are found spaced, dashed or as a bare cell', () => {
  for (const s of ['130 692 544', 'SIN 273-645-192', '950123455']) {
    assert.ok(finds(caSin, s), s);
  }
});

test('Luhn failures, unassigned first digits 0 and 8, and mixed separators are not SINs', () => {
  for (const s of ['130 692 545', '046 454 286', '813 692 540', '130-692 544', 'id 130692544 x', '130 692 5440']) {
    assert.ok(!finds(caSin, s), s);
  }
});
