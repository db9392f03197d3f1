/**
 * A `--key` that no key can be (whitespace inside, a line break pasted with it) is the caller's
 * mistake: the CLI says so with AUTH_INVALID (exit 3), before it sends anything, instead of
 * reporting the server as unreachable (UNAVAILABLE), which sent users looking for a network fault.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

const BIN = join(resolve(import.meta.dirname, '..'), 'bin', 'gatehouse.ts');

it('a malformed --key is reported as AUTH_INVALID with exit 3, and nothing is sent to the server', async () => {
  // A listener that counts connections: the CLI must not reach it with a malformed key.
  let connections = 0;
  const server = createServer((s) => { connections++; s.destroy(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const r = spawnSync(process.execPath, [BIN, 'query', '--json', '--url', url, '--key', 'gh_abc def', '--purpose', 'research', 'SELECT 1'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 3, r.stderr);
    const body = JSON.parse(r.stderr) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'AUTH_INVALID');
    assert.doesNotMatch(body.error.message, /gh_abc/, 'the key is not echoed back');
    assert.equal(connections, 0);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
