import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoFixture, KEYS, codeOf } from './helpers/workspace.ts';

test('a connection password authenticates wire requests as its principal until it is replaced', async () => {
  const f = await demoFixture({ patients: 300 });
  try {
    const gh = f.gh;
    const issued = await gh.issueConnectionPassword({ credential: KEYS.ivan, source: '127.0.0.1', channel: 'http' });
    assert.equal(issued.username, 'ivan');
    const v = await gh.connectionVerifier('ivan');
    assert.ok(v);
    assert.equal(await gh.connectionVerifier('nobody'), null);
    const r = await gh.query({ credential: v.credential, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', source: '127.0.0.1', channel: 'pgwire' });
    assert.equal(r.columns[0]!.name, 'n');
    // A new password replaces the old: the old connection's credential stops at the next request.
    await gh.issueConnectionPassword({ credential: KEYS.ivan, source: '127.0.0.1', channel: 'http' });
    assert.equal(await codeOf(gh.query({ credential: v.credential, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', source: '127.0.0.1', channel: 'pgwire' })), 'AUTH_INVALID');
    // A client can never present the internal form itself: a bearer string is only ever a bearer credential.
    assert.equal(v.credential.kind, 'connection-password');
    if (v.credential.kind === 'connection-password') {
      for (const forged of [v.credential.id, `pgwire-00:${v.credential.id}`, JSON.stringify(v.credential)]) {
        assert.equal(await codeOf(gh.query({ credential: forged, sql: 'SELECT 1', purpose: 'claims-processing', source: '127.0.0.1', channel: 'http' })), 'AUTH_INVALID');
      }
    }
  } finally {
    await f.close();
  }
});

test('parameters bound by the wire protocol are values, never SQL', async () => {
  const f = await demoFixture({ patients: 300 });
  try {
    const gh = f.gh;
    const base = { credential: KEYS.ada, purpose: 'operations', source: '127.0.0.1', channel: 'pgwire' } as const;
    const plain = await gh.query({ ...base, sql: "SELECT count(*) AS n FROM patients WHERE region = 'us-east'" });
    const bound = await gh.query({ ...base, sql: 'SELECT count(*) AS n FROM patients WHERE region = $1', params: ['us-east'] });
    assert.deepEqual(bound.rows, plain.rows);
    const injected = await gh.query({ ...base, sql: 'SELECT count(*) AS n FROM patients WHERE region = $1', params: ["us-east' OR '1'='1"] });
    assert.deepEqual(injected.rows, [[0]]);
    const limited = await gh.query({ ...base, sql: 'SELECT patient_id FROM patients ORDER BY patient_id LIMIT $1', params: ['3'] });
    assert.equal(limited.rows.length, 3);
    assert.equal(await codeOf(gh.query({ ...base, sql: 'SELECT patient_id FROM patients LIMIT $1', params: ['3; DROP TABLE x'] })), 'SQL_INVALID');
    assert.equal(await codeOf(gh.query({ ...base, sql: 'SELECT count(*) FROM patients WHERE region = $2', params: ['x'] })), 'SQL_INVALID');
    // Without the wire protocol a $n is refused, as before.
    assert.equal(await codeOf(gh.query({ ...base, sql: 'SELECT count(*) FROM patients WHERE region = $1' })), 'SQL_UNSUPPORTED');
  } finally {
    await f.close();
  }
});
