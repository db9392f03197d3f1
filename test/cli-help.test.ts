/**
 * `gatehouse <command> [<sub-command>] --help` for every command and sub-command: exit 0,
 * the command's own usage, and every option the command parses (the help is printed from
 * the option table it parses with, src/cli/commands.ts). Also the one exit-status scheme.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { main } from '../src/cli/main.ts';
import { COMMANDS } from '../src/cli/commands.ts';
import { GOVERNANCE_COMMANDS } from '../src/cli/governance.ts';
import { GOVERNANCE_OPS } from '../src/governance/service.ts';
import { ERRORS, GatehouseError, type ErrorCode } from '../src/errors.ts';
import { exitCodeOf, UsageError } from '../src/cli/exit.ts';

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  const s = new PassThrough();
  let out = '';
  s.on('data', (c) => { out += String(c); });
  const code = await main(argv, s);
  return { code, out };
}

describe('gatehouse <command> --help', () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    it(`"${name} --help" exits 0 and lists every option ${name} parses`, async () => {
      for (const flag of ['--help', '-h']) {
        const { code, out } = await run(name, flag);
        assert.equal(code, 0, out);
        assert.ok(out.startsWith(spec.summary), out);
        for (const opt of Object.keys(spec.options)) assert.ok(out.includes(`--${opt}`), `${name} --help omits --${opt}`);
        assert.match(out, /Exit status: 0 success/);
      }
    });
    for (const sub of Object.keys(spec.subs ?? {})) {
      it(`"${name} ${sub} --help" exits 0 with the sub-command's usage`, async () => {
        const { code, out } = await run(name, sub, '--help');
        assert.equal(code, 0, out);
        assert.ok(out.includes(`gatehouse ${name} ${sub}`), out);
      });
    }
  }

  it('serve --help lists --pg-port, --state-url, --quiet and --shutdown-timeout', async () => {
    const { out } = await run('serve', '--help');
    for (const f of ['--pg-port', '--state-url', '--quiet', '--shutdown-timeout', '--tls-client-ca', '--insecure-http']) assert.ok(out.includes(f), f);
  });

  for (const group of GOVERNANCE_COMMANDS) {
    it(`"${group} --help" and each of its sub-commands' --help exit 0`, async () => {
      const top = await run(group, '--help');
      assert.equal(top.code, 0, top.out);
      for (const op of GOVERNANCE_OPS.filter((o) => o.name.startsWith(`${group}.`))) {
        const sub = op.name.slice(group.length + 1);
        if (group === 'flows' || group === 'report') continue;
        const r = await run(group, sub, '--help');
        assert.equal(r.code, 0, `${group} ${sub} --help: ${r.out}`);
        assert.ok(r.out.includes(op.summary), `${group} ${sub} --help: ${r.out}`);
      }
    });
  }

  it('the top-level help names every command', async () => {
    const { code, out } = await run('--help');
    assert.equal(code, 0);
    for (const c of Object.keys(COMMANDS)) assert.match(out, new RegExp(`\\n  ${c} `));
    for (const g of GOVERNANCE_COMMANDS) assert.ok(out.includes(g), g);
  });
});

describe('the exit-status scheme', () => {
  it('maps every code of the error table by its audit outcome: deny → 3, error → 1', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      assert.equal(exitCodeOf(new GatehouseError(code as ErrorCode, 'x')), spec.outcome === 'deny' ? 3 : 1, code);
    }
    assert.equal(exitCodeOf(new UsageError('x')), 2);
    assert.equal(exitCodeOf(new Error('unexpected')), 1);
  });

  it('MFA_REQUIRED and AUTH_INVALID exit alike (both refusals)', () => {
    assert.equal(exitCodeOf(new GatehouseError('MFA_REQUIRED', 'x')), exitCodeOf(new GatehouseError('AUTH_INVALID', 'x')));
  });

  it('an unknown command, sub-command or option exits 2 with a hint', async () => {
    const cmd = await run('qeury', 'SELECT 1');
    assert.equal(cmd.code, 2);
    assert.match(cmd.out, /error REQUEST_INVALID: unknown command "qeury"\n {2}hint: did you mean "gatehouse query"\?/);
    assert.equal((await run('audit', 'nope')).code, 2);
    assert.equal((await run('agreement', 'nope')).code, 2);
    const opt = await run('query', '--colour', 'red', 'SELECT 1', '--json');
    assert.equal(opt.code, 2);
    assert.equal(JSON.parse(opt.out).error.code, 'REQUEST_INVALID');
  });
});
