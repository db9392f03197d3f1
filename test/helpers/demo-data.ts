/**
 * The demo workspace for tests, with its Parquet data generated once per machine instead of
 * once per test.
 *
 * Why: `createDemoWorkspace` writes the demo's synthetic data with DuckDB (an instance, three
 * tables, three Parquet files) before it writes the workspace files. About a hundred fixtures
 * of the suite ask for the same few sizes, and the data is deterministic (the same rows on
 * every machine), so generating it each time is pure cost. Here the data directory is
 * generated once into a cache keyed by everything it depends on (the size, the generator's
 * source, the DuckDB version) and copied into the new workspace; `createDemoWorkspace` then
 * finds its completion marker and writes only the workspace files (policies, the YAML with the
 * test's keys, a fresh hash key), exactly as it would on a fresh directory.
 *
 * The cache lives in node_modules/.cache/gatehouse-demo-data/ (like Node's compile cache, it
 * is thrown away with node_modules). Entries are written to a temporary directory and renamed
 * into place, so concurrent test files never see half an entry. GATEHOUSE_TEST_DEMO_CACHE=0
 * turns the cache off (every workspace generates its own data, as before).
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createDemoWorkspace, type DemoOptions, type DemoWorkspace } from '../../src/demo/workspace.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'gatehouse-demo-data');
/** What the generated rows depend on: the generator and the engine that writes them. */
const INPUTS = [join(ROOT, 'src', 'demo', 'workspace.ts'), join(ROOT, 'src', 'engine', 'file-writer.ts'), join(ROOT, 'node_modules', '@duckdb', 'node-api', 'package.json')];
const DEFAULT_PER_PATIENT = 5;

let inputsDigest: string | null = null;
function digestOfInputs(): string {
  inputsDigest ??= createHash('sha256').update(INPUTS.map((f) => readFileSync(f)).join('\0')).digest('hex').slice(0, 16);
  return inputsDigest;
}

/** The cached data directory for this size, generated now if it is not there yet. */
async function cachedData(patients: number, perPatient: number): Promise<string> {
  const entry = join(CACHE, `${patients}-${perPatient}-${digestOfInputs()}`);
  if (existsSync(join(entry, 'data'))) return join(entry, 'data');
  mkdirSync(CACHE, { recursive: true });
  const tmp = mkdtempSync(join(CACHE, '.partial-'));
  try {
    // The generator itself writes the data (and its marker) into a scratch workspace.
    await createDemoWorkspace(join(tmp, 'ws'), { patients, encountersPerPatient: perPatient });
    mkdirSync(join(tmp, 'entry'));
    renameSync(join(tmp, 'ws', 'data'), join(tmp, 'entry', 'data'));
    try {
      renameSync(join(tmp, 'entry'), entry);
    } catch (err) {
      // Another test file finished the same entry first: theirs is identical.
      if (!existsSync(join(entry, 'data'))) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return join(entry, 'data');
}

/**
 * `createDemoWorkspace(dir, options)` with the data copied from the cache. `patients` is
 * required: a test says what size it needs (the generator's default is 100,000).
 */
export async function createTestDemoWorkspace(dir: string, options: DemoOptions & { readonly patients: number }): Promise<DemoWorkspace> {
  if (process.env.GATEHOUSE_TEST_DEMO_CACHE !== '0' && !existsSync(join(dir, 'data'))) {
    const data = await cachedData(options.patients, options.encountersPerPatient ?? DEFAULT_PER_PATIENT);
    mkdirSync(dir, { recursive: true });
    cpSync(data, join(dir, 'data'), { recursive: true });
  }
  return createDemoWorkspace(dir, options);
}
