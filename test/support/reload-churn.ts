/**
 * Reloads a workspace many times, each reload changing a dataset definition (so the engines
 * are reopened), and prints JSON lines: the node's RSS at checkpoints, and how a query that
 * was running while the first reload swapped the engines ended. For test/reload-engines.test.ts.
 *
 *   node test/support/reload-churn.ts DIR RELOADS
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTransparencyLog } from '../../src/audit/index.ts';
import { createDemoWorkspace } from '../../src/demo/workspace.ts';
import { Runtime } from '../../src/kernel/runtime.ts';
import { query } from '../../src/operations/query/query.ts';

const [dir, reloadsArg] = process.argv.slice(2) as [string, string];
const KEY = 'test-key-ada-0123456789abcdef0';
const ws = join(dir, 'ws');
await createDemoWorkspace(ws, { patients: 2000, keys: { rhea: 'k-rhea-0123456789abcdef01', ivan: 'k-ivan-0123456789abcdef01', ada: KEY, audrey: 'k-audrey-0123456789abcdef', olivia: 'k-olivia-0123456789abcdef' } });
const log = openTransparencyLog(join(dir, 'audit'), { demo: true });
const rt = await Runtime.open({ workspaceDir: ws, audit: log, auditReader: log, demo: true, engineOptions: { poolSize: 2 } });
const yamlPath = join(ws, 'gatehouse.yaml');
const original = readFileSync(yamlPath, 'utf8');
const out = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };
const ask = (sql: string) => query(rt, { credential: KEY, sql, purpose: 'operations', source: '127.0.0.1', channel: 'test' });

/** A new description for the claims dataset: its definition changes, so the engines are reopened. */
async function reloadWith(n: number): Promise<void> {
  writeFileSync(yamlPath, original.replace('description: Insurance claims per encounter', `description: Insurance claims per encounter (revision ${n})`));
  const r = await rt.reload();
  if (!r.changed) throw new Error('the reload did not change the workspace');
}

// Warm up: parser, Cedar, first engines.
await ask('SELECT count(*) FROM claims');

// A query in flight across the first reload: it started on the old engines and must finish on them.
const slow = ask('SELECT count(*) AS n FROM encounters a JOIN encounters b ON a.cost < b.cost AND a.length_of_stay_days <= b.length_of_stay_days');
let slowDone = false;
slow.then(() => { slowDone = true; }, () => { slowDone = true; });
await reloadWith(0);
const heldDuringReload = rt.openEngineSets;
const runningAfterReload = !slowDone;
const slowResult = await slow.then((r) => ({ ok: true, rows: r.rows.length }), (err: unknown) => ({ ok: false, code: (err as { code?: string }).code ?? String(err) }));
out({ kind: 'in-flight', heldDuringReload, runningAfterReload, slowResult, openAfter: rt.openEngineSets });

const reloads = Number(reloadsArg);
for (let i = 1; i <= reloads; i++) {
  await reloadWith(i);
  await ask('SELECT count(*) FROM claims');
  if (i === 10 || i === reloads) {
    globalThis.gc?.();
    out({ kind: 'rss', reloads: i, rssMb: Math.round(process.memoryUsage().rss / 1048576), openEngineSets: rt.openEngineSets });
  }
}
await rt.close();
await log.close();
out({ kind: 'done' });
