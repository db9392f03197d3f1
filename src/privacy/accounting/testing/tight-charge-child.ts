/**
 * Child process for the tight-accounting concurrency test: its own connection to the shared
 * ledger, waits for a common start time, then charges pure ε = 1 releases (as PrivacyLoss) as
 * fast as it can. Prints one JSON line: how many were accepted and denied.
 */
import { writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BudgetStore } from '../budget-store.ts';

const [path, worker, startAt, count] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const store = await BudgetStore.open(path, { busyTimeoutMs: 50, maxRetries: 200 });
await sleep(Math.max(0, startAt - Date.now()));
let accepted = 0, denied = 0;
for (let i = 0; i < count; i++) {
  const out = await store.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, loss: { pure: [1], mu2: 0, delta: 0 }, queryId: `w${worker}-q${i}` });
  if (out.ok) accepted++; else denied++;
}
await store.close();
writeSync(1, JSON.stringify({ worker, accepted, denied }) + '\n');
