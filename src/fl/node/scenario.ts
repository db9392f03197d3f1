/**
 * Step 3 of scenario 2 (SCENARIOS.md) as three workspaces: three banks, each its own
 * Gatehouse node in its own region, each holding its own card transactions. Each bank's
 * policy lets its FL operator read six behavioural features and the fraud label for purpose
 * `model-training` — and nothing else: the customer's name and account number are not
 * released for training, so no job can ask for them. bank-a also coordinates.
 *
 * Used by `gatehouse fl demo`, test/fl-nodes.test.ts and docs/federated.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { apiKeyDigest } from '../../identity/digest.ts';
import { initNodeIdentity, type NodeIdentity } from '../../federation/identity.ts';
import { FEDERATED_CEDAR_SCHEMA } from '../../federation/residency-context.ts';
import { createServer } from 'node:net';
import { FRAUD_FEATURES, fraudRows } from '../models/synthetic.ts';

export const BANKS = [
  { nodeId: 'bank-a', region: 'uk', jurisdiction: 'UK', org: 'bank-a' },
  { nodeId: 'bank-b', region: 'eu-west', jurisdiction: 'EU', org: 'bank-b' },
  { nodeId: 'bank-c', region: 'us-east', jurisdiction: 'US', org: 'bank-c' },
] as const;

/** Each bank's FL operator (groups fl-operators, fl-trainers), administrator (agreements) and auditor. */
export const BANK_KEYS: Record<string, { operator: string; admin: string; auditor: string }> = Object.fromEntries(
  BANKS.map((b) => [b.nodeId, { operator: `fl-key-${b.nodeId}-operator-0123456789abcdef`, admin: `fl-key-${b.nodeId}-admin-0123456789abcdef00`, auditor: `fl-key-${b.nodeId}-auditor-0123456789abcdef` }]),
);

export const BANK_SCHEMA = FEDERATED_CEDAR_SCHEMA;

export const BANK_POLICY = `// Training reads behavioural features and the label, on this bank's own node only.
@id("fl-training-features")
@obligations("training-features")
@reason("the bank's FL trainers read the model features and the fraud label for model-training")
permit (principal in Group::"fl-trainers", action == Action::"query", resource)
when { context.purpose == "model-training" };
`;

/** A free loopback port (the node listener opens it again a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const a = s.address(); const port = typeof a === 'object' && a ? a.port : 0; s.close(() => resolve(port)); });
  });
}

export interface BankNode {
  readonly nodeId: string;
  readonly region: string;
  readonly wsDir: string;
  readonly stateDir: string;
  readonly federationPort: number;
  readonly identity: NodeIdentity;
}

function csv(bank: number, rows: number, seed: number): string {
  const { rows: r, labels } = fraudRows(rows, bank, seed);
  const lines = [`account_no,customer_name,${FRAUD_FEATURES.join(',')},is_fraud`];
  r.forEach((x, i) => lines.push(`${bank}${String(i).padStart(7, '0')},Customer ${bank}-${i},${x.join(',')},${labels[i]}`));
  return `${lines.join('\n')}\n`;
}

function yaml(self: (typeof BANKS)[number], port: number, peers: readonly { b: (typeof BANKS)[number]; port: number; key: string }[]): string {
  const keys = BANK_KEYS[self.nodeId]!;
  return `version: 1
name: ${self.nodeId}
secrets:
  hashKeyFile: secrets/hash.key
policies: [policies]
schema: schema.cedarschema

region:
  node: ${self.nodeId}
  region: ${self.region}
  jurisdiction: ${self.jurisdiction}

federation:
  listen: { host: 127.0.0.1, port: ${port} }
  peers:
${peers.map((p) => `    - node: ${p.b.nodeId}\n      region: ${p.b.region}\n      jurisdiction: ${p.b.jurisdiction}\n      url: https://127.0.0.1:${p.port}\n      publicKey: ${p.key}\n`).join('')}
residency:
  datasets:
    transactions: { storedIn: ${self.region}, processIn: [${self.region}] }

datasets:
  transactions:
    description: Card transactions of ${self.nodeId} with the fraud label
    source: { csv: data/transactions.csv }
    classification: confidential
    privacyUnit: account_no
    purposes: [model-training]
    columns:
      account_no:    { type: BIGINT,  classification: regulated }
      customer_name: { type: VARCHAR, classification: regulated, mask: redact }
${FRAUD_FEATURES.map((f) => `      ${f}: { type: DOUBLE, classification: confidential }`).join('\n')}
      is_fraud:      { type: INTEGER, classification: confidential }

obligations:
  training-features:
    joinOnly: [account_no]
    rowCap: 100000

principals:
  operator:
    groups: [fl-operators, fl-trainers]
    attributes: { org: ${self.org} }
    apiKeySha256: [${apiKeyDigest(keys.operator)}]
  admin:
    groups: [admins]
    attributes: { org: ${self.org} }
    apiKeySha256: [${apiKeyDigest(keys.admin)}]
  auditor:
    groups: [auditors]
    attributes: { org: ${self.org} }
    apiKeySha256: [${apiKeyDigest(keys.auditor)}]
`;
}

/** Writes the three bank workspaces under `dir`, each with its node identity and the others pinned. */
export async function createBanks(dir: string, options: { rows?: number; seed?: number } = {}): Promise<BankNode[]> {
  const nodes: BankNode[] = [];
  for (const [i, b] of BANKS.entries()) {
    const wsDir = join(dir, b.nodeId);
    const stateDir = join(wsDir, 'state');
    for (const d of ['data', 'secrets', 'policies', 'state']) mkdirSync(join(wsDir, d), { recursive: true });
    writeFileSync(join(wsDir, 'data', 'transactions.csv'), csv(i, options.rows ?? 1200, options.seed ?? 42));
    writeFileSync(join(wsDir, 'secrets', 'hash.key'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    writeFileSync(join(wsDir, 'schema.cedarschema'), BANK_SCHEMA);
    writeFileSync(join(wsDir, 'policies', 'training.cedar'), BANK_POLICY);
    const identity = await initNodeIdentity(stateDir, { nodeId: b.nodeId, region: b.region, jurisdiction: b.jurisdiction, force: true });
    nodes.push({ nodeId: b.nodeId, region: b.region, wsDir, stateDir, federationPort: await freePort(), identity });
  }
  for (const [i, n] of nodes.entries()) {
    const peers = nodes.map((o, j) => ({ b: BANKS[j]!, port: o.federationPort, key: o.identity.publicKey })).filter((_, j) => j !== i);
    writeFileSync(join(n.wsDir, 'gatehouse.yaml'), yaml(BANKS[i]!, n.federationPort, peers));
  }
  return nodes;
}
