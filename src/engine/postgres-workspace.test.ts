/** The `{postgres: …}` dataset source in gatehouse.yaml: the loader and the JSON schema agree, and secrets are refused. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { parse, stringify } from 'yaml';
import { createTestDemoWorkspace } from '../../test/helpers/demo-data.ts';
import { readWorkspaceFiles } from '../workspace/load.ts';

let root: string;
let demo: string;
let validate: ValidateFunction;
let n = 0;

before(async () => {
  delete process.env.GATEHOUSE_HASH_KEY;
  root = mkdtempSync(join(tmpdir(), 'gh-pgws-'));
  demo = join(root, 'demo');
  await createTestDemoWorkspace(demo, { patients: 50 });
  validate = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true }).compile(JSON.parse(readFileSync(new URL('../../docs/workspace.schema.json', import.meta.url), 'utf8')) as object);
});
after(() => rmSync(root, { recursive: true, force: true }));

function withSource(source: unknown): { problems: string[]; schemaOk: boolean; source: unknown } {
  const doc = parse(readFileSync(join(demo, 'gatehouse.yaml'), 'utf8')) as Record<string, any>;
  doc.datasets.claims.source = source;
  const dir = join(root, `t${n++}`);
  cpSync(demo, dir, { recursive: true });
  writeFileSync(join(dir, 'gatehouse.yaml'), stringify(doc));
  const r = readWorkspaceFiles(dir);
  return { problems: r.problems.map((p) => `${p.file}:${p.line}: ${p.message}`), schemaOk: validate(doc) as boolean, source: r.workspace?.datasets.get('claims')?.source };
}

describe('a PostgreSQL dataset source in gatehouse.yaml', () => {
  it('is accepted with a role, database, schema-qualified table and passwordEnv', () => {
    const r = withSource({ postgres: { url: 'postgres://gatehouse_reader@127.0.0.1:5432/hospital', table: 'public.claims', passwordEnv: 'GATEHOUSE_PG_PASSWORD' } });
    assert.deepEqual(r.problems, []);
    assert.equal(r.schemaOk, true);
    assert.deepEqual(r.source, { kind: 'postgres', url: 'postgres://gatehouse_reader@127.0.0.1:5432/hospital', table: 'public.claims', passwordEnv: 'GATEHOUSE_PG_PASSWORD' });
  });

  it('refuses a password in the URL with a hint, without echoing it, in the loader and the schema', () => {
    for (const url of ['postgres://gatehouse_reader:s3cr3t-pw@127.0.0.1/hospital', 'postgres://gatehouse_reader@127.0.0.1/hospital?password=s3cr3t-pw']) {
      const r = withSource({ postgres: { url, table: 'claims' } });
      assert.equal(r.schemaOk, false, url);
      assert.ok(r.problems.some((m) => /gatehouse\.yaml:\d+: datasets\.claims\.source\.postgres\.url: contains a password: secrets never live in the workspace.*passwordEnv/.test(m)), JSON.stringify(r.problems));
      assert.doesNotMatch(JSON.stringify(r.problems), /s3cr3t-pw/);
    }
  });

  it('names what is wrong with a URL without role or database, a bad table name, a bad env name or an unknown key', () => {
    const cases: [unknown, RegExp][] = [
      [{ postgres: { url: 'postgres://127.0.0.1/hospital', table: 'claims' } }, /must name the role/],
      [{ postgres: { url: 'postgres://r@127.0.0.1/', table: 'claims' } }, /must name the database/],
      [{ postgres: { url: 'mysql://r@127.0.0.1/db', table: 'claims' } }, /must be a URL like postgres:\/\//],
      [{ postgres: { url: 'postgres://r@127.0.0.1/db', table: 'claims; DROP TABLE x' } }, /must be a table name/],
      [{ postgres: { url: 'postgres://r@127.0.0.1/db', table: 'claims', passwordEnv: 'not-an-env' } }, /name of an environment variable/],
      [{ postgres: { url: 'postgres://r@127.0.0.1/db', table: 'claims', password: 'x' } }, /unknown key "password"/],
    ];
    for (const [source, message] of cases) {
      const r = withSource(source);
      assert.equal(r.schemaOk, false, JSON.stringify(source));
      assert.ok(r.problems.some((m) => message.test(m)), `${JSON.stringify(source)}: ${JSON.stringify(r.problems)}`);
    }
  });
});
