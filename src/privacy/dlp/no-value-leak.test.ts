// Invariant: no finding, summary, error message or serialised error ever contains a value
// that a detector or the index matched (nor any substring of it of length ≥ 4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import type { EngineResult } from '../../model/result.ts';
import { DlpConfigInvalid } from './errors.ts';
import { createDlpPolicy, parseDlpConfig } from './policy.ts';
import { blockedError, scanResult, summariseFindings } from './scan.ts';
import { SensitiveValueIndex } from './sensitive-value-index.ts';

const SECRETS = [
  'jane.doe@example.com', '(303) 449-2817', '219-09-9999', '943 476 5919', '130 692 544', '12345678Z',
  '4242 4242 4242 4242', 'GB82 WEST 1234 5698 7654 32', '203.0.113.7', '2001:db8::7', 'Amara Okafor',
];

function assertNoSecret(text: string): void {
  for (const s of SECRETS) {
    const compact = s.replace(/[\s()-]/g, '');
    for (const needle of [s, compact, compact.slice(0, 6), compact.slice(-6)]) {
      assert.ok(!text.includes(needle), `output contains ${JSON.stringify(needle)}: ${text.slice(0, 200)}`);
    }
  }
}

test('findings, summaries and the blocked error name detectors, columns and rows only', async () => {
  const index = await SensitiveValueIndex.build([{ value: 'Amara Okafor', tag: 'pii.name', classification: 'regulated' }]);
  const result: EngineResult = {
    columns: [{ name: 'value', type: 'VARCHAR' }],
    rows: SECRETS.map((s) => [`prefix ${s} suffix`]).concat([['Amara Okafor']]),
  };
  const scan = scanResult(result, createDlpPolicy(), index);
  assert.equal(scan.action, 'block');
  assert.equal(new Set(scan.findings.map((f) => f.row)).size, SECRETS.length);
  for (const f of scan.findings) assert.deepEqual(Object.keys(f).sort(), ['action', 'classification', 'column', 'detector', 'row']);
  const err = blockedError(scan);
  assertNoSecret(JSON.stringify(scan.findings));
  assertNoSecret(JSON.stringify(summariseFindings(scan.findings)));
  assertNoSecret(err.message);
  assertNoSecret(inspect(err, { depth: 10 }));
  assertNoSecret(JSON.stringify(scan.rows));
});

test('redacted rows keep no trace of the value', async () => {
  const index = await SensitiveValueIndex.build([{ value: 'Amara Okafor', tag: 'pii.name', classification: 'regulated' }]);
  const result: EngineResult = { columns: [{ name: 'v', type: 'VARCHAR' }], rows: SECRETS.map((s) => [s]) };
  const scan = scanResult(result, createDlpPolicy({ actions: { regulated: 'redact' } }), index);
  assert.equal(scan.action, 'redact');
  assertNoSecret(JSON.stringify(scan.rows));
});

test('configuration and input errors never echo values handed to them', () => {
  try {
    parseDlpConfig({ actions: { regulated: '219-09-9999' }, detectors: [{ id: 'jane.doe@example.com', action: '4242 4242 4242 4242' }] });
    assert.fail('expected DlpConfigInvalid');
  } catch (e) {
    assert.ok(e instanceof DlpConfigInvalid);
    assertNoSecret(e.message + JSON.stringify(e.problems));
  }
  const index = new SensitiveValueIndex();
  try {
    index.add({ value: '219-09-9999', tag: 'pii.ssn', classification: '943 476 5919' as never });
    assert.fail('expected DlpInputInvalid');
  } catch (e) {
    assertNoSecret(String(e) + inspect(e));
  }
});
