/**
 * Output protection on the one path that is not covered by test/privacy.test.ts:
 * differencing (tracker) detection for aggregation-only datasets, and data-loss
 * prevention on released results.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { codeOf, demoFixture, type Fixture } from './helpers/workspace.ts';

let fx: Fixture;
before(async () => { fx = await demoFixture({ patients: 3000 }); });
after(async () => { await fx.close(); });

describe('differencing detection', () => {
  it('refuses "everyone" minus "everyone but one patient" and records an alert', async () => {
    // (The patient id itself is refused in WHERE; one claim's id isolates one patient too.)
    const oneClaim = (await fx.query('ada', 'SELECT claim_id FROM claims LIMIT 1')).rows[0]![0];
    await fx.query('rhea', 'SELECT count(*) FROM claims');
    const before = fx.log.size;
    assert.equal(await codeOf(fx.query('rhea', `SELECT count(*) FROM claims WHERE claim_id <> ${oneClaim}`)), 'DIFFERENCING_DETECTED');
    assert.equal(fx.log.size, before + 1);
    const e = fx.log.leaf(before).entry;
    assert.equal(e.decision, 'deny');
    assert.ok(e.reasons.some((r) => r.startsWith('alert: differencing')));
  });

  it('catches the difference through a masked or filtered column too', async () => {
    await fx.query('rhea', "SELECT count(*) FROM patients WHERE region = 'us-west'");
    const zip = (await fx.query('ada', "SELECT zip FROM patients WHERE region = 'us-west' LIMIT 1")).rows[0]![0] as string;
    assert.equal(await codeOf(fx.query('rhea', `SELECT count(*) FROM patients WHERE region = 'us-west' AND zip <> '${zip}'`)), 'DIFFERENCING_DETECTED');
  });

  it('lets filters that differ by a large group through', async () => {
    await fx.query('rhea', "SELECT count(*) FROM patients WHERE region = 'us-central'");
    const r = await fx.query('rhea', "SELECT count(*) FROM patients WHERE region = 'us-central' AND sex = 'F'");
    assert.equal(r.rows.length, 1);
  });

  it('keeps each principal\'s history separate', async () => {
    await fx.query('rhea', "SELECT count(*) FROM patients WHERE sex = 'M'");
    // The insurer is not aggregation-only on patients: nothing to compare, nothing refused.
    await fx.query('ivan', "SELECT count(*) FROM patients WHERE sex = 'M' AND patient_id <> 3");
  });
});

describe('data-loss prevention', () => {
  it('blocks a result that carries an SSN-shaped or card-shaped value, naming the detector but not the value', async () => {
    const before = fx.log.size;
    await assert.rejects(fx.query('ivan', "SELECT '078-05-1120' AS note FROM claims LIMIT 1"), (e: { code?: string; reasons?: string[]; message: string }) => {
      assert.equal(e.code, 'DLP_BLOCKED');
      assert.ok(e.reasons!.some((r) => r.includes('us_ssn')));
      assert.ok(!JSON.stringify(e).includes('078-05-1120'));
      return true;
    });
    const entry = fx.log.leaf(before).entry;
    assert.equal(entry.decision, 'deny');
    assert.ok(!JSON.stringify(entry).includes('078-05-1120'));
  });

  it('lets masked identifiers through (they no longer match)', async () => {
    const r = await fx.query('ivan', 'SELECT ssn, email, phone FROM patients LIMIT 20');
    assert.equal(r.rows.length, 20);
  });

  it('catches a raw catalog value the caller should only see masked, even without a pattern', async () => {
    const local = await demoFixture({
      patients: 300,
      edit: (ws) => {
        // The insurer loses its unmask of names: names are now masked for it, so a raw name in
        // a result (here smuggled in as a literal) must be caught by the fingerprint index.
        const y = join(ws, 'gatehouse.yaml');
        writeFileSync(y, readFileSync(y, 'utf8').replace('unmask: [name, date_of_birth]', 'unmask: [date_of_birth]'));
      },
    });
    try {
      const name = (await local.query('ada', 'SELECT name FROM patients LIMIT 1')).rows[0]![0] as string;
      assert.equal(await codeOf(local.query('ivan', `SELECT '${name.replace(/'/g, "''")}' AS who FROM patients LIMIT 1`)), 'DLP_BLOCKED');
    } finally {
      await local.close();
    }
  });

  it('does not scan principals no DLP obligation covers', async () => {
    const r = await fx.query('ada', "SELECT '078-05-1120' AS note FROM patients LIMIT 1");
    assert.deepEqual(r.rows, [['078-05-1120']]);
  });
});
