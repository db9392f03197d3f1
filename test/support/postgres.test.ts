import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { startPostgres } from './postgres.ts';

describe('the throwaway PostgreSQL harness', () => {
  it('starts a real server on a loopback port, answers queries as the superuser over SCRAM, and removes everything when stopped', async () => {
    const cluster = await startPostgres();
    try {
      assert.equal(cluster.host, '127.0.0.1');
      assert.ok(existsSync(cluster.dir));
      const client = new pg.Client({ connectionString: cluster.superuserUrl });
      await client.connect();
      const r = await client.query<{ v: string; su: boolean; method: string }>(
        "SELECT current_setting('server_version') AS v, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su, current_setting('password_encryption') AS method",
      );
      assert.match(r.rows[0]!.v, /^\d+/);
      assert.equal(r.rows[0]!.su, true);
      assert.equal(r.rows[0]!.method, 'scram-sha-256');
      await client.end();
      // a wrong password is refused: TCP authentication is not trust
      const bad = new pg.Client({ connectionString: cluster.superuserUrl.replace(/:[^:@]+@/, ':wrong@') });
      await assert.rejects(bad.connect(), /password authentication failed/);
    } finally {
      await cluster.stop();
    }
    assert.equal(existsSync(cluster.dir), false);
    const after = new pg.Client({ connectionString: cluster.superuserUrl });
    await assert.rejects(after.connect(), /ECONNREFUSED/);
    await cluster.stop(); // idempotent
  });

  it('runs two clusters side by side on different ports', async () => {
    const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    try {
      assert.notEqual(a.port, b.port);
      assert.notEqual(a.dir, b.dir);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('the harness when a test forgets to stop', () => {
  it('stops the server and removes its directory when the process exits', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = `import { startPostgres } from ${JSON.stringify(new URL('./postgres.ts', import.meta.url).pathname)};
      const c = await startPostgres(); console.log(JSON.stringify({ dir: c.dir, url: c.superuserUrl }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    const { dir, url } = JSON.parse(out.trim().split('\n').pop()!) as { dir: string; url: string };
    assert.equal(existsSync(dir), false);
    const client = new pg.Client({ connectionString: url });
    await assert.rejects(client.connect(), /ECONNREFUSED/);
  });
});
