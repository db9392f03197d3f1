// Vectors: RFC 6962 8-leaf reference tree as published by transparency-dev/merkle
// (testonly/constants.go: LeafInputs, RootHashes, NodeHashes; proof/verify_test.go:
// inclusionProofs, consistencyProofs). Leaf numbers in verify_test.go are 1-based.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  EMPTY_ROOT, MemoryTree, consistencyProof, consistencyProofLength, hashLeaf, inclusionProof,
  inclusionProofLength, rootFromInclusionProof, verifyConsistency, verifyInclusion,
} from './merkle.ts';

const hx = (s: string) => Buffer.from(s, 'hex');
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hx);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hx);
const LEAF_HASHES = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
  '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
  '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
  'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
  '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
  'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
  '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
].map(hx);
// [leaf (0-based), size, proof]
const INCLUSION: [number, number, string[]][] = [
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];

const tree = new MemoryTree(LEAVES.map((l) => hashLeaf(l)));
const SOME_HASH = hx('abacaba000000000000000000000000000000000000000000060061e00123456');

test('leaf hashes of the reference inputs match the RFC 6962 vectors', () => {
  assert.deepEqual(LEAVES.map((l) => hashLeaf(l).toString('hex')), LEAF_HASHES.map((h) => h.toString('hex')));
});

test('tree heads for every size 0..8 match the RFC 6962 vectors', () => {
  assert.deepEqual(EMPTY_ROOT, createHash('sha256').digest());
  for (let size = 0; size <= 8; size++) assert.equal(tree.root(size).toString('hex'), ROOTS[size]!.toString('hex'), `size ${size}`);
});

test('generated inclusion proofs equal the published ones and verify', () => {
  for (const [index, size, hashes] of INCLUSION) {
    const proof = inclusionProof(tree, index, size);
    assert.deepEqual(proof.map((p) => p.toString('hex')), hashes);
    verifyInclusion(index, size, hashLeaf(LEAVES[index]!), proof, ROOTS[size]!);
  }
});

test('generated consistency proofs equal the published ones and verify', () => {
  for (const [first, second, hashes] of CONSISTENCY) {
    const proof = consistencyProof(tree, first, second);
    assert.deepEqual(proof.map((p) => p.toString('hex')), hashes);
    verifyConsistency(first, second, ROOTS[first]!, ROOTS[second]!, proof);
  }
});

test('every inclusion and consistency proof of trees up to 40 leaves verifies and has the predicted length', () => {
  const leaves = Array.from({ length: 40 }, (_, i) => hashLeaf(Buffer.from(`leaf ${i}`)));
  const t = new MemoryTree(leaves);
  for (let n = 1; n <= 40; n++) {
    const root = t.root(n);
    for (let i = 0; i < n; i++) {
      const p = inclusionProof(t, i, n);
      assert.equal(p.length, inclusionProofLength(i, n));
      verifyInclusion(i, n, leaves[i]!, p, root);
    }
    for (let m = 1; m < n; m++) {
      const p = consistencyProof(t, m, n);
      assert.equal(p.length, consistencyProofLength(m, n), `${m}->${n}`);
      verifyConsistency(m, n, t.root(m), root, p);
    }
  }
});

function codeOf(fn: () => unknown): string | undefined {
  try { fn(); return undefined; } catch (e) { return (e as { detail?: string }).detail; }
}

test('corrupted inclusion proofs are rejected: wrong index, size, leaf, root, extra, missing or flipped hashes', () => {
  for (const [index, size] of INCLUSION) {
    const proof = inclusionProof(tree, index, size);
    const leaf = hashLeaf(LEAVES[index]!);
    const root = ROOTS[size]!;
    const bad: [string, () => void][] = [
      ['index - 1', () => verifyInclusion(index - 1, size, leaf, proof, root)],
      ['index + 1', () => verifyInclusion(index + 1, size, leaf, proof, root)],
      ['index ^ 2', () => verifyInclusion(index ^ 2, size, leaf, proof, root)],
      ['size * 2', () => verifyInclusion(index, size * 2, leaf, proof, root)],
      ['size / 2', () => verifyInclusion(index, Math.floor(size / 2), leaf, proof, root)],
      ['wrong leaf', () => verifyInclusion(index, size, Buffer.from('WrongLeaf'), proof, root)],
      ['empty root', () => verifyInclusion(index, size, leaf, proof, EMPTY_ROOT)],
      ['random root', () => verifyInclusion(index, size, leaf, proof, SOME_HASH)],
      ['trailing garbage', () => verifyInclusion(index, size, leaf, [...proof, Buffer.alloc(0)], root)],
      ['trailing root (too long)', () => verifyInclusion(index, size, leaf, [...proof, root], root)],
      ['preceding root', () => verifyInclusion(index, size, leaf, [root, ...proof], root)],
      ['removed component (too short)', () => verifyInclusion(index, size, leaf, proof.slice(0, -1), root)],
      ['inserted component', () => verifyInclusion(index, size, leaf, [proof[0]!, SOME_HASH, ...proof.slice(1)], root)],
    ];
    for (let i = 0; i < proof.length; i++) {
      const p = proof.map((h) => Buffer.from(h));
      p[i]![0]! ^= 8;
      bad.push([`flipped bit in proof[${i}]`, () => verifyInclusion(index, size, leaf, p, root)]);
    }
    for (const [desc, fn] of bad) assert.ok(codeOf(fn), `${desc} for (${index}, ${size}) was accepted`);
  }
});

test('an index at or beyond the tree size is rejected with AUDIT_PROOF_RANGE', () => {
  assert.equal(codeOf(() => verifyInclusion(8, 8, hashLeaf(LEAVES[0]!), [], ROOTS[8]!)), 'AUDIT_PROOF_RANGE');
  assert.equal(codeOf(() => verifyInclusion(0, 0, hashLeaf(LEAVES[0]!), [], EMPTY_ROOT)), 'AUDIT_PROOF_RANGE');
  assert.equal(codeOf(() => inclusionProof(tree, 8, 8)), 'AUDIT_PROOF_RANGE');
  assert.equal(codeOf(() => verifyInclusion(-1, 8, hashLeaf(LEAVES[0]!), [], ROOTS[8]!)), 'AUDIT_PROOF_RANGE');
});

test('a first size larger than the second is rejected with AUDIT_PROOF_RANGE', () => {
  assert.equal(codeOf(() => verifyConsistency(8, 7, ROOTS[8]!, ROOTS[7]!, [])), 'AUDIT_PROOF_RANGE');
  assert.equal(codeOf(() => consistencyProof(tree, 8, 7)), 'AUDIT_PROOF_RANGE');
});

test('a consistency proof that is too long, too short or leaves the second tree unconsumed is rejected', () => {
  for (const [first, second] of CONSISTENCY) {
    if (first === second) continue;
    const proof = consistencyProof(tree, first, second);
    const r1 = ROOTS[first]!;
    const r2 = ROOTS[second]!;
    assert.equal(codeOf(() => verifyConsistency(first, second, r1, r2, [...proof, r2])), 'AUDIT_PROOF_LENGTH');
    assert.equal(codeOf(() => verifyConsistency(first, second, r1, r2, proof.slice(0, -1))), 'AUDIT_PROOF_LENGTH');
    assert.equal(codeOf(() => verifyConsistency(first, second, r1, r2, [])), 'AUDIT_PROOF_LENGTH');
    // Same hashes, but claimed against a larger second tree: part of it is never covered.
    assert.ok(codeOf(() => verifyConsistency(first, second * 2, r1, r2, proof)));
    const bad: (() => void)[] = [
      () => verifyConsistency(first - 1, second, r1, r2, proof),
      () => verifyConsistency(first + 1, second, r1, r2, proof),
      () => verifyConsistency(first ^ 2, second, r1, r2, proof),
      () => verifyConsistency(first, Math.floor(second / 2), r1, r2, proof),
      () => verifyConsistency(first, second, SOME_HASH, r2, proof),
      () => verifyConsistency(first, second, r1, SOME_HASH, proof),
      () => verifyConsistency(first, second, r2, r1, proof),
      () => verifyConsistency(first, second, r1, r2, [r1, ...proof]),
      () => verifyConsistency(first, second, r1, r2, [proof[0]!, ...proof]),
      () => verifyConsistency(first, second, r1, r2, [...proof, Buffer.alloc(0)]),
    ];
    for (let i = 0; i < proof.length; i++) {
      const p = proof.map((h) => Buffer.from(h));
      p[i]![0]! ^= 16;
      bad.push(() => verifyConsistency(first, second, r1, r2, p));
    }
    bad.forEach((fn, i) => assert.ok(codeOf(fn), `probe ${i} for ${first}->${second} was accepted`));
  }
});

test('equal sizes need equal roots and an empty proof', () => {
  verifyConsistency(5, 5, ROOTS[5]!, ROOTS[5]!, []);
  assert.ok(codeOf(() => verifyConsistency(5, 5, ROOTS[5]!, ROOTS[6]!, [])));
  assert.equal(codeOf(() => verifyConsistency(5, 5, ROOTS[5]!, ROOTS[5]!, [EMPTY_ROOT])), 'AUDIT_PROOF_LENGTH');
  assert.equal(codeOf(() => verifyConsistency(0, 3, EMPTY_ROOT, ROOTS[3]!, [EMPTY_ROOT])), 'AUDIT_PROOF_LENGTH');
});

test('rootFromInclusionProof reproduces every reference root', () => {
  for (let size = 1; size <= 8; size++) {
    for (let i = 0; i < size; i++) {
      const r = rootFromInclusionProof(i, size, hashLeaf(LEAVES[i]!), inclusionProof(tree, i, size));
      assert.deepEqual(r, ROOTS[size]);
    }
  }
});
