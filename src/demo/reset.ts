/**
 * `gatehouse demo reset`: the demo as it was on its first start, in a second.
 *
 * A walkthrough changes the demo for good: the contractor's authenticator is enrolled (its
 * secret lived only in the shell that ran `mfa enrol`, so after a restart nobody can sign in
 * as rhea), an agreement is terminated, results are shredded, budgets are spent. Reset
 * forgets everything the demo *did* and keeps what is slow or useful to keep: the generated
 * data (100,000 patients take a while) and the API keys and passwords printed before.
 *
 *   removed   state/ (users, MFA enrolments, sessions, governance records, budgets, keyring,
 *             saved results, reports), audit/ (the transparency log), datasets/ (ingested)
 *   rewritten gatehouse.yaml, policies/, schema.cedarschema (edits from docs/workspace.md)
 *   kept      data/, secrets/hash.key, demo-keys.json, demo-passwords.json
 *
 * The server must be stopped: its open log and stores would otherwise outlive the files.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GatehouseError } from '../errors.ts';
import { createDemoWorkspace, type DemoPrincipal, type DemoWorkspace } from './workspace.ts';

const FORGOTTEN = ['state', 'audit', 'datasets', 'gatehouse.yaml', 'policies', 'schema.cedarschema'] as const;

export async function resetDemoWorkspace(dir: string): Promise<DemoWorkspace & { removed: string[] }> {
  const root = resolve(dir);
  if (!existsSync(join(root, 'demo-keys.json'))) {
    throw new GatehouseError('REQUEST_INVALID', `${dir} is not a demo workspace (no demo-keys.json)`, { hint: 'create one with gatehouse demo init (or npm start)' });
  }
  // The keys stay the ones printed before (createDemoWorkspace reads them only beside a gatehouse.yaml).
  const keys = JSON.parse(readFileSync(join(root, 'demo-keys.json'), 'utf8')) as Partial<Record<DemoPrincipal, string>>;
  const removed: string[] = [];
  for (const name of FORGOTTEN) {
    const p = join(root, name);
    if (existsSync(p)) { rmSync(p, { recursive: true, force: true }); removed.push(name); }
  }
  const demo = await createDemoWorkspace(root, { identity: true, keys });
  return { ...demo, removed };
}
