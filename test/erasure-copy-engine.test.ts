/**
 * Erasure copies in the engine (issue 23, src/governance/erasure/copies.ts): once a full
 * erasure is recorded, the node reads each affected file dataset from a copy without the
 * subject's rows, built once per erasure version. The race an attacker would aim at — the
 * request right after an erasure, before the new copy is ready — still excludes the subject,
 * because the per-row filter covers whoever the engine's copy does not lack. Opt-outs depend
 * on the purpose and stay per query.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';
import { ErasedCopyStore } from '../src/governance/erasure/copies.ts';
import type { ErasureRow } from '../src/sql/tables/erasure.ts';

const meta = (who: keyof typeof KEYS) => ({ credential: KEYS[who], source: '127.0.0.1', channel: 'test' });

describe('erasure copies read by the engine', () => {
  let fx: Fixture;
  let ids: string[];
  const count = async (sql: string, purpose = 'operations') => {
    const r = await fx.gh.query({ ...meta('ada'), sql, purpose });
    return { n: Number(r.rows[0]![0]), applied: r.governance.obligationsApplied };
  };
  const erase = (value: string, extra: Record<string, unknown> = {}) => fx.gh.recordErasure(meta('olivia'), { unit: 'patient_id', value, ...extra });

  before(async () => {
    fx = await demoFixture({ patients: 300 });
    ids = (await fx.gh.query({ ...meta('ada'), sql: 'SELECT patient_id FROM patients ORDER BY patient_id LIMIT 5', purpose: 'operations' })).rows.map((r) => String(r[0]));
  });
  after(async () => { await fx?.close(); });

  test('after a full erasure the engine reads copies of every dataset keyed by the unit, lacking exactly that subject', async () => {
    await erase(ids[0]!);
    await count('SELECT count(*) FROM patients'); // the next request sees the new generation and starts the rebuild
    const copies = await fx.gh.settleErasedCopies();
    assert.deepEqual([...copies.get('patients')!.values], [ids[0]]);
    assert.ok(copies.has('encounters'), 'a dataset keyed by the same unit is copied too');
    const after = await count(`SELECT count(*) FROM patients WHERE patient_id = ${ids[0]}`);
    assert.equal(after.n, 0);
    assert.ok(after.applied.includes('erasure:patients'), 'the audit label stays, though no per-row filter is needed');
    assert.equal((await count('SELECT count(*) FROM patients')).n, 299);
  });

  test('the very next request after another erasure excludes that subject though the engine still reads the older copy', async () => {
    await erase(ids[1]!);
    // This request leases the engine whose copy lacks only the first subject: the per-row
    // filter is all that stands between it and the second subject's rows.
    const racing = await count(`SELECT count(*) FROM patients WHERE patient_id IN (${ids[0]}, ${ids[1]})`);
    assert.equal(racing.n, 0);
    const racingJoin = await count(`SELECT count(*) FROM encounters e JOIN patients p ON p.patient_id = e.patient_id WHERE p.patient_id = ${ids[1]}`);
    assert.equal(racingJoin.n, 0);
    const copies = await fx.gh.settleErasedCopies();
    assert.deepEqual([...copies.get('patients')!.values].sort(), [ids[0], ids[1]].sort());
    assert.equal((await count(`SELECT count(*) FROM patients WHERE patient_id = ${ids[1]}`)).n, 0);
    assert.equal((await count('SELECT count(*) FROM patients')).n, 298);
  });

  test('an opt-out is not copied: it still applies only to the purposes it names', async () => {
    await erase(ids[2]!, { kind: 'opt-out', purposes: ['research'] });
    await count('SELECT count(*) FROM patients');
    const copies = await fx.gh.settleErasedCopies();
    assert.ok(![...copies.get('patients')!.values].includes(ids[2]!), 'an opt-out never removes rows for every purpose');
    assert.equal((await count(`SELECT count(*) FROM patients WHERE patient_id = ${ids[2]}`)).n, 1, 'other purposes still see the subject');
  });
});

describe('the copy store', () => {
  let fx: Fixture;
  let stateDir: string;
  before(async () => {
    fx = await demoFixture({ patients: 200 });
    stateDir = mkdtempSync(join(tmpdir(), 'gh-copies-'));
  });
  after(async () => { await fx?.close(); rmSync(stateDir, { recursive: true, force: true }); });

  const row = (seq: number, value: string, kind: 'erasure' | 'opt-out' = 'erasure'): ErasureRow => ({ seq, id: `ers_${seq}`, unit: 'patient_id', value, kind, purposes: kind === 'opt-out' ? ['research'] : [], recordedAt: '', recordedBy: 'test' });

  test('writes private copies once per version, claims only values it excludes exactly, and removes them on close', async () => {
    const store = new ErasedCopyStore(stateDir);
    const ws = fx.gh.workspace.workspace;
    // '01' and '1.0' would not equal the integer column's text: they stay in the per-query filter.
    const first = await store.update(ws, [row(1, '1'), row(2, '01'), row(3, '1.0'), row(4, '2', 'opt-out')]);
    assert.ok(first);
    const patients = first.get('patients')!;
    assert.deepEqual([...patients.values], ['1']);
    const dir = join(patients.file, '..');
    assert.equal(statSync(dir).mode & 0o777, 0o700, 'the copies directory is private');
    assert.equal(await store.update(ws, [row(1, '1'), row(2, '01')]), null, 'the same exclusion set is the same version: nothing is rebuilt');
    const second = await store.update(ws, [row(1, '1'), row(5, '3')]);
    assert.notEqual(second!.get('patients')!.version, patients.version);
    assert.ok(readdirSync(dir).every((f) => f.endsWith('.parquet')), 'no partial file is left');
    store.close();
    assert.throws(() => statSync(dir), 'closing removes every copy');
  });
});
