/**
 * The erasure registry on PostgreSQL state shared by two nodes (issue 23): an erasure one
 * node records is in the set the other node excludes at its next read, the table is
 * append-only, and recording is idempotent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openPostgresState } from '../src/state/backend.ts';
import { erasureRegistry, closeErasureRegistry } from '../src/governance/erasure/registry.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
let admin: pg.Pool;

before(async () => {
  cluster = await startPostgres();
  admin = new pg.Pool({ connectionString: cluster.superuserUrl, max: 2 });
});
after(async () => {
  await admin?.end();
  await cluster?.stop();
});

test('an erasure recorded through one node is excluded by another node sharing the state, and cannot be edited away', async () => {
  const a = await openPostgresState({ url: cluster.superuserUrl });
  const b = await openPostgresState({ url: cluster.superuserUrl });
  const hostA = { stateDir: '/nonexistent', backend: a };
  const hostB = { stateDir: '/nonexistent', backend: b };
  try {
    assert.deepEqual([...(await erasureRegistry(hostB).excludedFor('research'))], []);
    const first = await erasureRegistry(hostA).store.record({ id: 'ers_pg1', unit: 'patient_id', value: '1042', kind: 'erasure', purposes: [], recordedAt: new Date('2026-11-02T00:00:00Z'), recordedBy: 'olivia' });
    assert.equal(first.created, true);
    await erasureRegistry(hostA).store.record({ id: 'ers_pg2', unit: 'patient_id', value: '7', kind: 'opt-out', purposes: ['research'], recordedAt: new Date('2026-11-02T00:00:00Z'), recordedBy: 'olivia' });
    assert.deepEqual([...(await erasureRegistry(hostB).excludedFor('research'))], [['patient_id', ['1042', '7']]]);
    assert.deepEqual([...(await erasureRegistry(hostB).excludedFor('operations'))], [['patient_id', ['1042']]]);
    const again = await erasureRegistry(hostB).store.record({ id: 'ers_pg3', unit: 'patient_id', value: '1042', kind: 'erasure', purposes: [], recordedAt: new Date(), recordedBy: 'ada' });
    assert.deepEqual([again.created, again.row.id], [false, 'ers_pg1']);
    await assert.rejects(admin.query("DELETE FROM gatehouse.erasures WHERE id = 'ers_pg1'"), /append-only/);
    await assert.rejects(admin.query("UPDATE gatehouse.erasures SET value = '1' WHERE id = 'ers_pg1'"), /append-only/);
  } finally {
    await closeErasureRegistry(hostA);
    await closeErasureRegistry(hostB);
    await a.close();
    await b.close();
  }
});
