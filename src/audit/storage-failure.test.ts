/**
 * Failing audit storage, for real: the audit directory lives on a tiny tmpfs that is filled
 * up (ENOSPC), then space is freed. Requests fail closed with coded 503s, health says why,
 * and the log recovers by itself — the next append succeeds and the tree stays consistent
 * with every checkpoint signed before the failure. Needs mount(2) (root in a container);
 * skipped otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { TransparencyLog } from './log.ts';
import { auditHttpPlugin } from './http.ts';
import { verifyReceipt } from './verify.ts';
import { openCheckpoint } from './note.ts';
import { verifyConsistency } from './merkle.ts';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

function mountTmpfs(dir: string): boolean {
  try { execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** Fills the file system holding `dir` until a write fails with ENOSPC. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  try {
    for (const size of [65536, 4096, 64, 1]) {
      const b = Buffer.alloc(size, 0x5a);
      for (;;) { try { writeSync(fd, b); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break; throw e; } }
    }
  } finally { closeSync(fd); }
  return path;
}

test('with the audit disk full, appends and audit routes fail closed with coded 503s and health is not ready; once space returns the log recovers without a restart', async (t) => {
  const d = tempDir();
  const mnt = join(d.dir, 'mnt');
  mkdirSync(mnt);
  if (!mountTmpfs(mnt)) { d.cleanup(); t.skip('mount(2) not permitted here'); return; }
  const dir = join(mnt, 'audit');
  const log = TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 60_000 });
  const app = Fastify();
  await app.register(auditHttpPlugin, { log, authorize: async () => ({ principal: 'audrey', auditor: true }) });
  // After hooks run in order: close, unmount, remove.
  t.after(async () => { await app.close(); await log.close().catch(() => {}); });
  t.after(() => { try { execFileSync('umount', ['-l', mnt]); } catch { /* already */ } });
  t.after(d.cleanup);
  for (let i = 0; i < 10; i++) await log.append(record(i));
  const before = await log.checkpoint();
  assert.deepEqual(log.health(), { ready: true, reason: null });

  const filler = fill(mnt);
  // The file's last page may still hold a few entries; the disk is full after that.
  const failures: (Error & { detail?: string; status?: number })[] = [];
  for (let i = 10; i < 100 && failures.length === 0; i++) await log.append(record(i)).catch((e: Error) => { failures.push(e); });
  assert.equal(failures.length, 1, 'an append on a full disk fails');
  assert.equal(failures[0]!.detail, 'AUDIT_UNAVAILABLE');
  assert.equal(failures[0]!.status, 503);
  assert.equal(log.health().ready, false);
  assert.match(log.health().reason!, /^AUDIT_UNAVAILABLE/);
  const durable = log.size;

  // Space returns: the next append succeeds without a restart.
  rmSync(filler);
  const ok = await log.append(record(durable));
  assert.equal(ok.auditId, String(durable), 'the next index: nothing half-written counts');
  assert.deepEqual(log.health(), { ready: true, reason: null });
  // Full again before a checkpoint covers entry 10: the checkpoint and the receipt that
  // needs it answer coded 503s, never a bare 500.
  const filler2 = fill(mnt);
  for (const url of ['/v1/audit/checkpoint', `/v1/audit/receipt/${durable}`]) {
    const res = await app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 503, url);
    assert.equal(res.json().error.code, 'AUDIT_UNAVAILABLE', url);
  }
  assert.equal(log.health().ready, false);

  // Storage returns: no restart, the next append and checkpoint succeed and extend the old tree.
  rmSync(filler2);
  const next = await log.append(record(durable + 1));
  assert.equal(next.auditId, String(durable + 1));
  const after = (await app.inject({ method: 'GET', url: '/v1/audit/checkpoint' })).json();
  assert.equal(after.size, durable + 2);
  const v = log.verifiers();
  const a = openCheckpoint(before, v), b = openCheckpoint(after.checkpoint, v);
  verifyConsistency(a.size, b.size, a.root, b.root, log.consistencyProof(a.size, b.size).proof.map((p) => Buffer.from(p, 'base64')));
  const receipt = (await app.inject({ method: 'GET', url: `/v1/audit/receipt/${durable}` })).json();
  assert.equal(verifyReceipt(receipt, v).index, durable);
  assert.deepEqual(log.health(), { ready: true, reason: null });
});
