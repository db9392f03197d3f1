import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DataKeyStore } from './data-keys.ts';
import { attachEncrypted, attachEncryptedSql, encryptedDatasetFormat, loadEncryptedDataset } from './datasets.ts';
import { duckdbSecureNativeWriter, ingestEncrypted } from '../engine/dataset-writer.ts';
import { LocalKeyring } from './keyring.ts';

// Values that must never appear in the bytes on disk.
const SECRETS = ['Zebulon Quartermaine', '987-65-4329', 'zq.secret@example.org'];

function makeCsv(dir: string): string {
  const lines = ['patient_id,name,ssn,email,cost'];
  for (let i = 0; i < 5000; i++) lines.push(`${i},${i === 42 ? SECRETS[0] : `Name ${i}`},${i === 42 ? SECRETS[1] : `000-00-${String(i).padStart(4, '0')}`},${i === 42 ? SECRETS[2] : `p${i}@example.org`},${i * 1.5}`);
  const p = join(dir, 'patients.csv');
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

async function withDir(t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-datasets-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function query(sqlSetup: (c: import('@duckdb/node-api').DuckDBConnection) => Promise<void>, sql: string): Promise<unknown[][]> {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  try {
    await sqlSetup(c);
    return (await c.runAndReadAll(sql)).getRowsJS() as unknown[][];
  } finally {
    c.closeSync();
    inst.closeSync();
  }
}

function leaks(file: string): string[] {
  const bytes = readFileSync(file);
  return SECRETS.filter((s) => bytes.includes(Buffer.from(s)));
}

test('an ingested dataset is encrypted on disk (no source value in its bytes), loads with its key, and leaves no plaintext in the scratch directory', async (t) => {
  const dir = await withDir(t);
  const src = makeCsv(dir);
  assert.deepEqual(leaks(src), SECRETS, 'the source has them');
  const key = randomBytes(32);
  const target = join(dir, 'patients.ghds');
  const before = readdirSync('/dev/shm').filter((f) => f.startsWith('gatehouse-ds-'));
  const r = await ingestEncrypted({ source: src, table: 'patients', target, dataKey: key, keyId: 'dk_patients' });
  assert.equal(r.rows, 5000);
  assert.equal(r.format, (await duckdbSecureNativeWriter()) ? 'duckdb-native' : 'sealed-duckdb');
  assert.equal(await encryptedDatasetFormat(target), r.format);
  assert.deepEqual(leaks(target), []);
  const rows = await query(async (c) => {
    assert.equal(await loadEncryptedDataset(c, { path: target, table: 'patients', intoTable: 'memory.main.p', dataKey: key }), 5000);
  }, `SELECT name, ssn FROM memory.main.p WHERE patient_id = 42`);
  assert.deepEqual(rows, [[SECRETS[0], SECRETS[1]]]);
  assert.deepEqual(readdirSync('/dev/shm').filter((f) => f.startsWith('gatehouse-ds-')), before, 'scratch plaintext removed');
});

test('the wrong key does not open an encrypted dataset, in either format', async (t) => {
  const dir = await withDir(t);
  const src = makeCsv(dir);
  const key = randomBytes(32);
  const sealed = join(dir, 'sealed.ghds');
  await ingestEncrypted({ source: src, table: 'patients', target: sealed, dataKey: key, format: 'sealed-duckdb' });
  const native = join(dir, 'native.duckdb');
  await ingestEncrypted({ source: src, table: 'patients', target: native, dataKey: key, format: 'duckdb-native', unsafeMbedtlsWriter: true });
  assert.deepEqual(leaks(native), []);
  for (const path of [sealed, native]) {
    await assert.rejects(query(async (c) => { await loadEncryptedDataset(c, { path, table: 'patients', intoTable: 'memory.main.p', dataKey: randomBytes(32) }); }, 'SELECT 1'),
      { detail: 'DATASET_KEY_WRONG' }, path);
  }
  // Native format: the ATTACH statement works with the right key, fails with the wrong one or none.
  const rows = await query(async (c) => { await attachEncrypted(c, native, 'ds', key); }, 'SELECT count(*) FROM ds.main.patients');
  assert.deepEqual(rows, [[5000n]]);
  await assert.rejects(query(async (c) => { await attachEncrypted(c, native, 'ds', randomBytes(32)); }, 'SELECT 1'), { detail: 'DATASET_KEY_WRONG' });
  await assert.rejects(query(async (c) => { await c.run(`ATTACH '${native}' AS ds (READ_ONLY)`); }, 'SELECT 1'), /without a key/);
  // The statement is read-only and quotes what it is given.
  assert.match(attachEncryptedSql("/tmp/it's.duckdb", 'ds', key), /^ATTACH '\/tmp\/it''s\.duckdb' AS "ds" \(ENCRYPTION_KEY '[A-Za-z0-9+/=]+', READ_ONLY\)$/);
  assert.throws(() => attachEncryptedSql(native, 'ds; DROP TABLE x', key), { detail: 'KEY_INPUT_INVALID' });
});

test('once its data key is destroyed, an encrypted dataset cannot be opened by anything left', async (t) => {
  const dir = await withDir(t);
  const src = makeCsv(dir);
  const keyring = await LocalKeyring.create(join(dir, 'keyring.json'), 'dataset test passphrase');
  const keys = DataKeyStore.open(join(dir, 'keys.sqlite'), keyring);
  t.after(() => { keys.close(); keyring.close(); });
  const { keyId } = await keys.create({ subject: 'dataset:patients', kind: 'dataset', labels: { dataset: 'patients' } });
  const other = await keys.create({ subject: 'dataset:claims', kind: 'dataset' });
  const target = join(dir, 'patients.ghds');
  await ingestEncrypted({ source: src, table: 'patients', target, dataKey: await keys.unwrap(keyId), keyId });
  const copy = readFileSync(target); // a backup taken before destruction
  await keys.destroy(keyId, 'dataset retired');
  await assert.rejects(keys.unwrap(keyId), { detail: 'DATA_KEY_DESTROYED' });
  writeFileSync(join(dir, 'backup.ghds'), copy);
  for (const k of await keys.list()) {
    assert.equal(k.keyId, other.keyId);
    await assert.rejects(query(async (c) => {
      await loadEncryptedDataset(c, { path: join(dir, 'backup.ghds'), table: 'patients', intoTable: 'memory.main.p', dataKey: await keys.unwrap(k.keyId) });
    }, 'SELECT 1'), { detail: 'DATASET_KEY_WRONG' });
  }
});

test('native encryption without a secure DuckDB writer is refused with a clear error, not written insecurely', async (t) => {
  if (await duckdbSecureNativeWriter()) { t.skip('httpfs (OpenSSL) is installed here: native writes are secure'); return; }
  const dir = await withDir(t);
  const src = makeCsv(dir);
  await assert.rejects(ingestEncrypted({ source: src, table: 'patients', target: join(dir, 'x.duckdb'), dataKey: randomBytes(32), format: 'duckdb-native' }), (e: any) => {
    assert.equal(e.detail, 'DATASET_ENCRYPTION_UNAVAILABLE');
    assert.match(e.hint, /sealed-duckdb|httpfs/);
    return true;
  });
  assert.deepEqual(readdirSync(dir).sort(), ['patients.csv']);
  await assert.rejects(ingestEncrypted({ source: join(dir, 'nope.csv'), table: 'p', target: join(dir, 'x'), dataKey: randomBytes(32) }), { detail: 'KEY_INPUT_INVALID' });
  await assert.rejects(ingestEncrypted({ source: src, table: 'p; drop', target: join(dir, 'x'), dataKey: randomBytes(32) }), { detail: 'KEY_INPUT_INVALID' });
});
