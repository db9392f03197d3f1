/**
 * Air-gapped bundles, attacked as a courier or an outsider would: bytes changed in transit,
 * fields rewritten, a signature swapped, a bundle imported twice or ahead of its turn, one
 * addressed to another site, one from an unknown site. And the audit export with its proofs
 * crossing the gap and verifying on the other side.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { openBundle, parseBundle, sealBundle, verifyTransport, type BundleFile } from '../src/bundles/bundle.ts';
import { generateIdentity, loadIdentity, parsePublic, publicJson, saveIdentity } from '../src/bundles/identity.ts';
import { BundleLedger } from '../src/bundles/ledger.ts';
import { verifyExport } from '../src/audit/verify.ts';
import { GatehouseError } from '../src/errors.ts';
import { demoFixture } from './helpers/workspace.ts';

const partner = generateIdentity('northwind');
const enclave = generateIdentity('st-avery-enclave');
const other = generateIdentity('elsewhere');
const files = new Map([['report.json', new Uint8Array(Buffer.from('{"departments":12}'))], ['job.js', new Uint8Array(Buffer.from('export function run() {}'))]]);

async function rejected(p: Promise<unknown> | (() => unknown), detail: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof GatehouseError, String(err));
    assert.equal(err.code, 'BUNDLE_REJECTED');
    assert.equal(err.detail, detail, err.message);
    return;
  }
  assert.fail(`accepted; expected ${detail}`);
}

const seal = (sequence: number, to = enclave) => sealBundle({ from: partner, to, sequence, kind: 'job-code', files });

describe('sealed bundles', () => {
  test('open at the recipient with every file intact, and verify in transit with public keys only', async () => {
    const b = parseBundle(JSON.stringify(await seal(1)));
    assert.equal(verifyTransport(b, [parsePublic(publicJson(partner))]).id, 'northwind');
    const opened = await openBundle(b, enclave, [partner]);
    assert.deepEqual([...opened.files.keys()].sort(), ['job.js', 'report.json']);
    assert.equal(Buffer.from(opened.files.get('report.json')!).toString(), '{"departments":12}');
    assert.equal(opened.manifest.length, 2);
    assert.ok(!JSON.stringify(b).includes('departments'), 'contents are encrypted');
  });

  test('a changed byte anywhere in the ciphertext, or a rewritten field, is refused', async () => {
    const b = await seal(1);
    for (const i of [10, Math.floor(b.jwe.length / 2), b.jwe.length - 5]) {
      const c = b.jwe[i] === 'A' ? 'B' : 'A';
      await rejected(openBundle({ ...b, jwe: b.jwe.slice(0, i) + c + b.jwe.slice(i + 1) }, enclave, [partner]), 'BUNDLE_BAD_SIGNATURE');
    }
    await rejected(openBundle({ ...b, sequence: 7 }, enclave, [partner]), 'BUNDLE_BAD_SIGNATURE');
    await rejected(openBundle({ ...b, kind: 'results' }, enclave, [partner]), 'BUNDLE_BAD_SIGNATURE');
    const b2 = await seal(2);
    await rejected(openBundle({ ...b, signature: b2.signature }, enclave, [partner]), 'BUNDLE_BAD_SIGNATURE');
  });

  test('an outsider who re-encrypts forged contents to the recipient cannot pass as the sender', async () => {
    const forged = await sealBundle({ from: { ...other, id: 'northwind' }, to: enclave, sequence: 1, kind: 'job-code', files: new Map([['job.js', new Uint8Array(Buffer.from('evil'))]]) });
    await rejected(openBundle(forged, enclave, [partner]), 'BUNDLE_BAD_SIGNATURE');
  });

  test('a bundle for another site, or from a site nobody pinned, is refused', async () => {
    await rejected(openBundle(await seal(1, other), enclave, [partner]), 'BUNDLE_WRONG_RECIPIENT');
    await rejected(openBundle(await seal(1), enclave, [other]), 'BUNDLE_UNKNOWN_SENDER');
    await rejected(() => parseBundle('{"format":"zip"}'), 'BUNDLE_MALFORMED');
  });
});

describe('replay and order', () => {
  test('a replayed bundle and an out-of-order bundle are refused; in order they are accepted once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-bundle-'));
    try {
      const ledger = new BundleLedger(join(dir, 'ledger.json'));
      const b1 = await openBundle(await seal(1), enclave, [partner]);
      const b2 = await openBundle(await seal(2), enclave, [partner]);
      await rejected(() => ledger.accept('northwind', b2.header.sequence, b2.header.bundleId), 'BUNDLE_OUT_OF_ORDER');
      ledger.accept('northwind', 1, b1.header.bundleId);
      await rejected(() => ledger.accept('northwind', 1, b1.header.bundleId), 'BUNDLE_REPLAYED');
      ledger.accept('northwind', 2, b2.header.bundleId);
      // The ledger survives a restart.
      const again = new BundleLedger(join(dir, 'ledger.json'));
      await rejected(() => again.accept('northwind', 2, b2.header.bundleId), 'BUNDLE_REPLAYED');
      again.check('northwind', 3);
      assert.equal(again.next('st-avery-enclave'), 1);
      assert.equal(new BundleLedger(join(dir, 'ledger.json')).next('st-avery-enclave'), 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('site identities', () => {
  test('private keys are stored encrypted under the passphrase and do not open with another', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-bundle-id-'));
    try {
      saveIdentity(join(dir, 'id'), partner, 'correct horse battery staple');
      const loaded = loadIdentity(join(dir, 'id'), 'correct horse battery staple');
      const b = await sealBundle({ from: loaded, to: enclave, sequence: 1, kind: 'results', files });
      assert.equal((await openBundle(b, enclave, [partner])).header.kind, 'results');
      await rejected(() => loadIdentity(join(dir, 'id'), 'wrong passphrase here'), 'BUNDLE_BAD_PASSPHRASE');
      await rejected(() => saveIdentity(join(dir, 'id2'), partner, 'short'), 'BUNDLE_WEAK_PASSPHRASE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the audit export on the bundle path', () => {
  test('crosses the gap and verifies against the log\'s keys on the other side', async () => {
    const fx = await demoFixture({ patients: 100 });
    try {
      await fx.query('ada', 'SELECT count(*) FROM encounters', 'operations');
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (c: Buffer) => chunks.push(c));
      await fx.log.export(out, { proofs: true });
      out.end();
      const exportBytes = new Uint8Array(Buffer.concat(chunks));
      const b: BundleFile = await sealBundle({ from: enclave, to: partner, sequence: 1, kind: 'audit-export', files: new Map([['audit-export.jsonl', exportBytes]]) });
      const opened = await openBundle(parseBundle(JSON.stringify(b)), partner, [enclave]);
      const lines = Buffer.from(opened.files.get('audit-export.jsonl')!).toString('utf8').split('\n').filter((l) => l.length > 0);
      const report = await verifyExport(lines, { verifiers: fx.log.verifiers() });
      assert.equal(report.ok, true, JSON.stringify(report));
      assert.ok(report.entries >= 1);
    } finally {
      await fx.close();
    }
  });
});
