/**
 * What monitoring sees beyond the audit entry, through the kernel's record hook: the
 * literal-free shape of the SQL (a sweep of one query over a key range is one shape; different
 * queries over the same columns are not), which sharpens the enumeration rule; and the
 * device posture, verified off the request path and shown as a condition — a forged token is
 * shown non-compliant, never as the device it claims to be.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../src/audit/types.ts';
import { parseMonitoringConfig } from '../src/monitoring/config.ts';
import { Monitor } from '../src/monitoring/monitor.ts';
import { normaliseSql, queryShape } from '../src/monitoring/query-shape.ts';
import { PostureWatch, describePosture } from '../src/monitoring/posture-watch.ts';
import { parsePostureConfig } from '../src/identity/posture.ts';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

describe('the literal-free query shape', () => {
  it('gives one shape to the same query with different constants, and keeps no constant', () => {
    const a = "SELECT name, dob FROM patients WHERE patient_id = 1001 AND region = 'North'";
    const b = "select name,  dob from patients\n where patient_id=1002 and region = 'O''Neill' -- next";
    assert.equal(queryShape(a), queryShape(b));
    assert.equal(queryShape('SELECT x FROM t WHERE id IN (1, 2, 3)'), queryShape('SELECT x FROM t WHERE id IN (7)'));
    assert.equal(queryShape('SELECT x FROM t WHERE v > -1.5e3 AND k = $1'), queryShape('SELECT x FROM t WHERE v > 2 AND k = $2'));
    assert.equal(queryShape("SELECT x FROM t WHERE s = $$a'b$$"), queryShape("SELECT x FROM t WHERE s = 'z'"));
    const n = normaliseSql(a);
    assert.ok(!n.includes('1001') && !n.includes('north'), n);
    assert.ok(!normaliseSql(b).includes('neill'));
  });

  it('tells apart queries that differ in structure, identifiers or quoted names', () => {
    const base = queryShape('SELECT name FROM patients WHERE patient_id = 1');
    assert.notEqual(base, queryShape('SELECT name FROM patients WHERE patient_id > 1'));
    assert.notEqual(base, queryShape('SELECT name FROM patients WHERE region = 1'));
    assert.notEqual(base, queryShape('SELECT name FROM patients WHERE patient_id = 1 ORDER BY name'));
    assert.notEqual(queryShape('SELECT "A" FROM t'), queryShape('SELECT "a" FROM t'));
    assert.notEqual(queryShape('SELECT c1 FROM t2'), queryShape('SELECT c FROM t'), 'digits inside identifiers are not constants');
  });
});

const T0 = Date.UTC(2026, 2, 2, 9, 0, 0);
function entry(sql: string, at: number, i: number): AuditRecord {
  return {
    time: new Date(at).toISOString(), principal: 'ivan', source: '10.1.0.7', channel: 'http', action: 'query', purpose: 'claims-processing',
    datasets: ['patients'], columns: ['patients.name', 'patients.patient_id'], decision: 'allow', reasons: [], policyVersion: 'v1', obligations: [],
    sqlFingerprint: `fp-${i}-${sql.length}`, rowsReturned: 1, resultDigest: null, errorCode: null,
  };
}

describe('the enumeration rule with query shapes', () => {
  const config = { rules: { enumeration: { distinctQueries: 6, maxRows: 5, windowMinutes: 10 } } };

  it('catches a sweep of one query over a key range', () => {
    const m = new Monitor({ config: parseMonitoringConfig(config), orgOf: () => 'keystone-mutual', now: () => new Date(T0) });
    const hits = [];
    for (let i = 0; i < 6; i++) {
      const sql = `SELECT name, patient_id FROM patients WHERE patient_id = ${1000 + i}`;
      hits.push(...m.observe(entry(sql, T0 + i * 1000, i), String(i), { sql })!.detections);
    }
    assert.deepEqual(hits.map((d) => d.rule), ['enumeration']);
  });

  it('does not take an analyst\'s different small queries over the same columns for a sweep', () => {
    const m = new Monitor({ config: parseMonitoringConfig(config), orgOf: () => 'keystone-mutual', now: () => new Date(T0) });
    const queries = [
      'SELECT name, patient_id FROM patients WHERE patient_id = 7', 'SELECT name, patient_id FROM patients ORDER BY name LIMIT 5',
      'SELECT name, patient_id FROM patients WHERE name LIKE \'A%\' LIMIT 5', 'SELECT DISTINCT name, patient_id FROM patients LIMIT 3',
      'SELECT name, patient_id FROM patients WHERE patient_id BETWEEN 1 AND 4', 'SELECT name, patient_id FROM patients ORDER BY patient_id DESC LIMIT 5',
    ];
    const hits = queries.flatMap((sql, i) => m.observe(entry(sql, T0 + i * 1000, i), String(i), { sql })!.detections);
    assert.deepEqual(hits, [], 'six different queries are not an enumeration');
    // Without the SQL (an entry from elsewhere) the rule falls back to datasets and columns, and would have fired.
    const blind = new Monitor({ config: parseMonitoringConfig(config), orgOf: () => 'keystone-mutual', now: () => new Date(T0) });
    const blindHits = queries.flatMap((sql, i) => blind.observe(entry(sql, T0 + i * 1000, i), String(i))!.detections);
    assert.deepEqual(blindHits.map((d) => d.rule), ['enumeration']);
  });
});

describe('device posture in the conditions', () => {
  it('shows a forged posture token as non-compliant with its reason, never as the device it names', async () => {
    const watch = new PostureWatch();
    const config = parsePostureConfig({ zones: [{ name: 'office', cidrs: ['10.0.0.0/8'] }] });
    // A token "signed" by nobody the node trusts, claiming a managed, compliant device.
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const forged = `${b64({ alg: 'EdDSA', typ: 'posture+jwt' })}.${b64({ iss: 'https://mdm.example', sub: 'ivan', device_id: 'laptop-42', checks: { disk_encrypted: true, os_patched: true, edr_running: true, screen_lock: true, managed: true }, iat: Math.floor(T0 / 1000) })}.${Buffer.alloc(64).toString('base64url')}`;
    await watch.seen({ principal: 'ivan', token: forged, sourceIp: '10.2.3.4', at: T0 }, config);
    const seen = watch.of('ivan')!;
    assert.equal(seen.compliant, false);
    assert.equal(seen.zone, 'office');
    assert.doesNotMatch(describePosture(seen)!, /laptop-42|^compliant/);
    assert.match(describePosture(seen)!, /^non-compliant: POSTURE_\w+ \(zone office\)$/);
  });
});

describe('the record hook on a running node', () => {
  let fx: ServerFixture;
  before(async () => {
    fx = await demoFixture({ patients: 100, http: true, edit: (ws) => writeFileSync(join(ws, 'monitoring.yaml'), 'monitoring:\n  rules:\n    enumeration: { distinctQueries: 4, maxRows: 5 }\n') });
  });
  after(async () => { await fx?.close(); });
  const enumerations = () => fx.gh.monitoring().monitor.alerts.list().filter((a) => a.rule === 'enumeration' && a.principal === 'ivan');

  it('hands monitoring the SQL of each request, so different queries over the same columns are not an enumeration but a sweep is', async () => {
    for (const sql of ['SELECT claim_id, payer FROM claims WHERE claim_id = 7', 'SELECT claim_id, payer FROM claims WHERE claim_id < 3', 'SELECT claim_id, payer FROM claims ORDER BY claim_id LIMIT 2', 'SELECT claim_id, payer FROM claims WHERE claim_id BETWEEN 1 AND 2']) {
      await fx.query('ivan', sql);
    }
    assert.equal(enumerations().length, 0, 'four different queries are not a sweep');
    for (let id = 20; id < 24; id++) await fx.query('ivan', `SELECT claim_id, payer FROM claims WHERE claim_id = ${id}`);
    assert.equal(enumerations().length, 1, 'the same query over four keys is');
    const a = (await fx.http.app.inject({ url: '/v1/activity', headers: { authorization: `Bearer ${KEYS.audrey}` } })).json();
    assert.ok(a.conditions.every((c: object) => 'posture' in c), 'the conditions carry device posture');
  });
});
