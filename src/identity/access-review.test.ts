import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDemoWorkspace } from '../../test/helpers/demo-data.ts';
import { loadWorkspace, type LoadedWorkspace } from '../workspace/validate.ts';
import { accessReview, AccessReviewInvalid, renderAccessReview, type AccessReport, type PrincipalAccess } from './access-review.ts';

const NOW = new Date('2025-06-01T00:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

let dir: string;
let loaded: LoadedWorkspace;
let report: AccessReport;

function review(extra: Partial<Parameters<typeof accessReview>[0]> = {}): AccessReport {
  const ws = loaded.workspace;
  return accessReview({
    principals: ws.principals.values(), datasets: ws.datasets.values(), decide: (p, d, c) => loaded.policy.decide(p, d, c),
    usage: [
      { principalId: 'rhea', dataset: 'encounters', lastUsedAt: daysAgo(2), purpose: 'research' },
      { principalId: 'rhea', dataset: 'patients', lastUsedAt: daysAgo(200) },
      { principalId: 'ivan', dataset: 'claims', lastUsedAt: new Date(NOW.getTime() - 3_600_000) },
      { principalId: 'ada', dataset: 'encounters', lastUsedAt: daysAgo(10), purpose: 'marketing' },
    ],
    unusedAfterDays: 30, now: NOW, defaultRowCap: ws.defaults.rowCap, policyVersion: ws.policyVersion,
    ...extra,
  });
}

const principal = (r: AccessReport, id: string): PrincipalAccess => r.principals.find((p) => p.principalId === id)!;
const grant = (r: AccessReport, id: string, ds: string) => principal(r, id).grants.find((g) => g.dataset === ds);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-review-'));
  await createTestDemoWorkspace(dir, { patients: 50, encountersPerPatient: 1 });
  loaded = await loadWorkspace(dir);
  report = review();
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('access review of the demo workspace', () => {
  it('lists every principal; the auditor has no data access', () => {
    assert.deepEqual(report.principals.map((p) => p.principalId), ['ada', 'audrey', 'ivan', 'olivia', 'rhea']);
    assert.deepEqual(principal(report, 'audrey').grants, []);
    assert.deepEqual(report.summary.principalsWithoutAccess, ['audrey', 'olivia']);
  });

  it('shows the research contractor\'s encounters under differential privacy with patient_id join-only', () => {
    const g = grant(report, 'rhea', 'encounters')!;
    assert.deepEqual(g.purposes, ['research']);
    assert.deepEqual(g.policies, ['research-dp']);
    assert.deepEqual(g.differentialPrivacy, { epsilon: 1, delta: 1e-7, budgetEpsilon: 10, budgetPer: 'org' });
    assert.deepEqual(g.joinOnlyColumns, ['patient_id']);
    assert.ok(!g.unmaskedColumns.includes('patient_id'));
    assert.equal(g.rowCap, 5000);
    assert.equal(g.unused, false);
    assert.equal(g.daysSinceUse, 2);
  });

  it('shows the contractor\'s patients as aggregates only, names masked, and unused for 200 days', () => {
    const g = grant(report, 'rhea', 'patients')!;
    assert.deepEqual(g.aggregationOnly, { minGroupSize: 11 });
    assert.deepEqual(g.maskedColumns.find((c) => c.column === 'name'), { column: 'name', mask: 'redact' });
    assert.equal(g.unused, true);
    assert.equal(g.daysSinceUse, 200);
    assert.equal(grant(report, 'rhea', 'claims')!.lastUsedAt, null);
    assert.equal(grant(report, 'rhea', 'claims')!.unused, true);
  });

  it('shows the insurer\'s row filter, its unmasked name and date of birth, and its masked SSN', () => {
    const g = grant(report, 'ivan', 'patients')!;
    assert.deepEqual(g.purposes, ['claims-processing']);
    assert.deepEqual(g.rowFilters, ['region = principal.region']);
    assert.ok(g.unmaskedColumns.includes('name') && g.unmaskedColumns.includes('date_of_birth'));
    assert.deepEqual(g.maskedColumns.find((c) => c.column === 'ssn'), { column: 'ssn', mask: 'last4' });
    assert.equal(g.rowCap, 1000);
    assert.equal(grant(report, 'ivan', 'claims')!.unused, false);
    assert.equal(grant(report, 'ivan', 'encounters'), undefined, 'the insurer has no grant on encounters');
  });

  it('groups the internal analyst\'s purposes with the same effect into one grant, with the hash mask that overrides the declared one', () => {
    const g = grant(report, 'ada', 'encounters')!;
    assert.deepEqual(g.purposes, ['research', 'operations', 'quality']);
    assert.equal(principal(report, 'ada').grants.filter((x) => x.dataset === 'encounters').length, 1);
    const p = grant(report, 'ada', 'patients')!;
    assert.deepEqual(p.maskedColumns.find((c) => c.column === 'ssn'), { column: 'ssn', mask: 'hash' });
    assert.ok(p.unmaskedColumns.includes('email'));
    assert.ok(!p.purposes.includes('claims-processing'));
  });

  it('counts use only for the grant\'s purposes: a use recorded for another purpose leaves the grant unused', () => {
    assert.equal(grant(report, 'ada', 'encounters')!.unused, true);
    assert.equal(grant(report, 'ada', 'encounters')!.lastUsedAt, null);
  });

  it('asks only about the purposes given per dataset, when given', () => {
    const r = review({ purposes: { patients: ['marketing'], encounters: ['marketing'], claims: ['marketing'] } });
    assert.equal(r.summary.grants, 0, 'regulated data is never used for marketing');
  });

  it('renders a plain-text table with one row per grant and a summary line', () => {
    const text = renderAccessReview(report);
    assert.match(text, /principal\s+│ dataset\s+│ purposes/);
    assert.match(text, /rhea\s+│ encounters\s+│ research\s+│.*DP ε=1\/query.*join-only: patient_id/);
    assert.match(text, /ivan\s+│ patients\s+│ claims-processing .*region = principal\.region/);
    assert.match(text, /audrey\s+│ \(no access\)/);
    assert.match(text, /5 principals · \d+ grants · \d+ unused for more than 30 days · no data access: audrey, olivia/);
    assert.ok(!text.includes('…'), 'nothing is truncated');
  });

  it('refuses malformed input with a typed error', () => {
    assert.throws(() => review({ unusedAfterDays: 0 }), AccessReviewInvalid);
    assert.throws(() => review({ usage: [{ principalId: 'rhea', dataset: 'patients', lastUsedAt: 'yesterday' }] }), (e: unknown) => e instanceof AccessReviewInvalid && e.detail === 'ACCESS_REVIEW_INVALID' && e.status === 400);
  });
});
