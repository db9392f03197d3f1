/** The `gatehouse` command line, run in-process (main) and once as a real process. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../src/cli/main.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { KEYS } from './helpers/workspace.ts';

let dir: string;
let ws: string;

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  const s = new PassThrough();
  let out = '';
  s.on('data', (c) => { out += String(c); });
  const code = await main(argv, s);
  return { code, out };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  ws = join(dir, 'ws');
  await createTestDemoWorkspace(ws, { patients: 500, keys: KEYS });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('gatehouse CLI', () => {
  it('explains every command in --help', async () => {
    const { code, out } = await run('--help');
    assert.equal(code, 0);
    for (const c of ['serve', 'validate', 'query', 'datasets', 'policy', 'audit', 'witness']) assert.match(out, new RegExp(`\\n  ${c}`));
  });

  it('validates a good workspace and prints its policy version', async () => {
    const { code, out } = await run('validate', ws);
    assert.equal(code, 0, out);
    assert.match(out, /policy version sha256:[0-9a-f]{64}/);
  });

  it('fails validation with file:line for each problem', async () => {
    const bad = join(dir, 'bad');
    await createTestDemoWorkspace(bad, { patients: 200, keys: KEYS });
    const y = join(bad, 'gatehouse.yaml');
    writeFileSync(y, readFileSync(y, 'utf8').replace('type: DATE,    classification: regulated, tags: [pii.dob]', 'type: DATE,    classification: regulated, tags: [pii.dob], colour: red'));
    const { code, out } = await run('validate', bad);
    assert.equal(code, 1);
    assert.match(out, /gatehouse\.yaml:\d+: datasets\.patients\.columns\.date_of_birth\.colour: unknown key "colour"/);
  });

  it('runs a governed query in-process and prints a table with the audit id', async () => {
    const { code, out } = await run('query', '--workspace', ws, '--key', KEYS.ivan, '--purpose', 'claims-processing', 'SELECT ssn, region FROM patients LIMIT 2');
    assert.equal(code, 0, out);
    assert.match(out, /\*{7}\d{4} │ us-east/);
    assert.match(out, /2 rows · audit #\d+/);
  });

  it('prints a denial with its reason and exits 3', async () => {
    const { code, out } = await run('query', '--workspace', ws, '--key', KEYS.rhea, '--purpose', 'marketing', 'SELECT count(*) FROM patients');
    assert.equal(code, 3);
    assert.match(out, /POLICY_DENIED[\s\S]*reason: regulated data may not be used for marketing/);
  });

  it('shows a policy decision with its obligations', async () => {
    const { code, out } = await run('policy', 'test', ws, '--principal', 'ivan', '--dataset', 'patients', '--purpose', 'claims-processing');
    assert.equal(code, 0, out);
    assert.match(out, /ALLOW[\s\S]*insurer-patients/);
    const show = await run('policy', 'show', ws);
    assert.match(show.out, /obligation insurer-patients: rowFilter: region = principal.region/);
  });

  it('prints an access review with effective access and unused grants', async () => {
    await run('query', '--workspace', ws, '--key', KEYS.ivan, '--purpose', 'claims-processing', 'SELECT count(*) FROM claims');
    const { code, out } = await run('access', 'review', '--workspace', ws, '--days', '30');
    assert.equal(code, 0, out);
    assert.match(out, /ivan\s+│ claims\s+│ claims-processing .*│ region = principal.region │ ≤ 1000 rows\s+│ 0d ago/);
    assert.match(out, /rhea\s+│ claims .*never · UNUSED/);
    assert.match(out, /no data access: audrey, olivia/);
  });

  it('runs as a real process through the package bin', () => {
    const out = execFileSync(process.execPath, ['bin/gatehouse.ts', 'datasets', '--workspace', ws, '--key', KEYS.rhea, '--purpose', 'research'], { encoding: 'utf8' });
    assert.match(out, /aggregates only \(groups ≥ 11 patient_id\)/);
    assert.match(out, /patient_id .*join\/filter only/);
  });
});
