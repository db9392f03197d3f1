/**
 * The demo's contractor governance: the paperwork behind the two partners, as records the
 * request path enforces (src/governance/gate.ts), seeded once into a fresh store.
 *
 *   northwind-research (rhea)  DPA for research on patients, encounters, claims; ISO 27001;
 *                              results kept at most 90 days; destruction on termination
 *   keystone-mutual (ivan)     MSA for claims-processing on patients and claims, and for
 *                              claims-audit on encounters (reached only through an approved
 *                              claims-auditor elevation: README "Privileged access"); SOC 2 Type II
 *
 * Regulated datasets need the signed acceptable-use policy and current HIPAA privacy
 * training; confidential ones the acceptable-use policy. Both partners have signed and
 * trained, so the demo works out of the box — and terminating Northwind's DPA
 * (`gatehouse agreement terminate`) stops rhea's next query and shreds her saved results.
 */
import type { GovernanceStore } from '../governance/store.ts';
import type { GovernanceEvent } from '../governance/types.ts';

export const DEMO_ACCEPTABLE_USE = `St Avery Health — acceptable use of shared data (version 1)

1. Use shared data only for the purpose your agreement names and you declare with each query.
2. Never try to identify, contact or single out a patient; never combine results to do so.
3. Keep saved results inside your organisation; they are destroyed when your agreement ends.
4. Report any suspected incident to security@st-avery.example within 24 hours.
5. Every query is recorded in a tamper-evident audit log that St Avery and you can verify.
`;

const DAY = 86_400_000;

/** Seeds the demo's partners, agreements, grants, acknowledgements and training once. Returns the events (for the audit log). */
export async function seedDemoGovernance(store: GovernanceStore, options: { datasets: readonly string[]; now?: Date; by?: string }): Promise<GovernanceEvent[]> {
  if ((await store.vendors.list()).length > 0) return [];
  const now = options.now ?? new Date();
  const by = options.by ?? 'demo-setup';
  const inDays = (d: number): string => new Date(now.getTime() + d * DAY).toISOString();
  const known = new Set(options.datasets);
  const events: GovernanceEvent[] = [];
  const on = async <T extends { event: GovernanceEvent | null }>(p: Promise<T>): Promise<T> => { const r = await p; if (r.event) events.push(r.event); return r; };

  await on(store.gate.setRequirements('regulated', { maxVendorTier: 2, courses: ['hipaa-privacy'], documents: ['acceptable-use'], by }, now));
  await on(store.gate.setRequirements('confidential', { maxVendorTier: 3, courses: [], documents: ['acceptable-use'], by }, now));
  const aup = (await on(store.acknowledgements.publish({ name: 'acceptable-use', text: DEMO_ACCEPTABLE_USE, by }, now))).document;

  const partners = [
    { org: 'northwind-research', display: 'Northwind Research', principal: 'rhea', cert: { name: 'ISO/IEC 27001', issuer: 'BSI' }, kind: 'DPA' as const, title: 'Data processing agreement: de-identified research', datasets: ['patients', 'encounters', 'claims'], purposes: ['research'], retention: 90,
      grants: [['patients', 'research'], ['encounters', 'research'], ['claims', 'research']] as const },
    { org: 'keystone-mutual', display: 'Keystone Mutual', principal: 'ivan', cert: { name: 'SOC 2 Type II', issuer: 'Prescient Assurance' }, kind: 'MSA' as const, title: 'Master services agreement: claims processing', datasets: ['patients', 'claims', 'encounters'], purposes: ['claims-processing', 'claims-audit'], retention: 30,
      grants: [['patients', 'claims-processing'], ['claims', 'claims-processing'], ['encounters', 'claims-audit']] as const },
  ];
  for (const p of partners) {
    await on(store.vendors.register({ name: p.org, displayName: p.display, by }, now));
    await on(store.vendors.addCertification({ org: p.org, name: p.cert.name, issuer: p.cert.issuer, validUntil: inDays(300), by }, now));
    await on(store.vendors.addAuditReport({ org: p.org, title: `${p.cert.name} surveillance audit`, date: inDays(-60), outcome: 'pass', by }, now));
    const datasets = p.datasets.filter((d) => known.has(d));
    const { agreement } = await on(store.agreements.create({
      kind: p.kind, title: p.title, parties: { ours: 'st-avery', partner: p.org },
      effectiveFrom: inDays(-30), endsOn: inDays(335), datasets, purposes: p.purposes,
      clauses: { ip: 'St Avery owns the data; the partner owns its aggregate findings', termination: { destruction: 'required', withinDays: 0 }, resultRetentionDays: p.retention },
      by,
    }, { knownDatasets: known }, now));
    for (const [d, purpose] of p.grants) {
      if (!known.has(d)) continue;
      await on(store.grants.create({ grantee: { kind: 'org', org: p.org }, dataset: d, purpose, agreementId: agreement.id, until: inDays(335), by }, now));
    }
    await on(store.acknowledgements.sign({ principalId: p.principal, document: 'acceptable-use', sha256: aup.sha256 }, now));
    await on(store.training.record({ principalId: p.principal, course: 'hipaa-privacy', completedAt: inDays(-10), expiresAt: inDays(355), by }, now));
  }
  await on(store.findings.create({ title: 'Keystone Mutual: SOC 2 bridge letter for Q4 not yet received', severity: 'medium', owner: 'olivia', dueDate: inDays(21), by }, now));
  return events;
}
