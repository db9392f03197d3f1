/**
 * A compute node that must attest before members release their columns
 * (compute.requireAttestation, docs/cleanrooms.md#attested-compute-node). Two banks as
 * separate processes: bank-a is the compute node, running the local sandbox attester (a
 * sample TEE whose platform key the test holds); bank-b accepts that platform in test mode.
 *
 * The good run goes through bank-a's own process. The attacks are written as the operator of
 * the compute node would write them: the test holds bank-a's node key (so bank-b's listener
 * lets it in as bank-a, the collaboration's compute node) and the genuine platform, and tries
 * to get bank-b's columns without fresh, bound evidence of the approved image. Each attempt
 * must be refused by bank-b, with nothing sealed, and leave a denied entry in bank-b's log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from 'cbor2';
import { SampleTee } from '../src/attestation/sample.ts';
import { MemberAttestation } from '../src/cleanroom/attested-release.ts';
import { parseComputeSettings } from '../src/cleanroom/attestation-requirement.ts';
import { startCluster, type Cluster } from '../src/cleanroom/cluster.ts';
import { analysisBinding, analysisCodeHash, analysisJobId, sandboxMeasurement, sealingKeySpki } from '../src/cleanroom/compute-attester.ts';
import { ACCOUNT_COLUMNS, bankRows } from '../src/cleanroom/demo-bank.ts';
import { FederationClient, PeerRegistry, loadNodeIdentity, parsePublicKey } from '../src/federation/index.ts';

const ACCOUNTS = 120, OFFSET = 40;
const SEED = randomBytes(32);
const MEASUREMENT = sandboxMeasurement();
const platform = (measurement = MEASUREMENT) => new SampleTee({ measurement, seed: new Uint8Array(SEED) });
const SQL = 'SELECT a.segment, count(*) AS accounts, sum(b.exposure) AS exposure FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.segment ORDER BY a.segment';
const rule = { kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment', 'flagged'], aggregateColumns: [{ column: 'exposure', functions: ['sum', 'count'] }], joinRequired: true, privacyUnit: 'customer_id', minDistinctUnits: 5 };

let dir: string;
let cl: Cluster;
/** bank-a's node key in the attacker's hands, talking to bank-b's listener. */
let attacker: FederationClient;
/** The sealing key bank-a published in the collaboration (what the evidence must name). */
let sealingJwk: { kty: string; crv: string; x: string };

const ok = (r: { status: number; body: any }) => { assert.equal(r.status, 200, JSON.stringify(r.body)); return r.body; };

function bankBLog(): string {
  return readFileSync(join(dir, 'bank-b', 'audit', 'entries.dat'), 'utf8');
}

/** Denied release entries on bank-b carrying this refusal code. */
function deniedReleases(code: string): number {
  const re = new RegExp(`"action":"cleanroom\\.release-columns"[^{}]*?"decision":"deny","errorCode":"${code}"`, 'g');
  return bankBLog().match(re)?.length ?? 0;
}

/** bank-b's own governed reads of its accounts (each a `query` entry on channel cleanroom). */
function reads(): number {
  return bankBLog().match(/"action":"query","channel":"cleanroom"/g)?.length ?? 0;
}

function columnsRequest(queryId: string, sql = SQL) {
  return { collaborationId: 'vault', version: 0, queryId, sql, params: null, template: null, querier: 'bank-a', tables: ['b_accounts'] };
}

/** The first half of the exchange: bank-b's single-use nonce for this query. */
async function challenge(queryId: string): Promise<{ challengeId: string; nonce: Uint8Array }> {
  const { result } = await attacker.call<{ challengeId: string; nonce: string }>('bank-b', 'cleanroom-attest', { collaborationId: 'vault', queryId });
  return { challengeId: result.challengeId, nonce: new Uint8Array(Buffer.from(result.nonce, 'base64url')) };
}

/** Asks bank-b for its columns with this attestation; returns the refusal's detail code. */
async function refusedWith(request: Record<string, unknown>): Promise<string> {
  try {
    const { result } = await attacker.call<{ sealed?: unknown }>('bank-b', 'cleanroom-columns', request);
    assert.fail(`bank-b released its columns: ${JSON.stringify(result).slice(0, 80)}`);
  } catch (err) {
    const e = err as { code?: string; detail?: string };
    assert.equal(e.code, 'ATTESTATION_REFUSED', String(err));
    return e.detail ?? '';
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-cleanroom-attest-'));
  const platformKey = platform().platformKey.export({ type: 'spki', format: 'der' }).toString('base64');
  cl = await startCluster(dir, [
    { nodeId: 'bank-a', accounts: ACCOUNTS, offset: OFFSET, attesterSeed: SEED.toString('base64url') },
    { nodeId: 'bank-b', accounts: ACCOUNTS, offset: OFFSET, samplePlatformKey: platformKey },
  ]);
  const a = cl.node('bank-a'), b = cl.node('bank-b');
  ok(await a.call('POST', '/v1/cleanrooms', { id: 'vault', name: 'Attested joins', purpose: 'fraud-detection', compute: { requireAttestation: { format: 'sample', measurements: [MEASUREMENT], maxAgeSeconds: 120 } } }));
  ok(await a.call('POST', '/v1/cleanrooms/vault/invitations', { node: 'bank-b', abilities: ['query', 'receive', 'approve'] }));
  ok(await b.call('POST', '/v1/cleanrooms/vault/join'));
  ok(await a.call('POST', '/v1/cleanrooms/vault/contributions', { table: 'a_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule }));
  const c = ok(await b.call('POST', '/v1/cleanrooms/vault/contributions', { table: 'b_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule })).collaboration;
  sealingJwk = c.members.find((m: any) => m.nodeId === 'bank-a').sealingKey;
  attacker = new FederationClient({
    identity: loadNodeIdentity(join(dir, 'bank-a', 'state')),
    peers: new PeerRegistry([{ nodeId: 'bank-b', region: 'eu', jurisdiction: 'EU', url: b.nodeUrl, publicKey: b.publicKey, key: parsePublicKey(b.publicKey)! }]),
  });
});

after(async () => {
  attacker?.close();
  await cl?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a compute node that must attest before members release their columns', () => {
  it('every member holds the requirement, fixed at creation', async () => {
    const c = ok(await cl.node('bank-b').call('GET', '/v1/cleanrooms/vault')).collaboration;
    assert.deepEqual(c.compute.requireAttestation, { format: 'sample', measurements: [MEASUREMENT], pcrs: {}, maxAgeSeconds: 120 });
  });

  it('with fresh evidence of the approved sandbox, bound to bank-b\'s nonce and the sealing key, bank-b releases and the analysis runs', async () => {
    const out = ok(await cl.node('bank-a').call('POST', '/v1/cleanrooms/vault/queries', { sql: SQL }));
    assert.ok(out.rows.length > 0);
    // Each released group matches a plain join of the two banks' rows.
    const rb = new Map(bankRows(1, ACCOUNTS, OFFSET).map((r) => [r.accountKey, r]));
    const plain = new Map<string, [number, number]>();
    for (const r of bankRows(0, ACCOUNTS, OFFSET)) {
      const m = rb.get(r.accountKey);
      if (!m) continue;
      const g = plain.get(r.segment) ?? [0, 0];
      plain.set(r.segment, [g[0] + 1, g[1] + m.exposure]);
    }
    for (const [segment, n, sum] of out.rows as [string, number, number][]) assert.deepEqual([Number(n), Number(sum)], plain.get(segment));
    const log = bankBLog();
    assert.match(log, /"action":"cleanroom\.attest-challenge"[^{}]*"decision":"allow"/);
    assert.ok(reads() > 0, 'the good run read bank-b\'s columns under its policy');
    assert.match(log, /"action":"cleanroom\.release-columns"[^{}]*"decision":"allow"[^{}]*attested sample measurement [0-9a-f]{16}…/);
  });

  it('refuses a compute node that presents no evidence at all', async () => {
    const before = deniedReleases('ATTESTATION_MISSING'), read = reads();
    assert.equal(await refusedWith(columnsRequest(randomUUID())), 'ATTESTATION_MISSING');
    assert.equal(deniedReleases('ATTESTATION_MISSING'), before + 1, 'the refusal is a denied entry on bank-b');
    assert.equal(reads(), read, 'bank-b read no row for it');
  });

  it('refuses evidence recorded long ago (stale), even with the right nonce', async () => {
    const queryId = randomUUID();
    const ch = await challenge(queryId);
    const evidence = platform().attest({ nonce: ch.nonce, publicKey: sealingKeySpki(sealingJwk), userData: analysisBinding('vault', queryId, SQL, null), issuedAt: new Date(Date.now() - 10 * 60_000) });
    const detail = await refusedWith({ ...columnsRequest(queryId), attestation: { challengeId: ch.challengeId, evidence: Buffer.from(evidence).toString('base64') } });
    assert.equal(detail, 'ATTESTATION_STALE_EVIDENCE');
    assert.equal(deniedReleases('ATTESTATION_STALE_EVIDENCE'), 1);
  });

  it('refuses replayed evidence: a used challenge again, and a recorded document against a new nonce', async () => {
    const queryId = randomUUID();
    const ch = await challenge(queryId);
    const evidence = Buffer.from(platform().attest({ nonce: ch.nonce, publicKey: sealingKeySpki(sealingJwk), userData: analysisBinding('vault', queryId, SQL, null), issuedAt: new Date() })).toString('base64');
    // The genuine exchange: bank-b releases, sealed under a key only the sealing key's holder (bank-a's process) opens.
    const { result } = await attacker.call<{ sealed: Record<string, string>; key: string }>('bank-b', 'cleanroom-columns', { ...columnsRequest(queryId), attestation: { challengeId: ch.challengeId, evidence } });
    assert.equal(typeof result.key, 'string');
    assert.equal(JSON.parse(Buffer.from(result.sealed.b_accounts!.split('.')[0]!, 'base64url').toString()).alg, 'dir');
    // Sent again: the challenge is spent.
    assert.equal(await refusedWith({ ...columnsRequest(queryId), attestation: { challengeId: ch.challengeId, evidence } }), 'ATTESTATION_REPLAYED');
    // The recorded document against a fresh challenge for the same query: not bank-b's new nonce.
    const fresh = await challenge(queryId);
    assert.equal(await refusedWith({ ...columnsRequest(queryId), attestation: { challengeId: fresh.challengeId, evidence } }), 'ATTESTATION_WRONG_NONCE');
    assert.equal(deniedReleases('ATTESTATION_REPLAYED'), 1);
    assert.equal(deniedReleases('ATTESTATION_WRONG_NONCE'), 1);
  });

  it('refuses a genuine platform running another image (wrong measurement) and one in debug mode', async () => {
    const modified = createHash('sha384').update('a compute engine that copies the columns out').digest('hex');
    for (const [tee, debug, code] of [[platform(modified), false, 'ATTESTATION_UNAPPROVED_MEASUREMENT'], [platform(), true, 'ATTESTATION_DEBUG_MODE']] as const) {
      const queryId = randomUUID();
      const ch = await challenge(queryId);
      const evidence = tee.attest({ nonce: ch.nonce, publicKey: sealingKeySpki(sealingJwk), userData: analysisBinding('vault', queryId, SQL, null), issuedAt: new Date(), debug });
      assert.equal(await refusedWith({ ...columnsRequest(queryId), attestation: { challengeId: ch.challengeId, evidence: Buffer.from(evidence).toString('base64') } }), code);
      assert.equal(deniedReleases(code), 1);
    }
  });

  it('refuses evidence naming a key other than the published sealing key, so columns are never wrapped to the attacker', async () => {
    const queryId = randomUUID();
    const ch = await challenge(queryId);
    const own = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' });
    const read = reads();
    const evidence = platform().attest({ nonce: ch.nonce, publicKey: new Uint8Array(own), userData: analysisBinding('vault', queryId, SQL, null), issuedAt: new Date() });
    assert.equal(await refusedWith({ ...columnsRequest(queryId), attestation: { challengeId: ch.challengeId, evidence: Buffer.from(evidence).toString('base64') } }), 'ATTESTATION_WRONG_KEY');
    assert.equal(deniedReleases('ATTESTATION_WRONG_KEY'), 1);
    assert.equal(reads(), read, 'bank-b read no row for it');
  });

  it('refuses evidence bound to another analysis, and evidence from a platform bank-b does not trust', async () => {
    const queryId = randomUUID();
    const ch = await challenge(queryId);
    const other = 'SELECT a.flagged, count(*) AS n FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.flagged';
    const unbound = platform().attest({ nonce: ch.nonce, publicKey: sealingKeySpki(sealingJwk), userData: analysisBinding('vault', queryId, other, null), issuedAt: new Date() });
    assert.equal(await refusedWith({ ...columnsRequest(queryId), attestation: { challengeId: ch.challengeId, evidence: Buffer.from(unbound).toString('base64') } }), 'ATTESTATION_UNBOUND_EVIDENCE');
    const ch2 = await challenge(queryId);
    const forged = new SampleTee({ measurement: MEASUREMENT }).attest({ nonce: ch2.nonce, publicKey: sealingKeySpki(sealingJwk), userData: analysisBinding('vault', queryId, SQL, null), issuedAt: new Date() });
    assert.equal(await refusedWith({ ...columnsRequest(queryId), attestation: { challengeId: ch2.challengeId, evidence: Buffer.from(forged).toString('base64') } }), 'ATTESTATION_BAD_SIGNATURE');
  });

  it('refuses a coordinator version that would lift the requirement', async () => {
    // bank-a's key may send versions (it coordinates), but not one that drops compute.requireAttestation.
    const c = ok(await cl.node('bank-b').call('GET', '/v1/cleanrooms/vault')).collaboration;
    const { compute: _dropped, ...lifted } = c;
    await assert.rejects(attacker.call('bank-b', 'cleanroom-sync', { collaboration: { ...lifted, version: c.version + 1 } }), (e: any) => e.code === 'CONFLICT' && /attestation requirement/.test(e.message));
    assert.ok(ok(await cl.node('bank-b').call('GET', '/v1/cleanrooms/vault')).collaboration.compute.requireAttestation);
  });
});

describe('the member check with real AWS Nitro evidence', () => {
  it('refuses a genuine Nitro attestation document recorded in another session: its nonce is not the member\'s', async () => {
    const bytes = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures', 'nitro', 'turnkey-2024-07-16.cbor')));
    const payload = decode((decode(bytes) as Uint8Array[])[2]!) as { timestamp: number | bigint; pcrs: Map<number, Uint8Array> };
    // The member's clock at the document's own time, so its certificate chain is valid: only the binding can refuse it.
    const at = new Date(Number(payload.timestamp));
    const pcr0 = Buffer.from(payload.pcrs.get(0)!).toString('hex');
    const member = new MemberAttestation({ mode: 'production', now: () => at });
    const required = parseComputeSettings({ requireAttestation: { format: 'aws-nitro', measurements: [pcr0] } }).requireAttestation!;
    const jobId = analysisJobId('vault', 'q-1');
    const ch = await member.challenge(required, jobId);
    await assert.rejects(
      member.release(required, { challengeId: ch.challengeId, jobId, codeHash: analysisCodeHash(SQL, null), tables: ['b_accounts'], evidence: bytes, sealingKeySpki: sealingKeySpki(sealingJwk) }),
      (e: any) => e.code === 'ATTESTATION_REFUSED' && e.detail === 'ATTESTATION_WRONG_NONCE',
    );
    // The same document one day later: its three-hour leaf certificate has expired.
    const later = new MemberAttestation({ mode: 'production', now: () => new Date(at.getTime() + 86_400_000) });
    const ch2 = await later.challenge(required, jobId);
    await assert.rejects(
      later.release(required, { challengeId: ch2.challengeId, jobId, codeHash: analysisCodeHash(SQL, null), tables: ['b_accounts'], evidence: bytes, sealingKeySpki: sealingKeySpki(sealingJwk) }),
      (e: any) => e.code === 'ATTESTATION_REFUSED' && e.detail === 'ATTESTATION_EXPIRED',
    );
  });

  it('a production member refuses the local sandbox attester outright', async () => {
    const member = new MemberAttestation({ mode: 'production', samplePlatformKey: platform().platformKey, now: () => new Date() });
    const required = parseComputeSettings({ requireAttestation: { format: 'sample', measurements: [MEASUREMENT] } }).requireAttestation!;
    const jobId = analysisJobId('vault', 'q-2');
    const ch = await member.challenge(required, jobId);
    const evidence = platform().attest({ nonce: new Uint8Array(Buffer.from(ch.nonce, 'base64url')), publicKey: sealingKeySpki(sealingJwk), userData: analysisBinding('vault', 'q-2', SQL, null), issuedAt: new Date() });
    await assert.rejects(
      member.release(required, { challengeId: ch.challengeId, jobId, codeHash: analysisCodeHash(SQL, null), tables: ['b_accounts'], evidence, sealingKeySpki: sealingKeySpki(sealingJwk) }),
      (e: any) => e.detail === 'ATTESTATION_SAMPLE_IN_PRODUCTION',
    );
  });
});
