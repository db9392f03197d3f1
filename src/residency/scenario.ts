/**
 * Scenario 4 of SCENARIOS.md as two workspaces: a multinational's `eu-west` and `us-east`
 * nodes. EU patient data may be stored and processed only in the EU; `patients` is one
 * dataset partitioned by region (each node holds its own region's rows); `eu_patients` is the
 * EU partition on its own. Both nodes run the same policy:
 *
 *   - analysts query their own region's data where it lives;
 *   - from another region, only aggregates over at least 5 patients cross the border;
 *   - a careless grant (group `careless`) permits everything: the border rule still refuses
 *     raw rows, which is what the tests and the demo show.
 *
 * Used by `gatehouse residency demo`, the tests (test/residency*.test.ts) and the benchmark.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { apiKeyDigest } from '../identity/digest.ts';
import { initNodeIdentity, type NodeIdentity } from '../federation/identity.ts';
import { FEDERATED_CEDAR_SCHEMA } from '../federation/residency-context.ts';

export const SCENARIO_KEYS = {
  /** A US analyst: her queries over EU data run in the EU and bring back aggregates. */
  ursula: 'res-key-ursula-0123456789abcdef',
  /** An EU analyst. */
  erik: 'res-key-erik-0123456789abcdef00',
  /** Holds the careless grant: the border rule, not the policy, stops raw rows. */
  carl: 'res-key-carl-0123456789abcdef00',
  /** Reads both audit logs. */
  audrey: 'res-key-audrey-0123456789abcdef',
} as const;

export const CONDITIONS = ['asthma', 'diabetes', 'hypertension'] as const;

export interface ScenarioNode {
  readonly region: 'eu-west' | 'us-east';
  readonly nodeId: string;
  readonly jurisdiction: string;
  readonly wsDir: string;
  readonly stateDir: string;
  readonly federationPort: number;
  readonly identity: NodeIdentity;
}

/** A free loopback port (the listener is opened again by the node a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const a = s.address(); const port = typeof a === 'object' && a ? a.port : 0; s.close(() => resolve(port)); });
  });
}

/** Deterministic patients of one region: ids from `first`, conditions and costs cycling. */
export function patientRows(region: 'eu-west' | 'us-east', count: number): { patient_id: number; name: string; country: string; condition: string; cost: number }[] {
  const first = region === 'eu-west' ? 1 : 100_001;
  const countries = region === 'eu-west' ? ['DE', 'FR', 'IE', 'NL'] : ['US'];
  return Array.from({ length: count }, (_, i) => ({
    patient_id: first + i,
    name: `Patient ${region} ${i}`,
    country: countries[i % countries.length]!,
    condition: CONDITIONS[(i * 7 + (region === 'eu-west' ? 0 : 1)) % CONDITIONS.length]!,
    cost: 100 + ((i * 37) % 900),
  }));
}

export function patientsCsv(rows: ReturnType<typeof patientRows>): string {
  return 'patient_id,name,country,condition,cost\n' + rows.map((r) => `${r.patient_id},${r.name},${r.country},${r.condition},${r.cost}`).join('\n') + '\n';
}

export const SCENARIO_SCHEMA = FEDERATED_CEDAR_SCHEMA;

export const SCENARIO_POLICY = `// EU personal data is processed only in the EU; only aggregates of at least 5 patients leave.
@id("own-region")
@reason("analysts query their own region's data where it lives")
permit (principal in Group::"analysts", action == Action::"query", resource)
when { context.purpose == "research" && !context.forwarded && context.datasetResidency.contains(context.nodeRegion) };

@id("cross-border-aggregates")
@obligations("cross-border")
@reason("from another region, only aggregates over at least 5 patients cross the border")
permit (principal in Group::"analysts", action == Action::"query", resource)
when { context.purpose == "research" && context.forwarded && context.originRegion != context.nodeRegion };

@id("careless-grant")
@reason("a grant without aggregation; the residency border rule still refuses raw rows")
permit (principal in Group::"careless", action == Action::"query", resource)
when { context.purpose == "research" };
`;

const DATASET = (file: string, description: string): string => `    description: ${description}
    source: { csv: ${file} }
    classification: regulated
    privacyUnit: patient_id
    oneRowPerUnit: true
    purposes: [research]
    columns:
      patient_id: { type: BIGINT,  classification: confidential }
      name:       { type: VARCHAR, classification: regulated, mask: redact }
      country:    { type: VARCHAR, classification: internal }
      condition:  { type: VARCHAR, classification: confidential }
      cost:       { type: DOUBLE,  classification: confidential, bounds: [0, 1000] }
`;

export interface PeerInfo { readonly nodeId: string; readonly region: string; readonly jurisdiction: string; readonly port: number; readonly publicKey: string; readonly host?: string }

/** gatehouse.yaml of one scenario node; `extra` is appended under datasets (the misconfiguration tests). */
export function scenarioYaml(self: { nodeId: string; region: 'eu-west' | 'us-east'; jurisdiction: string; port: number; host?: string }, peers: readonly PeerInfo[], extra: { datasets?: string; residency?: string; remote?: string } = {}): string {
  const eu = self.region === 'eu-west';
  const remote = peers.length === 0 ? '' : `  remote:\n    patients: { regions: [${eu ? 'us-east' : 'eu-west'}] }\n${eu ? '' : '    eu_patients: { regions: [eu-west] }\n'}`;
  const principals = Object.entries(SCENARIO_KEYS).map(([id, key]) => {
    const group = id === 'carl' ? 'careless' : id === 'audrey' ? 'auditors' : 'analysts';
    const org = id === 'ursula' ? 'acme-us' : 'acme-eu';
    return `  ${id}:\n    groups: [${group}]\n    attributes: { org: ${org} }\n    apiKeySha256: [${apiKeyDigest(key)}]\n`;
  }).join('');
  return `version: 1
name: acme-${self.region}
secrets:
  hashKeyFile: secrets/hash.key
policies: [policies]
schema: schema.cedarschema

region:
  node: ${self.nodeId}
  region: ${self.region}
  jurisdiction: ${self.jurisdiction}

federation:
  listen: { host: ${self.host ?? '127.0.0.1'}, port: ${self.port} }
  peers:${peers.length === 0 ? ' []' : ''}
${peers.map((p) => `    - node: ${p.nodeId}\n      region: ${p.region}\n      jurisdiction: ${p.jurisdiction}\n      url: https://${p.host ?? '127.0.0.1'}:${p.port}\n      publicKey: ${p.publicKey}\n`).join('')}
residency:
  datasets:
    patients: { storedIn: ${self.region}, processIn: [${self.region}] }
${eu ? '    eu_patients: { storedIn: eu-west, processIn: [eu-west] }\n' : ''}${extra.residency ?? ''}${extra.remote ?? remote}
datasets:
  patients:
${DATASET('data/patients.csv', `Patients of the ${self.region} region (one partition of patients)`)}${eu ? `  eu_patients:\n${DATASET('data/patients.csv', 'EU patients, stored and processed only in the EU')}` : ''}${extra.datasets ?? ''}
obligations:
  cross-border:
    aggregationOnly: { minGroupSize: 5 }

principals:
${principals}`;
}

export interface ScenarioOptions {
  readonly euPatients?: number;
  readonly usPatients?: number;
  /** Each node's own address (network namespaces); default both on 127.0.0.1. */
  readonly hosts?: { readonly 'eu-west': string; readonly 'us-east': string };
}

/** Writes both workspaces under `dir`, with node identities and each pinning the other. */
export async function createScenario(dir: string, options: ScenarioOptions = {}): Promise<{ eu: ScenarioNode; us: ScenarioNode }> {
  const specs = [
    { region: 'eu-west' as const, nodeId: 'eu-west-1', jurisdiction: 'EU', count: options.euPatients ?? 60 },
    { region: 'us-east' as const, nodeId: 'us-east-1', jurisdiction: 'US', count: options.usPatients ?? 90 },
  ];
  const nodes: ScenarioNode[] = [];
  for (const s of specs) {
    const wsDir = join(dir, s.region);
    const stateDir = join(wsDir, 'state');
    for (const d of ['data', 'secrets', 'policies', 'state']) mkdirSync(join(wsDir, d), { recursive: true });
    writeFileSync(join(wsDir, 'data', 'patients.csv'), patientsCsv(patientRows(s.region, s.count)));
    writeFileSync(join(wsDir, 'secrets', 'hash.key'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    writeFileSync(join(wsDir, 'schema.cedarschema'), SCENARIO_SCHEMA);
    writeFileSync(join(wsDir, 'policies', 'residency.cedar'), SCENARIO_POLICY);
    const identity = await initNodeIdentity(stateDir, { nodeId: s.nodeId, region: s.region, jurisdiction: s.jurisdiction, force: true });
    nodes.push({ region: s.region, nodeId: s.nodeId, jurisdiction: s.jurisdiction, wsDir, stateDir, federationPort: await freePort(), identity });
  }
  const hostOf = (n: ScenarioNode): { host?: string } => (options.hosts ? { host: options.hosts[n.region] } : {});
  const info = (n: ScenarioNode): PeerInfo => ({ nodeId: n.nodeId, region: n.region, jurisdiction: n.jurisdiction, port: n.federationPort, publicKey: n.identity.publicKey, ...hostOf(n) });
  for (const n of nodes) {
    const others = nodes.filter((o) => o !== n).map(info);
    writeFileSync(join(n.wsDir, 'gatehouse.yaml'), scenarioYaml({ nodeId: n.nodeId, region: n.region, jurisdiction: n.jurisdiction, port: n.federationPort, ...hostOf(n) }, others));
  }
  return { eu: nodes[0]!, us: nodes[1]! };
}
