/**
 * Child process for the concurrency test: opens its own connection to the shared ledger,
 * waits for a common start time, then charges as fast as it can. Every 4th accepted charge
 * is refunded (its "query failed"); the others are marked released. Prints one JSON line:
 * the accepted charges (chargeId, nano-ρ, refunded) and the number of denials.
 */
import { writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BudgetStore, rhoToNano } from '../budget-store.ts';

const [path, worker, startAt, count] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const SIZES = [0.003, 0.005, 0.007, 0.011];

const store = await BudgetStore.open(path, { busyTimeoutMs: 50, maxRetries: 200 });
await sleep(Math.max(0, startAt - Date.now()));
const accepted: { chargeId: string; nano: number; refunded: boolean }[] = [];
let denied = 0;
for (let i = 0; i < count; i++) {
  const rho = SIZES[(i + worker) % SIZES.length]!;
  const out = await store.charge({ subject: 'org:acme', dataset: 'patients', rho, queryId: `w${worker}-q${i}` });
  if (!out.ok) { denied++; continue; }
  assert(out.spentRho <= out.capRho, 'an accepted charge reported spending beyond the cap');
  const refunded = accepted.length % 4 === 3;
  if (refunded) await store.refund(out.chargeId, 'engine failed before release');
  else await store.markReleased(out.chargeId);
  accepted.push({ chargeId: out.chargeId, nano: rhoToNano(rho, 'ceil'), refunded });
}
await store.close();
writeSync(1, JSON.stringify({ worker, accepted, denied }) + '\n');

function assert(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}
