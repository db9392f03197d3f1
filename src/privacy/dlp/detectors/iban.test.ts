// Vectors: the example IBANs of the SWIFT IBAN Registry (GB, DE, FR, NL, BE, CH, NO, MT, SC)
// and the registry's classic documentation example GB82 WEST 1234 5698 7654 32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { iban, ibanChecksumValid, validIban } from './iban.ts';

const REGISTRY_EXAMPLES = [
  'GB82WEST12345698765432', 'GB29NWBK60161331926819', 'DE89370400440532013000', 'FR1420041010050500013M02606',
  'NL91ABNA0417164300', 'BE68539007547034', 'CH9300762011623852957', 'NO9386011117947',
  'MT84MALT011000012345MTLCAST001S', 'SC18SSCB11010000000000001497USD',
];

test('registry example IBANs pass the ISO 7064 MOD 97-10 check and the country length', () => {
  for (const i of REGISTRY_EXAMPLES) assert.ok(validIban(i), i);
});

test('IBANs are found in electronic and print form, inside text, followed by words', () => {
  for (const s of ['GB82WEST12345698765432', 'GB82 WEST 1234 5698 7654 32', 'pay to DE89 3704 0044 0532 0130 00 today', 'IBAN: NO93 8601 1117 947.', 'GB82 WEST 1234 5698 7654 32 PAID']) {
    assert.ok(finds(iban, s), s);
  }
});

test('near misses are not IBANs: bad checksum, transposed digits, wrong country length, unknown country, lower case, run-on token', () => {
  for (const s of [
    'GB82 WEST 1234 5698 7654 33', 'GB28NWBK60161331926819', 'GB82WEST12345698765423',
    'GB82WEST1234569876543', 'GB82WEST123456987654321', 'QQ82WEST12345698765432', 'gb82west12345698765432', 'XGB82WEST12345698765432',
  ]) {
    assert.ok(!finds(iban, s), s);
  }
  assert.ok(!ibanChecksumValid('GB82WEST1234569876543!'));
});
