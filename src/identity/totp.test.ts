import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { generateTotp, generateTotpSecret, otpauthUri, totpStep, verifyTotp, TOTP_PERIOD_SECONDS } from './totp.ts';

// RFC 6238 Appendix B, SHA-1 rows: 8 digits, 30 s steps, the 20-byte ASCII key below.
const RFC_KEY = new TextEncoder().encode('12345678901234567890');
const RFC_VECTORS: readonly [number, string][] = [
  [59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'],
  [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130'],
];

test('otplib reproduces the RFC 6238 Appendix B SHA-1 vectors', async () => {
  for (const [t, code] of RFC_VECTORS) {
    assert.equal(await generateTotp(RFC_KEY, { now: t * 1000, digits: 8 }), code, `T=${t}`);
    const v = await verifyTotp(RFC_KEY, code, { now: t * 1000, digits: 8, window: 0 });
    assert.deepEqual(v, { valid: true, step: Math.floor(t / 30), delta: 0 });
  }
});

test('cross-check: the vectors computed directly with HMAC-SHA-1 (RFC 4226 dynamic truncation) agree', () => {
  for (const [t, code] of RFC_VECTORS) {
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
    const mac = createHmac('sha1', RFC_KEY).update(counter).digest();
    const offset = mac[19]! & 0xf;
    const bin = mac.readUInt32BE(offset) & 0x7fffffff;
    assert.equal(String(bin % 1e8).padStart(8, '0'), code);
  }
});

test('a fresh secret is 160 bits of Base32 and produces 6-digit codes', async () => {
  const s = generateTotpSecret();
  assert.match(s, /^[A-Z2-7]{32}$/);
  assert.notEqual(s, generateTotpSecret());
  assert.match(await generateTotp(s, { now: Date.now() }), /^\d{6}$/);
});

test('codes of the previous and next step are accepted, two steps away are not', async () => {
  const s = generateTotpSecret();
  const now = 1_700_000_000_000;
  const step = totpStep(now);
  for (const d of [-1, 0, 1]) {
    const code = await generateTotp(s, { now: now + d * TOTP_PERIOD_SECONDS * 1000 });
    assert.deepEqual(await verifyTotp(s, code, { now }), { valid: true, step: step + d, delta: d });
  }
  for (const d of [-2, 2, -10]) {
    const code = await generateTotp(s, { now: now + d * TOTP_PERIOD_SECONDS * 1000 });
    const r = await verifyTotp(s, code, { now });
    assert.equal(r.valid, false, `delta ${d}`);
  }
});

test('a code is accepted once: its step, and any earlier step, is refused as a replay', async () => {
  const s = generateTotpSecret();
  const now = 1_700_000_015_000;
  const code = await generateTotp(s, { now });
  const first = await verifyTotp(s, code, { now, lastUsedStep: null });
  assert.equal(first.valid, true);
  const step = first.valid ? first.step : -1;
  assert.deepEqual(await verifyTotp(s, code, { now, lastUsedStep: step }), { valid: false, reason: 'replayed' });
  const previous = await generateTotp(s, { now: now - 30_000 });
  assert.deepEqual(await verifyTotp(s, previous, { now, lastUsedStep: step }), { valid: false, reason: 'replayed' });
  const next = await generateTotp(s, { now: now + 30_000 });
  assert.equal((await verifyTotp(s, next, { now, lastUsedStep: step })).valid, true);
  // A last-used step beyond the window (clock moved back) accepts nothing, without throwing.
  assert.equal((await verifyTotp(s, next, { now, lastUsedStep: step + 5 })).valid, false);
});

test('malformed codes are refused without a comparison', async () => {
  const s = generateTotpSecret();
  for (const c of ['', '12345', '1234567', 'abcdef', ' 12345', '12345\n']) {
    assert.deepEqual(await verifyTotp(s, c, { now: 0 }), { valid: false, reason: 'malformed' });
  }
});

test('the otpauth URI names issuer, account and all parameters', () => {
  const uri = new URL(otpauthUri('Gatehouse', 'contractor@acme.example', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'));
  assert.equal(uri.protocol, 'otpauth:');
  assert.equal(uri.host, 'totp');
  assert.equal(decodeURIComponent(uri.pathname), '/Gatehouse:contractor@acme.example');
  assert.equal(uri.searchParams.get('secret'), 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  assert.equal(uri.searchParams.get('issuer'), 'Gatehouse');
  assert.equal(uri.searchParams.get('algorithm'), 'SHA1');
  assert.equal(uri.searchParams.get('digits'), '6');
  assert.equal(uri.searchParams.get('period'), '30');
  assert.throws(() => otpauthUri('Gate:house', 'a', 'JBSWY3DPEHPK3PXP'), { detail: 'IDENTITY_INPUT_INVALID' });
});
