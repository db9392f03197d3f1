/**
 * Erasure where Gatehouse owns the data (issue 23): an ingested, encrypted dataset is
 * rewritten without the subject's rows and sealed under a new data key, and the old key is
 * destroyed. Written as the attacker would try it: a backup copy of the file taken before
 * the erasure, and the key it was sealed under, both no longer give the rows back; the
 * file itself (not only governed queries) lacks them, after a restart too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { main } from '../src/cli/main.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { startNode } from '../src/node/start.ts';
import { loadEncryptedDataset } from '../src/keys/datasets.ts';
import { KEYS } from './helpers/workspace.ts';

const META = { source: '127.0.0.1', channel: 'test' } as const;

async function openKeys(ws: string) {
  const { LocalKeyring } = await import('../src/keys/keyring.ts');
  const { DataKeyStore } = await import('../src/keys/data-keys.ts');
  const { resolvePassphrase } = await import('../src/audit/keys.ts');
  const keyring = await LocalKeyring.openOrCreate(join(ws, 'state', 'keyring.json'), resolvePassphrase(undefined, true));
  const keys = DataKeyStore.open(join(ws, 'state', 'data-keys.sqlite'), keyring);
  return { keys, close: () => { keys.close(); keyring.close(); } };
}

/** Rows of the file itself, read with `key`, outside Gatehouse. */
async function rowsInFile(path: string, key: Buffer, subject: string): Promise<{ total: number; subject: number }> {
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  try {
    await loadEncryptedDataset(conn, { path, table: 'data', intoTable: 't', dataKey: key });
    const r = (await conn.runAndReadAll(`SELECT count(*), count(*) FILTER (WHERE CAST(patient_id AS VARCHAR) = '${subject}') FROM t`)).getRowsJS()[0]!;
    return { total: Number(r[0]), subject: Number(r[1]) };
  } finally { conn.closeSync(); inst.closeSync(); }
}

describe('erasure of a subject from an ingested dataset', () => {
  let dir: string;
  let ws: string;
  let file: string;
  let subject: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-erase-owned-'));
    ws = join(dir, 'ws');
    await createTestDemoWorkspace(ws, { patients: 300, keys: KEYS });
    const code = await main(['ingest', '--workspace', ws, '--dataset', 'patients', join(ws, 'data', 'patients.parquet')], { write: () => true } as never);
    assert.equal(code, 0);
    const yaml = readFileSync(join(ws, 'gatehouse.yaml'), 'utf8');
    writeFileSync(join(ws, 'gatehouse.yaml'), yaml.replace('source: { parquet: data/patients.parquet }', 'source: { encrypted: datasets/patients.ghd }'));
    file = join(ws, 'datasets', 'patients.ghd');
  });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('rewrites the file without the subject\'s rows under a new key and destroys the old key, so an earlier copy is unreadable', async () => {
    const node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true });
    let receipt;
    try {
      const gh = node.gatehouse;
      subject = String((await gh.query({ credential: KEYS.ada, sql: 'SELECT patient_id FROM patients ORDER BY patient_id LIMIT 1 OFFSET 11', purpose: 'operations', ...META })).rows[0]![0]);
      copyFileSync(file, join(dir, 'backup.ghd'));
      receipt = await gh.recordErasure({ credential: KEYS.olivia, ...META }, { unit: 'patient_id', value: subject });
      assert.deepEqual(receipt.places.rekeyedDatasets, ['patients']);
      const [entry] = await node.audit.search({ action: 'erasure.record', decision: 'allow' });
      assert.ok(entry!.entry.reasons.some((r) => /^dataset patients sealed under data key .* destroyed: /.test(r)), entry!.entry.reasons.join('\n'));
      // Short numeric ids occur inside digests and key ids: look for the identifier as a word of its own.
      const words = entry!.entry.reasons.join(' ').split(/[\s,;:()"']+/);
      assert.ok(!words.includes(subject), 'the identifier is never in the log');
    } finally {
      await node.close();
    }
    const { keys, close } = await openKeys(ws);
    try {
      const live = await keys.list({ kind: 'dataset', subject: 'dataset:patients' });
      assert.equal(live.length, 1, 'one live key: the new one');
      const destroyed = (await keys.listDestroyed({ kind: 'dataset' })).filter((d) => d.subject === 'dataset:patients');
      assert.equal(destroyed.length, 1);
      await assert.rejects(keys.unwrap(destroyed[0]!.keyId), /destroyed/i);
      const newKey = await keys.unwrap(live[0]!.keyId);
      assert.deepEqual(await rowsInFile(file, newKey, subject), { total: 299, subject: 0 });
      // The backup copy holds the rows, but the new key cannot open it and the old key is gone.
      await assert.rejects(rowsInFile(join(dir, 'backup.ghd'), newKey, subject));
    } finally { close(); }
  });

  it('after a restart the dataset loads under its new key and the subject is gone', async () => {
    const node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true });
    try {
      const r = await node.gatehouse.query({ credential: KEYS.ada, sql: 'SELECT count(*) FROM patients', purpose: 'operations', ...META });
      assert.equal(Number(r.rows[0]![0]), 299);
    } finally { await node.close(); }
  });

  it('a second erasure re-keys again and keeps the first subject out', async () => {
    const node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true });
    let other: string;
    try {
      const gh = node.gatehouse;
      other = String((await gh.query({ credential: KEYS.ada, sql: 'SELECT patient_id FROM patients ORDER BY patient_id LIMIT 1', purpose: 'operations', ...META })).rows[0]![0]);
      await gh.recordErasure({ credential: KEYS.olivia, ...META }, { unit: 'patient_id', value: other });
    } finally { await node.close(); }
    const { keys, close } = await openKeys(ws);
    try {
      const live = await keys.list({ kind: 'dataset', subject: 'dataset:patients' });
      const key = await keys.unwrap(live[0]!.keyId);
      assert.deepEqual(await rowsInFile(file, key, subject), { total: 298, subject: 0 });
      assert.equal((await rowsInFile(file, key, other!)).subject, 0);
    } finally { close(); }
  });
});
