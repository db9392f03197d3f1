/**
 * A synthetic bank for the three-bank clean-room walkthrough (docs/cleanrooms.md, scenario
 * 2): a Gatehouse workspace with one accounts table whose account keys are keyed-hash join
 * tokens (psi/join-tokens.ts) under a key the banks agreed for this collaboration, and a
 * Cedar policy that lets the collaboration's service principal read the table for the
 * purpose `fraud-detection` only. Deterministic, so the walkthrough's numbers are stable.
 * Banks share blocks of accounts (the fraud rings): accounts 0..n-1 of bank i are global
 * accounts i·offset … i·offset+n-1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { DEMO_CEDAR_SCHEMA } from '../demo/workspace.ts';
import { apiKeyDigest } from '../identity/digest.ts';
import { joinToken, joinTokenKey } from '../psi/join-tokens.ts';

export const CLEANROOM_PURPOSE = 'fraud-detection';
export const DEMO_COLLABORATION_SECRET = createHash('sha256').update('gatehouse demo collaboration secret (published, not secret)').digest();

export const ACCOUNT_COLUMNS = [
  { name: 'account_key', type: 'VARCHAR' }, { name: 'customer_id', type: 'VARCHAR' }, { name: 'segment', type: 'VARCHAR' },
  { name: 'flagged', type: 'BOOLEAN' }, { name: 'exposure', type: 'DOUBLE' },
] as const;

export interface BankRow {
  readonly accountKey: string;
  readonly customerId: string;
  readonly segment: string;
  readonly flagged: boolean;
  readonly exposure: number;
}

/** The rows of bank `index`: `accounts` accounts starting at global account `index·offset`. */
export function bankRows(index: number, accounts: number, offset: number, collaborationId = 'fraud-ring'): BankRow[] {
  const key = joinTokenKey(DEMO_COLLABORATION_SECRET, collaborationId, 'account_key');
  const rows: BankRow[] = [];
  for (let i = 0; i < accounts; i++) {
    const g = index * offset + i;
    rows.push({
      accountKey: joinToken(key, `GB${String(g).padStart(10, '0')}`),
      customerId: `b${index}-c${Math.floor(i / 2)}`,
      segment: g % 97 === 0 ? 'private' : g % 2 === 0 ? 'retail' : 'business',
      flagged: g % 7 === 0 || (g >= 1000 && g % 3 === 0),
      exposure: ((g * 7919) % 50_000) + 100,
    });
  }
  return rows;
}

export function writeBankWorkspace(dir: string, input: { bank: string; index: number; accounts: number; offset: number; apiKey: string }): void {
  mkdirSync(join(dir, 'data'), { recursive: true });
  mkdirSync(join(dir, 'policies'), { recursive: true });
  mkdirSync(join(dir, 'secrets'), { recursive: true, mode: 0o700 });
  const lines = ['account_key,customer_id,segment,flagged,exposure'];
  for (const r of bankRows(input.index, input.accounts, input.offset)) lines.push(`${r.accountKey},${r.customerId},${r.segment},${r.flagged},${r.exposure}`);
  writeFileSync(join(dir, 'data', 'accounts.csv'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'secrets', 'hash.key'), createHash('sha256').update(`hash key ${input.bank}`).digest('hex'), { mode: 0o600 });
  writeFileSync(join(dir, 'schema.cedarschema'), DEMO_CEDAR_SCHEMA);
  writeFileSync(join(dir, 'policies', 'cleanroom.cedar'), `// ${input.bank}: the fraud-ring collaboration may read accounts for fraud detection only.
@id("cleanroom-fraud-ring")
@obligations("cleanroom-release")
@reason("the fraud-ring clean room reads contributed account columns for fraud detection")
permit (principal == Principal::"cleanroom", action == Action::"query", resource == Dataset::"accounts")
when { context.purpose == "${CLEANROOM_PURPOSE}" };
`);
  writeFileSync(join(dir, 'gatehouse.yaml'), `# ${input.bank} — synthetic bank for the clean-room walkthrough (docs/cleanrooms.md)
version: 1
name: ${input.bank}
defaults:
  rowCap: 2000000
  statementTimeoutMs: 20000
  memoryLimit: 1GB
secrets:
  hashKeyFile: secrets/hash.key
policies: [policies]
schema: schema.cedarschema
datasets:
  accounts:
    description: Accounts with fraud flags and exposure
    source: { csv: data/accounts.csv }
    classification: confidential
    owner: ${input.bank}
    region: eu
    privacyUnit: customer_id
    purposes: [${CLEANROOM_PURPOSE}]
    columns:
      account_key: { type: VARCHAR, classification: confidential, tags: [id.account] }
      customer_id: { type: VARCHAR, classification: confidential, tags: [id.customer] }
      segment:     { type: VARCHAR, classification: internal }
      flagged:     { type: BOOLEAN, classification: confidential }
      exposure:    { type: DOUBLE,  classification: confidential, bounds: [0, 100000] }
obligations:
  cleanroom-release:
    rowCap: 2000000
principals:
  cleanroom:
    displayName: Fraud-ring clean room (service)
    groups: [cleanrooms]
    attributes: { org: ${input.bank}, region: eu }
    apiKeySha256: [${apiKeyDigest(input.apiKey)}]
`);
}
