/**
 * `gatehouse bundle` and `gatehouse job sign` as an operator types them: a partner site and an
 * enclave site each make an identity, a signed job bundle crosses the gap, is verified in
 * transit, imported once, and refused when replayed, tampered with or imported out of order
 * (exit 3, refused, with BUNDLE_REJECTED; nothing written).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../src/cli/main.ts';
import { DEPARTMENT_STAYS, DEPARTMENT_STAYS_CODE } from '../src/jobs/testing.ts';
import { codeHash } from '../src/jobs/bundle.ts';

let dir: string;
const p = (...xs: string[]) => join(dir, ...xs);

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  const s = new PassThrough();
  let out = '';
  s.on('data', (c: Buffer) => { out += c.toString(); });
  const code = await main(argv, s);
  return { code, out };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gh-bundle-cli-'));
  process.env.GATEHOUSE_BUNDLE_PASSPHRASE = 'a long test passphrase';
  process.env.GATEHOUSE_JOB_KEY_PASSPHRASE = 'another long passphrase';
});
after(() => { rmSync(dir, { recursive: true, force: true }); });

describe('gatehouse bundle', () => {
  test('carries a signed job bundle across the gap once, in order, and refuses replays and tampering', async () => {
    assert.equal((await run('bundle', 'keygen', '--id', 'northwind', '--dir', p('northwind'))).code, 0);
    assert.equal((await run('bundle', 'keygen', '--id', 'enclave', '--dir', p('enclave'))).code, 0);

    writeFileSync(p('manifest.json'), JSON.stringify(DEPARTMENT_STAYS));
    writeFileSync(p('job.js'), DEPARTMENT_STAYS_CODE);
    assert.equal((await run('job', 'keygen', '--out', p('partner-key'))).code, 0);
    const signed = await run('job', 'sign', '--manifest', p('manifest.json'), '--code', p('job.js'), '--key-file', p('partner-key', 'signing.key.pem'), '--signer', 'northwind-2026', '--out', p('job-bundle.json'));
    assert.equal(signed.code, 0, signed.out);
    const bundle = JSON.parse(readFileSync(p('job-bundle.json'), 'utf8')) as { manifest: typeof DEPARTMENT_STAYS; code: string };
    assert.equal(codeHash(bundle.manifest, bundle.code), codeHash(DEPARTMENT_STAYS, DEPARTMENT_STAYS_CODE));

    const exp = (n: number) => run('bundle', 'export', '--kind', 'job-code', '--identity', p('northwind'), '--to', p('enclave', 'identity.json'), '--file', p('job-bundle.json'), '--out', p(`b${n}.json`));
    assert.equal((await exp(1)).code, 0);
    assert.equal((await exp(2)).code, 0);

    const verified = await run('bundle', 'verify', p('b1.json'), '--trust', p('northwind', 'identity.json'));
    assert.equal(verified.code, 0, verified.out);
    assert.match(verified.out, /signed by the sender and unchanged/);

    const imp = (n: number, out: string) => run('bundle', 'import', p(`b${n}.json`), '--identity', p('enclave'), '--trust', p('northwind', 'identity.json'), '--out', p(out), '--json');
    const early = await imp(2, 'in-early');
    assert.equal(early.code, 3, "refused: exit 3");
    assert.match(early.out, /out of order/);
    assert.ok(!existsSync(p('in-early')), 'nothing was written');

    const first = await imp(1, 'in1');
    assert.equal(first.code, 0, first.out);
    assert.deepEqual(readdirSync(p('in1')), ['job-bundle.json']);
    assert.equal(readFileSync(p('in1', 'job-bundle.json'), 'utf8'), readFileSync(p('job-bundle.json'), 'utf8'));

    const replay = await imp(1, 'in1-again');
    assert.equal(replay.code, 3);
    assert.match(replay.out, /BUNDLE_REJECTED|replay/);

    const b2 = JSON.parse(readFileSync(p('b2.json'), 'utf8')) as { jwe: string };
    const i = Math.floor(b2.jwe.length / 3);
    writeFileSync(p('b2-tampered.json'), JSON.stringify({ ...b2, jwe: b2.jwe.slice(0, i) + (b2.jwe[i] === 'x' ? 'y' : 'x') + b2.jwe.slice(i + 1) }));
    const tampered = await run('bundle', 'verify', p('b2-tampered.json'), '--trust', p('northwind', 'identity.json'));
    assert.equal(tampered.code, 3);
    assert.match(tampered.out, /signature does not verify/);

    assert.equal((await imp(2, 'in2')).code, 0);
  });
});
