/**
 * Aggregation-only, query side (issue 12 §2): joins cannot amplify or time one person's
 * rows, and unit identifiers cannot single anyone out in WHERE, HAVING, GROUP BY or CASE.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../errors.ts';
import type { ColumnDef, ColumnType, DatasetDef, ObligationDef } from '../../model/types.ts';
import { bindQuery } from '../bind.ts';
import { loadParser, parseSql } from '../parse.ts';
import { govern } from './index.ts';

const col = (name: string, type: ColumnType): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask: null, bounds: null, description: null });
const dataset = (name: string, columns: ColumnDef[]): DatasetDef => ({ name, description: null, source: { kind: 'csv', path: '/x' }, classification: 'internal', tags: [], privacyUnit: 'patient_id', region: null, owner: null, purposes: [], columns });
const claims = dataset('claims', [col('claim_id', 'BIGINT'), col('patient_id', 'BIGINT'), col('payer', 'VARCHAR'), col('amount', 'DOUBLE')]);
const patients = dataset('patients', [col('patient_id', 'BIGINT'), col('zip', 'VARCHAR'), col('sex', 'VARCHAR')]);
const datasets = new Map([['claims', claims], ['patients', patients]]);
const aggregates: ObligationDef = { name: 'agg', rowFilter: null, aggregationOnly: { minGroupSize: 11 }, rowCap: null, unmask: [], masks: {}, joinOnly: ['patient_id'] };

function governed(sql: string) {
  const b = bindQuery(parseSql(sql), { dataset: (n) => datasets.get(n) });
  return govern(b, {
    principal: { id: 'rhea', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] },
    datasets, obligations: new Map(b.datasets.map((d) => [d, [aggregates]])), rowFilters: new Map(), defaultRowCap: 100,
  });
}
const refused = (sql: string, pattern: RegExp): void => {
  assert.throws(() => governed(sql), (e: unknown) => e instanceof GatehouseError && e.code === 'OBLIGATION_VIOLATION' && pattern.test(e.message) && e.hint !== null, sql);
};

before(loadParser);

describe('joins under aggregation-only', () => {
  it('refuses the self-join that counts one chosen row N times (join amplification)', () => {
    refused('SELECT count(*), sum(a.amount) FROM claims a JOIN claims b ON a.claim_id = 7 OR a.patient_id = b.patient_id', /joined with itself|equi-join/);
    refused('SELECT count(*) FROM claims a JOIN claims b ON a.patient_id = b.patient_id', /joined with itself/);
  });

  it('refuses cross joins and non-equi joins (their running time would depend on hidden rows)', () => {
    refused('SELECT count(*) FROM claims c CROSS JOIN patients p', /CROSS JOIN/);
    refused('SELECT count(*) FROM claims c JOIN patients p ON c.amount > 5', /equi-join on declared join columns/);
    refused('SELECT count(*) FROM claims c JOIN patients p ON c.patient_id = p.patient_id OR c.payer = p.zip', /equi-join/);
  });

  it('refuses equi-joins on columns that are not declared join columns, and joins with subqueries', () => {
    refused('SELECT count(*) FROM claims c JOIN patients p ON c.payer = p.zip', /declared join columns/);
    refused('SELECT count(*) FROM claims c JOIN (SELECT 1 AS patient_id) p ON c.patient_id = p.patient_id', /only datasets/);
  });

  it('allows an equi-join on the declared join column', () => {
    const g = governed('SELECT p.sex, count(*) AS n FROM claims c JOIN patients p ON c.patient_id = p.patient_id GROUP BY p.sex');
    assert.equal(g.disclosure!.probes.length, 2, 'both protected datasets are checked for differencing');
  });
});

describe('unit identifiers under aggregation-only', () => {
  it('refuses the privacy unit or a join-only column in WHERE, also inside a subquery', () => {
    refused("SELECT count(*), sum(amount) FROM claims WHERE payer = 'Medicare' AND patient_id <> 17", /identifies individuals.*WHERE/);
    refused('SELECT count(*) FROM claims c WHERE c.payer IN (SELECT zip FROM patients p WHERE p.patient_id = c.patient_id)', /identifies individuals|subquery/);
  });

  it('refuses it in HAVING, GROUP BY and CASE', () => {
    refused('SELECT payer, count(*) FROM claims GROUP BY payer HAVING sum(patient_id) > 3', /HAVING|plain column|identif/);
    refused('SELECT count(*) FROM claims GROUP BY CASE WHEN patient_id = 17 THEN payer ELSE \'x\' END', /identifies individuals/);
  });

  it('compares a query with a join by the units it selects, so a join cannot step around differencing detection', () => {
    const g = governed("SELECT count(*) AS n FROM claims c JOIN patients p ON c.patient_id = p.patient_id WHERE p.zip <> '00501'");
    const probe = g.disclosure!.probes.find((p) => p.dataset === 'claims')!;
    assert.equal(probe.predicate.kind, 'inQuery');
  });

  it('keeps an uncorrelated subquery in the compared filter instead of skipping the check', () => {
    const g = governed("SELECT count(*) AS n FROM claims WHERE payer NOT IN (SELECT 'Medicare')");
    assert.ok(g.disclosure!.probe, 'a filter with a subquery is still compared');
  });
});
