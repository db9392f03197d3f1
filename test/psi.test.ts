/**
 * ECDH-PSI and intersection-sum (src/psi): correctness against a plain computation, and the
 * hostile peer — malformed, low-order, off-curve and non-canonical points, replayed and
 * reordered messages — written as an attacker would send them.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyPair } from 'paillier-bigint';
import { PaillierEncryptor, generatePaillierKeys } from '../src/psi/paillier.ts';
import { hashToCurve, decodeU, encodeU } from '../src/psi/hash-to-curve.ts';
import { LOW_ORDER_U, jacobiSymbol, pointProblem } from '../src/psi/point.ts';
import { prepareSet } from '../src/psi/prepared-set.ts';
import { PsiClient, PsiServer } from '../src/psi/session.ts';
import { decodeMessage, encodeMessage } from '../src/psi/wire.ts';
import { paddedSize } from '../src/psi/padding.ts';
import { PsiRateLimiter } from '../src/psi/rate-limit.ts';
import { ProgressMeter, formatProgress, type ProgressReport } from '../src/psi/progress.ts';
import { joinToken, joinTokenKey } from '../src/psi/join-tokens.ts';

const P = 2n ** 255n - 19n;
const hexLE = (b: Uint8Array): string => decodeU(b).toString(16).padStart(64, '0');

function accounts(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`${prefix}-${i}`);
  return out;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { detail?: string }).detail ?? (err as Error).message;
  }
  return 'no error';
}

/** A client hello whose first point is replaced by `point`, everything else honest. */
function helloWithPoint(point: Uint8Array): Uint8Array {
  const client = new PsiClient(prepareSet(accounts('acct', 0, 5)), 'cardinality');
  const [hello] = client.hello();
  const m = decodeMessage(hello!);
  const items = Uint8Array.from(m.sections[0]!.items);
  items.set(point, 0);
  return encodeMessage({ ...m, sections: [{ itemSize: 32, items }] });
}

describe('hash to curve (RFC 9380 curve25519_XMD:SHA-512_ELL2_RO_)', () => {
  it('matches the RFC 9380 Appendix J.4.1 vector for the empty message', () => {
    const u = hashToCurve('', 'QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_RO_');
    assert.equal(hexLE(u), '2de3780abb67e861289f5749d16d3e217ffa722192d16bbd9d1bfb9d112b98c0');
  });

  it('gives every element a valid point of the prime-order subgroup and distinct elements distinct points', () => {
    const set = prepareSet(accounts('acct', 0, 64));
    const seen = new Set<string>();
    for (let i = 0; i < set.size; i++) {
      assert.equal(pointProblem(set.points, 32 * i), null);
      seen.add(hexLE(set.points.subarray(32 * i, 32 * i + 32)));
    }
    assert.equal(seen.size, 64);
  });
});

describe('ECDH-PSI', () => {
  const X = accounts('acct', 0, 300);
  const Y = accounts('acct', 243, 700); // overlap: 243..299 = 57 accounts
  const plain = X.filter((x) => new Set(Y).has(x));

  function run(mode: 'cardinality' | 'intersection') {
    const server = new PsiServer(prepareSet(Y), { modes: ['cardinality', 'intersection'] });
    const client = new PsiClient(prepareSet(X), mode);
    let reply: Uint8Array | null = null;
    for (const m of client.hello(100)) reply = server.receive(m);
    return client.receiveReply(reply!);
  }

  it('cardinality mode counts exactly the overlap a plain computation finds', () => {
    const r = run('cardinality');
    assert.equal(r.cardinality, plain.length);
    assert.equal(r.members, null);
    assert.equal(r.peerPaddedSize, paddedSize(Y.length));
  });

  it('intersection mode names exactly the client elements a plain computation finds', () => {
    const r = run('intersection');
    assert.deepEqual(r.members!.map((i) => X[i]), plain);
  });

  it('finds nothing for disjoint sets and everything for equal sets', () => {
    const a = prepareSet(accounts('a', 0, 40));
    for (const [theirs, want] of [[accounts('b', 0, 40), 0], [accounts('a', 0, 40), 40]] as const) {
      const server = new PsiServer(prepareSet(theirs), { modes: ['cardinality'] });
      const client = new PsiClient(a, 'cardinality');
      const reply = server.receive(client.hello()[0]!);
      assert.equal(client.receiveReply(reply!).cardinality, want);
    }
  });

  it('shuffles the double-blinded answers in cardinality mode so positions reveal no member', () => {
    // The client's elements 0..9 are the server's whole set. An attacker-client asks in
    // cardinality mode and then reads the answers as if they were in order.
    const mine = prepareSet(accounts('acct', 0, 200));
    const server = new PsiServer(prepareSet(accounts('acct', 0, 10)), { modes: ['cardinality', 'intersection'] });
    const positions = (askAs: 'cardinality' | 'intersection'): readonly number[] => {
      const client = new PsiClient(mine, 'intersection');
      const hello = decodeMessage(client.hello()[0]!);
      const reply = decodeMessage(server.receive(encodeMessage({ ...hello, mode: askAs }))!);
      return client.receiveReply(encodeMessage({ ...reply, mode: 'intersection' })).members!;
    };
    assert.deepEqual(positions('intersection'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Shuffled over all 208 padded positions: the members land anywhere (some past the real 200).
    const shuffled = positions('cardinality');
    assert.notDeepEqual(shuffled, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('blinds with a fresh key per session: the same set gives unlinkable hellos', () => {
    const set = prepareSet(accounts('acct', 0, 8));
    const a = decodeMessage(new PsiClient(set, 'cardinality').hello()[0]!).sections[0]!.items.subarray(0, 32);
    const b = decodeMessage(new PsiClient(set, 'cardinality').hello()[0]!).sections[0]!.items.subarray(0, 32);
    assert.notDeepEqual(Buffer.from(a), Buffer.from(b));
  });

  it('pads each side to a bucket so the exact set size is hidden', () => {
    const client = new PsiClient(prepareSet(accounts('acct', 0, 130)), 'cardinality');
    const m = decodeMessage(client.hello()[0]!);
    assert.equal(m.sections[0]!.items.length / 32, paddedSize(130));
    assert.equal(paddedSize(130), 144);
    assert.equal(paddedSize(129), paddedSize(144));
  });
});

describe('a hostile PSI peer', () => {
  const server = (): PsiServer => new PsiServer(prepareSet(accounts('acct', 0, 20)), { modes: ['cardinality'] });

  it('refuses every low-order point by name', () => {
    assert.ok(LOW_ORDER_U.size >= 5);
    for (const u of LOW_ORDER_U) {
      const s = server();
      assert.equal(code(() => s.receive(helloWithPoint(encodeU(u)))), 'PSI_POINT_INVALID');
      assert.equal(pointProblem(encodeU(u)), 'low-order');
    }
  });

  it('tests squares exactly as Euler\'s criterion does', () => {
    const euler = (a: bigint): number => {
      let r = 1n, b = a % P, e = (P - 1n) / 2n;
      while (e > 0n) { if (e & 1n) r = (r * b) % P; b = (b * b) % P; e >>= 1n; }
      return r === 1n ? 1 : r === 0n ? 0 : -1;
    };
    for (let i = 0n; i < 200n; i++) {
      const a = (i * 0x9e3779b97f4a7c15f39cc0605cedc834n + i * i) % P;
      assert.equal(jacobiSymbol(a), euler(a));
    }
  });

  it('refuses a point of the twist (off the curve)', () => {
    let u = 2n;
    while (pointProblem(encodeU(u)) !== 'off-curve') u++;
    const s = server();
    assert.equal(code(() => s.receive(helloWithPoint(encodeU(u)))), 'PSI_POINT_INVALID');
  });

  it('refuses non-canonical encodings: u ≥ p and the top bit set', () => {
    const good = hashToCurve('acct-1');
    const topBit = Uint8Array.from(good);
    topBit[31]! |= 0x80;
    assert.equal(pointProblem(topBit), 'non-canonical');
    assert.equal(pointProblem(encodeU(P + 9n)), 'non-canonical');
    assert.equal(code(() => server().receive(helloWithPoint(topBit))), 'PSI_POINT_INVALID');
    assert.equal(code(() => server().receive(helloWithPoint(encodeU(P + 9n)))), 'PSI_POINT_INVALID');
  });

  it('refuses truncated, inflated and foreign messages whole', () => {
    const client = new PsiClient(prepareSet(accounts('acct', 0, 5)), 'cardinality');
    const [hello] = client.hello();
    const s = server();
    assert.equal(code(() => s.receive(hello!.subarray(0, hello!.length - 7))), 'PSI_MESSAGE_MALFORMED');
    assert.equal(code(() => s.receive(Buffer.concat([hello!, Buffer.from([0])]))), 'PSI_MESSAGE_MALFORMED');
    assert.equal(code(() => s.receive(Buffer.from('GET / HTTP/1.1\r\n\r\n.......................'))), 'PSI_MESSAGE_MALFORMED');
    // None of these opened a session: the honest hello still works.
    assert.ok(s.receive(hello!) !== null);
  });

  it('refuses a set that is not padded to a bucket (a size probe)', () => {
    const client = new PsiClient(prepareSet(accounts('acct', 0, 20)), 'cardinality');
    const m = decodeMessage(client.hello()[0]!);
    const cut = encodeMessage({ ...m, sections: [{ itemSize: 32, items: m.sections[0]!.items.subarray(0, 32 * 17) }] });
    assert.equal(code(() => server().receive(cut)), 'PSI_MESSAGE_MALFORMED');
  });

  it('refuses a replayed hello, so a session id is never answered twice', () => {
    const s = server();
    const client = new PsiClient(prepareSet(accounts('acct', 0, 5)), 'cardinality');
    const [hello] = client.hello();
    assert.ok(s.receive(hello!) !== null);
    assert.equal(code(() => s.receive(hello!)), 'PSI_REPLAY');
  });

  it('refuses reordered and repeated chunks', () => {
    const client = new PsiClient(prepareSet(accounts('acct', 0, 40)), 'cardinality');
    const chunks = client.hello(16);
    assert.ok(chunks.length >= 3);
    const s1 = server();
    assert.equal(code(() => s1.receive(chunks[1]!)), 'PSI_SESSION_UNKNOWN');
    const s2 = server();
    assert.equal(s2.receive(chunks[0]!), null);
    assert.equal(code(() => s2.receive(chunks[2]!)), 'PSI_OUT_OF_ORDER');
    const s3 = server();
    assert.equal(s3.receive(chunks[0]!), null);
    assert.equal(code(() => s3.receive(chunks[0]!)), 'PSI_REPLAY');
  });

  it('the client refuses a replayed reply and a reply from another session', () => {
    const s = server();
    const a = new PsiClient(prepareSet(accounts('acct', 0, 5)), 'cardinality');
    const b = new PsiClient(prepareSet(accounts('acct', 0, 5)), 'cardinality');
    const replyA = s.receive(a.hello()[0]!)!;
    b.hello();
    assert.equal(code(() => b.receiveReply(replyA)), 'PSI_SESSION_UNKNOWN');
    a.receiveReply(replyA);
    assert.equal(code(() => a.receiveReply(replyA)), 'PSI_REPLAY');
  });

  it('the client refuses a server set with a low-order point', () => {
    const s = server();
    const client = new PsiClient(prepareSet(accounts('acct', 0, 5)), 'cardinality');
    const reply = decodeMessage(s.receive(client.hello()[0]!)!);
    const pts = Uint8Array.from(reply.sections[1]!.items);
    pts.set(encodeU(1n), 32);
    const forged = encodeMessage({ ...reply, sections: [reply.sections[0]!, { itemSize: 32, items: pts }] });
    assert.equal(code(() => client.receiveReply(forged)), 'PSI_POINT_INVALID');
  });

  it('limits sessions and elements per peer, and says when to retry', () => {
    let now = 0;
    const limiter = new PsiRateLimiter({ sessionsPerHour: 2, elementsPerHour: 1000, maxElementsPerSession: 800 }, () => now);
    limiter.charge('bank-b', 100);
    limiter.charge('bank-b', 100);
    assert.equal(code(() => limiter.charge('bank-b', 100)), 'PSI_RATE_LIMITED');
    limiter.charge('bank-c', 100); // another peer has its own allowance
    assert.equal(code(() => limiter.charge('bank-c', 900)), 'PSI_SET_TOO_LARGE');
    now += 1_800_000; // half an hour refills one session
    limiter.charge('bank-b', 100);
  });
});

describe('intersection-sum (Ion et al. 2020)', () => {
  let keys: KeyPair;
  before(async () => { keys = await generatePaillierKeys(1024); });

  it('encrypts with OpenSSL\'s exponentiation exactly what paillier-bigint decrypts and adds', () => {
    const enc = new PaillierEncryptor(keys.publicKey);
    assert.equal(enc.accelerated, true);
    const ms = [0n, 1n, 42n, 10n ** 30n];
    const cs = ms.map((m) => enc.encrypt(m));
    assert.deepEqual(cs.map((c) => keys.privateKey.decrypt(c)), ms);
    assert.equal(keys.privateKey.decrypt(keys.publicKey.addition(...cs)), ms.reduce((a, b) => a + b, 0n));
    assert.notEqual(enc.encrypt(5n), enc.encrypt(5n), 'each encryption has fresh randomness');
    assert.equal(keys.privateKey.decrypt(enc.rerandomise(cs[2]!)), 42n);
  });

  it('sums the values of exactly the shared elements, as a plain computation does', () => {
    const flagged = accounts('acct', 0, 60);
    const exposures = accounts('acct', 30, 110);
    const values = exposures.map((_, i) => BigInt(1000 + 7 * i));
    const server = new PsiServer(prepareSet(exposures, { values }), { modes: ['sum'], paillier: keys });
    const client = new PsiClient(prepareSet(flagged), 'sum');
    const reply = server.receive(client.hello()[0]!)!;
    const r = client.receiveReply(reply);
    const result = client.receiveResult(server.receive(r.sumMessage!)!);
    const shared = new Set(flagged);
    const plainSum = exposures.reduce((a, e, i) => (shared.has(e) ? a + values[i]! : a), 0n);
    assert.equal(result.cardinality, 30);
    assert.equal(result.sum, plainSum);
    assert.equal(server.lastOutcome?.sum, plainSum);
  });

  it('refuses a replayed encrypted sum', () => {
    const server = new PsiServer(prepareSet(['a', 'b'], { values: [1n, 2n] }), { modes: ['sum'], paillier: keys });
    const client = new PsiClient(prepareSet(['a']), 'sum');
    const r = client.receiveReply(server.receive(client.hello()[0]!)!);
    server.receive(r.sumMessage!);
    assert.equal(code(() => server.receive(r.sumMessage!)), 'PSI_REPLAY');
  });
});

describe('keyed join tokens and progress', () => {
  it('equal values meet under one collaboration key and never across collaborations', () => {
    const secret = new Uint8Array(32).fill(7);
    const k1 = joinTokenKey(secret, 'collab-1', 'account_key');
    const k2 = joinTokenKey(secret, 'collab-2', 'account_key');
    assert.equal(joinToken(k1, ' GB29NWBK6016 '), joinToken(k1, 'gb29nwbk6016'));
    assert.notEqual(joinToken(k1, 'gb29nwbk6016'), joinToken(k2, 'gb29nwbk6016'));
  });

  it('reports elements done, rate and time left from an injected clock', () => {
    let t = 0;
    const seen: ProgressReport[] = [];
    const tick = new ProgressMeter((r) => seen.push(r), { now: () => t, intervalMs: 1000 }).start('blind', 1000);
    t = 2000; tick(250);
    t = 2500; tick(300); // within the interval: not reported
    t = 4000; tick(500);
    t = 4100; tick(1000); // the end is always reported
    assert.equal(seen.length, 3);
    assert.equal(seen[0]!.ratePerSecond, 125);
    assert.equal(seen[0]!.secondsLeft, 6);
    assert.match(formatProgress(seen[1]!), /^blind: 500\/1000 \(50%\), 125\/s, 4\.0 s left$/);
  });
});
