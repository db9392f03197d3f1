import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineResult } from '../../model/result.ts';
import { DlpInputInvalid, DlpResultBlocked } from './errors.ts';
import { createDlpPolicy } from './policy.ts';
import { blockedError, scanResult, summariseFindings } from './scan.ts';
import { SensitiveValueIndex } from './sensitive-value-index.ts';

const RESULT: EngineResult = {
  columns: [{ name: 'patient_id', type: 'BIGINT' }, { name: 'contact', type: 'VARCHAR' }, { name: 'note', type: 'VARCHAR' }],
  rows: [
    [1, 'jane.doe@example.com', 'follow-up in 2 weeks'],
    [2, 'no contact on file', 'seen from 203.0.113.7'],
    [3, null, 'card 4242 4242 4242 4242 declined'],
  ],
};

test('a clean result is allowed unchanged, with no findings and the same rows', () => {
  const clean: EngineResult = { columns: [{ name: 'n', type: 'BIGINT' }, { name: 'region', type: 'VARCHAR' }], rows: [[7, 'us-east'], [8, 'eu-west']] };
  const scan = scanResult(clean, createDlpPolicy());
  assert.equal(scan.action, 'allow');
  assert.deepEqual(scan.findings, []);
  assert.equal(scan.rows, clean.rows);
});

test('a regulated finding blocks the whole result: no rows are released and every finding is listed', () => {
  const scan = scanResult(RESULT, createDlpPolicy());
  assert.equal(scan.action, 'block');
  assert.deepEqual(scan.rows, []);
  assert.deepEqual(scan.findings, [
    { detector: 'email', column: 'contact', row: 0, classification: 'confidential', action: 'redact' },
    { detector: 'ipv4', column: 'note', row: 1, classification: 'confidential', action: 'redact' },
    { detector: 'payment_card', column: 'note', row: 2, classification: 'regulated', action: 'block' },
  ]);
});

test('redact replaces exactly the cells with findings by [REDACTED:<detector>] and leaves the input untouched', () => {
  const policy = createDlpPolicy({ actions: { regulated: 'redact' } });
  const scan = scanResult(RESULT, policy);
  assert.equal(scan.action, 'redact');
  assert.deepEqual(scan.rows, [
    [1, '[REDACTED:email]', 'follow-up in 2 weeks'],
    [2, 'no contact on file', '[REDACTED:ipv4]'],
    [3, null, '[REDACTED:payment_card]'],
  ]);
  assert.equal(RESULT.rows[0]![1], 'jane.doe@example.com');
  assert.equal(scan.rows[0] === RESULT.rows[0], false);
});

test('alert lets rows through unchanged but still reports the findings', () => {
  const policy = createDlpPolicy({ actions: { regulated: 'alert', confidential: 'alert' } });
  const scan = scanResult(RESULT, policy);
  assert.equal(scan.action, 'allow');
  assert.equal(scan.rows, RESULT.rows);
  assert.equal(scan.findings.length, 3);
  assert.ok(scan.findings.every((f) => f.action === 'alert'));
});

test('a per-detector action overrides the classification action, and block wins over redact', () => {
  const policy = createDlpPolicy({ actions: { regulated: 'alert' }, detectors: ['email', { id: 'ipv4', action: 'block' }, 'payment_card'] });
  const scan = scanResult(RESULT, policy);
  assert.equal(scan.action, 'block');
  assert.deepEqual(scan.findings.map((f) => [f.detector, f.action]), [['email', 'redact'], ['ipv4', 'block'], ['payment_card', 'alert']]);
});

test('disabled detectors do not run', () => {
  const scan = scanResult(RESULT, createDlpPolicy({ detectors: ['ipv6'] }));
  assert.equal(scan.action, 'allow');
  assert.deepEqual(scan.findings, []);
});

test('catalog values are found by the index under any column name, including renamed and numeric cells, with the column classification', async () => {
  const index = await SensitiveValueIndex.build([
    { value: 'Amara Okafor', tag: 'pii.name', classification: 'confidential' },
    { value: '219-09-9999', tag: 'pii.ssn', classification: 'regulated' },
  ]);
  const renamed: EngineResult = {
    columns: [{ name: 'who', type: 'VARCHAR' }, { name: 'x', type: 'BIGINT' }],
    rows: [['AMARA OKAFOR', 5], ['Kofi Mensah', 219099999]],
  };
  const scan = scanResult(renamed, createDlpPolicy({ detectors: [] }), index);
  assert.deepEqual(scan.findings, [
    { detector: 'catalog_value', column: 'who', row: 0, classification: 'confidential', action: 'redact' },
    { detector: 'catalog_value', column: 'x', row: 1, classification: 'regulated', action: 'block' },
  ]);
  const redacting = scanResult(renamed, createDlpPolicy({ detectors: [], actions: { regulated: 'redact' } }), index);
  assert.deepEqual(redacting.rows, [['[REDACTED:catalog_value]', 5], ['Kofi Mensah', '[REDACTED:catalog_value]']]);
});

test('strings inside list and struct cells are scanned and the whole cell is redacted', () => {
  const nested: EngineResult = {
    columns: [{ name: 'contacts', type: 'STRUCT' }],
    rows: [[{ primary: 'ops@st-avery.org', tags: ['x', { ip: '2001:db8::7' }] }], [['a', 'b']]],
  };
  const scan = scanResult(nested, createDlpPolicy());
  assert.deepEqual(scan.findings.map((f) => [f.detector, f.row]), [['email', 0], ['ipv6', 0]]);
  assert.deepEqual(scan.rows, [['[REDACTED:email]'], [['a', 'b']]]);
});

test('a cell with several findings yields one finding per detector, redacted under the first detector in canonical order', () => {
  const r: EngineResult = { columns: [{ name: 'n', type: 'VARCHAR' }], rows: [['943 476 5919']] };
  const scan = scanResult(r, createDlpPolicy({ actions: { regulated: 'redact' } }));
  assert.deepEqual(scan.findings.map((f) => f.detector), ['uk_nhs_number', 'phone']);
  assert.deepEqual(scan.rows, [['[REDACTED:uk_nhs_number]']]);
});

test('summaries group findings by detector and column with a row count; the blocked error carries them', () => {
  const scan = scanResult(RESULT, createDlpPolicy());
  assert.deepEqual(summariseFindings([...scan.findings, ...scan.findings]), [
    { detector: 'email', column: 'contact', classification: 'confidential', action: 'redact', rows: 1 },
    { detector: 'ipv4', column: 'note', classification: 'confidential', action: 'redact', rows: 1 },
    { detector: 'payment_card', column: 'note', classification: 'regulated', action: 'block', rows: 1 },
  ]);
  const err = blockedError(scan);
  assert.ok(err instanceof DlpResultBlocked);
  assert.equal(err.code, 'DLP_BLOCKED');
  assert.equal(err.status, 403);
  assert.equal(err.message, 'result blocked by data-loss prevention: payment_card in column "note" (1 row)');
});

test('something that is not an engine result is refused', () => {
  assert.throws(() => scanResult({ columns: [] } as never, createDlpPolicy()), DlpInputInvalid);
});

test('hostile cells stay linear: a megabyte of digits, separators, hex and @ signs scans in well under a second', () => {
  const chunks = ['1234 5678 ', '9'.repeat(40), 'a:b:c:', '@a.', 'GB12 ', '1.2.3.', '+1 ', 'ab'.repeat(20)];
  let big = '';
  for (let i = 0; big.length < 1_000_000; i++) big += chunks[i % chunks.length];
  const r: EngineResult = { columns: [{ name: 'blob', type: 'VARCHAR' }], rows: [[big], ['x'.repeat(1_000_000)]] };
  const start = performance.now();
  scanResult(r, createDlpPolicy());
  assert.ok(performance.now() - start < 1000, `took ${performance.now() - start} ms`);
});
