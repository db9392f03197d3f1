// Vectors: scheme test numbers published by Stripe ("Testing", test card numbers) and
// PayPal/Braintree sandbox documentation; all pass Luhn and carry real IIN prefixes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { paymentCard, validCardNumber } from './payment-card.ts';

const PUBLISHED_TEST_NUMBERS = [
  '4242424242424242', '4111111111111111', '4012888888881881', '4000056655665556', '4222222222222', // Visa 16 and 13
  '5555555555554444', '5105105105105100', '2223003122003222', // Mastercard 5x and 2-series
  '378282246310005', '371449635398431', // American Express
  '6011111111111117', '6011000990139424', // Discover
  '3056930009020004', '36227206271667', '30569309025904', '38520000023237', // Diners Club
  '3566002020360505', '3530111333300000', // JCB
  '6200000000000005', // UnionPay
  '6759649826438453', // Maestro
];

test('published scheme test numbers are payment cards', () => {
  for (const n of PUBLISHED_TEST_NUMBERS) assert.ok(validCardNumber(n), n);
});

test('card numbers are found contiguous, in 4-4-4-4 and Amex 4-6-5 groups, and inside text', () => {
  for (const s of ['4242424242424242', '4242 4242 4242 4242', '4242-4242-4242-4242', '3782 822463 10005', 'paid with 5555 5555 5555 4444 on 1 May']) {
    assert.ok(finds(paymentCard, s), s);
  }
});

test('near misses are not cards: Luhn-invalid, unknown IIN, wrong length for the scheme, odd grouping, decimals, longer runs', () => {
  for (const s of [
    '4242424242424241', // Luhn fails
    '1234567812345670', // Luhn passes, no scheme starts with 1
    '9999999999999995', // Luhn passes, no scheme
    '37828224631000', // Amex prefix, 14 digits
    '55555555555544440', // Mastercard prefix, 17 digits
    '42424 24242 424242', '4242 4242-4242 4242', '42 42 42 42 42 42 42 42',
    '0.4242424242424242', '4242424242424242.5', '14242424242424242424', 'TX4242424242424242',
  ]) {
    assert.ok(!finds(paymentCard, s), s);
  }
});
