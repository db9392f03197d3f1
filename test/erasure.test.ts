/**
 * Erasure and consent withdrawal (issue 23): one subject's erasure, recorded once over
 * HTTP, takes effect from the next request on every path — HTTP, the PostgreSQL wire
 * protocol, estimates — on every dataset keyed by the unit; a saved row-level result is
 * shredded, a DP release kept; the receipt verifies against the log; an attacker's
 * re-identification queries find nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { demoFixture, KEYS, codeOf, type Fixture } from './helpers/workspace.ts';
import { verifyErasureReceipt, type ErasureReceipt } from '../src/governance/erasure/receipt.ts';
import type { NodeHttp } from '../src/node/http.ts';
import type { WireServer } from '../src/wire/server.ts';

type Fx = Fixture<NodeHttp, WireServer>;
const meta = (who: keyof typeof KEYS) => ({ credential: KEYS[who], source: '127.0.0.1', channel: 'test' });

describe('erasure of one data subject', () => {
  let fx: Fx;
  let subject: string;
  let subjectName: string;
  let savedRowLevel: string;
  let savedDp: string;
  let receipt: ErasureReceipt;
  let wirePassword: string;

  const http = async (who: keyof typeof KEYS, sql: string, purpose = 'operations') => {
    const r = await fx.http!.app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${KEYS[who]}` }, payload: { sql, purpose } });
    assert.equal(r.statusCode, 200, r.body);
    return r.json() as { rows: unknown[][]; governance: { obligationsApplied: string[] } };
  };
  const wire = async (sql: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port: fx.wire!.port, user: 'ada', password: wirePassword, database: 'gatehouse', options: '-c gatehouse.purpose=operations' });
    await c.connect();
    try { return (await c.query(sql)).rows; } finally { await c.end(); }
  };

  before(async () => {
    fx = await demoFixture({ patients: 600, http: true, wire: true }) as Fx;
    wirePassword = (await fx.gh.issueConnectionPassword(meta('ada'))).password;
    const first = await fx.gh.query({ ...meta('ada'), sql: 'SELECT patient_id, name FROM patients ORDER BY patient_id LIMIT 1 OFFSET 7', purpose: 'operations' });
    subject = String(first.rows[0]![0]);
    subjectName = String(first.rows[0]![1]);
    savedRowLevel = (await fx.gh.query({ ...meta('ada'), sql: 'SELECT patient_id, name FROM patients ORDER BY patient_id LIMIT 20', purpose: 'operations', save: true })).governance.resultId!;
    savedDp = (await fx.gh.query({ ...meta('rhea'), sql: 'SELECT department, count(*) AS n FROM encounters GROUP BY department', purpose: 'research', save: true })).governance.resultId!;
    assert.equal((await fx.gh.getResult(meta('ada'), savedRowLevel)).id, savedRowLevel, 'readable before the erasure');
    // Before: the subject is there on every path.
    assert.equal((await http('ada', `SELECT count(*) FROM patients WHERE patient_id = ${subject}`)).rows[0]![0], 1);
    assert.equal((await wire(`SELECT patient_id FROM patients WHERE patient_id = ${subject}`)).length, 1);
    assert.ok(Number((await http('ada', `SELECT count(*) FROM encounters WHERE patient_id = ${subject}`)).rows[0]![0]) > 0);
    // The erasure, over HTTP, by an administrator.
    const r = await fx.http!.app.inject({ method: 'POST', url: '/v1/erasures', headers: { authorization: `Bearer ${KEYS.olivia}` }, payload: { unit: 'patient_id', value: subject } });
    assert.equal(r.statusCode, 200, r.body);
    receipt = r.json() as ErasureReceipt;
  });

  after(async () => { await fx?.close(); });

  test('only an administrator may record an erasure, and a refused attempt changes nothing', async () => {
    const r = await fx.http!.app.inject({ method: 'POST', url: '/v1/erasures', headers: { authorization: `Bearer ${KEYS.ivan}` }, payload: { unit: 'patient_id', value: '1' } });
    assert.equal(r.statusCode, 403);
    assert.equal((await http('ada', 'SELECT count(*) FROM patients WHERE patient_id = 1')).rows[0]![0], subject === '1' ? 0 : 1);
  });

  test('the subject disappears from HTTP results on every dataset keyed by the unit', async () => {
    for (const ds of ['patients', 'encounters', 'claims']) {
      const r = await http('ada', `SELECT count(*) FROM ${ds} WHERE patient_id = ${subject}`);
      assert.equal(r.rows[0]![0], 0, ds);
      assert.ok(r.governance.obligationsApplied.includes(`erasure:${ds}`), r.governance.obligationsApplied.join(', '));
    }
    // Everyone else is still there.
    assert.equal((await http('ada', 'SELECT count(*) FROM patients')).rows[0]![0], 599);
  });

  test('the subject disappears from the PostgreSQL wire protocol', async () => {
    assert.deepEqual(await wire(`SELECT patient_id FROM patients WHERE patient_id = ${subject}`), []);
    assert.deepEqual(await wire(`SELECT count(*)::bigint AS n FROM claims WHERE patient_id = ${subject}`), [{ n: '0' }]);
  });

  test('re-identification attempts find nothing: by name, through joins, subqueries, CTEs and set operations', async () => {
    const quoted = subjectName.replace(/'/g, "''");
    // Synthetic names repeat: other patients of the same name stay, the subject does not.
    const byName = (await http('ada', `SELECT patient_id FROM patients WHERE name = '${quoted}'`)).rows.map((r) => String(r[0]));
    assert.ok(!byName.includes(subject), byName.join(', '));
    const probes = [
      `SELECT e.encounter_id FROM encounters e JOIN patients p ON p.patient_id = e.patient_id WHERE p.patient_id = ${subject}`,
      `SELECT claim_id FROM claims WHERE patient_id IN (SELECT patient_id FROM encounters WHERE patient_id = ${subject})`,
      `WITH s AS (SELECT * FROM patients) SELECT patient_id FROM s WHERE patient_id = ${subject}`,
      `SELECT patient_id FROM patients WHERE patient_id = ${subject} UNION ALL SELECT patient_id FROM claims WHERE patient_id = ${subject}`,
      `SELECT patient_id FROM patients WHERE patient_id = ${subject} OR patient_id IS NULL`,
      `SELECT patient_id FROM patients WHERE CAST(patient_id AS VARCHAR) = '${subject}'`,
    ];
    for (const sql of probes) assert.deepEqual((await http('ada', sql)).rows, [], sql);
    // The insurer sees names unmasked in its region: the subject's name is gone for it too.
    const insurer = await http('ivan', `SELECT patient_id FROM patients WHERE name = '${quoted}'`, 'claims-processing');
    assert.ok(!insurer.rows.map((r) => String(r[0])).includes(subject));
  });

  test('a saved row-level result is shredded and a differentially private release is kept', async () => {
    assert.deepEqual(receipt.places.shreddedResults, [savedRowLevel]);
    assert.deepEqual(receipt.places.keptReleases, [savedDp]);
    assert.ok(['GONE', 'NOT_FOUND'].includes(await codeOf(fx.gh.getResult(meta('ada'), savedRowLevel))), 'the shredded result cannot be read any more');
    const kept = await fx.gh.getResult(meta('rhea'), savedDp);
    assert.equal(kept.id, savedDp);
  });

  test('the receipt verifies against the log, for this subject only, and lists every place', async () => {
    assert.deepEqual(receipt.places.datasets, ['claims', 'encounters', 'patients']);
    const v = verifyErasureReceipt(receipt, subject, fx.log.verifiers());
    assert.equal(String(v.index), receipt.auditId);
    assert.throws(() => verifyErasureReceipt(receipt, String(Number(subject) + 1), fx.log.verifiers()), /not about this subject/);
    const forged = { ...receipt, places: { ...receipt.places, shreddedResults: [] } };
    assert.throws(() => verifyErasureReceipt(forged, subject, fx.log.verifiers()), /does not list the places/);
    // The log holds a commitment, never the identifier.
    const leaf = (receipt.log as { leaf: { entry: { reasons: string[] } } }).leaf;
    assert.ok(leaf.entry.reasons.every((x) => !x.includes(`patient_id ${subject}`) && !new RegExp(`\\b${subject}\\b`).test(x.replace(receipt.commitment, ''))), leaf.entry.reasons.join(' | '));
  });

  test('recording the same erasure again is idempotent and keeps it in force', async () => {
    const again = await fx.gh.recordErasure(meta('olivia'), { unit: 'patient_id', value: subject });
    assert.equal(again.erasureId, receipt.erasureId);
    assert.equal((await http('ada', `SELECT count(*) FROM patients WHERE patient_id = ${subject}`)).rows[0]![0], 0);
  });

  test('an opt-out from research excludes the subject for that purpose only', async () => {
    const other = String((await fx.gh.query({ ...meta('ada'), sql: 'SELECT patient_id FROM patients ORDER BY patient_id LIMIT 1 OFFSET 42', purpose: 'operations' })).rows[0]![0]);
    await fx.gh.recordErasure(meta('olivia'), { unit: 'patient_id', value: other, kind: 'opt-out', purposes: ['research'] });
    assert.equal((await http('ada', `SELECT count(*) FROM patients WHERE patient_id = ${other}`, 'research')).rows[0]![0], 0);
    assert.equal((await http('ada', `SELECT count(*) FROM patients WHERE patient_id = ${other}`, 'operations')).rows[0]![0], 1);
  });

  test('a long list of withdrawn subjects is excluded exactly (rendered as one hash lookup per row)', async () => {
    const ids = (await fx.gh.query({ ...meta('ada'), sql: 'SELECT patient_id FROM patients ORDER BY patient_id LIMIT 70 OFFSET 100', purpose: 'operations' })).rows.map((r) => String(r[0]));
    const before = Number((await http('ada', 'SELECT count(*) FROM encounters', 'quality')).rows[0]![0]);
    const theirs = Number((await http('ada', `SELECT count(*) FROM encounters WHERE patient_id IN (${ids.join(', ')})`, 'quality')).rows[0]![0]);
    assert.ok(theirs > 0);
    for (const id of ids) await fx.gh.recordErasure(meta('olivia'), { unit: 'patient_id', value: id, kind: 'opt-out', purposes: ['quality'] });
    assert.equal(Number((await http('ada', 'SELECT count(*) FROM encounters', 'quality')).rows[0]![0]), before - theirs);
    assert.equal(Number((await http('ada', `SELECT count(*) FROM encounters WHERE patient_id IN (${ids.join(', ')})`, 'quality')).rows[0]![0]), 0);
    assert.deepEqual(await wire(`SELECT count(*)::bigint AS n FROM encounters WHERE patient_id IN (${ids.join(', ')})`), [{ n: String(theirs) }], 'operations is not affected');
  });

  test('bad requests are refused with a clear error and record nothing', async () => {
    assert.equal(await codeOf(fx.gh.recordErasure(meta('olivia'), { unit: 'no_such_column', value: '1' })), 'REQUEST_INVALID');
    assert.equal(await codeOf(fx.gh.recordErasure(meta('olivia'), { unit: 'patient_id', value: '1', kind: 'opt-out' })), 'REQUEST_INVALID');
    const r = await fx.http!.app.inject({ method: 'POST', url: '/v1/erasures', headers: { authorization: `Bearer ${KEYS.olivia}` }, payload: { unit: 'patient_id', value: '' } });
    assert.equal(r.statusCode, 400);
  });
});
