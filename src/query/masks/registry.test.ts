/**
 * The registry is the one list of mask kinds: the loader accepts exactly its spellings and
 * names them when it refuses one, no other source file keeps its own list, and the JSON
 * Schema and docs/masks.md are what scripts/workspace-schema.ts generates from it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, stringify } from 'yaml';
import { createTestDemoWorkspace } from '../../../test/helpers/demo-data.ts';
import { WorkspaceInvalid } from '../../workspace/load.ts';
import { loadWorkspace } from '../../workspace/validate.ts';
import { MASKS_DOC_PATH, masksDocWithTable, SCHEMA_PATH, schemaWithMasks } from './published.ts';
import { describeMask, MASK_KINDS, maskSpellings, parseMaskYaml, unknownMaskMessage } from './registry.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

let dir: string;
before(async () => {
  delete process.env.GATEHOUSE_HASH_KEY;
  dir = mkdtempSync(join(tmpdir(), 'gh-masks-'));
  await createTestDemoWorkspace(dir, { patients: 50 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Loads the demo workspace with the ssn column's mask replaced; returns the loader's messages. */
async function problemsWithSsnMask(mask: unknown): Promise<string[]> {
  const file = join(dir, 'gatehouse.yaml');
  const original = readFileSync(file, 'utf8');
  const doc = parse(original) as { datasets: { patients: { columns: { ssn: { mask: unknown } } } } };
  doc.datasets.patients.columns.ssn.mask = mask;
  writeFileSync(file, stringify(doc));
  try {
    await loadWorkspace(dir);
    return [];
  } catch (err) {
    if (err instanceof WorkspaceInvalid) return err.problems.map((p) => p.message);
    throw err;
  } finally {
    writeFileSync(file, original);
  }
}

describe('the mask registry', () => {
  test('the loader refuses an unknown kind with a message naming every kind in the registry', async () => {
    const problems = await problemsWithSsnMask('scramble');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /datasets\.patients\.columns\.ssn\.mask: unknown mask: use /);
    for (const k of MASK_KINDS) {
      for (const w of k.words) assert.ok(problems[0]!.includes(w), `the message names ${w}`);
      if (k.mapping) assert.ok(problems[0]!.includes(`{${k.mapping.key}: `), `the message names {${k.mapping.key}: …}`);
    }
    assert.equal(problems[0]!.slice(problems[0]!.indexOf('unknown mask')), unknownMaskMessage());
  });

  test('every spelling the registry lists parses to its own kind, and nothing near it does', () => {
    for (const k of MASK_KINDS) {
      for (const w of k.words) assert.equal(parseMaskYaml(w)?.kind, k.kind, w);
      for (const w of k.words) assert.equal(parseMaskYaml(w.toUpperCase()), null, `${w} upper-cased`);
    }
    assert.equal(parseMaskYaml({ round: 5 })?.kind, 'round');
    assert.equal(parseMaskYaml({ round: 5, bucket: 10 }), null, 'a mapping with two keys');
    assert.equal(parseMaskYaml({ round: 0 }), null, 'a non-positive step');
    assert.equal(parseMaskYaml({ date_shift: 1.5 }), null, 'a fractional day count');
    assert.equal(parseMaskYaml({ date_shift: 3651 }), null, 'more than ten years');
    assert.equal(parseMaskYaml(['redact']), null, 'a list');
    assert.equal(maskSpellings().length, new Set(maskSpellings()).size, 'no spelling belongs to two kinds');
  });

  test('describeMask names each kind as responses and audit entries show it', () => {
    assert.deepEqual(
      ['hash', 'year', { truncate: 'month' }, { round: 5 }, { bucket: 10 }, 'initials', { date_shift: 30 }].map((y) => describeMask(parseMaskYaml(y)!)),
      ['hash', 'truncate(year)', 'truncate(month)', 'round(5)', 'bucket(10)', 'initials', 'date_shift(30)'],
    );
  });

  test('no source file outside src/query/masks keeps its own list of mask kinds', () => {
    const distinctive = MASK_KINDS.map((k) => k.kind).filter((k) => !['null', 'hash', 'round', 'truncate', 'bucket'].includes(k));
    const offenders: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) { if (p !== join(ROOT, 'src', 'query', 'masks')) walk(p); continue; }
        if (!e.name.endsWith('.ts') || e.name.endsWith('.test.ts')) continue;
        const text = readFileSync(p, 'utf8');
        const named = distinctive.filter((k) => text.includes(`'${k}'`));
        if (named.length >= 2) offenders.push(`${relative(ROOT, p)} (${named.join(', ')})`);
      }
    };
    for (const top of ['src', 'bin', 'scripts']) walk(join(ROOT, top));
    assert.deepEqual(offenders, []);
  });

  test(`the committed ${SCHEMA_PATH} and ${MASKS_DOC_PATH} are what scripts/workspace-schema.ts generates`, () => {
    for (const [path, generate] of [[SCHEMA_PATH, schemaWithMasks], [MASKS_DOC_PATH, masksDocWithTable]] as const) {
      const committed = readFileSync(join(ROOT, path), 'utf8');
      assert.equal(committed, generate(committed), `${path} is out of date: run npx node scripts/workspace-schema.ts`);
    }
  });
});
