/**
 * One transparency log in PostgreSQL written by two Gatehouse nodes at once. Each "node" is
 * its own openPostgresState (its own pool) and its own TransparencyLog with its own copy of
 * the log's key files. The merged log must verify end to end with the offline verifier,
 * receipts for entries of either node must verify, checkpoints signed by either node must
 * be consistent with each other, and altering a stored row must be caught.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { TransparencyLog } from '../src/audit/log.ts';
import { verifyExport, verifyReceipt } from '../src/audit/verify.ts';
import { openCheckpoint } from '../src/audit/note.ts';
import { verifyConsistency } from '../src/audit/merkle.ts';
import { TEST_PASSPHRASE, record } from '../src/audit/testing/fixtures.ts';
import { openPostgresState, type PostgresState } from '../src/state/postgres.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
let admin: pg.Pool;
let schemas = 0;

before(async () => {
  cluster = await startPostgres();
  admin = new pg.Pool({ connectionString: cluster.superuserUrl, max: 2 });
});
after(async () => {
  await admin?.end();
  await cluster?.stop();
});

interface Node { state: PostgresState; log: TransparencyLog; dir: string }

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-state-audit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openNode(t: TestContext, schema: string, dir: string): Promise<Node> {
  const state = await openPostgresState({ url: cluster.superuserUrl, schema, maxConnections: 4 });
  const log = await TransparencyLog.openOn(state.auditStorage, {
    keyDir: join(dir, 'keys'), pseudonymKeyDir: join(dir, 'pseudonym-keys'), passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 30,
    keyKdf: { N: 2 ** 10, r: 8, p: 1 }, // key files sealed at a low scrypt cost (TransparencyLogOptions.keyKdf): not what these tests are about
  });
  let closed = false;
  t.after(async () => { if (!closed) { closed = true; await log.close(); await state.close(); } });
  return { state, log, dir };
}

/** Node A creates the keys (and this month's pseudonym key with a first entry); node B gets copies of the key files. */
async function twoNodes(t: TestContext): Promise<{ a: Node; b: Node; schema: string }> {
  const schema = `audit_${++schemas}`;
  const a = await openNode(t, schema, tempDir(t));
  await a.log.append(record(0, { action: 'genesis' }));
  const dirB = tempDir(t);
  cpSync(join(a.dir, 'keys'), join(dirB, 'keys'), { recursive: true });
  cpSync(join(a.dir, 'pseudonym-keys'), join(dirB, 'pseudonym-keys'), { recursive: true });
  const b = await openNode(t, schema, dirB);
  return { a, b, schema };
}

async function exportLines(log: TransparencyLog): Promise<string[]> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await log.export(out);
  out.end();
  return Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l !== '');
}

/** Appends from a node in many small batches (each await lets the other node in between). */
async function appendMany(log: TransparencyLog, tag: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 5) {
    const batch = await Promise.all(Array.from({ length: Math.min(5, count - i) }, (_, j) => log.append(record(i + j, { action: `${tag}-${i + j}` }))));
    ids.push(...batch.map((r) => r.auditId));
  }
  return ids;
}

test('two nodes appending concurrently get unique, dense indexes; the merged log verifies offline and receipts of either node verify', { timeout: 60_000 }, async (t) => {
  const { a, b } = await twoNodes(t);
  const [idsA, idsB] = await Promise.all([appendMany(a.log, 'a', 150), appendMany(b.log, 'b', 150)]);
  const all = [...idsA, ...idsB].map(Number).sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: 300 }, (_, i) => i + 1), 'indexes 1..300, each once (0 is the genesis entry)');
  assert.ok(idsA.some((id, i) => i > 0 && Number(id) !== Number(idsA[i - 1]) + 1), 'the nodes really interleaved');

  // Each node's entries sit at the index it was told, with the content it wrote.
  const cp = await b.log.checkpoint();
  assert.equal(openCheckpoint(cp, b.log.verifiers()).size, 301);
  for (const [k, id] of [[0, idsA[0]!], [77, idsA[77]!], [149, idsA[149]!]] as const) {
    const receipt = await b.log.receipt(id);
    assert.equal(receipt.leaf.entry.action, `a-${k}`, 'node B serves a receipt for an entry node A wrote');
    verifyReceipt(receipt, a.log.verifiers());
  }
  const rb = await a.log.receipt(idsB[42]!);
  assert.equal(rb.leaf.entry.action, 'b-42');
  verifyReceipt(rb, b.log.verifiers());

  // The export from either node verifies end to end, and both are the same log.
  for (const node of [a, b]) {
    const lines = await exportLines(node.log);
    const report = await verifyExport(lines, { verifiers: node.log.verifiers() });
    assert.equal(report.ok, true, JSON.stringify(report.problems.slice(0, 3)));
    assert.deepEqual([report.size, report.entries, report.complete], [301, 301, true]);
  }
  assert.deepEqual(a.log.rootAt(301), b.log.rootAt(301));

  // Pseudonyms agree across nodes (shared pseudonym keys): a search on A finds B's entries.
  const hits = await a.log.search({ principal: 'user-3@partner.example', limit: 1000 });
  assert.ok(hits.some((h) => h.entry.action.startsWith('b-')) && hits.some((h) => h.entry.action.startsWith('a-')));
});

test('checkpoints signed by either node are consistent with one another, and a node adopts the newer checkpoint of the other', { timeout: 60_000 }, async (t) => {
  const { a, b } = await twoNodes(t);
  const notes: string[] = [];
  for (let round = 0; round < 4; round++) {
    await Promise.all([appendMany(a.log, `a${round}`, 20), appendMany(b.log, `b${round}`, 25)]);
    notes.push(await (round % 2 === 0 ? a : b).log.checkpoint());
  }
  const cps = notes.map((n) => openCheckpoint(n, a.log.verifiers()));
  // Proofs are answered from each node's mirror of the tree: bring both up to date first.
  await a.log.refresh();
  await b.log.refresh();
  assert.deepEqual(cps.map((c) => c.size), [46, 91, 136, 181]);
  for (let i = 0; i < cps.length; i++) {
    for (let j = i + 1; j < cps.length; j++) {
      for (const node of [a, b]) {
        const p = node.log.consistencyProof(cps[i]!.size, cps[j]!.size);
        verifyConsistency(cps[i]!.size, cps[j]!.size, cps[i]!.root, cps[j]!.root, p.proof.map((h) => Buffer.from(h, 'base64')));
      }
    }
  }
  // B signed the last one; A, refreshed, reports it instead of signing an older size.
  assert.equal(a.log.latestCheckpoint(), notes[3]);
  assert.equal(a.log.size, 181);
  // The stored checkpoint never goes back to a smaller tree.
  const stored = await admin.query(`SELECT size FROM audit_${schemas}.audit_checkpoint`);
  assert.equal(Number(stored.rows[0].size), 181);
});

test('rows cannot be altered through the table without disabling its triggers; an altered row is caught by the verifier and by any node that loads it', { timeout: 60_000 }, async (t) => {
  const { a, schema } = await twoNodes(t);
  await appendMany(a.log, 'a', 40);
  await a.log.checkpoint();

  await assert.rejects(admin.query(`UPDATE ${schema}.audit_entries SET payload = payload WHERE idx = 7`), /append-only/);
  await assert.rejects(admin.query(`DELETE FROM ${schema}.audit_entries WHERE idx = 40`), /append-only/);

  // A database administrator bypasses the triggers and rewrites entry 7's decision.
  const row = await admin.query(`SELECT payload FROM ${schema}.audit_entries WHERE idx = 7`);
  const original = (row.rows[0].payload as Buffer).toString('utf8');
  const tampered = original.includes('"decision":"allow"') ? original.replace('"decision":"allow"', '"decision":"deny"') : original.replace('"decision":"deny"', '"decision":"allow"');
  assert.notEqual(tampered, original);
  const c = await admin.connect();
  try {
    await c.query('SET session_replication_role = replica');
    await c.query(`UPDATE ${schema}.audit_entries SET payload = $1 WHERE idx = 7`, [Buffer.from(tampered)]);
  } finally {
    await c.query('RESET session_replication_role');
    c.release();
  }

  // The node that already mirrors the tree exports the altered row: the verifier names it.
  const report = await verifyExport(await exportLines(a.log), { verifiers: a.log.verifiers() });
  assert.equal(report.ok, false);
  assert.ok(report.problems.some((p) => p.kind === 'modified' && p.index === 7), JSON.stringify(report.problems));

  // A node starting now refuses to load the log: the row no longer matches its leaf hash.
  const dirC = tempDir(t);
  cpSync(join(a.dir, 'keys'), join(dirC, 'keys'), { recursive: true });
  cpSync(join(a.dir, 'pseudonym-keys'), join(dirC, 'pseudonym-keys'), { recursive: true });
  await assert.rejects(openNode(t, schema, dirC), { detail: 'AUDIT_STORE_CORRUPT', message: /entry 7 does not match its stored leaf hash/ });

  // Rewriting the leaf hash too does not help: the signed checkpoint's root no longer matches.
  const c2 = await admin.connect();
  try {
    await c2.query('SET session_replication_role = replica');
    await c2.query(`UPDATE ${schema}.audit_entries SET leaf_hash = sha256('\\x00'::bytea || payload) WHERE idx = 7`);
  } finally {
    await c2.query('RESET session_replication_role');
    c2.release();
  }
  await assert.rejects(openNode(t, schema, dirC), { detail: 'AUDIT_STORE_CORRUPT', message: /do not match the signed checkpoint/ });
});

test('a node whose key files differ from the log\'s refuses to open the shared log', async (t) => {
  const { schema } = await twoNodes(t);
  // Same origin, same passphrase, but its own freshly generated signing key.
  await assert.rejects(openNode(t, schema, tempDir(t)), { code: 'AUDIT_UNAVAILABLE', message: /same log signing keys/ });
});

test('a deleted row (gap) and a leaf stored at the wrong index are refused when a node loads the log', async (t) => {
  const { a, schema } = await twoNodes(t);
  await appendMany(a.log, 'a', 10);
  const c = await admin.connect();
  try {
    await c.query('SET session_replication_role = replica');
    // Move entry 5 to index 1000 (a gap at 5, a leaf claiming 5 at 1000).
    await c.query(`UPDATE ${schema}.audit_entries SET idx = 1000 WHERE idx = 5`);
  } finally {
    await c.query('RESET session_replication_role');
    c.release();
  }
  const dirC = tempDir(t);
  cpSync(join(a.dir, 'keys'), join(dirC, 'keys'), { recursive: true });
  cpSync(join(a.dir, 'pseudonym-keys'), join(dirC, 'pseudonym-keys'), { recursive: true });
  await assert.rejects(openNode(t, schema, dirC), { detail: 'AUDIT_STORE_CORRUPT', message: /entry 5 is missing/ });
  // The node that was running refuses too: its next refresh meets the stray row (a leaf
  // claiming index 5 stored at 1000).
  await assert.rejects(exportLines(a.log), { detail: 'AUDIT_STORE_CORRUPT', message: /entry 11 is missing \(next row is 1000\)/ });
});
