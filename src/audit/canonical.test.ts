import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalAuditEntry, canonicalAuditEntryExplicit, canonicalize, type CanonicalAuditEntryFields } from './canonical.ts';

function entry(over: Partial<CanonicalAuditEntryFields> = {}): CanonicalAuditEntryFields {
  return {
    time: '2026-05-01T12:00:00.000Z', principal: 'p1:2026-05:abc', source: 'p1:2026-05:def', channel: 'http',
    action: 'query', purpose: 'fraud-analytics', datasets: ['claims'], columns: ['claims.amount'], decision: 'allow',
    reasons: ['policy p1'], policyVersion: 'v1', obligations: [], sqlFingerprint: 'f'.repeat(64), rowsReturned: 10,
    resultDigest: null, errorCode: null, subjects: [], pseudonymEpoch: '2026-05', ...over,
  };
}

// Strings that exercise every escaping rule of RFC 8785 §3.2.2.2 / JSON.stringify.
const NASTY = [
  '', 'plain', 'quote " and backslash \\', 'controls \u0000\u0001\u001f\b\f\n\r\t\u007f', 'é ü ß 中文 ✓',
  'astral 𝄞 😀', 'lone high \ud800 and low \udc00', '\u2028\u2029', '</script>', 'a'.repeat(5000),
];

function randomString(rnd: () => number): string {
  let s = '';
  const n = Math.floor(rnd() * 12);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    s += r < 0.5 ? String.fromCharCode(32 + Math.floor(rnd() * 95))
      : r < 0.7 ? String.fromCharCode(Math.floor(rnd() * 32))
      : String.fromCharCode(Math.floor(rnd() * 0x10000));
  }
  return s;
}

test('canonicalAuditEntry is byte-for-byte canonicalize() for audit entries', () => {
  for (const s of NASTY) {
    for (const field of ['time', 'principal', 'source', 'channel', 'action', 'purpose', 'decision', 'policyVersion', 'sqlFingerprint', 'resultDigest', 'errorCode', 'pseudonymEpoch'] as const) {
      const e = entry({ [field]: s });
      assert.equal(canonicalAuditEntry(e), canonicalize(e));
    }
    for (const field of ['datasets', 'columns', 'reasons', 'obligations', 'subjects'] as const) {
      const e = entry({ [field]: [s, s + 'x', 'y'] });
      assert.equal(canonicalAuditEntry(e), canonicalize(e));
    }
  }
  for (const rows of [null, 0, 1, 10, 2 ** 53 - 1]) {
    const e = entry({ rowsReturned: rows });
    assert.equal(canonicalAuditEntry(e), canonicalize(e));
  }
  const nulls = entry({ principal: null, purpose: null, policyVersion: null, sqlFingerprint: null, rowsReturned: null, resultDigest: null, errorCode: null });
  assert.equal(canonicalAuditEntry(nulls), canonicalize(nulls));
  let seed = 42;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  const arr = () => Array.from({ length: Math.floor(rnd() * 4) }, () => randomString(rnd));
  for (let i = 0; i < 2000; i++) {
    const e = entry({
      time: randomString(rnd), principal: rnd() < 0.2 ? null : randomString(rnd), source: randomString(rnd), channel: randomString(rnd),
      action: randomString(rnd), purpose: rnd() < 0.3 ? null : randomString(rnd), datasets: arr(), columns: arr(), decision: randomString(rnd),
      reasons: arr(), obligations: arr(), subjects: arr(), rowsReturned: rnd() < 0.3 ? null : Math.floor(rnd() * 1e9),
      errorCode: rnd() < 0.5 ? null : randomString(rnd),
    });
    assert.equal(canonicalAuditEntry(e), canonicalize(e));
    assert.equal(canonicalAuditEntryExplicit(e), canonicalize(e));
    assert.deepEqual(JSON.parse(canonicalAuditEntry(e)), JSON.parse(JSON.stringify(e)));
  }
});

test('arrays that JSON.stringify would treat differently take the explicit path', () => {
  const withToJson = Object.assign(['a', 'b'], { toJSON: () => 'x' });
  class Sub extends Array<string> {}
  const sub = Sub.from(['c']);
  for (const e of [entry({ datasets: withToJson }), entry({ reasons: sub as unknown as string[] })]) {
    assert.equal(canonicalAuditEntry(e), canonicalize(e));
  }
});

test('canonicalAuditEntry rejects what canonicalize() rejects instead of encoding it differently', () => {
  // eslint-disable-next-line no-sparse-arrays
  const holes = entry({ datasets: [, 'a'] as unknown as string[] });
  assert.throws(() => canonicalize(holes), { detail: 'AUDIT_INPUT_INVALID' });
  assert.throws(() => canonicalAuditEntry(holes), { detail: 'AUDIT_INPUT_INVALID' });
  assert.throws(() => canonicalAuditEntry(entry({ subjects: [1] as unknown as string[] })), { detail: 'AUDIT_INPUT_INVALID' });
  assert.throws(() => canonicalAuditEntry(entry({ rowsReturned: Number.NaN })), { detail: 'AUDIT_INPUT_INVALID' });
  assert.throws(() => canonicalAuditEntry(entry({ principal: undefined as unknown as string })), { detail: 'AUDIT_INPUT_INVALID' });
});
