/**
 * `gatehouse erasure record|list|receipt|verify` against a real node over HTTP: an
 * administrator records an erasure and hands the receipt file to the subject; the list
 * never shows the subject's identifier; the subject verifies the receipt offline with the
 * pinned log key after refreshing its proof; a receipt tampered to claim fewer places, or
 * checked against someone else's identifier, fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../src/cli/main.ts';
import { demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';
import type { NodeHttp } from '../src/node/http.ts';

async function cli(args: string[]): Promise<{ code: number; text: string }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => { text += c.toString('utf8'); });
  const code = await main(args, out);
  return { code, text };
}

describe('gatehouse erasure', () => {
  let fx: Fixture<NodeHttp>;
  let subject: string;
  let receiptFile: string;
  let vkeyFile: string;
  const url = () => ['--url', fx.http.url];

  before(async () => {
    fx = await demoFixture({ patients: 120, http: true }) as Fixture<NodeHttp>;
    subject = String((await fx.query('ada', 'SELECT patient_id FROM patients ORDER BY patient_id LIMIT 1 OFFSET 3')).rows[0]![0]);
    receiptFile = join(fx.dir, 'receipt.json');
    vkeyFile = join(fx.dir, 'log.vkeys');
    writeFileSync(vkeyFile, `${fx.log.publicKeys().vkeys.join('\n')}\n`);
  });

  after(async () => { await fx?.close(); });

  test('an administrator records an erasure and the receipt goes to a file; a partner may not', async () => {
    const refused = await cli(['erasure', 'record', '--unit', 'patient_id', '--value', subject, '--key', KEYS.rhea, ...url()]).catch((e: { code: string }) => ({ code: e.code, text: '' }));
    assert.notEqual(refused.code, 0);
    const r = await cli(['erasure', 'record', '--unit', 'patient_id', '--value', subject, '--out', receiptFile, '--key', KEYS.olivia, ...url()]);
    assert.equal(r.code, 0, r.text);
    const receipt = JSON.parse(readFileSync(receiptFile, 'utf8')) as { erasureId: string; places: { datasets: string[] } };
    assert.deepEqual(receipt.places.datasets, ['claims', 'encounters', 'patients']);
    assert.equal((await fx.query('ada', `SELECT count(*) FROM patients WHERE patient_id = ${subject}`)).rows[0]![0], 0);
  });

  test('the list shows what was recorded and never the subject\'s identifier', async () => {
    const r = await cli(['erasure', 'list', '--key', KEYS.olivia, ...url()]);
    assert.equal(r.code, 0, r.text);
    const { erasures } = JSON.parse(r.text) as { erasures: { id: string; unit: string; kind: string }[] };
    assert.equal(erasures.length, 1);
    assert.equal(erasures[0]!.unit, 'patient_id');
    assert.ok(!r.text.includes(`"${subject}"`) && !/"value"/.test(r.text), r.text);
  });

  test('the subject refreshes the proof and verifies the receipt offline with the pinned log key', async () => {
    await fx.query('ada', 'SELECT count(*) FROM claims'); // the log grows after the erasure
    const refreshed = await cli(['erasure', 'receipt', receiptFile, '--key', KEYS.olivia, ...url()]);
    assert.equal(refreshed.code, 0, refreshed.text);
    const ok = await cli(['erasure', 'verify', receiptFile, '--value', subject, '--public-key', vkeyFile, '--json']);
    assert.equal(ok.code, 0, ok.text);
    assert.equal((JSON.parse(ok.text) as { ok: boolean }).ok, true);
  });

  test('verification fails for another subject\'s identifier and for a receipt that hides a place', async () => {
    const other = await cli(['erasure', 'verify', receiptFile, '--value', `${subject}0`, '--public-key', vkeyFile]);
    assert.equal(other.code, 1);
    assert.match(other.text, /not about this subject/);
    const tampered = JSON.parse(readFileSync(receiptFile, 'utf8')) as { places: { datasets: string[] } };
    tampered.places.datasets = tampered.places.datasets.filter((d) => d !== 'claims');
    const file = join(fx.dir, 'tampered.json');
    writeFileSync(file, JSON.stringify(tampered));
    const bad = await cli(['erasure', 'verify', file, '--value', subject, '--public-key', vkeyFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.text, /does not list the places/);
  });
});
