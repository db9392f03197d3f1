/**
 * kill -9 in the middle of a burst of differentially private queries, then a restart: no
 * privacy budget stays spent on an answer nobody received (issue 13, "DP charges stranded by
 * a crash"). Each round kills a real child process at a different point of its burst; the
 * restart reconciles, and then every charge of the ledger is either named by the audit entry
 * of its request, or refunded — the stranded ones by one `privacy.reconcile` entry.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { openTransparencyLog } from '../src/audit/index.ts';
import { apiKeyDigest } from '../src/identity/digest.ts';
import { RECONCILE_REASON } from '../src/kernel/reconcile-budgets.ts';
import { startNode } from '../src/node/start.ts';
import { auditedChargeId } from '../src/privacy/accounting/describe.ts';
import type { ChargeRecord } from '../src/privacy/accounting/budget-store.ts';
import { openEmbeddedState } from '../src/state/backend.ts';

const KEY = 'k-analyst-dp-crash-0123456789abcdef';
const BURST = 50;
let dir: string;
let ws: string;
let auditDir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-dp-crash-'));
  ws = join(dir, 'ws');
  auditDir = join(dir, 'audit');
  mkdirSync(join(ws, 'data'), { recursive: true });
  mkdirSync(join(ws, 'policies'), { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run(`COPY (SELECT i AS unit_id, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END AS grp, (i % 100)::DOUBLE AS value FROM range(0, 20000) r(i)) TO '${join(ws, 'data', 'readings.parquet')}' (FORMAT parquet)`);
  c.closeSync();
  db.closeSync();
  writeFileSync(join(ws, 'secrets.key'), 'cd'.repeat(32));
  writeFileSync(join(ws, 'schema.cedarschema'), 'entity Group; entity Principal in [Group]; entity Dataset;\naction query appliesTo { principal: Principal, resource: Dataset, context: { purpose: String } };\n');
  writeFileSync(join(ws, 'policies', 'p.cedar'), '@obligations("dp")\npermit (principal, action == Action::"query", resource == Dataset::"readings") when { context.purpose == "research" };\n');
  writeFileSync(join(ws, 'gatehouse.yaml'), `version: 1
name: crash
secrets: { hashKeyFile: secrets.key }
defaults:
  concurrency: { total: 64, perPrincipal: 64, perOrganisation: 64, queuePerPrincipal: 64 }
datasets:
  readings:
    source: { parquet: data/readings.parquet }
    classification: regulated
    privacyUnit: unit_id
    columns:
      unit_id: { type: BIGINT, classification: confidential }
      grp:     { type: VARCHAR, classification: internal }
      value:   { type: DOUBLE, classification: confidential, bounds: [0, 100] }
obligations:
  dp:
    differentialPrivacy:
      mechanism: gaussian
      epsilon: 0.1
      delta: 1.0e-7
      maxGroupsPerUnit: 1
      maxRowsPerUnitPerGroup: 1
      publicGroups: { grp: [a, b] }
      budget: { epsilon: 100000, delta: 1.0e-6 }
principals:
  analyst: { apiKeySha256: [${apiKeyDigest(KEY)}] }
`);
});
after(() => { rmSync(dir, { recursive: true, force: true }); });

type State = Awaited<ReturnType<typeof openEmbeddedState>>;

/** Charges in the ledger so far (read beside the running child: the ledger is a WAL-mode SQLite file, and each read sees the last commit). */
async function chargesSoFar(state: State): Promise<number> {
  return (await state.budgets.history({ limit: 100_000 })).filter((e) => e.kind === 'charge').length;
}

/**
 * Starts the burst in a child process and kills it with SIGKILL once `charges` new charges are in
 * the ledger, or `answers` answers were printed. The ledger is polled through one reader opened
 * for the round (opening the state per poll cost ~20 ms of CPU each, taken from the child).
 */
async function burstAndKill(at: { charges?: number; answers?: number }): Promise<{ answered: number }> {
  const state = await openEmbeddedState({ dir: join(ws, 'state') });
  try { return await burstAndKillWith(state, at); } finally { await state.close(); }
}

function burstAndKillWith(state: State, at: { charges?: number; answers?: number }): Promise<{ answered: number }> {
  return new Promise((resolve, reject) => {
    void chargesSoFar(state).then((base) => {
      const child = spawn(process.execPath, [new URL('./support/dp-burst-node.ts', import.meta.url).pathname, ws, auditDir, KEY, String(BURST)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let answered = 0;
      let killed = false;
      let stderr = '';
      let polling: Promise<void> = Promise.resolve();
      const kill = (): void => { if (!killed) { killed = true; child.kill('SIGKILL'); } };
      const poll = async (): Promise<void> => {
        while (!killed) {
          if ((await chargesSoFar(state)) - base >= at.charges!) return kill();
          await new Promise((r) => setTimeout(r, 2));
        }
      };
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.stdout.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) {
          if (line === 'ready' && at.charges !== undefined) polling = poll().catch(reject);
          if (line === 'answered') { answered++; if (at.answers !== undefined && answered >= at.answers) kill(); }
        }
      });
      // A round that never reaches its kill point fails instead of hanging; the timer must not
      // outlive the round (a pending timer keeps the test file's process alive for its full minute).
      const timer = setTimeout(kill, 60_000);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        // The reader stays open until the poll loop has seen the kill.
        if (signal === 'SIGKILL') void polling.then(() => resolve({ answered }));
        else reject(new Error(`the node exited by itself (${code}): ${stderr.slice(-2000)}`));
      });
    }, reject);
  });
}

/** Restarts the node (which reconciles), closes it, and reads back the ledger and the log. */
async function restartAndRead(): Promise<{ charges: ChargeRecord[]; named: Set<string>; reconciled: Map<string, number> }> {
  const node = await startNode({ workspaceDir: ws, auditDir, demo: true, engineOptions: { poolSize: 1 } });
  await node.close();
  const state = await openEmbeddedState({ dir: join(ws, 'state') });
  const log = openTransparencyLog(auditDir, { demo: true });
  try {
    const ids = [...new Set((await state.budgets.history({ limit: 100_000 })).filter((e) => e.kind === 'charge').map((e) => e.chargeId))];
    const charges = await Promise.all(ids.map((id) => state.budgets.getCharge(id)));
    const named = new Set<string>();
    const reconciled = new Map<string, number>();
    for await (const { leaf } of log.scan({})) {
      for (const r of leaf.entry.reasons) {
        const id = auditedChargeId(r);
        if (id) named.add(id);
        const m = /^dp-budget reconcile-refund charge=(\S+) /.exec(r);
        if (m && leaf.entry.action === 'privacy.reconcile') reconciled.set(m[1]!, (reconciled.get(m[1]!) ?? 0) + 1);
      }
    }
    return { charges, named, reconciled };
  } finally {
    await log.close();
    await state.close();
  }
}

describe('a crash in a burst of DP queries strands no budget', () => {
  const points = [{ charges: 1 }, { charges: 20 }, { charges: 45 }, { answers: 10 }, { answers: 40 }];
  let releasedUnnamed = 0;
  for (const point of points) {
    it(`settles every charge after kill -9 ${point.answers ? `after ${point.answers} answers` : `once ${point.charges} queries are charged`}`, async () => {
      const { answered } = await burstAndKill(point);
      const { charges, named, reconciled } = await restartAndRead();
      assert.ok(charges.length > 0, 'the burst charged the budget before the kill');
      const open = charges.filter((c) => c.state === 'charged' && !named.has(c.chargeId));
      assert.deepEqual(open.map((c) => c.chargeId), [], 'no charge stays open without an audit entry');
      for (const c of charges) {
        if (c.state === 'refunded' && c.refundReason === RECONCILE_REASON) {
          assert.equal(reconciled.get(c.chargeId), 1, 'each reconciliation refund is listed in exactly one privacy.reconcile entry');
          assert.ok(!named.has(c.chargeId), 'a charge its request audited is never refunded by reconciliation');
        } else if (c.state === 'released' && !named.has(c.chargeId)) {
          // Killed between marking the result released and recording its entry: budget
          // counted for an answer never sent (the safe direction); the store never refunds a release.
          releasedUnnamed++;
        } else {
          assert.ok(named.has(c.chargeId), `charge ${c.chargeId} (${c.state}) is named by the audit entry of its request`);
        }
      }
      const answeredCharges = charges.filter((c) => c.state === 'released').length;
      assert.ok(answeredCharges >= answered, 'every answer the child printed was released');
    });
  }

  it('finds nothing more to refund at the next start (reconciliation is idempotent)', async (t) => {
    const before = await restartAndRead();
    const after = await restartAndRead();
    assert.deepEqual([...after.reconciled], [...before.reconciled]);
    assert.ok(before.reconciled.size > 0, 'the kills above did strand charges for reconciliation to refund');
    // Known residue (docs/operations.md): a kill between "released" and the audit entry keeps that charge counted.
    t.diagnostic(`charges released but killed before their audit entry (kept counted): ${releasedUnnamed}`);
  });
});
