/**
 * Regenerates what is derived from the mask registry (src/query/masks/registry.ts) and from
 * the residency sections (src/federation/schema.ts):
 *
 *   npx node scripts/workspace-schema.ts          rewrite $defs.mask and properties.region/federation/residency
 *                                                 in docs/workspace.schema.json, and the table in docs/masks.md
 *   npx node scripts/workspace-schema.ts --check  exit 1 if either committed file differs from what would be written
 *
 * src/query/masks/registry.test.ts and test/residency-config.test.ts run the same comparison,
 * so a new mask kind or residency key without a regenerated schema fails the tests.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MASKS_DOC_PATH, masksDocWithTable, SCHEMA_PATH, schemaWithMasks } from '../src/query/masks/published.ts';
import { schemaWithResidency } from '../src/federation/schema.ts';

const root = join(import.meta.dirname, '..');
const check = process.argv.includes('--check');
const stale: string[] = [];
for (const [path, generate] of [[SCHEMA_PATH, (t: string) => schemaWithResidency(schemaWithMasks(t))], [MASKS_DOC_PATH, masksDocWithTable]] as const) {
  const file = join(root, path);
  const current = readFileSync(file, 'utf8');
  const next = generate(current);
  if (next === current) continue;
  if (check) stale.push(path);
  else { writeFileSync(file, next); console.log(`wrote ${path}`); }
}
if (stale.length > 0) {
  console.error(`out of date: ${stale.join(', ')} — run: npx node scripts/workspace-schema.ts`);
  process.exitCode = 1;
}
