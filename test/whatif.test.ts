/**
 * Policy what-if replay (issue 23): a recorded month of demo traffic (injected clock)
 * replayed under drafts, and the reload guard against an unintended widening.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { whatIf, renderWhatIf } from '../src/governance/whatif/run.ts';
import { readLoggedRequests } from '../src/governance/whatif/logged-request.ts';
import { replay } from '../src/governance/whatif/replay.ts';
import { queryTextStore, closeQueryTextStore } from '../src/governance/whatif/query-texts.ts';
import { ACK_DIR, rawPublicKey, regulatedWidenings, signAcknowledgement, wideningsDigest } from '../src/governance/whatif/reload-guard.ts';
import { analysePolicies } from '../src/governance/whatif/analysis.ts';
import { KEYS } from './helpers/workspace.ts';

const MONTH_START = Date.parse('2026-11-01T08:00:00Z');
const REPLAY_AT = new Date('2026-12-01T00:00:00Z');
const admin = generateKeyPairSync('ed25519');
const intruder = generateKeyPairSync('ed25519');

/** The demo's gatehouse.yaml with SQL texts kept and olivia's acknowledgement key declared. */
function prepare(wsDir: string): void {
  const f = join(wsDir, 'gatehouse.yaml');
  let y = readFileSync(f, 'utf8');
  y = y.replace('    groups: [data-owners, admins]\n    attributes: { org: st-avery, region: us-east }', `    groups: [data-owners, admins]\n    attributes: { org: st-avery, region: us-east, policySigningKey: "${rawPublicKey(admin.publicKey)}" }`);
  y += '\naudit:\n  keepSqlText: true\n';
  writeFileSync(f, y);
}

/** A copy of the workspace with gatehouse.yaml edited (a draft). */
function draftOf(wsDir: string, root: string, name: string, edit: (yaml: string) => string, policies?: (dir: string) => void): string {
  const d = join(root, name);
  cpSync(wsDir, d, { recursive: true, filter: (src) => !/[\\/](audit|state)([\\/]|$)/.test(src.slice(wsDir.length)) });
  const f = join(d, 'gatehouse.yaml');
  const before = readFileSync(f, 'utf8');
  const after = edit(before);
  if (!policies) assert.ok(after !== before, 'the draft edit must change the file');
  writeFileSync(f, after);
  policies?.(d);
  return d;
}

const tighten = (y: string): string => y.replace('    unmask: [name, date_of_birth]\n', '    unmask: [date_of_birth]\n');
const loosen = (y: string): string => y.replace(/(research-dp:\n    differentialPrivacy:\n      mechanism: gaussian\n      epsilon:) 1 /, '$1 3 ');
const widen = (y: string): string => y.replace('    unmask: [name, date_of_birth]\n', '    unmask: [name, date_of_birth, ssn]\n');

describe('policy what-if replay over a recorded month of demo traffic', () => {
  let root: string;
  let wsDir: string;
  let node: GatehouseNode;
  let clock = MONTH_START;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'gh-whatif-'));
    wsDir = join(root, 'ws');
    await createTestDemoWorkspace(wsDir, { patients: 400, keys: KEYS });
    prepare(wsDir);
    node = await startNode({ workspaceDir: wsDir, auditDir: join(wsDir, 'audit'), demo: true, engineOptions: { poolSize: 1 }, now: () => new Date(clock) });
    const gh = node.gatehouse;
    const q = (who: keyof typeof KEYS, purpose: string, sql: string) => gh.query({ credential: KEYS[who], sql, purpose, source: '127.0.0.1', channel: 'http' });
    // Thirty days: the insurer reads claims and patients, the analyst patients, the research
    // contractor two DP aggregates a day.
    for (let day = 0; day < 30; day++) {
      clock = MONTH_START + day * 86_400_000;
      await q('ivan', 'claims-processing', 'SELECT claim_id, amount_billed FROM claims ORDER BY claim_id LIMIT 5');
      clock += 60_000;
      await q('ivan', 'claims-processing', 'SELECT name, date_of_birth, ssn FROM patients ORDER BY patient_id LIMIT 3');
      clock += 60_000;
      await q('ada', 'operations', 'SELECT patient_id, name, ssn FROM patients ORDER BY patient_id LIMIT 3');
      for (let k = 0; k < 2; k++) {
        clock += 60_000;
        await q('rhea', 'research', 'SELECT department, count(*) AS n FROM encounters GROUP BY department');
      }
    }
  });

  after(async () => {
    await node?.close();
    closeQueryTextStore(join(wsDir, 'state'));
    rmSync(root, { recursive: true, force: true });
  });

  const run = (draftDir: string, stateDir: string | null = join(wsDir, 'state')) =>
    whatIf({ current: node.gatehouse.workspace, draftDir, log: node.audit, stateDir, now: REPLAY_AT, days: 30 });

  test('the report names exactly the tightened mask and the loosened DP rule, with the budget running out earlier', async () => {
    const draft = draftOf(wsDir, root, 'draft-1', (y) => loosen(tighten(y)));
    const r = await run(draft);
    assert.equal(r.replayed, 150);
    assert.equal(r.modes.sql, 150, 'every request was re-planned from its stored SQL text');
    assert.deepEqual(r.changes.map((c) => `${c.principal}×${c.dataset}`), ['ivan×patients', 'rhea×encounters']);
    const ivan = r.changes[0]!;
    assert.deepEqual(ivan.newlyMasked.map((m) => [m.column, m.before, m.after, m.regulated]), [['name', null, 'redact', true]]);
    assert.deepEqual([ivan.newlyDenied, ivan.newlyAllowed, ivan.newlyUnmasked.length, ivan.maskChanged.length], [0, 0, 0, 0]);
    assert.equal(ivan.rowCap, null);
    assert.equal(ivan.rowFilters, null);
    assert.equal(ivan.dpCost, null);
    const rhea = r.changes[1]!;
    assert.deepEqual(rhea.dpCost, { before: 1, after: 3 });
    assert.equal(rhea.budgetRunsOut?.before, null, 'under the version in force the month\'s 60 queries fit the budget');
    // ε = 3 per query: ρ(3, 1e-7) ≈ 0.157 against a cap of ρ(10, 1e-6) ≈ 1.539 — the 10th query is refused (day 5).
    assert.equal(rhea.budgetRunsOut?.after?.slice(0, 10), '2026-11-05');
    assert.equal(rhea.budgetEarlier, true);
    assert.deepEqual([rhea.newlyDenied, rhea.newlyMasked.length, rhea.newlyUnmasked.length], [0, 0, 0]);
    assert.deepEqual(r.widenings, [], 'neither change shows a regulated column unmasked');
    assert.deepEqual(r.analysis.filter((f) => f.new), [], 'the draft adds no policy finding');
    const text = renderWhatIf(r);
    assert.match(text, /ivan × patients[\s\S]*newly masked: name \(regulated\): as stored → redact/);
    assert.match(text, /rhea × encounters[\s\S]*DP ε per query: 1 → 3[\s\S]*runs out: never → 2026-11-05/);
  });

  test('without stored SQL text the replay uses the logged shape and finds the same changes', async () => {
    const draft = draftOf(wsDir, root, 'draft-2', (y) => loosen(tighten(y)));
    const r = await run(draft, null);
    assert.equal(r.modes.shape, 150);
    assert.deepEqual(r.changes.map((c) => [c.principal, c.dataset, c.newlyMasked.map((m) => m.column), c.dpCost]), [['ivan', 'patients', ['name'], null], ['rhea', 'encounters', [], { before: 1, after: 3 }]]);
  });

  test('keeping SQL text is opt-in: the texts are keyed by the audit entry\'s fingerprint', async () => {
    const { requests } = await readLoggedRequests(node.audit, ['ivan'], { from: new Date(MONTH_START), to: REPLAY_AT });
    const store = queryTextStore(join(wsDir, 'state'));
    assert.equal(store.get(requests[0]!.sqlFingerprint!), 'SELECT claim_id, amount_billed FROM claims ORDER BY claim_id LIMIT 5');
    assert.equal(store.count(), 4, 'one text per distinct statement');
  });

  test('a draft that denies a purpose reports the requests as newly denied, and one that grants reports newly allowed', async () => {
    const draft = draftOf(wsDir, root, 'draft-3', (y) => y, (d) => {
      const f = join(d, 'policies', 'insurer.cedar');
      writeFileSync(f, readFileSync(f, 'utf8').replace('@id("insurer-claims")\n@obligations("insurer-claims")\npermit', '@id("insurer-claims")\n@obligations("insurer-claims")\nforbid').replace('@obligations("insurer-claims")\nforbid', 'forbid'));
    });
    const r = await run(draft);
    const claims = r.changes.find((c) => c.principal === 'ivan' && c.dataset === 'claims');
    assert.equal(claims?.newlyDenied, 30);
    assert.equal(r.changes.length, 1);
    // The reverse: from the draft back to the version in force, the same requests are newly allowed.
    const reverse = await replay(await loadWorkspace(draft), node.gatehouse.workspace, (await readLoggedRequests(node.audit, ['ivan'], { from: new Date(MONTH_START), to: REPLAY_AT })).requests, { from: new Date(MONTH_START), to: REPLAY_AT });
    assert.equal(reverse.changes.find((c) => c.dataset === 'claims')?.newlyAllowed, 30);
  });

  test('policy analysis flags a shadowed, a redundant and a never-matching policy the draft adds', async () => {
    const draft = draftOf(wsDir, root, 'draft-4', (y) => y, (d) => writeFileSync(join(d, 'policies', 'extra.cedar'), `
@id("insurer-marketing")
permit (principal in Group::"insurers", action == Action::"query", resource == Dataset::"claims")
when { context.purpose == "marketing" };

@id("insurer-claims-again")
@obligations("insurer-claims")
permit (principal in Group::"insurers", action == Action::"query", resource == Dataset::"claims")
when { context.purpose == "claims-processing" };

@id("nobody")
permit (principal, action == Action::"query", resource == Dataset::"claims")
when { principal.org == "no-such-organisation" };
`));
    const l = await loadWorkspace(draft);
    const found = analysePolicies(l, { at: REPLAY_AT }).findings.map((f) => `${f.kind}:${f.policy}`).sort();
    assert.ok(found.includes('shadowed:insurer-marketing'), found.join(', '));
    assert.ok(found.includes('redundant:insurer-claims-again'), found.join(', '));
    assert.ok(found.includes('never-matching:nobody'), found.join(', '));
    assert.ok(!found.includes('redundant:insurer-patients') && !found.some((f) => f.endsWith(':no-marketing-on-regulated')), found.join(', '));
    const r = await run(draft);
    assert.deepEqual(r.analysis.filter((f) => f.new).map((f) => `${f.kind}:${f.policy}`).sort(), ['never-matching:nobody', 'redundant:insurer-claims', 'redundant:insurer-claims-again', 'shadowed:insurer-marketing']);
  });

  test('the reload guard refuses an unintended widening of a regulated column, and the version in force stays', async () => {
    const gh = node.gatehouse;
    const inForce = gh.policyVersion;
    const yaml = readFileSync(join(wsDir, 'gatehouse.yaml'), 'utf8');
    try {
      writeFileSync(join(wsDir, 'gatehouse.yaml'), widen(yaml));
      await assert.rejects(gh.reload(), (err: { code?: string; message?: string; reasons?: string[] }) => {
        assert.equal(err.code, 'POLICY_WIDENING_UNACKNOWLEDGED');
        assert.match(err.message!, /ivan would see patients\.ssn \(regulated\) unmasked/);
        return true;
      });
      assert.equal(gh.policyVersion, inForce);
      const res = await gh.query({ credential: KEYS.ivan, sql: 'SELECT ssn FROM patients ORDER BY patient_id LIMIT 1', purpose: 'claims-processing', source: '127.0.0.1', channel: 'http' });
      assert.match(String(res.rows[0]![0]), /^\*{5,}\d{4}$/, 'still masked to its last four digits');
    } finally {
      writeFileSync(join(wsDir, 'gatehouse.yaml'), yaml);
    }
  });

  test('a new principal in an existing role is reported as a membership widening and does not hold up the reload', async () => {
    const gh = node.gatehouse;
    const yaml = readFileSync(join(wsDir, 'gatehouse.yaml'), 'utf8');
    const current = gh.workspace;
    try {
      writeFileSync(join(wsDir, 'gatehouse.yaml'), yaml.replace('principals:\n', 'principals:\n  nadia:\n    groups: [internal-analysts]\n    attributes: { org: st-avery, region: us-east }\n'));
      const next = await loadWorkspace(wsDir);
      const w = regulatedWidenings(current, next, { at: REPLAY_AT });
      assert.ok(w.length > 0 && w.every((x) => x.kind === 'membership' && x.principal === 'nadia'), JSON.stringify(w));
      assert.equal((await gh.reload()).changed, true);
    } finally {
      writeFileSync(join(wsDir, 'gatehouse.yaml'), yaml);
      await gh.reload();
    }
  });

  test('only a valid acknowledgement by an administrator of the version in force lets the widening through', async () => {
    const gh = node.gatehouse;
    const yaml = readFileSync(join(wsDir, 'gatehouse.yaml'), 'utf8');
    const current = gh.workspace;
    const ackDir = join(wsDir, ACK_DIR);
    try {
      writeFileSync(join(wsDir, 'gatehouse.yaml'), widen(yaml));
      const next = await loadWorkspace(wsDir);
      const w = regulatedWidenings(current, next, { at: REPLAY_AT });
      assert.deepEqual(w.map((x) => `${x.kind}:${x.principal}:${x.dataset}.${x.column}`), ['policy:ivan:patients.ssn']);
      const fields = { from: current.workspace.policyVersion, to: next.workspace.policyVersion, widenings: wideningsDigest(w) };
      mkdirSync(ackDir, { recursive: true });
      // A non-administrator, an administrator with the wrong key, and a right signature over a
      // different change are all refused.
      writeFileSync(join(ackDir, 'a.json'), JSON.stringify(signAcknowledgement({ ...fields, admin: 'ivan' }, intruder.privateKey)));
      writeFileSync(join(ackDir, 'b.json'), JSON.stringify(signAcknowledgement({ ...fields, admin: 'olivia' }, intruder.privateKey)));
      writeFileSync(join(ackDir, 'c.json'), JSON.stringify(signAcknowledgement({ ...fields, widenings: wideningsDigest([]), admin: 'olivia' }, admin.privateKey)));
      const forged = signAcknowledgement({ ...fields, admin: 'olivia' }, admin.privateKey);
      writeFileSync(join(ackDir, 'd.json'), JSON.stringify({ ...forged, to: current.workspace.policyVersion }));
      await assert.rejects(gh.reload(), (err: { code?: string; reasons?: string[] }) => {
        assert.equal(err.code, 'POLICY_WIDENING_UNACKNOWLEDGED');
        assert.equal(err.reasons!.filter((x) => x.startsWith('acknowledgement ignored')).length, 4);
        return true;
      });
      assert.equal(gh.policyVersion, current.workspace.policyVersion);
      writeFileSync(join(ackDir, 'e.json'), JSON.stringify(signAcknowledgement({ ...fields, admin: 'olivia' }, admin.privateKey)));
      const r = await gh.reload();
      assert.equal(r.changed, true);
      assert.equal(gh.policyVersion, next.workspace.policyVersion);
    } finally {
      rmSync(ackDir, { recursive: true, force: true });
      writeFileSync(join(wsDir, 'gatehouse.yaml'), yaml);
      await gh.reload();
    }
  });
});
