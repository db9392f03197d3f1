import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CellValue } from '../model/result.ts';
import type { ColumnDef, DatasetDef } from '../model/types.ts';
import { luhnValid } from '../privacy/dlp/luhn.ts';
import { ibanChecksumValid } from '../privacy/dlp/detectors/iban.ts';
import { MAX_VALUE_CHARS, SAMPLE_SIZE, looksLikePersonName, normaliseColumnName, proposeClassifications, samplesFromRows, samplingPlan, type Proposal } from './classifier.ts';

const NOW = new Date('2025-11-30T12:00:00Z');

function col(name: string, over: Partial<ColumnDef> = {}): ColumnDef {
  return { name, type: 'VARCHAR', classification: 'internal', tags: [], mask: null, bounds: null, description: null, ...over };
}

function dataset(columns: ColumnDef[], over: Partial<DatasetDef> = {}): DatasetDef {
  return { name: 'customers', description: null, source: { kind: 'csv', path: 'x.csv' }, classification: 'internal', tags: [], privacyUnit: null, region: null, owner: null, purposes: [], columns, ...over };
}

/** Deterministic pseudo-random generator so samples are realistic but reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 2246822507) + 0x9e3779b9) >>> 0) / 2 ** 32);
}

function digits(r: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(Math.floor(r() * 10));
  return s;
}

function validSsns(n: number, seed = 1): string[] {
  const r = rng(seed);
  const out: string[] = [];
  while (out.length < n) {
    const area = 1 + Math.floor(r() * 899);
    if (area === 666) continue;
    const group = 1 + Math.floor(r() * 99);
    const serial = 1 + Math.floor(r() * 9999);
    out.push(`${String(area).padStart(3, '0')}-${String(group).padStart(2, '0')}-${String(serial).padStart(4, '0')}`);
  }
  return out;
}

/** Visa numbers with a correct Luhn check digit. */
function visaCards(n: number, seed = 2): string[] {
  const r = rng(seed);
  const out: string[] = [];
  while (out.length < n) {
    const body = '4' + digits(r, 14);
    for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) { out.push(body + d); break; }
  }
  return out;
}

function gbIbans(n: number, seed = 3): string[] {
  const r = rng(seed);
  const out: string[] = [];
  while (out.length < n) {
    const bban = 'WEST' + digits(r, 14);
    for (let cd = 2; cd <= 98; cd++) {
      const candidate = `GB${String(cd).padStart(2, '0')}${bban}`;
      if (ibanChecksumValid(candidate)) { out.push(candidate); break; }
    }
  }
  return out;
}

function find(ps: Proposal[], column: string | null): Proposal | undefined {
  return ps.find((p) => p.column === column);
}

function assertNoValueIn(ps: Proposal[], values: readonly CellValue[]): void {
  const text = JSON.stringify(ps.map((p) => p.evidence));
  for (const v of values) if (typeof v === 'string' && v.length >= 4) assert.ok(!text.includes(v), `evidence leaks a sampled value`);
}

test('column names are split into lower-case words whatever the casing style', () => {
  assert.equal(normaliseColumnName('DateOfBirth'), 'date_of_birth');
  assert.equal(normaliseColumnName('date-of-birth'), 'date_of_birth');
  assert.equal(normaliseColumnName('Customer SSN'), 'customer_ssn');
  assert.equal(normaliseColumnName('IBANNumber'), 'iban_number');
});

test('a column of valid SSNs named ssn is proposed regulated with pii.ssn, high confidence, and evidence without values', () => {
  const ssns = validSsns(50);
  const ds = dataset([col('ssn')]);
  const ps = proposeClassifications(ds, new Map([['ssn', ssns]]), { now: NOW });
  const p = find(ps, 'ssn')!;
  assert.equal(p.level, 'regulated');
  assert.deepEqual(p.tags, ['pii.ssn']);
  assert.ok(p.confidence > 0.9, String(p.confidence));
  assert.ok(p.evidence.some((e) => e.includes('50 of 50')));
  assertNoValueIn(ps, ssns);
  // The dataset itself must be at least as strict as its strictest column.
  assert.equal(find(ps, null)!.level, 'regulated');
});

test('SSN-shaped values that fail the validity rules (area 000/666/9xx, group 00, serial 0000) are not proposed as SSNs', () => {
  const bad: string[] = [];
  for (let i = 0; i < 40; i++) bad.push(['000', '666', '9' + String(10 + i).slice(-2)][i % 3] + '-' + String(10 + i) + '-' + String(1000 + i));
  for (let i = 0; i < 20; i++) bad.push(`123-00-${1000 + i}`, `123-45-0000`);
  const ps = proposeClassifications(dataset([col('reference')]), new Map([['reference', bad]]), { now: NOW });
  assert.equal(find(ps, 'reference'), undefined);
});

test('a badly named column of card numbers is caught by its values (Luhn + scheme), but the same digits with a broken check digit are not', () => {
  const cards = visaCards(40);
  const ps = proposeClassifications(dataset([col('ref_code')]), new Map([['ref_code', cards]]), { now: NOW });
  const p = find(ps, 'ref_code')!;
  assert.equal(p.level, 'regulated');
  assert.deepEqual(p.tags, ['pii.card']);
  assertNoValueIn(ps, cards);
  const broken = cards.map((c) => c.slice(0, -1) + String((Number(c.at(-1)) + 1) % 10));
  assert.ok(broken.every((c) => !luhnValid(c)));
  assert.equal(find(proposeClassifications(dataset([col('ref_code')]), new Map([['ref_code', broken]]), { now: NOW }), 'ref_code'), undefined);
});

test('IBANs are found by MOD 97-10; a single changed digit makes them invisible', () => {
  const ibans = gbIbans(30);
  const p = find(proposeClassifications(dataset([col('payee_account')]), new Map([['payee_account', ibans]]), { now: NOW }), 'payee_account')!;
  assert.deepEqual(p.tags, ['pii.iban']);
  assert.equal(p.level, 'regulated');
  const tampered = ibans.map((i) => i.slice(0, 10) + String((Number(i[10]) + 1) % 10) + i.slice(11));
  assert.equal(find(proposeClassifications(dataset([col('payee_account')]), new Map([['payee_account', tampered]]), { now: NOW }), 'payee_account'), undefined);
});

test('e-mail addresses and phone numbers are found by value; the evidence gives counts and the rule only', () => {
  const emails = Array.from({ length: 30 }, (_, i) => `person${i}@example${i % 4}.org`);
  const phones = Array.from({ length: 30 }, (_, i) => `(212) 555-${String(2000 + i)}`);
  const ps = proposeClassifications(dataset([col('contact'), col('reach_at')]), new Map([['contact', emails], ['reach_at', phones]]), { now: NOW });
  assert.deepEqual(find(ps, 'contact')!.tags, ['pii.email']);
  assert.equal(find(ps, 'contact')!.level, 'confidential');
  assert.deepEqual(find(ps, 'reach_at')!.tags, ['pii.phone']);
  assertNoValueIn(ps, [...emails, ...phones]);
});

test('dates of birth: named columns are proposed; unnamed date columns only when the dates spread over decades like birth dates do', () => {
  const r = rng(9);
  const births = Array.from({ length: 60 }, () => `${1930 + Math.floor(r() * 75)}-${String(1 + Math.floor(r() * 12)).padStart(2, '0')}-${String(1 + Math.floor(r() * 28)).padStart(2, '0')}`);
  const admissions = Array.from({ length: 60 }, () => `2024-${String(1 + Math.floor(r() * 12)).padStart(2, '0')}-${String(1 + Math.floor(r() * 28)).padStart(2, '0')}`);
  const ps = proposeClassifications(dataset([col('DateOfBirth', { type: 'DATE' }), col('d1', { type: 'DATE' }), col('admitted_on', { type: 'DATE' })]),
    new Map([['DateOfBirth', births], ['d1', births], ['admitted_on', admissions]]), { now: NOW });
  assert.deepEqual(find(ps, 'DateOfBirth')!.tags, ['pii.dob']);
  assert.deepEqual(find(ps, 'd1')!.tags, ['pii.dob']);
  assert.ok(find(ps, 'd1')!.confidence < find(ps, 'DateOfBirth')!.confidence);
  assert.equal(find(ps, 'admitted_on'), undefined, 'event dates in one year are not birth dates');
  // Future dates and dates more than 120 years back are not plausible birth dates.
  const implausible = Array.from({ length: 40 }, (_, i) => (i % 2 ? `${2030 + i}-01-01` : `${1800 + i}-01-01`));
  assert.equal(find(proposeClassifications(dataset([col('d2')]), new Map([['d2', implausible]]), { now: NOW }), 'd2'), undefined);
});

test('free-text person names need capitalised words and a known name; place and ward names are not people', () => {
  assert.ok(looksLikePersonName('Jane Smith'));
  assert.ok(looksLikePersonName('Doe, Mary'));
  assert.ok(looksLikePersonName("Mary-Ann O'Brien"));
  assert.ok(looksLikePersonName('José García'));
  assert.ok(looksLikePersonName('Anna van der Berg'), 'particles are allowed between capitalised words');
  for (const s of ['New York', 'Cardiology Ward', 'jane smith', 'JANE SMITH', 'Smith 42', 'the quick brown fox jumps']) assert.ok(!looksLikePersonName(s), s);
  const names = ['Jane Smith', 'Omar Khan', 'Li Wei', 'Maria Garcia', 'John Murphy', 'Sophie Dubois', 'Priya Patel', 'Lars Nilsson', 'Emma Brown', 'Carlos Silva'];
  const wards = ['Cardiology', 'Oncology Ward', 'North Wing', 'Day Surgery', 'Maternity', 'Radiology', 'Paediatrics', 'Outpatients', 'Emergency', 'Neurology'];
  const ps = proposeClassifications(dataset([col('attending'), col('unit')]), new Map([['attending', names], ['unit', wards]]), { now: NOW });
  assert.deepEqual(find(ps, 'attending')!.tags, ['pii.name']);
  assert.equal(find(ps, 'unit'), undefined);
});

test('names alone propose (diagnosis, postcode, surname), with lower confidence when no sampled value agrees', () => {
  const ps = proposeClassifications(dataset([col('icd10_code'), col('PostCode'), col('surname'), col('department_name')]), new Map(), { now: NOW });
  assert.equal(find(ps, 'icd10_code')!.level, 'regulated');
  assert.deepEqual(find(ps, 'icd10_code')!.tags, ['phi.diagnosis']);
  assert.deepEqual(find(ps, 'PostCode')!.tags, ['pii.location']);
  assert.deepEqual(find(ps, 'surname')!.tags, ['pii.name']);
  assert.equal(find(ps, 'department_name'), undefined);
  const disagree = proposeClassifications(dataset([col('email')]), new Map([['email', Array.from({ length: 20 }, (_, i) => `opted-out-${i}`)]]), { now: NOW });
  const named = proposeClassifications(dataset([col('email')]), new Map(), { now: NOW });
  assert.ok(find(disagree, 'email')!.confidence < find(named, 'email')!.confidence);
});

test('email_address and ip_address are not postal addresses', () => {
  const ps = proposeClassifications(dataset([col('email_address'), col('ip_address'), col('home_address')]), new Map(), { now: NOW });
  assert.deepEqual(find(ps, 'email_address')!.tags, ['pii.email']);
  assert.deepEqual(find(ps, 'ip_address')!.tags, ['pii.ip_address']);
  assert.deepEqual(find(ps, 'home_address')!.tags, ['pii.address']);
});

test('nothing is proposed when the declaration is already as strict and carries the tag (or a synonym); levels are never lowered', () => {
  const ds = dataset([
    col('ssn', { classification: 'regulated', tags: ['pii.ssn'] }),
    col('zip', { classification: 'confidential', tags: ['pii.zip'] }),
    col('email', { classification: 'regulated', tags: ['pii.email'] }),
  ], { classification: 'regulated' });
  const ps = proposeClassifications(ds, new Map([['ssn', validSsns(20)]]), { now: NOW });
  assert.deepEqual(ps, []);
});

test('a declared tag with too low a level gets a level-only proposal; a right level without the tag gets a tag-only proposal', () => {
  const ds = dataset([col('ssn', { classification: 'internal', tags: ['pii.ssn'] }), col('card_number', { classification: 'regulated' })], { classification: 'regulated' });
  const ps = proposeClassifications(ds, new Map(), { now: NOW });
  assert.deepEqual([find(ps, 'ssn')!.level, find(ps, 'ssn')!.tags], ['regulated', []]);
  assert.deepEqual(find(ps, 'ssn')!.declared, { level: 'internal', tags: ['pii.ssn'] });
  assert.deepEqual([find(ps, 'card_number')!.level, find(ps, 'card_number')!.tags], ['regulated', ['pii.card']]);
  assert.equal(find(ps, null), undefined, 'the dataset is already regulated');
});

test('empty, all-null, blank and non-text samples propose nothing from values and do not crash', () => {
  const ds = dataset([col('a'), col('b'), col('c'), col('d')]);
  const samples = new Map<string, CellValue[]>([
    ['a', []],
    ['b', Array(50).fill(null)],
    ['c', Array(50).fill('   ')],
    ['d', [123456789, 4111111111111111, true, [1, 2], { k: '078-05-1120' }]],
  ]);
  assert.deepEqual(proposeClassifications(ds, samples, { now: NOW }), []);
});

test('mixed columns: a minority of SSNs in free text is not enough to call the column an SSN column', () => {
  const ssns = validSsns(5);
  const notes = [...ssns.map((s) => `patient ${s} called`), ...Array.from({ length: 45 }, (_, i) => `routine follow-up ${i}`)];
  assert.equal(find(proposeClassifications(dataset([col('notes')]), new Map([['notes', notes]]), { now: NOW }), 'notes'), undefined);
  const mostly = [...validSsns(40).map((s) => `SSN ${s}`), ...Array.from({ length: 10 }, () => 'unknown')];
  const p = find(proposeClassifications(dataset([col('notes')]), new Map([['notes', mostly]]), { now: NOW }), 'notes')!;
  assert.deepEqual(p.tags, ['pii.ssn']);
  assert.ok(p.evidence.some((e) => e.includes('40 of 50 sampled non-empty text values (80%)')));
});

test('huge values are cut before any rule runs: a 5 MB cell is classified quickly and an SSN past the cut is not seen', () => {
  const huge = 'x'.repeat(5_000_000) + ' 078-05-1120';
  const samples = new Map([['blob', Array(SAMPLE_SIZE * 2).fill(huge)]]);
  const t0 = performance.now();
  const ps = proposeClassifications(dataset([col('blob')]), samples, { now: NOW });
  const ms = performance.now() - t0;
  assert.deepEqual(ps, []);
  assert.ok(ms < 2000, `took ${ms} ms`);
  // Pathological input for the name and e-mail expressions stays fast too.
  const nasty = Array(SAMPLE_SIZE).fill('a'.repeat(MAX_VALUE_CHARS - 1) + '@');
  const t1 = performance.now();
  proposeClassifications(dataset([col('n')]), new Map([['n', nasty]]), { now: NOW });
  assert.ok(performance.now() - t1 < 2000);
});

test('sampling helpers: the plan never asks for more than SAMPLE_SIZE rows and samples come from result rows by column', () => {
  const ds = dataset([col('a'), col('b')]);
  assert.equal(samplingPlan(ds).limit, SAMPLE_SIZE);
  assert.equal(samplingPlan(ds, 12).limit, 12);
  assert.equal(samplingPlan(ds, 10_000_000).limit, SAMPLE_SIZE);
  assert.deepEqual(samplingPlan(ds).columns, ['a', 'b']);
  const s = samplesFromRows(['a', 'b'], [[1, 'x'], [2, null]]);
  assert.deepEqual(s.get('a'), [1, 2]);
  assert.deepEqual(s.get('b'), ['x', null]);
});
