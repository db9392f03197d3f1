/**
 * UNION / EXCEPT / INTERSECT through the whole path (issue 14), written as an attacker would:
 * every obligation must hold in each branch as in a plain SELECT — masks at the source, row
 * filters, the decision over every dataset a branch reads, the row cap over the whole — and
 * datasets released only as aggregates or with differential privacy refuse set operations.
 * Principals are the demo's (see test/attack.test.ts): ivan the insurer (us-east rows only,
 * ssn last 4, row cap 1000, no encounters), rhea the research contractor (aggregation-only
 * and DP), ada the internal analyst. `kit.attempt` asserts on every outcome that no raw
 * protected value and no other region's row leaves.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AttackKit, IVAN_REGION, IVAN_ROW_CAP, column, scalar, type Outcome, type Patient } from './support/attack-kit.ts';

let kit: AttackKit;
let east: Patient;
let west: Patient;

before(async () => {
  kit = await AttackKit.open();
  east = kit.truth.patients.find((p) => p.region === IVAN_REGION)!;
  west = kit.truth.patients.find((p) => p.region === 'us-west')!;
});

after(async () => {
  await kit?.close();
});

function answered(o: Outcome) {
  assert.ok(o.res, `expected an answer, got ${o.err?.code}: ${o.err?.message}`);
  return o.res;
}

function refused(o: Outcome, code: string, message?: RegExp): void {
  assert.equal(o.res, null, `expected ${code}, but it was answered with ${o.res?.rows.length} rows`);
  assert.equal(o.err!.code, code, o.err!.message);
  if (message) assert.match(o.err!.message, message);
  if (code !== 'POLICY_DENIED') assert.ok(o.err!.hint, 'a refusal says what to do next');
}

describe('masks and row filters hold in every branch', () => {
  test('UNION ALL of two selects returns the masked SSN in both branches, and only the insurer\'s region', async () => {
    const res = answered(await kit.attempt('ivan', 'SELECT ssn, region FROM patients WHERE patient_id < 200 UNION ALL SELECT ssn, region FROM patients WHERE 1=1 AND patient_id < 200'));
    const east200 = kit.truth.patients.filter((p) => p.id < 200 && p.region === IVAN_REGION).length;
    assert.ok(east200 > 0);
    assert.equal(res.rows.length, 2 * east200, 'each branch returns the filtered rows, no more');
    for (const ssn of column(res, 'ssn')) assert.match(String(ssn), /^\*{7}\d{4}$/, 'last-4 masked in both branches');
    assert.deepEqual([...new Set(column(res, 'region'))], [IVAN_REGION]);
  });

  test('a row filter holds in each branch: "WHERE 1=1" in the second branch widens nothing', async () => {
    const res = answered(await kit.attempt('ivan', 'SELECT count(*) FROM (SELECT patient_id FROM patients UNION SELECT patient_id FROM patients WHERE 1=1 OR region <> region) AS t'));
    assert.equal(Number(scalar(res)), kit.truth.usEastPatients);
  });

  test('a branch cannot reach another region\'s patient by its id', async () => {
    const res = answered(await kit.attempt('ivan', `SELECT name FROM patients WHERE patient_id = ${east.id} UNION SELECT name FROM patients WHERE patient_id = ${west.id}`));
    assert.deepEqual(column(res, 'name'), [east.name]);
  });

  test('INTERSECT cannot test a masked SSN against a raw literal: the mask applies first, so nothing matches', async () => {
    const res = answered(await kit.attempt('ivan', `SELECT ssn FROM patients INTERSECT SELECT '${east.ssn}'`));
    assert.equal(res.rows.length, 0);
  });

  test('EXCEPT cannot confirm a raw SSN either: the literal is never removed by a masked value', async () => {
    const res = answered(await kit.attempt('ivan', `SELECT count(*) FROM (SELECT '${east.ssn}' AS s EXCEPT SELECT ssn FROM patients) AS t`));
    assert.equal(Number(scalar(res)), 1);
  });

  test('INTERSECT against the masked form matches, so the test above is not vacuous', async () => {
    const masked = '*'.repeat(east.ssn.length - 4) + east.ssn.slice(-4);
    const res = answered(await kit.attempt('ivan', `SELECT ssn FROM patients WHERE patient_id = ${east.id} INTERSECT SELECT '${masked}'`));
    assert.equal(res.rows.length, 1);
  });
});

describe('the decision covers every branch', () => {
  test('a branch reading a dataset the caller may not see is denied, as a plain query is', async () => {
    refused(await kit.attempt('ivan', 'SELECT CAST(patient_id AS VARCHAR) AS p FROM patients UNION SELECT CAST(patient_id AS VARCHAR) FROM encounters'), 'POLICY_DENIED', /encounters/);
  });

  test('a set operation nested in a subquery is governed too', async () => {
    refused(await kit.attempt('ivan', 'SELECT count(*) FROM patients WHERE patient_id IN (SELECT patient_id FROM claims EXCEPT SELECT patient_id FROM encounters)'), 'POLICY_DENIED', /encounters/);
  });
});

describe('aggregation-only and differential privacy refuse set operations', () => {
  test('an aggregation-only dataset refuses UNION, even of two aggregates', async () => {
    refused(await kit.attempt('rhea', 'SELECT zip, count(*) AS n FROM patients GROUP BY zip UNION ALL SELECT zip, count(*) AS n FROM patients GROUP BY zip'), 'OBLIGATION_VIOLATION', /UNION.*row-level/);
  });

  test('a differentially private dataset refuses INTERSECT', async () => {
    refused(await kit.attempt('rhea', 'SELECT count(*) AS n FROM encounters INTERSECT SELECT count(*) AS n FROM encounters'), 'OBLIGATION_VIOLATION', /INTERSECT.*row-level/);
  });
});

describe('the row cap bounds the whole result', () => {
  test('UNION ALL of two branches each under the cap is truncated at the cap', async () => {
    assert.ok(kit.truth.usEastPatients < IVAN_ROW_CAP && 2 * kit.truth.usEastPatients > IVAN_ROW_CAP, 'fixture: one branch fits, both do not');
    const res = answered(await kit.attempt('ivan', 'SELECT patient_id FROM patients UNION ALL SELECT patient_id FROM patients'));
    assert.equal(res.rows.length, IVAN_ROW_CAP);
    assert.equal(res.governance.truncated, true);
  });

  test('ORDER BY and LIMIT apply to the whole result, by output name or position', async () => {
    const res = answered(await kit.attempt('ada', 'SELECT patient_id AS id FROM patients WHERE patient_id <= 3 UNION SELECT patient_id FROM patients WHERE patient_id BETWEEN 3 AND 5 ORDER BY id DESC LIMIT 4'));
    assert.deepEqual(column(res, 'id').map(Number), [5, 4, 3, 2]);
    const byPosition = answered(await kit.attempt('ada', 'SELECT patient_id AS id FROM patients WHERE patient_id <= 3 EXCEPT SELECT patient_id FROM patients WHERE patient_id = 2 ORDER BY 1'));
    assert.deepEqual(column(byPosition, 'id').map(Number), [1, 3]);
  });
});

describe('malformed set operations are refused before anything runs', () => {
  test('branches with different column counts are SQL_INVALID', async () => {
    refused(await kit.attempt('ada', 'SELECT patient_id, zip FROM patients UNION SELECT patient_id FROM patients'), 'SQL_INVALID', /same number of columns/);
  });

  test('a UNION of text and numbers is SQL_INVALID at bind', async () => {
    refused(await kit.attempt('ada', 'SELECT zip FROM patients UNION SELECT patient_id FROM patients'), 'SQL_INVALID', /text in one branch and number/);
  });
});

describe('the PostgreSQL rendering runs on PostgreSQL', () => {
  test('UNION, EXCEPT ALL and INTERSECT with masks, outer ORDER BY and the row cap give PostgreSQL\'s answers', async () => {
    const { startPostgres } = await import('./support/postgres.ts');
    const { default: pg } = await import('pg');
    const { loadParser, parseSql } = await import('../src/query/parse.ts');
    const { bindQuery } = await import('../src/query/bind.ts');
    const { govern } = await import('../src/query/govern/index.ts');
    const { renderSelect } = await import('../src/query/render/sql.ts');
    const { postgresDialect } = await import('../src/query/render/postgres.ts');
    await loadParser();
    const col = (name: string, type: 'BIGINT' | 'VARCHAR', mask: { kind: 'last4' } | null = null) => ({ name, type, classification: 'internal' as const, tags: [], mask, bounds: null, description: null });
    const people = { name: 'people', description: null, source: { kind: 'csv' as const, path: '/x' }, classification: 'internal' as const, tags: [], privacyUnit: 'id', region: null, owner: null, purposes: [], columns: [col('id', 'BIGINT'), col('ssn', 'VARCHAR', { kind: 'last4' }), col('region', 'VARCHAR')] };
    const datasets = new Map([['people', people]]);
    const run = (sql: string): string => {
      const b = bindQuery(parseSql(sql), { dataset: (n) => datasets.get(n) });
      const g = govern(b, { principal: { id: 'p', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] }, datasets, obligations: new Map([['people', [{ name: 'cap', rowFilter: null, aggregationOnly: null, rowCap: 3, unmask: [], masks: {}, joinOnly: [] }]]]), rowFilters: new Map(), defaultRowCap: 100, columnsUsed: new Set(b.columns) });
      return renderSelect(g.query, postgresDialect({ sourceOf: () => '"people"', hashKey: Buffer.from('k') }));
    };
    const cluster = await startPostgres();
    const client = new pg.Client({ connectionString: cluster.superuserUrl });
    try {
      await client.connect();
      await client.query("CREATE TABLE people (id BIGINT, ssn TEXT, region TEXT); INSERT INTO people VALUES (1, '123-45-6789', 'east'), (2, '987-65-4321', 'west'), (3, '555-55-5555', 'east')");
      const rows = async (sql: string) => (await client.query({ text: run(sql), rowMode: 'array' })).rows;
      assert.deepEqual(await rows("SELECT ssn FROM people WHERE region = 'east' UNION SELECT ssn FROM people ORDER BY 1 DESC"), [['*******6789'], ['*******5555'], ['*******4321']].slice(0, 3));
      assert.deepEqual(await rows("SELECT ssn FROM people INTERSECT SELECT '123-45-6789'"), []);
      assert.deepEqual(await rows("SELECT region FROM people EXCEPT ALL SELECT 'east' ORDER BY region"), [['east'], ['west']]);
      // Row cap 3: LIMIT 4 on the whole, so the executor sees the truncation.
      assert.equal((await rows('SELECT id FROM people UNION ALL SELECT id FROM people')).length, 4);
    } finally {
      await client.end().catch(() => {});
      await cluster.stop();
    }
  });
});
