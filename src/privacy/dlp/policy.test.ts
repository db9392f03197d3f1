import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { DlpConfigInvalid } from './errors.ts';
import { DEFAULT_ACTIONS, createDlpPolicy, parseDlpConfig } from './policy.ts';

test('the default policy runs every detector: regulated blocks, confidential redacts, internal and public alert', () => {
  const policy = createDlpPolicy();
  assert.equal(policy.detectors.length, 10);
  assert.deepEqual(policy.actions, DEFAULT_ACTIONS);
  const byId = new Map(policy.detectors.map((d) => [d.detector.id, d]));
  assert.equal(byId.get('us_ssn')!.action, 'block');
  assert.equal(byId.get('email')!.action, 'redact');
});

test('the proposed YAML shape parses: actions per classification, detectors by name or with overrides', () => {
  const raw = parse(`
dlp:
  actions: { regulated: block, confidential: redact, internal: alert }
  detectors: [email, us_ssn, { id: ipv4, classification: internal }, { id: iban, action: redact }]
`) as { dlp: unknown };
  const policy = createDlpPolicy(parseDlpConfig(raw.dlp));
  assert.deepEqual(policy.detectors.map((d) => [d.detector.id, d.classification, d.action]), [
    ['us_ssn', 'regulated', 'block'],
    ['iban', 'regulated', 'redact'],
    ['email', 'confidential', 'redact'],
    ['ipv4', 'internal', 'alert'],
  ]);
});

test('an empty detector list runs no pattern detector; a missing dlp block is the default policy', () => {
  assert.equal(createDlpPolicy({ detectors: [] }).detectors.length, 0);
  assert.deepEqual(parseDlpConfig(undefined), {});
});

test('every problem in a malformed configuration is reported with its path', () => {
  const raw = { actions: { secret: 'block', regulated: 'shred' }, detectors: ['emial', { id: 'ipv4', level: 2 }, 'email', 'email'], extra: 1 };
  assert.throws(() => parseDlpConfig(raw), (e: unknown) => {
    assert.ok(e instanceof DlpConfigInvalid);
    assert.equal(e.detail, 'DLP_CONFIG_INVALID');
    assert.deepEqual(e.problems, [
      'dlp.extra: unknown key (expected actions, detectors)',
      'dlp.actions.secret: unknown classification (expected public, internal, confidential, regulated)',
      'dlp.actions.regulated: action must be one of block, redact, alert',
      'dlp.detectors[0]: unknown detector (expected one of payment_card, us_ssn, uk_nhs_number, ca_sin, es_dni, iban, email, phone, ipv4, ipv6)',
      'dlp.detectors[1].level: unknown key (expected id, classification, action)',
      'dlp.detectors[3]: detector email is listed twice',
    ]);
    return true;
  });
  assert.throws(() => parseDlpConfig(['email']), DlpConfigInvalid);
  assert.throws(() => createDlpPolicy({ detectors: 'email' } as never), DlpConfigInvalid);
});
