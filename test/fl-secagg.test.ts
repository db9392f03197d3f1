/**
 * Secure aggregation (Bonawitz et al. 2017; SecAgg+ of Bell et al. 2020): the unmasked sum is
 * exact with dropouts injected at every stage; attackers who forge, replay or borrow keys
 * are refused; the coordinator cannot obtain both secrets of one participant; and the
 * quantiser's no-wrap bound holds at its edges.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import { SecAggCoordinator } from '../src/fl/secagg/coordinator.ts';
import { signFields } from '../src/fl/secagg/crypto.ts';
import { advertiseFields, unmaskFields, type SessionParams, type Stage, type UnmaskRequest } from '../src/fl/secagg/messages.ts';
import { harary } from '../src/fl/secagg/neighbourhood.ts';
import { SecAggParticipant } from '../src/fl/secagg/participant.ts';
import { applyMask, applyMasks, expandMask } from '../src/fl/secagg/prg.ts';
import { dequantiseSum, MAX_SUM, planQuantiser, quantise } from '../src/fl/secagg/quantize.ts';
import { runSecAgg } from '../src/fl/secagg/round.ts';
import { identities, localChannel, simulateSecAgg } from '../src/fl/secagg/simulate.ts';
import { SecAggWorkers } from '../src/fl/secagg/worker-channel.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `bank-${String(i).padStart(2, '0')}`);
let sessions = 0;
const params = (roster: string[], degree: number, threshold: number, length = 257): SessionParams =>
  ({ session: `session-${++sessions}-${randomBytes(4).toString('hex')}`, roster, degree, threshold, length, graphSeed: `graph-${sessions}` });
const randomInputs = (roster: readonly string[], length: number) => new Map(roster.map((id) => [id, new Uint32Array(randomBytes(length * 4).buffer)]));
function expectedSum(inputs: ReadonlyMap<string, Uint32Array>, included: readonly string[], length: number): Uint32Array {
  const s = new Uint32Array(length);
  for (const id of included) { const x = inputs.get(id)!; for (let i = 0; i < length; i++) s[i] += x[i]!; }
  return s;
}
const detailOf = (detail: string) => (err: unknown) => { assert.equal((err as { detail?: string }).detail, detail); return true; };

function setup(p: SessionParams) {
  const { keys, pins } = identities(p.roster);
  const parts = new Map(p.roster.map((id) => [id, new SecAggParticipant(id, p, keys.get(id)!, pins)]));
  return { keys, pins, parts, coord: new SecAggCoordinator(p, pins) };
}

describe('secure aggregation: exact unmasking', () => {
  test('with every participant present the coordinator recovers exactly the sum of the inputs (complete graph and SecAgg+)', async () => {
    for (const [n, k, t] of [[5, 4, 3], [12, 4, 3], [12, 6, 4]] as const) {
      const p = params(ids(n), k, t);
      const inputs = randomInputs(p.roster, p.length);
      const r = await simulateSecAgg(p, inputs);
      assert.deepEqual(r.included, p.roster);
      assert.deepEqual(r.sum, expectedSum(inputs, p.roster, p.length));
    }
  });

  for (const stage of ['advertise', 'share', 'masked', 'consistency', 'unmask'] as Stage[]) {
    test(`participants that drop out at the ${stage} stage are excluded or recovered and the sum stays exact`, async () => {
      const p = params(ids(10), 6, 4);
      const inputs = randomInputs(p.roster, p.length);
      const drops = new Map<string, Stage>([['bank-02', stage], ['bank-07', stage]]);
      const r = await simulateSecAgg(p, inputs, drops);
      const lostInput = stage === 'advertise' || stage === 'share' || stage === 'masked';
      const included = lostInput ? p.roster.filter((id) => !drops.has(id)) : p.roster;
      assert.deepEqual(r.included, included);
      assert.deepEqual(r.dropped[stage], ['bank-02', 'bank-07']);
      assert.deepEqual(r.sum, expectedSum(inputs, included, p.length));
      assert.equal(r.coordinator.holdsBothSecrets(), false);
    });
  }

  test('dropouts spread over several stages in one session still give the exact sum of the survivors', async () => {
    const p = params(ids(14), 13, 8);
    const inputs = randomInputs(p.roster, p.length);
    const drops = new Map<string, Stage>([['bank-00', 'advertise'], ['bank-03', 'share'], ['bank-05', 'masked'], ['bank-09', 'masked'], ['bank-11', 'consistency'], ['bank-13', 'unmask']]);
    const r = await simulateSecAgg(p, inputs, drops);
    const included = p.roster.filter((id) => !['bank-00', 'bank-03', 'bank-05', 'bank-09'].includes(id));
    assert.deepEqual(r.included, included);
    assert.deepEqual(r.sum, expectedSum(inputs, included, p.length));
  });

  test('participants hosted on two worker threads give the same exact sum, with dropouts recovered', async () => {
    const workers = SecAggWorkers.start(2);
    try {
      const p = params(ids(10), 6, 4, 40_001);
      const inputs = randomInputs(p.roster, p.length);
      const { keys, pins } = identities(p.roster);
      const drops = new Map<string, Stage>([['bank-02', 'masked'], ['bank-06', 'unmask']]);
      const coord = new SecAggCoordinator(p, pins);
      const r = await runSecAgg(coord, await workers.session(p, keys, pins, inputs, drops));
      const included = p.roster.filter((id) => id !== 'bank-02');
      assert.deepEqual(r.included, included);
      assert.deepEqual(r.sum, expectedSum(inputs, included, p.length));
      assert.equal(coord.holdsBothSecrets(), false);
    } finally {
      await workers.close();
    }
  });

  test('when fewer than t neighbours answer the unmasking round no sum is released', async () => {
    const p = params(ids(5), 4, 3);
    const inputs = randomInputs(p.roster, p.length);
    const drops = new Map<string, Stage>([['bank-01', 'unmask'], ['bank-02', 'unmask'], ['bank-03', 'unmask']]);
    await assert.rejects(simulateSecAgg(p, inputs, drops), detailOf('FL_TOO_FEW_PARTICIPANTS'));
  });

  test('when fewer than t participants send inputs the round stops before any unmasking', async () => {
    const p = params(ids(5), 4, 3);
    const drops = new Map<string, Stage>([['bank-01', 'masked'], ['bank-02', 'masked'], ['bank-03', 'masked']]);
    await assert.rejects(simulateSecAgg(p, randomInputs(p.roster, p.length), drops), detailOf('FL_TOO_FEW_PARTICIPANTS'));
  });

  test('a masked input on its own looks uniform: a zero update is hidden', async () => {
    const p = params(ids(4), 3, 3, 1 << 14);
    const { parts, coord } = setup(p);
    for (const [, u] of parts) coord.acceptAdvert(u.advertise());
    for (const [id, u] of parts) coord.acceptShares(await u.share(coord.advertsFor(id)));
    const y = parts.get('bank-00')!.masked(coord.sharesFor('bank-00'), new Uint32Array(p.length)).y;
    let mean = 0;
    for (const w of y) mean += w / 2 ** 32;
    mean /= y.length;
    assert.ok(Math.abs(mean - 0.5) < 0.02, `mean of masked words ${mean}`);
    assert.ok(y.filter((w) => w === 0).length < 5);
  });
});

describe('secure aggregation: the coordinator never holds both secrets of one participant', () => {
  test('a participant refuses to unmask a survivor set that lacks t consistency signatures, so a coordinator cannot call a survivor dropped', async () => {
    const p = params(ids(5), 4, 3);
    const { parts, coord } = setup(p);
    const inputs = randomInputs(p.roster, p.length);
    for (const [, u] of parts) coord.acceptAdvert(u.advertise());
    for (const [id, u] of parts) coord.acceptShares(await u.share(coord.advertsFor(id)));
    for (const [id, u] of parts) coord.acceptMasked(u.masked(coord.sharesFor(id), inputs.get(id)!));
    const u3 = coord.survivors();
    const sigs = [...parts].map(([, u]) => u.consistency(u3));
    // The coordinator already has b_bank-04 shares coming; now it claims bank-04 dropped to get s_bank-04 too.
    const lie = u3.filter((id) => id !== 'bank-04');
    assert.throws(() => parts.get('bank-00')!.unmask({ survivors: lie, signatures: sigs }), detailOf('FL_UNMASK_REFUSED'));
  });

  test('a participant answers the unmasking round once only', async () => {
    const p = params(ids(4), 3, 3);
    const { parts, coord } = setup(p);
    const inputs = randomInputs(p.roster, p.length);
    for (const [, u] of parts) coord.acceptAdvert(u.advertise());
    for (const [id, u] of parts) coord.acceptShares(await u.share(coord.advertsFor(id)));
    for (const [id, u] of parts) coord.acceptMasked(u.masked(coord.sharesFor(id), inputs.get(id)!));
    const u3 = coord.survivors();
    for (const [, u] of parts) coord.acceptConsistency(u.consistency(u3));
    const req = coord.unmaskRequest();
    const u0 = parts.get('bank-00')!;
    assert.ok(u0.unmask(req).shares.every((s) => s.kind === 'b'));
    assert.throws(() => u0.unmask({ survivors: ['bank-00', 'bank-01'], signatures: req.signatures }), detailOf('FL_STAGE_OUT_OF_ORDER'));
  });

  test('the threshold must exceed half the neighbourhood, or the session is refused', () => {
    assert.throws(() => setup(params(ids(6), 4, 2)), detailOf('FL_PARAMETERS_INVALID'));
    assert.throws(() => setup(params(ids(6), 4, 6)), detailOf('FL_PARAMETERS_INVALID'));
  });
});

describe('secure aggregation: forged, replayed and borrowed messages', () => {
  test('an advert signed with another node key than the one pinned for its sender is refused and that sender is excluded', async () => {
    const p = params(ids(5), 4, 3);
    const { parts, coord } = setup(p);
    const inputs = randomInputs(p.roster, p.length);
    const mallory = generateKeyPairSync('ed25519').privateKey;
    const channel = localChannel(parts, inputs);
    const forging = { ...channel, advertise: async (id: string) => {
      const m = await channel.advertise(id);
      if (id !== 'bank-03') return m;
      const body = { session: m.session, from: m.from, cPk: m.cPk, sPk: m.sPk };
      return { ...body, sig: signFields(mallory, advertiseFields(body)) };
    } };
    const r = await runSecAgg(coord, forging);
    assert.equal(r.rejected.get('bank-03'), 'FL_MESSAGE_FORGED');
    assert.deepEqual(r.included, p.roster.filter((id) => id !== 'bank-03'));
    assert.deepEqual(r.sum, expectedSum(inputs, r.included, p.length));
  });

  test('a participant that advertises another participant\'s public keys under its own name is refused', () => {
    const p = params(ids(4), 3, 3);
    const { parts, coord, keys } = setup(p);
    const bob = parts.get('bank-01')!.advertise();
    coord.acceptAdvert(bob);
    const body = { session: p.session, from: 'bank-02', cPk: bob.cPk, sPk: bob.sPk };
    assert.throws(() => coord.acceptAdvert({ ...body, sig: signFields(keys.get('bank-02')!, advertiseFields(body)) }), detailOf('FL_KEY_REUSED'));
  });

  test('a participant that signs as another participant with its own key is refused', () => {
    const p = params(ids(4), 3, 3);
    const { parts, coord, keys } = setup(p);
    const real = parts.get('bank-01')!.advertise();
    const body = { session: p.session, from: 'bank-01', cPk: randomBytes(32), sPk: randomBytes(32) };
    assert.throws(() => coord.acceptAdvert({ ...body, sig: signFields(keys.get('bank-02')!, advertiseFields(body)) }), detailOf('FL_MESSAGE_FORGED'));
    coord.acceptAdvert(real);
  });

  test('an advert replayed from an earlier session, or twice in one session, is refused', async () => {
    const roster = ids(4);
    const old = params(roster, 3, 3);
    const { keys, pins } = identities(roster);
    const oldAdvert = new SecAggParticipant('bank-01', old, keys.get('bank-01')!, pins).advertise();
    const fresh = { ...old, session: `${old.session}-next` };
    const coord = new SecAggCoordinator(fresh, pins);
    assert.throws(() => coord.acceptAdvert(oldAdvert), detailOf('FL_MESSAGE_REPLAYED'));
    const now = new SecAggParticipant('bank-01', fresh, keys.get('bank-01')!, pins).advertise();
    coord.acceptAdvert(now);
    assert.throws(() => coord.acceptAdvert(now), detailOf('FL_MESSAGE_REPLAYED'));
    // A participant relayed the old advert refuses it too.
    const u0 = new SecAggParticipant('bank-00', fresh, keys.get('bank-00')!, pins);
    u0.advertise();
    await assert.rejects(u0.share([oldAdvert]), detailOf('FL_MESSAGE_REPLAYED'));
  });

  test('a masked input sent twice, or altered after signing, is refused', async () => {
    const p = params(ids(4), 3, 3);
    const { parts, coord } = setup(p);
    const inputs = randomInputs(p.roster, p.length);
    for (const [, u] of parts) coord.acceptAdvert(u.advertise());
    for (const [id, u] of parts) coord.acceptShares(await u.share(coord.advertsFor(id)));
    const m0 = parts.get('bank-00')!.masked(coord.sharesFor('bank-00'), inputs.get('bank-00')!);
    const m1 = parts.get('bank-01')!.masked(coord.sharesFor('bank-01'), inputs.get('bank-01')!);
    const altered = Uint32Array.from(m1.y);
    altered[0] += 1;
    assert.throws(() => coord.acceptMasked({ ...m1, y: altered }), detailOf('FL_MESSAGE_FORGED'));
    coord.acceptMasked(m0);
    assert.throws(() => coord.acceptMasked(m0), detailOf('FL_MESSAGE_REPLAYED'));
  });

  test('a share altered in transit does not open and the recipient refuses it', async () => {
    const p = params(ids(4), 3, 3);
    const { parts, coord } = setup(p);
    for (const [, u] of parts) coord.acceptAdvert(u.advertise());
    for (const [id, u] of parts) coord.acceptShares(await u.share(coord.advertsFor(id)));
    const incoming = coord.sharesFor('bank-00').map((s, i) => (i === 0 ? { ...s, ct: Uint8Array.from(s.ct, (b, j) => (j === 20 ? b ^ 1 : b)) } : s));
    assert.throws(() => parts.get('bank-00')!.masked(incoming, new Uint32Array(p.length)), detailOf('FL_MESSAGE_FORGED'));
    // Delivering a share meant for another participant is refused as well.
    const other = coord.sharesFor('bank-01');
    assert.throws(() => parts.get('bank-02')!.masked(other, new Uint32Array(p.length)), detailOf('FL_MESSAGE_FORGED'));
  });

  test('a participant that reveals a corrupted share is caught by the commitment instead of corrupting the sum', async () => {
    const p = params(ids(4), 3, 3);
    const { parts, coord, keys } = setup(p);
    const inputs = randomInputs(p.roster, p.length);
    const channel = localChannel(parts, inputs);
    // bank-01 is malicious: it signs, with its own pinned key, shares it has altered.
    const lying = { ...channel, unmask: async (id: string, req: UnmaskRequest) => {
      const m = await channel.unmask(id, req);
      if (id !== 'bank-01') return m;
      const body = { session: m.session, from: m.from, shares: m.shares.map((s) => ({ ...s, share: Uint8Array.from(s.share, (b, j) => (j === 3 ? b ^ 0xff : b)) })) };
      return { ...body, sig: signFields(keys.get('bank-01')!, unmaskFields(body)) };
    } };
    await assert.rejects(runSecAgg(coord, lying), detailOf('FL_MESSAGE_FORGED'));
  });
});

describe('secure aggregation: building blocks', () => {
  test('the SecAgg+ graph is k-regular, symmetric and the same for everyone with the same seed', () => {
    const roster = ids(20);
    const g = harary(roster, 6, 'seed');
    for (const [u, nb] of g.of) {
      assert.equal(nb.length, 6);
      for (const v of nb) assert.ok(g.of.get(v)!.includes(u));
    }
    assert.deepEqual([...harary([...roster].reverse(), 6, 'seed').of], [...g.of]);
    assert.notDeepEqual([...harary(roster, 6, 'other').of], [...g.of]);
  });

  test('a mask expanded in chunks equals its prefix and cancels exactly', () => {
    const seed = randomBytes(32);
    const long = expandMask(seed, 'pair', 70_001);
    assert.deepEqual(long.subarray(0, 10), expandMask(seed, 'pair', 10));
    assert.notDeepEqual(expandMask(seed, 'self', 10), expandMask(seed, 'pair', 10));
    const x = new Uint32Array(randomBytes(4 * 70_001).buffer);
    const y = Uint32Array.from(x);
    applyMask(y, seed, 'pair', 1);
    assert.notDeepEqual(y, x);
    applyMask(y, seed, 'pair', -1);
    assert.deepEqual(y, x);
  });

  test('masks applied together equal the AES-256-CTR keystream words added and subtracted mod 2^32, across chunk edges and odd tails', () => {
    // The reference is computed here from node:crypto and BigInt arithmetic, independently of prg.ts's chunking and SIMD adds.
    const stream = (seed: Uint8Array, firstIvByte: number, n: number) => {
      const ks = createCipheriv('aes-256-ctr', seed, Buffer.concat([Buffer.from([firstIvByte]), Buffer.alloc(15)])).update(Buffer.alloc(4 * n));
      return Array.from({ length: n }, (_, i) => BigInt(ks.readUInt32LE(4 * i)));
    };
    for (const n of [1, 3, 5, 16_383, 16_384, 16_385, 40_003]) {
      const masks = [{ seed: randomBytes(32), domain: 'self' as const, sign: 1 as const }, { seed: randomBytes(32), domain: 'pair' as const, sign: -1 as const }, { seed: randomBytes(32), domain: 'pair' as const, sign: 1 as const }];
      const x = new Uint32Array(randomBytes(4 * n).buffer);
      const y = x.slice();
      applyMasks(y, masks);
      const streams = masks.map((m) => stream(m.seed, m.domain === 'self' ? 0 : 1, n));
      for (const i of [0, n - 1, Math.floor(n / 2), Math.min(n - 1, 16_383), Math.min(n - 1, 16_384)]) {
        const want = (BigInt(x[i]!) + streams[0]![i]! - streams[1]![i]! + streams[2]![i]!) & 0xffffffffn;
        assert.equal(BigInt(y[i]!), want, `word ${i} of ${n}`);
      }
      applyMasks(y, masks.map((m) => ({ ...m, sign: m.sign === 1 ? -1 as const : 1 as const })));
      assert.deepEqual(y, x);
    }
  });
});

describe('fixed-point quantisation: the modular sum cannot wrap', () => {
  test('the plan picks the finest scale with n·M ≤ 2^31 − 1, and one more bit would break it', () => {
    for (const [n, a] of [[3, 1], [100, 4], [1000, 0.5], [7, 3.3]] as const) {
      const q = planQuantiser(n, a);
      assert.ok(n * q.maxQuantised <= MAX_SUM);
      assert.ok(n * Math.round(a * 2 ** (q.scaleBits + 1)) > MAX_SUM);
    }
  });

  test('n inputs all at +A, all at −A, or alternating, decode exactly through secure aggregation', async () => {
    const n = 6;
    const plan = planQuantiser(n, 2.5);
    const p = params(ids(n), 5, 4, 3);
    const inputs = new Map(p.roster.map((id, i) => [id, quantise(plan, [2.5, -2.5, i % 2 === 0 ? 2.5 : -2.5])]));
    const r = await simulateSecAgg(p, inputs);
    const sum = dequantiseSum(plan, r.sum);
    assert.deepEqual([...sum], [n * plan.maxQuantised / 2 ** plan.scaleBits, -n * plan.maxQuantised / 2 ** plan.scaleBits, 0]);
    assert.ok(Math.abs(sum[0]! - 15) < n / 2 ** plan.scaleBits);
  });

  test('the extreme sums ±(2^31 − 1) decode, and a value past the bound is refused instead of wrapping', () => {
    const plan = { scaleBits: 0, maxAbs: MAX_SUM, maxInputs: 1, maxQuantised: MAX_SUM };
    assert.deepEqual([...dequantiseSum(plan, quantise(plan, [MAX_SUM, -MAX_SUM, 0]))], [MAX_SUM, -MAX_SUM, 0]);
    const q = planQuantiser(10, 1);
    assert.throws(() => quantise(q, [1.0000001]), detailOf('FL_VALUE_OUT_OF_RANGE'));
    assert.throws(() => quantise(q, [Number.NaN]), detailOf('FL_VALUE_OUT_OF_RANGE'));
    assert.throws(() => quantise(q, [-Infinity]), detailOf('FL_VALUE_OUT_OF_RANGE'));
  });

  test('a plan that would leave too little precision is refused with what to change', () => {
    assert.throws(() => planQuantiser(1 << 20, 1e4), detailOf('FL_PARAMETERS_INVALID'));
    assert.throws(() => planQuantiser(0, 1), detailOf('FL_PARAMETERS_INVALID'));
  });
});

describe('secure aggregation: the wire form', () => {
  test('every message survives JSON and back unchanged, and a full session over the wire form stays exact', async () => {
    const { wire, unwire } = await import('../src/fl/secagg/codec.ts');
    const p = params(ids(4), 3, 3, 33);
    const { parts, coord } = setup(p);
    const inputs = randomInputs(p.roster, p.length);
    const json = <T>(x: T): any => JSON.parse(JSON.stringify(x));
    for (const [, u] of parts) coord.acceptAdvert(unwire.advertise(json(wire.advertise(u.advertise()))));
    for (const [id, u] of parts) coord.acceptShares(unwire.share(json(wire.share(await u.share(unwire.advertiseList({ adverts: json(coord.advertsFor(id).map(wire.advertise)) }))))));
    for (const [id, u] of parts) coord.acceptMasked(unwire.masked(json(wire.masked(u.masked(unwire.incoming({ shares: json(wire.incoming(coord.sharesFor(id))) }), inputs.get(id)!))), p.length));
    const u3 = coord.survivors();
    for (const [, u] of parts) coord.acceptConsistency(unwire.consistency(json(wire.consistency(u.consistency(unwire.survivors({ survivors: json(u3) }))))));
    const req = unwire.unmaskRequest(json(wire.unmaskRequest(coord.unmaskRequest())));
    for (const [, u] of parts) coord.acceptUnmask(unwire.unmask(json(wire.unmask(u.unmask(req)))));
    assert.deepEqual((await coord.finish()).sum, expectedSum(inputs, p.roster, p.length));
  });

  test('malformed wire messages are refused before any protocol code sees them', async () => {
    const { unwire } = await import('../src/fl/secagg/codec.ts');
    const bad = detailOf('FL_PARAMETERS_INVALID');
    const sig = Buffer.alloc(64).toString('base64url');
    const key = Buffer.alloc(32).toString('base64url');
    assert.throws(() => unwire.advertise({ session: 's', from: 'a', cPk: key, sPk: 'not base64!', sig }), bad);
    assert.throws(() => unwire.advertise({ session: 's', from: 'a', cPk: key, sPk: Buffer.alloc(31).toString('base64url'), sig }), bad);
    assert.throws(() => unwire.advertise({ session: 's', from: '', cPk: key, sPk: key, sig }), bad);
    assert.throws(() => unwire.masked({ session: 's', from: 'a', y: Buffer.alloc(4 * 9).toString('base64url'), sig }, 10), bad);
    assert.throws(() => unwire.unmask({ session: 's', from: 'a', sig, shares: [{ of: 'b', kind: 'both', share: Buffer.alloc(33).toString('base64url') }] }), bad);
    assert.throws(() => unwire.share({ session: 's', from: 'a', bCommit: key, sig, shares: Array.from({ length: 300 }, () => ({ to: 'b', ct: '' })) }), bad);
    assert.throws(() => unwire.unmaskRequest({ survivors: 'a,b', signatures: [] }), bad);
  });
});
