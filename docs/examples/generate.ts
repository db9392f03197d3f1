/**
 * Regenerates the examples in this directory from synthetic, realistic input (a seeded
 * random generator: the output is the same on every run).
 *
 *   npx node docs/examples/generate.ts
 *
 * Writes compliance-report.html, compliance-report.csv, flows.json, flows.svg and
 * classification-proposals.json. Nothing here is real data.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport, renderReportCsv, renderReportHtml, type ReportAuditEntry } from '../../src/governance/report.ts';
import { buildFlowMap, renderFlowSvg } from '../../src/governance/flows.ts';
import { proposeClassifications } from '../../src/governance/classifier.ts';
import type { ColumnDef, DatasetDef } from '../../src/workspace/types.ts';

const OUT = import.meta.dirname;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 2246822507) + 0x9e3779b9) >>> 0) / 2 ** 32);
}
const r = rng(20251130);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const ORGS: Record<string, string> = {
  'rhea@northwind': 'Northwind Research', 'tom@northwind': 'Northwind Research',
  'claims-bot': 'Acme Claims Audit', 'lena@acme': 'Acme Claims Audit',
  'ivy@quality': 'St Avery Quality Team',
};
const orgOf = (p: string): string | null => ORGS[p] ?? null;
const V1 = 'e3b8c51f0a7d4c2e9b61f7a0d3c8e5b2a4f6d9c1e7b3a5f8d2c4e6b9a1f3d5c7';
const V2 = '9f2a7c4e1b8d5f3a6c9e2b7d4f1a8c5e3b6d9f2a7c4e1b8d5f3a6c9e2b7d4f1a';

const entries: ReportAuditEntry[] = [];
const start = Date.parse('2025-11-01T00:00:00Z');
const usage: [string, string, string[], number, number][] = [
  // principal, channel, dataset choices, queries, typical rows
  ['rhea@northwind', 'http', ['encounters', 'patients'], 160, 40],
  ['tom@northwind', 'pgwire', ['encounters'], 95, 25],
  ['claims-bot', 'http', ['claims'], 120, 300],
  ['lena@acme', 'cli', ['claims', 'encounters'], 22, 60],
  ['ivy@quality', 'http', ['encounters'], 30, 12],
];
for (const [principal, channel, datasets, n, rows] of usage) {
  for (let i = 0; i < n; i++) {
    const t = new Date(start + Math.floor(r() * 29.5 * 86_400_000)).toISOString();
    const ds = r() < 0.15 && datasets.length > 1 ? [...datasets] : [pick(datasets)];
    const roll = r();
    const policyVersion = Date.parse(t) < Date.parse('2025-11-18T09:30:00Z') ? V1 : V2;
    const base = { time: t, principal, channel, action: 'query', datasets: ds, reasons: [] as string[], policyVersion };
    if (roll < 0.05) entries.push({ ...base, decision: 'deny', rowsReturned: null, errorCode: 'POLICY_DENIED', reasons: ['no permit policy applies'] });
    else if (roll < 0.07) entries.push({ ...base, decision: 'deny', rowsReturned: null, errorCode: 'BUDGET_EXHAUSTED' });
    else if (roll < 0.08) entries.push({ ...base, decision: 'deny', rowsReturned: null, errorCode: 'DLP_BLOCKED' });
    else if (roll < 0.09) entries.push({ ...base, decision: 'error', rowsReturned: null, errorCode: 'QUERY_TIMEOUT' });
    else entries.push({ ...base, decision: 'allow', rowsReturned: Math.max(1, Math.round(rows * (0.2 + 1.6 * r()))), errorCode: null });
  }
}
const admin = (time: string, action: string, decision = 'allow', errorCode: string | null = null, principal = 'olivia@st-avery'): void => {
  entries.push({ time, principal, channel: 'cli', action, datasets: [], decision, rowsReturned: null, errorCode, reasons: [], policyVersion: Date.parse(time) < Date.parse('2025-11-18T09:30:00Z') ? V1 : V2 });
};
admin('2025-11-03T09:12:00Z', 'admin.user.create');
admin('2025-11-03T09:14:00Z', 'grant.create');
admin('2025-11-07T16:40:00Z', 'admin.key.create');
admin('2025-11-12T08:05:00Z', 'elevation.request', 'allow', null, 'ivy@quality');
admin('2025-11-12T08:20:00Z', 'elevation.approve');
admin('2025-11-21T02:17:00Z', 'elevation.break-glass', 'allow', null, 'oncall@st-avery');
admin('2025-11-25T11:00:00Z', 'agreement.terminate');
admin('2025-11-25T11:00:01Z', 'admin.key.revoke');
admin('2025-11-26T10:00:00Z', 'admin.user.disable');
for (let i = 0; i < 7; i++) {
  entries.push({ time: `2025-11-${String(14 + (i % 3)).padStart(2, '0')}T0${i}:1${i}:00Z`, principal: i < 5 ? 'tom@northwind' : 'unknown-user', channel: 'http', action: 'auth.login', datasets: [], decision: 'deny', rowsReturned: null, errorCode: i === 4 ? 'RATE_LIMITED' : 'AUTH_INVALID', reasons: [], policyVersion: V1 });
}
entries.push({ time: '2025-11-20T13:00:00Z', principal: null, channel: 'pgwire', action: 'query', datasets: [], decision: 'deny', rowsReturned: null, errorCode: 'AUTH_INVALID', reasons: [], policyVersion: V2 });

const generatedAt = '2025-12-01T06:00:00.000Z';
const report = buildReport({
  period: { from: '2025-11-01T00:00:00.000Z', to: '2025-12-01T00:00:00.000Z' },
  generatedAt,
  workspace: 'St Avery hospital group',
  entries,
  orgOf,
  findings: [
    { id: 'F-2025-014', title: 'Contractor accounts without MFA', severity: 'high', owner: 'Olivia Grant (data owner)', dueDate: '2025-11-20', status: 'in progress' },
    { id: 'F-2025-017', title: 'Quarterly access review not signed off', severity: 'medium', owner: 'Sam Patel (compliance)', dueDate: '2025-12-15', status: 'open' },
    { id: 'F-2025-009', title: 'Audit log witness not configured', severity: 'low', owner: 'Platform team', dueDate: '2025-10-31', status: 'closed' },
  ],
  agreements: [
    { id: 'DPA-NW-2025', kind: 'Data processing agreement', partner: 'Northwind Research', status: 'active', effectiveFrom: '2025-01-01', endsOn: '2025-12-19' },
    { id: 'NDA-ACME-2024', kind: 'Non-disclosure agreement', partner: 'Acme Claims Audit', status: 'active', effectiveFrom: '2024-06-01', endsOn: '2026-05-31' },
    { id: 'DPA-OLDCO', kind: 'Data processing agreement', partner: 'Oldco Analytics', status: 'terminated', effectiveFrom: '2024-01-01', endsOn: '2025-11-25' },
  ],
  grants: [
    { id: 'G-118', principal: 'rhea@northwind', dataset: 'encounters', purpose: 'research', until: '2025-12-19', status: 'active' },
    { id: 'G-121', org: 'Acme Claims Audit', dataset: 'claims', purpose: 'claims-audit', until: '2026-05-31', status: 'active' },
    { id: 'G-122', principal: 'ivy@quality', dataset: 'encounters', purpose: 'quality', until: '2025-12-03', status: 'active' },
  ],
  vendors: [
    { org: 'Northwind Research', tier: 'medium', expiringCertificates: [{ name: 'ISO/IEC 27001', validUntil: '2026-01-10' }] },
    { org: 'Acme Claims Audit', tier: 'low', expiringCertificates: [] },
    { org: 'Oldco Analytics', tier: 'high', expiringCertificates: [{ name: 'SOC 2 Type II', validUntil: '2025-09-30' }] },
  ],
  budgets: [
    { subject: 'Northwind Research', dataset: 'encounters', spentEpsilon: 4.2, capEpsilon: 5 },
    { subject: 'St Avery Quality Team', dataset: 'encounters', spentEpsilon: 0.6, capEpsilon: 3 },
  ],
  destructions: [
    { at: '2025-11-25T11:00:02Z', subject: 'Results shared with Oldco Analytics under DPA-OLDCO', artefacts: ['result r-5512', 'result r-5530', 'export x-88'], reason: 'Agreement terminated' },
  ],
});
writeFileSync(join(OUT, 'compliance-report.html'), renderReportHtml(report));
writeFileSync(join(OUT, 'compliance-report.csv'), renderReportCsv(report));
const flows = buildFlowMap(entries, { from: '2025-11-01T00:00:00.000Z', to: '2025-12-01T00:00:00.000Z', orgOf, generatedAt });
writeFileSync(join(OUT, 'flows.json'), JSON.stringify(flows, null, 2) + '\n');
writeFileSync(join(OUT, 'flows.svg'), renderFlowSvg(flows));

// Classification proposals for a newly registered, under-declared dataset.
const col = (name: string, over: Partial<ColumnDef> = {}): ColumnDef => ({ name, type: 'VARCHAR', classification: 'internal', tags: [], mask: null, bounds: null, description: null, ...over });
const dataset: DatasetDef = {
  name: 'referrals', description: 'Referrals received from GP practices', source: { kind: 'csv', path: 'data/referrals.csv' },
  classification: 'internal', tags: [], privacyUnit: null, region: 'us', owner: 'st-avery', purposes: ['operations'],
  columns: [col('referral_id', { type: 'BIGINT' }), col('PatientName'), col('contact'), col('dob', { type: 'DATE', classification: 'confidential', tags: ['pii.dob'] }), col('ssn_last_known'), col('icd10'), col('ward')],
};
const given = ['Jane', 'Omar', 'Priya', 'Carlos', 'Emma', 'Li', 'Sophie', 'John'];
const family = ['Smith', 'Khan', 'Patel', 'Silva', 'Brown', 'Chen', 'Dubois', 'Murphy'];
const n = 120;
const samples = new Map<string, (string | number | null)[]>([
  ['referral_id', Array.from({ length: n }, (_, i) => 880000 + i)],
  ['PatientName', Array.from({ length: n }, () => `${pick(given)} ${pick(family)}`)],
  ['contact', Array.from({ length: n }, (_, i) => (i % 10 === 0 ? null : `patient${i}@example-mail.org`))],
  ['dob', Array.from({ length: n }, () => `${1935 + Math.floor(r() * 70)}-0${1 + Math.floor(r() * 9)}-1${Math.floor(r() * 9)}`)],
  ['ssn_last_known', Array.from({ length: n }, () => `${100 + Math.floor(r() * 500)}-${10 + Math.floor(r() * 89)}-${1000 + Math.floor(r() * 8999)}`)],
  ['icd10', Array.from({ length: n }, () => pick(['E11.9', 'I10', 'J45.909', 'M54.5', 'F32.A', 'K21.9']))],
  ['ward', Array.from({ length: n }, () => pick(['Cardiology', 'Oncology', 'North Wing', 'Maternity']))],
]);
const proposals = proposeClassifications(dataset, samples, { now: new Date(generatedAt) });
writeFileSync(join(OUT, 'classification-proposals.json'), JSON.stringify(proposals, null, 2) + '\n');
console.log(`wrote ${entries.length} synthetic audit entries into the report, ${flows.edges.length} flow edges, ${proposals.length} classification proposals`);
