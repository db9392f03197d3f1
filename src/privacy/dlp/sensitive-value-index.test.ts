import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { DlpIndexDisposed, DlpInputInvalid } from './errors.ts';
import { SensitiveValueIndex, type SensitiveValue } from './sensitive-value-index.ts';

const PATIENTS: SensitiveValue[] = [
  { value: 'Jane.Doe@Example.com', tag: 'pii.email', classification: 'regulated' },
  { value: '219-09-9999', tag: 'pii.ssn', classification: 'regulated' },
  { value: '+1 (303) 449-2817', tag: 'pii.phone', classification: 'regulated' },
  { value: 'Amara Okafor', tag: 'pii.name', classification: 'confidential' },
];

async function* stream(values: SensitiveValue[]): AsyncGenerator<SensitiveValue> {
  for (const v of values) yield v;
}

test('an index built from a stream recognises each value in any normalised spelling', async () => {
  const index = await SensitiveValueIndex.build(stream(PATIENTS));
  assert.equal(index.size, 4);
  for (const v of ['jane.doe@example.com', '  JANE.DOE@EXAMPLE.COM ', '219099999', '219 09 9999', 219099999, '303.449.2817', '13034492817', 'amara okafor', ' AMARA OKAFOR']) {
    assert.ok(index.has(v), String(v));
  }
});

test('values not in the catalog, nulls, booleans and fragments are not matches', async () => {
  const index = await SensitiveValueIndex.build(PATIENTS);
  for (const v of ['john.doe@example.com', '219-09-9998', '303-449-2818', 'Amara', 'Amara Okafor Jr', null, true, 1.5, 'jane.doe@example.com is here', '']) {
    assert.ok(!index.has(v), String(v));
  }
});

test('a lookup reports the highest classification of the columns that hold the value', () => {
  const index = new SensitiveValueIndex();
  index.add({ value: 'Amara Okafor', tag: 'pii.name', classification: 'internal' });
  index.add({ value: 'amara okafor', tag: 'pii.name', classification: 'confidential' });
  index.add({ value: 'Kofi Mensah', tag: 'pii.name', classification: 'internal' });
  assert.equal(index.classificationOf('AMARA OKAFOR'), 'confidential');
  assert.equal(index.classificationOf('Kofi Mensah'), 'internal');
  assert.equal(index.size, 2);
});

test('text values match exactly (after trim and case), digit identifiers match on their digits wherever they sit in the cell', () => {
  const names = new SensitiveValueIndex();
  names.add({ value: '2190 99999', tag: 'pii.name', classification: 'regulated' });
  assert.ok(names.has(' 2190 99999'));
  assert.ok(!names.has('219099999'));
  const ssns = new SensitiveValueIndex();
  ssns.add({ value: '219-09-9999', tag: 'pii.ssn', classification: 'regulated' });
  assert.ok(ssns.has('SSN 219 09 9999'));
  assert.ok(!ssns.has('219-09-99990'));
});

test('values shorter than minLength are skipped, so common short codes never match', () => {
  const index = new SensitiveValueIndex({ minLength: 4 });
  assert.equal(index.add({ value: 'Li', tag: 'pii.name', classification: 'regulated' }), false);
  assert.equal(index.add({ value: null, tag: 'pii.name', classification: 'regulated' }), false);
  assert.equal(index.size, 0);
  assert.ok(!index.has('Li'));
});

test('the index holds no clear value: inspecting it shows neither the values nor the key', async () => {
  const index = await SensitiveValueIndex.build(PATIENTS);
  const shown = inspect(index, { depth: 10, showHidden: true }) + JSON.stringify(index);
  for (const v of ['Jane', 'jane.doe', '219-09-9999', '219099999', '3034492817', 'okafor', 'Okafor']) assert.ok(!shown.includes(v), v);
});

test('a thousand random non-members never match an index of ten thousand values', () => {
  const index = new SensitiveValueIndex();
  for (let i = 0; i < 10_000; i++) index.add({ value: `member-${i}@example.com`, tag: 'pii.email', classification: 'regulated' });
  assert.equal(index.size, 10_000);
  for (let i = 0; i < 1000; i++) assert.ok(!index.has(`outsider-${i}@example.com`));
  for (let i = 0; i < 10_000; i += 997) assert.ok(index.has(`MEMBER-${i}@example.com`));
});

test('after dispose the key is gone and every use throws DLP_INDEX_DISPOSED', () => {
  const index = new SensitiveValueIndex();
  index.add(PATIENTS[0]!);
  index.dispose();
  assert.throws(() => index.has('jane.doe@example.com'), DlpIndexDisposed);
  assert.throws(() => index.add(PATIENTS[0]!), (e: unknown) => e instanceof DlpIndexDisposed && e.detail === 'DLP_INDEX_DISPOSED');
});

test('malformed entries are refused with messages that describe the type, never the value', () => {
  const index = new SensitiveValueIndex();
  const bad = { value: '078-05-1120', tag: 'pii.ssn', classification: 'top-secret' } as unknown as SensitiveValue;
  assert.throws(() => index.add(bad), (e: unknown) => e instanceof DlpInputInvalid && !e.message.includes('078') && !e.message.includes('top-secret'));
  assert.throws(() => new SensitiveValueIndex({ minLength: 0 }), DlpInputInvalid);
});
