/**
 * Clean rooms on served nodes: two banks, each `startNode` with clean rooms on (its own
 * process, workspace, node key, policy, engine and log; peers and listener from
 * gatehouse.yaml), driven only with the CLI against each node's own HTTP API (`gatehouse
 * cleanroom … --url --key`), as an operator would. The collaboration reads each bank's
 * columns as the internal clean-room principal, which has no API key at all; only the node's
 * administrators may call the routes; the compute node's sealing key survives a restart.
 * bank-a also runs the local sandbox attester (a sample TEE whose platform only bank-b, in test
 * mode, trusts), so a collaboration created with --require-attestation still runs end to end.
 * The compute node (bank-a) deposits each result in the receiving member's partner workspace
 * before it delivers it (issue 23): it refuses to deliver until its administrator has recorded,
 * with the governance CLI, bank-b as a vendor and an agreement covering bank-a's contributed
 * accounts for the collaboration's purpose.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import { main } from '../src/cli/main.ts';
import { ACCOUNT_COLUMNS, bankRows } from '../src/cleanroom/demo-bank.ts';
import { initNodeIdentity } from '../src/federation/index.ts';
import { apiKeyDigest } from '../src/identity/digest.ts';
import { randomBytes } from 'node:crypto';
import { SampleTee } from '../src/attestation/sample.ts';

const SEED = randomBytes(32);
/** bank-a attests with the sandbox attester on this platform; bank-b accepts the platform's key (test mode). */
const ATTESTATION: Record<string, object> = {
  'bank-a': { attesterSeed: SEED.toString('base64url') },
  'bank-b': { samplePlatformKey: new SampleTee({ measurement: '', seed: new Uint8Array(SEED) }).platformKey.export({ type: 'spki', format: 'der' }).toString('base64') },
};

const ACCOUNTS = 200, OFFSET = 100;
const BANKS = ['bank-a', 'bank-b'] as const;
const ADMIN_KEY = (b: string) => `${b}-administrator-key-0123456789abcdef`;
const ANALYST_KEY = (b: string) => `${b}-analyst-key-0123456789abcdef0123`;
const PROCESS = join(import.meta.dirname, '..', 'src', 'node', 'cleanroom-process.ts');

let dir: string;
const ports: Record<string, { http: number; federation: number }> = {};
const children: Record<string, ChildProcess> = {};

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** A bank's workspace made federated: region, pinned peer, residency, an administrator and an analyst; no key for the clean-room principal. */
function federate(ws: string, bank: string, listen: number, peer: { node: string; url: string; publicKey: string }): void {
  let yaml = readFileSync(join(ws, 'gatehouse.yaml'), 'utf8');
  yaml = yaml.replace(/\n    apiKeySha256: \[[0-9a-f]+\]\n$/, '\n');
  yaml += `  ops:\n    displayName: Node administrator\n    groups: [admins]\n    attributes: { org: ${bank}, region: eu }\n    apiKeySha256: [${apiKeyDigest(ADMIN_KEY(bank))}]\n`;
  yaml += `  analyst:\n    displayName: Analyst\n    groups: [analysts]\n    attributes: { org: ${bank}, region: eu }\n    apiKeySha256: [${apiKeyDigest(ANALYST_KEY(bank))}]\n`;
  yaml += `region: { node: ${bank}, region: eu, jurisdiction: EU }\n`;
  yaml += `federation:\n  listen: { host: 127.0.0.1, port: ${listen} }\n  peers:\n    - { node: ${peer.node}, region: eu, jurisdiction: EU, url: "${peer.url}", publicKey: "${peer.publicKey}" }\n`;
  yaml += 'residency:\n  datasets:\n    accounts: { storedIn: eu, processIn: [eu] }\n';
  writeFileSync(join(ws, 'gatehouse.yaml'), yaml);
}

async function startBank(bank: string): Promise<void> {
  const child = spawn(process.execPath, [PROCESS, '--served', join(dir, bank), JSON.stringify(ATTESTATION[bank])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEHOUSE_PAILLIER_BITS: '1024', GATEHOUSE_KEY_PASSPHRASE: 'served clean-room test passphrase' } });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${bank} exited ${code}: ${err}`)));
  });
  const info = JSON.parse(line) as { http: number; federation: number };
  assert.equal(info.federation, ports[bank]!.federation);
  ports[bank]!.http = info.http;
  children[bank] = child;
}

async function stopBank(bank: string): Promise<void> {
  const child = children[bank];
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function cli(bank: string, args: string[], key = ADMIN_KEY(bank), command = 'cleanroom'): Promise<{ code: number; text: string; json: any }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => { text += c.toString('utf8'); });
  const [sub, ...rest] = args;
  const code = await main([command, sub!, ...rest, '--url', `http://127.0.0.1:${ports[bank]!.http}`, '--key', key, '--json'], out);
  let json: any = null;
  try { json = JSON.parse(text); } catch { json = null; }
  return { code, text, json };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-cleanroom-served-'));
  const { writeBankWorkspace } = await import('../src/cleanroom/demo-bank.ts');
  const ids: Record<string, string> = {};
  for (const [index, bank] of BANKS.entries()) {
    writeBankWorkspace(join(dir, bank), { bank, index, accounts: ACCOUNTS, offset: OFFSET, apiKey: `unused-${bank}-0123456789abcdef` });
    ids[bank] = (await initNodeIdentity(join(dir, bank, 'state'), { nodeId: bank, region: 'eu', jurisdiction: 'EU' })).publicKey;
    ports[bank] = { http: 0, federation: await freePort() };
  }
  for (const bank of BANKS) {
    const other = BANKS.find((b) => b !== bank)!;
    federate(join(dir, bank), bank, ports[bank]!.federation, { node: other, url: `https://127.0.0.1:${ports[other]!.federation}`, publicKey: ids[other]! });
  }
  await Promise.all(BANKS.map(startBank));
});

after(async () => {
  await Promise.all(BANKS.map(stopBank));
  rmSync(dir, { recursive: true, force: true });
});

describe('gatehouse cleanroom against served nodes', () => {
  const rule = { kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment', 'flagged'], aggregateColumns: [{ column: 'exposure', functions: ['sum', 'count'] }], joinRequired: true, privacyUnit: 'customer_id', minDistinctUnits: 5 };
  const SQL = 'SELECT a.segment, count(*) AS accounts, sum(b.exposure) AS exposure FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.segment ORDER BY a.segment';

  it('an administrator creates, invites, joins and contributes with the CLI on each bank\'s own node', async () => {
    const ruleFile = join(dir, 'rule.json');
    writeFileSync(ruleFile, JSON.stringify(rule));
    const columns = ACCOUNT_COLUMNS.map((c) => `${c.name}:${c.type}`).join(',');
    assert.equal((await cli('bank-a', ['create', '--id', 'fraud-ring', '--name', 'Shared fraud rings', '--purpose', 'fraud-detection'])).code, 0);
    assert.equal((await cli('bank-a', ['invite', 'fraud-ring', '--node', 'bank-b', '--abilities', 'query,receive,approve'])).code, 0);
    const joined = await cli('bank-b', ['join', 'fraud-ring']);
    assert.equal(joined.code, 0, joined.text);
    assert.equal((await cli('bank-a', ['contribute', 'fraud-ring', '--table', 'a_accounts', '--dataset', 'accounts', '--columns', columns, '--rule', ruleFile])).code, 0);
    assert.equal((await cli('bank-b', ['contribute', 'fraud-ring', '--table', 'b_accounts', '--dataset', 'accounts', '--columns', columns, '--rule', ruleFile])).code, 0);
    const listed = await cli('bank-b', ['list', 'fraud-ring']);
    assert.deepEqual(listed.json.collaboration.contributions.map((c: any) => c.table).sort(), ['a_accounts', 'b_accounts']);
  });

  it('the compute node refuses to deliver a result to a member it has no agreement with, and says what to record', async () => {
    const deposits = (): number => (readFileSync(join(dir, 'bank-a', 'audit', 'entries.dat'), 'latin1').match(/"action":"cleanroom\.deposit"/g) ?? []).length;
    const before = deposits();
    const q = await cli('bank-a', ['query', 'fraud-ring', '--sql', SQL]);
    assert.equal(q.code, 3, q.text);
    assert.doesNotMatch(q.text, /"rows"/, 'no rows reach the querier');
    assert.match(q.text, /CONFLICT/);
    assert.match(q.text, /bank-b has no agreement in force covering accounts/);
    assert.match(q.text, /gatehouse vendor register --name MEMBER/);
    assert.match(q.text, /gatehouse agreement create [^"]*--dataset accounts --purpose fraud-detection/);
    assert.equal(deposits(), before + 1, 'the refused deposit is an entry of the compute node\'s log');
    const items = await cli('bank-a', ['list', '--org', 'bank-b'], ADMIN_KEY('bank-a'), 'workspace');
    assert.equal(items.code, 0, items.text);
    assert.deepEqual(items.json.items, [], 'nothing was placed in bank-b\'s workspace');
  });

  it('an administrator records bank-b and an agreement covering bank-a\'s accounts for the purpose, with the governance CLI', async () => {
    const v = await cli('bank-a', ['register', '--name', 'bank-b'], ADMIN_KEY('bank-a'), 'vendor');
    assert.equal(v.code, 0, v.text);
    const a = await cli('bank-a', ['create', '--kind', 'DPA', '--title', 'Fraud-ring clean room', '--partner', 'bank-b', '--effective-from', new Date(Date.now() - 60_000).toISOString(),
      '--dataset', 'accounts', '--purpose', 'fraud-detection', '--result-retention-days', '30'], ADMIN_KEY('bank-a'), 'agreement');
    assert.equal(a.code, 0, a.text);
    assert.deepEqual([a.json.agreement.datasets, a.json.agreement.purposes], [['accounts'], ['fraud-detection']]);
  });

  it('an analysis reads each bank\'s columns as its keyless clean-room principal and matches a plain join', async () => {
    const q = await cli('bank-a', ['query', 'fraud-ring', '--sql', SQL]);
    assert.equal(q.code, 0, q.text);
    const a = bankRows(0, ACCOUNTS, OFFSET), b = new Map(bankRows(1, ACCOUNTS, OFFSET).map((r) => [r.accountKey, r]));
    const expected = new Map<string, { n: number; sum: number }>();
    for (const r of a) {
      const m = b.get(r.accountKey);
      if (!m) continue;
      const g = expected.get(r.segment) ?? { n: 0, sum: 0 };
      g.n++; g.sum += m.exposure;
      expected.set(r.segment, g);
    }
    const released = q.json.rows as [string, number, number][];
    assert.ok(released.length > 0);
    for (const [segment, n, sum] of released) assert.deepEqual([Number(n), Number(sum)], [expected.get(segment)!.n, expected.get(segment)!.sum]);
    // The read on bank-b is an entry of its own log (RFC 8785 leaves in entries.dat; principals
    // are pseudonymised there), allowed by bank-b's Cedar policy for the clean-room principal, for this collaboration and the compute node's request.
    const log = readFileSync(join(dir, 'bank-b', 'audit', 'entries.dat'), 'latin1');
    const at = log.lastIndexOf('"action":"cleanroom.read"');
    assert.ok(at >= 0, 'bank-b logged no read of its columns');
    const entry = log.slice(at, log.indexOf('\u0000', at) > 0 ? log.indexOf('\u0000', at) : at + 4000);
    assert.match(entry, /"decision":"allow"/);
    assert.match(entry, /"channel":"cleanroom"/);
    assert.match(entry, /"principal":"p1:/, 'the read names its (pseudonymised) principal');
    assert.match(entry, /collaboration fraud-ring/);
    assert.match(entry, /for compute node bank-a/);
    // Before it was delivered, the result went into bank-b's partner workspace on bank-a, expiring with the agreement's retention.
    const ws = await cli('bank-a', ['list', '--org', 'bank-b'], ADMIN_KEY('bank-a'), 'workspace');
    const item = ws.json.items.find((i: any) => i.source === `cleanroom:fraud-ring/${q.json.queryId}`);
    assert.ok(item, ws.text);
    assert.equal(item.item, 'room-result');
    const days = (Date.parse(item.expiresAt) - Date.now()) / 86_400_000;
    assert.ok(days > 29 && days <= 30, `expires in ${days} days`);
  });

  it('PSI cardinality between the served nodes finds the shared accounts (points as CBOR bytes on the node channel)', async () => {
    const r = await cli('bank-a', ['psi', 'fraud-ring', '--table', 'a_accounts', '--column', 'account_key', '--peer-table', 'b_accounts', '--mode', 'cardinality']);
    assert.equal(r.code, 0, r.text);
    assert.equal(r.json.cardinality, ACCOUNTS - OFFSET);
  });

  it('a principal that is not an administrator of the node is refused, and so is an anonymous caller', async () => {
    const r = await cli('bank-a', ['query', 'fraud-ring', '--sql', SQL], ANALYST_KEY('bank-a'));
    assert.notEqual(r.code, 0);
    assert.match(r.text, /POLICY_DENIED/);
    const anonymous = await fetch(`http://127.0.0.1:${ports['bank-a']!.http}/v1/cleanrooms`);
    assert.equal(anonymous.status, 401);
    // Another bank's administrator key means nothing here.
    const foreign = await cli('bank-a', ['list'], ADMIN_KEY('bank-b'));
    assert.match(foreign.text, /AUTH_INVALID|AUTH_REQUIRED/);
  });

  it('with --require-attestation, bank-b releases its columns only after appraising bank-a\'s sandbox evidence', async () => {
    const measured = await cli('bank-a', ['measurement']);
    const file = join(dir, 'attest.json');
    writeFileSync(file, JSON.stringify({ format: 'sample', measurements: [measured.json.measurement] }));
    assert.equal((await cli('bank-a', ['create', '--id', 'attested', '--name', 'Attested', '--purpose', 'fraud-detection', '--require-attestation', file])).code, 0);
    assert.equal((await cli('bank-a', ['invite', 'attested', '--node', 'bank-b', '--abilities', 'query,receive'])).code, 0);
    assert.equal((await cli('bank-b', ['join', 'attested'])).code, 0);
    const ruleFile = join(dir, 'rule.json');
    const columns = ACCOUNT_COLUMNS.map((c) => `${c.name}:${c.type}`).join(',');
    for (const bank of BANKS) assert.equal((await cli(bank, ['contribute', 'attested', '--table', `${bank.slice(-1)}_accounts`, '--dataset', 'accounts', '--columns', columns, '--rule', ruleFile])).code, 0);
    const q = await cli('bank-a', ['query', 'attested', '--sql', SQL]);
    assert.equal(q.code, 0, q.text);
    assert.ok(q.json.rows.length > 0);
    const log = readFileSync(join(dir, 'bank-b', 'audit', 'entries.dat'), 'utf8');
    assert.match(log, /"action":"cleanroom\.release-columns"[^{}]*"decision":"allow"[^{}]*"collaboration attested"[^{}]*attested sample measurement/);
  });

  it('the compute node keeps its sealing key across a restart, so members still seal columns it can open', async () => {
    await stopBank('bank-a');
    await startBank('bank-a');
    const q = await cli('bank-a', ['query', 'fraud-ring', '--sql', SQL]);
    assert.equal(q.code, 0, q.text);
    assert.ok(q.json.rows.length > 0);
  });
});
