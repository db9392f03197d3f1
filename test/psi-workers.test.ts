/**
 * PSI's per-element work spread over worker threads (src/psi/workers.ts) and the key holder's
 * faster Paillier encryption (CRT, precomputed randomisers; src/psi/paillier.ts): the threads
 * and the shortcuts must give exactly what the plain in-process code gives, every ciphertext
 * must decrypt under paillier-bigint, and no randomiser may ever serve two ciphertexts (a
 * reused r would let the client divide two ciphertexts and learn the difference of values).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyPair } from 'paillier-bigint';
import { generatePaillierKeys, paillierFactors, PaillierEncryptor, PrecomputedRandomisers, RandomiserSource } from '../src/psi/paillier.ts';
import { prepareSet, prepareSetInWorkers } from '../src/psi/prepared-set.ts';
import { PsiWorkers } from '../src/psi/workers.ts';
import { PsiClient, PsiServer } from '../src/psi/session.ts';
import { paddedSize } from '../src/psi/padding.ts';

function accounts(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`${prefix}-${i}`);
  return out;
}

let workers: PsiWorkers;
let keys: KeyPair;

before(async () => {
  // Small chunks, so a small set already crosses chunk and thread boundaries.
  workers = PsiWorkers.start(2, { hash: 16, randomisers: 4 });
  keys = await generatePaillierKeys(1024);
});
after(async () => { await workers.close(); });

describe('hash to curve on worker threads', () => {
  it('gives byte for byte the points the calling thread computes, across chunk boundaries and with duplicates', async () => {
    const elements = [...accounts('acct', 0, 16 * 5 + 7), 'acct-5', 'acct-7'];
    const values = elements.map((_, i) => BigInt(i));
    const here = prepareSet(elements, { values });
    const done: number[] = [];
    const there = await prepareSetInWorkers(elements, workers, { values, onProgress: (d) => done.push(d) });
    assert.equal(there.size, 16 * 5 + 7);
    assert.deepEqual(Buffer.from(there.points), Buffer.from(here.points));
    assert.deepEqual(there.values, here.values);
    assert.equal(Math.max(...done), there.size, 'progress reaches the whole set');
  });

  it('keeps the domain separation tag, so two tags give unrelated points', async () => {
    const a = await prepareSetInWorkers(['x'], workers, { dst: 'GATEHOUSE-TEST-A' });
    const b = await prepareSetInWorkers(['x'], workers, { dst: 'GATEHOUSE-TEST-B' });
    assert.deepEqual(Buffer.from(a.points), Buffer.from(prepareSet(['x'], { dst: 'GATEHOUSE-TEST-A' }).points));
    assert.notDeepEqual(Buffer.from(a.points), Buffer.from(b.points));
  });
});

describe('Paillier encryption by the key holder', () => {
  it('uses CRT with the factors of its own key, and every ciphertext decrypts under paillier-bigint', () => {
    const enc = new PaillierEncryptor(keys.publicKey, { factors: paillierFactors(keys) });
    assert.equal(enc.path, 'crt');
    for (const m of [0n, 1n, 123_456_789n, keys.publicKey.n - 1n]) assert.equal(keys.privateKey.decrypt(enc.encrypt(m)), m);
  });

  it('refuses factors that are not the key\'s: a wrong p·q falls back to the public-key path', () => {
    const f = paillierFactors(keys)!;
    const source = new RandomiserSource(keys.publicKey, { p: f.p, q: f.q + 2n });
    assert.equal(source.path, 'openssl');
    assert.equal(keys.privateKey.decrypt(source.next()), 0n, 'still an n-th residue: an encryption of zero');
  });

  it('computes randomisers on the threads that are n-th residues (encryptions of zero) and all distinct', async () => {
    const store = await workers.randomisers(keys, 40);
    assert.equal(store.available, 40);
    const seen = new Set<bigint>();
    for (let r = store.take(); r !== null; r = store.take()) {
      assert.equal(keys.privateKey.decrypt(r), 0n);
      seen.add(r);
    }
    assert.equal(seen.size, 40);
  });

  it('spends each precomputed randomiser once: equal values still give unlinkable ciphertexts, then it computes fresh ones', async () => {
    const store = await workers.randomisers(keys, 3);
    const enc = new PaillierEncryptor(keys.publicKey, { factors: paillierFactors(keys), precomputed: store });
    const cts = Array.from({ length: 5 }, () => enc.encrypt(42n));
    assert.equal(store.available, 0);
    assert.equal(new Set(cts).size, 5, 'no two ciphertexts share a randomiser');
    for (const c of cts) assert.equal(keys.privateKey.decrypt(c), 42n);
  });

  it('refuses randomisers made for another key, and values that are not randomisers modulo n²', () => {
    assert.throws(() => new PaillierEncryptor(keys.publicKey, { precomputed: new PrecomputedRandomisers(keys.publicKey.n + 2n) }), /another Paillier key/);
    const store = new PrecomputedRandomisers(keys.publicKey.n);
    assert.throws(() => store.addPacked(new Uint8Array(256).fill(0xff), 256), /out of range/);
  });
});

describe('intersection-sum with precomputed randomisers', () => {
  it('sums exactly the shared values, as a plain computation does, when the server encrypts with randomisers from the threads', async () => {
    const exposures = accounts('acct', 100, 220);
    const values = exposures.map((_, i) => BigInt(1000 + 7 * i));
    const flagged = accounts('acct', 0, 130);
    const plainSum = exposures.reduce((a, e, i) => (flagged.includes(e) ? a + values[i]! : a), 0n);
    const own = prepareSet(exposures, { values });
    // Fewer randomisers than encryptions: the rest are computed on the server's thread.
    const store = await workers.randomisers(keys, paddedSize(own.size) - 10);
    const server = new PsiServer(own, { modes: ['sum'], paillier: keys, randomisers: store });
    const client = new PsiClient(await prepareSetInWorkers(flagged, workers), 'sum');
    let reply: Uint8Array | null = null;
    for (const m of client.hello(64)) reply = server.receive(m);
    const r = client.receiveReply(reply!);
    const result = client.receiveResult(server.receive(r.sumMessage!)!);
    assert.equal(result.cardinality, 30);
    assert.equal(result.sum, plainSum);
    assert.equal(store.available, 0);
  });
});
