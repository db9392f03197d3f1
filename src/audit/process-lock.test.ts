import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { TransparencyLog } from './log.ts';
import { Witness } from './witness.ts';
import { generateKeyPairSync } from 'node:crypto';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

const HOLDER = fileURLToPath(new URL('./testing/lock-holder.ts', import.meta.url));

async function holdInChild(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [HOLDER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('locked')) resolve(); });
    child.on('exit', (code) => reject(new Error(`holder exited ${code}: ${err.slice(0, 1000)}`)));
  });
  return child;
}

const open = (dir: string) => TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE });

test('a log directory held by a live process is refused with AUDIT_LOCKED, and opens at once after that process is killed with SIGKILL', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const first = open(dir);
  await first.append(record(0));
  await first.close();
  const child = await holdInChild(dir);
  t.after(() => { child.kill('SIGKILL'); });
  assert.throws(() => open(dir), (e: Error & { detail?: string }) => e.detail === 'AUDIT_LOCKED' && /kill -9/.test(e.message));
  child.kill('SIGKILL');
  await once(child, 'exit');
  const log = open(dir);
  assert.equal(log.size, 1);
  assert.equal((await log.append(record(1))).auditId, '1');
  await log.close();
});

test('a stale LOCK file naming a live unrelated PID, this process or PID 1 does not keep the log from opening after a crash', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const child = await holdInChild(dir);
  const pid = child.pid!;
  child.kill('SIGKILL');
  await once(child, 'exit');
  // What an earlier version left behind, and what PID reuse or a container restart (PID 1) looks like.
  for (const stale of [String(process.pid), '1', String(pid)]) {
    writeFileSync(join(dir, 'LOCK'), stale);
    const log = open(dir);
    assert.equal(existsSync(join(dir, 'LOCK')), false, 'the legacy PID file is removed');
    await log.append(record(0));
    await log.close();
  }
});

test('the same directory opened twice in one process is refused, and can be opened again after close', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const a = open(dir);
  assert.throws(() => open(dir), (e: Error & { detail?: string }) => e.detail === 'AUDIT_LOCKED');
  await a.close();
  const b = open(dir);
  await b.close();
});

test('a witness state directory is locked the same way: a second witness on it is refused until the first closes', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const key = generateKeyPairSync('ed25519').privateKey;
  const w1 = new Witness({ name: 'w.example/1', privateKey: key, stateDir: dir, logs: [] });
  assert.throws(() => new Witness({ name: 'w.example/1', privateKey: key, stateDir: dir, logs: [] }), (e: Error & { detail?: string }) => e.detail === 'AUDIT_LOCKED');
  w1.close();
  new Witness({ name: 'w.example/1', privateKey: key, stateDir: dir, logs: [] }).close();
});
