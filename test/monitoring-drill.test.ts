/**
 * `gatehouse drill exfiltration`: every link of the chain holds on a throwaway demo —
 * routine work raises nothing; slow exfiltration under every per-query cap is detected; the
 * contractor is suspended at once and refused; the on-call webhook arrives signed; the
 * suspension is audited; the auditor's report shows what was taken; the incident opens; a
 * leaked subset traces back to the contractor and one of its queries; an administrator lifts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { runExfiltrationDrill } from '../src/cli/drill.ts';
import { main } from '../src/cli/main.ts';

describe('the exfiltration drill', () => {
  it('passes every step in order, with what each step observed', async () => {
    const steps = await runExfiltrationDrill({ patients: 300 });
    assert.deepEqual(steps.map((s) => s.step), ['start', 'routine work', 'slow exfiltration', 'detection', 'suspension', 'webhook', 'audit', 'report', 'incident', 'trace', 'lift']);
    for (const s of steps) assert.ok(s.ok, `${s.step}: ${s.detail}`);
    const by = Object.fromEntries(steps.map((s) => [s.step, s.detail]));
    assert.match(by['routine work']!, /no alert/);
    assert.match(by.detection!, /^alert alrt_\S+ after query \d+: ivan took \d+ rows of claims/);
    assert.match(by.suspension!, /refused \(POLICY_DENIED\): automatic response "suspend-sessions"/);
    assert.match(by.webhook!, /signature verified/);
    assert.match(by.report!, /ivan took \d+ claims rows/);
    assert.match(by.trace!, /most likely released to ivan \(audit entry \d+( and \d+ more)?\), confidence (0\.99\d*|1)$/);
    for (let i = 1; i < steps.length; i++) assert.ok(steps[i]!.atMs >= steps[i - 1]!.atMs, 'the timeline is in order');
  });

  it('refuses an unknown drill with a usage error', async () => {
    let text = '';
    const out = new Writable({ write(c, _e, cb) { text += String(c); cb(); } });
    assert.equal(await main(['drill', 'ransomware'], out), 2, text);
  });
});
