/**
 * docs/workspace.schema.json and the gatehouse.yaml loader must agree. Each document below
 * is run through both the JSON Schema (ajv, draft 2020-12) and `loadWorkspace`; a change
 * to either that the other does not follow fails here instead of drifting silently.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { parse, stringify } from 'yaml';
import { createTestDemoWorkspace } from '../../test/helpers/demo-data.ts';
import { loadWorkspace } from './validate.ts';
import { WorkspaceInvalid } from './load.ts';

const SCHEMA_FILE = new URL('../../docs/workspace.schema.json', import.meta.url);

type Doc = Record<string, any>;

let root: string;
let demoDir: string;
let demoYaml: string;
let validate: ValidateFunction;
let trial = 0;

before(async () => {
  // The hash key must come from the file so that `secrets` is checked as written.
  delete process.env.GATEHOUSE_HASH_KEY;
  root = mkdtempSync(join(tmpdir(), 'gh-schema-'));
  demoDir = join(root, 'demo');
  await createTestDemoWorkspace(demoDir, { patients: 200 });
  demoYaml = readFileSync(join(demoDir, 'gatehouse.yaml'), 'utf8');
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
});

after(() => {
  rmSync(root, { recursive: true, force: true });
});

function demoDoc(): Doc {
  return parse(demoYaml) as Doc;
}

function schemaErrors(doc: unknown): string[] {
  return validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

/** Writes `doc` as gatehouse.yaml into a copy of the demo workspace and loads it. */
async function loaderProblems(doc: unknown): Promise<string[]> {
  const dir = join(root, `trial-${trial++}`);
  cpSync(demoDir, dir, { recursive: true });
  writeFileSync(join(dir, 'gatehouse.yaml'), stringify(doc));
  try {
    await loadWorkspace(dir);
    return [];
  } catch (err) {
    if (err instanceof WorkspaceInvalid) return err.problems.map((p) => p.message);
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('docs/workspace.schema.json', () => {
  test('the demo workspace is valid for the schema and for the loader', async () => {
    assert.deepEqual(schemaErrors(parse(demoYaml)), []);
    const loaded = await loadWorkspace(demoDir);
    assert.equal(loaded.workspace.name, 'st-avery-health');
  });

  const rejected: [string, (d: Doc) => void, RegExp][] = [
    ['an unknown mask', (d) => { d.datasets.patients.columns.ssn.mask = 'last5'; }, /unknown mask/],
    ['an upper-case mask name', (d) => { d.datasets.patients.columns.ssn.mask = 'LAST4'; }, /unknown mask/],
    ['a round mask with a non-positive step', (d) => { d.datasets.encounters.columns.cost.mask = { round: 0 }; }, /unknown mask/],
    ['a mask object with two keys', (d) => { d.datasets.encounters.columns.cost.mask = { round: 5, bucket: 10 }; }, /unknown mask/],
    ['a mask on the wrong column type', (d) => { d.datasets.patients.columns.date_of_birth.mask = 'last4'; }, /cannot apply to a DATE column/],
    ['a numeric mask on a VARCHAR column', (d) => { d.datasets.patients.columns.zip.mask = { bucket: 100 }; }, /cannot apply to a VARCHAR column/],
    ['an unknown top-level key', (d) => { d.extra = 1; }, /unknown key "extra"/],
    ['an unknown column key', (d) => { d.datasets.patients.columns.ssn.masked = 'last4'; }, /unknown key "masked"/],
    ['an unknown obligation key', (d) => { d.obligations['insurer-claims'].rowLimit = 5; }, /unknown key "rowLimit"/],
    ['an unknown principal key', (d) => { d.principals.rhea.email = 'rhea@example.org'; }, /unknown key "email"/],
    ['a bad column classification', (d) => { d.datasets.patients.columns.zip.classification = 'secret'; }, /must be one of public, internal/],
    ['a bad dataset classification', (d) => { d.datasets.claims.classification = 'top-secret'; }, /must be one of public, internal/],
    ['a missing column classification', (d) => { delete d.datasets.patients.columns.zip.classification; }, /must be one of public, internal/],
    ['an unknown column type', (d) => { d.datasets.patients.columns.zip.type = 'TEXT'; }, /must be one of VARCHAR/],
    ['version 2', (d) => { d.version = 2; }, /must be 1/],
    ['a missing name', (d) => { delete d.name; }, /name: is required/],
    ['bounds on a VARCHAR column', (d) => { d.datasets.patients.columns.zip.bounds = [0, 99999]; }, /bounds apply to numeric columns/],
    ['unique that is not a boolean', (d) => { d.datasets.claims.columns.claim_id.unique = 'yes'; }, /unique: must be true or false/],
    ['bounds with three numbers', (d) => { d.datasets.encounters.columns.cost.bounds = [0, 1, 2]; }, /must be \[low, high\]/],
    ['a dataset without columns', (d) => { d.datasets.claims.columns = {}; }, /at least one column/],
    ['an upper-case dataset name', (d) => { d.datasets.Claims = d.datasets.claims; delete d.datasets.claims; }, /lower-case identifiers/],
    ['a reserved column name', (d) => { d.datasets.claims.columns.__gh_unit = { type: 'BIGINT', classification: 'internal' }; }, /reserved/],
    ['two sources', (d) => { d.datasets.claims.source = { parquet: 'data/claims.parquet', csv: 'data/claims.csv' }; }, /exactly one of/],
    ['a duckdb source without a table', (d) => { d.datasets.claims.source = { duckdb: 'data/claims.parquet' }; }, /exactly one of/],
    ['aggregationOnly without minGroupSize', (d) => { d.obligations['research-aggregates'].aggregationOnly = {}; }, /minGroupSize: is required/],
    ['a zero row cap', (d) => { d.obligations['insurer-claims'].rowCap = 0; }, /positive whole number/],
    ['a fractional default row cap', (d) => { d.defaults.rowCap = 10.5; }, /positive whole number/],
    ['a malformed memory limit', (d) => { d.defaults.memoryLimit = '4 gigabytes'; }, /must look like "4GB"/],
    ['a principal kind other than user or service', (d) => { d.principals.rhea.kind = 'robot'; }, /must be user or service/],
    ['an upper-case API key digest', (d) => { d.principals.rhea.apiKeySha256 = [String(d.principals.rhea.apiKeySha256[0]).toUpperCase()]; }, /hex SHA-256 digest/],
    ['a fractional attribute', (d) => { d.principals.rhea.attributes.clearance = 1.5; }, /string, whole number, boolean or list of strings/],
    ['a null attribute', (d) => { d.principals.rhea.attributes.clearance = null; }, /string, whole number, boolean or list of strings/],
    ['an empty policy list', (d) => { d.policies = []; }, /no \.cedar policy files/],
    ['tags that are not a list', (d) => { d.datasets.claims.tags = 'phi'; }, /list of strings/],
    ['a missing hashKeyFile', (d) => { d.secrets = {}; }, /hashKeyFile: is required/],
    ['differentialPrivacy without a budget', (d) => { d.obligations['insurer-claims'].differentialPrivacy = { epsilon: 1 }; }, /budget: is required/],
    ['a differentialPrivacy delta of 0.01', (d) => { d.obligations['insurer-claims'].differentialPrivacy = { epsilon: 1, delta: 0.01, budget: { epsilon: 5 } }; }, /less than 0\.001/],
    ['an unknown differentialPrivacy mechanism', (d) => { d.obligations['insurer-claims'].differentialPrivacy = { mechanism: 'exponential', epsilon: 1, budget: { epsilon: 5 } }; }, /gaussian or laplace/],
    ['a YAML null mask (write "null" quoted, or omit mask)', (d) => { d.datasets.patients.columns.name.mask = null; }, /to null the column write mask: "null"/],
    ['a schema path that is not a string', (d) => { d.schema = 5; }, /schema: must be a non-empty string/],
  ];
  for (const [what, edit, loaderMessage] of rejected) {
    test(`rejects ${what} (schema and loader)`, async () => {
      const doc = demoDoc();
      edit(doc);
      assert.notDeepEqual(schemaErrors(doc), [], 'the schema accepted it');
      const problems = await loaderProblems(doc);
      assert.ok(problems.some((m) => loaderMessage.test(m)), `the loader did not report ${loaderMessage}; it reported: ${JSON.stringify(problems)}`);
    });
  }

  // Accepted by both. Some of these are leniencies of the loader that the schema mirrors
  // on purpose (docs/workspace.md says so); if the loader is tightened, tighten the schema.
  const accepted: [string, (d: Doc) => void][] = [
    ['a lower-case column type', (d) => { d.datasets.patients.columns.zip.type = 'varchar'; }],
    ['the quoted "null" mask', (d) => { d.datasets.patients.columns.zip.mask = 'null'; }],
    ['{truncate: month} on a TIMESTAMP column', (d) => { d.datasets.claims.columns.submitted_on = { type: 'TIMESTAMP', classification: 'internal', mask: { truncate: 'month' } }; }],
    ['a column declared unique', (d) => { d.datasets.claims.columns.claim_id.unique = true; }],
    ['{round: 0.5} on a DOUBLE column', (d) => { d.datasets.encounters.columns.cost.mask = { round: 0.5 }; }],
    ['hash on a BOOLEAN column', (d) => { d.datasets.claims.columns.paid = { type: 'BOOLEAN', classification: 'internal', mask: 'hash' }; }],
    ['no obligations and no principals', (d) => { delete d.obligations; delete d.principals; d.policies = ['policies/guardrails.cedar']; }],
    ['a principal with only defaults', (d) => { d.principals.svc = { kind: 'service', attributes: { org: 'x', region: 'y' } }; }],
    ['null for optional lists and strings', (d) => { Object.assign(d.datasets.claims, { tags: null, purposes: null, region: null, owner: null }); }],
    ['a non-string description (ignored by the loader)', (d) => { d.datasets.claims.description = 42; }],
    ['defaults that are not a mapping (ignored by the loader)', (d) => { d.defaults = 5; }],
    ['extra keys under secrets (ignored by the loader)', (d) => { d.secrets.note = 'rotated 2026-01'; }],
    ['a differentialPrivacy obligation', (d) => { d.obligations['insurer-claims'].differentialPrivacy = { mechanism: 'laplace', epsilon: 0.5, maxGroupsPerUnit: 2, publicGroups: { payer: ['Medicare', 'Medicaid'] }, budget: { epsilon: 5, delta: 1e-6, window: { rollingDays: 30 }, per: 'org' } }; }],
    ['an obligation mask that does not fit the column type (reported by validate, after the file reader)', (d) => { d.obligations['internal-analyst'].masks = { ssn: { round: 5 } }; }],
  ];
  test('a column declared unique is loaded as unique, and the others are not', async () => {
    const doc = demoDoc();
    doc.datasets.claims.columns.claim_id.unique = true;
    doc.datasets.claims.columns.patient_id.unique = false;
    const dir = join(root, `trial-${trial++}`);
    cpSync(demoDir, dir, { recursive: true });
    writeFileSync(join(dir, 'gatehouse.yaml'), stringify(doc));
    try {
      const claims = (await loadWorkspace(dir)).workspace.datasets.get('claims')!;
      assert.deepEqual(claims.columns.filter((c) => c.unique === true).map((c) => c.name), ['claim_id']);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  for (const [what, edit] of accepted) {
    test(`accepts ${what} (schema and loader)`, async () => {
      const doc = demoDoc();
      edit(doc);
      assert.deepEqual(schemaErrors(doc), []);
      assert.deepEqual(await loaderProblems(doc), []);
    });
  }
});
