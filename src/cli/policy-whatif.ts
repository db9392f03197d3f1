/**
 * `gatehouse policy whatif --draft DIR`: the logged requests of the last N days replayed
 * under a draft workspace (src/governance/whatif/), in-process on a workspace that is not
 * being served (the transparency log takes one process). With `--acknowledge`, an
 * administrator signs the draft's regulated widenings so that `serve` accepts the reload.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { COMMANDS, DEMO_DIR, parseOptions } from './commands.ts';
import { EXIT, UsageError } from './exit.ts';

type Out = NodeJS.WritableStream;

const usage = (message: string): UsageError => new UsageError(message, { hint: 'gatehouse policy whatif --help' });

export async function cmdPolicyWhatif(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: parseOptions(COMMANDS.policy!.options), allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
  if (positionals.length > 0) throw usage(`unexpected argument "${positionals[0]!.slice(0, 60)}"`);
  if (typeof values.draft !== 'string') throw usage('give the draft workspace: --draft DIR');
  const days = values.days === undefined ? 30 : Number(values.days);
  if (!Number.isInteger(days) || days < 1 || days > 3660) throw usage('--days must be a whole number from 1 to 3660');
  if (values.acknowledge && (typeof values.as !== 'string' || typeof values['signing-key'] !== 'string')) throw usage('--acknowledge needs --as ADMIN and --signing-key FILE');
  const workspaceDir = resolve(values.workspace ?? DEMO_DIR);
  const { startNode } = await import('../node/start.ts');
  const { whatIf, renderWhatIf } = await import('../governance/whatif/run.ts');
  const node = await startNode({ workspaceDir, ...(values['audit-dir'] ? { auditDir: values['audit-dir'] } : {}), demo: existsSync(join(workspaceDir, 'demo-keys.json')) });
  try {
    const gh = node.gatehouse;
    const report = await whatIf({
      current: gh.workspace, draftDir: resolve(values.draft), log: node.audit, stateDir: join(workspaceDir, 'state'), now: new Date(), days,
      gate: async (principal, dataset, purpose, now) => {
        const g = await gh.governanceStore.evaluate({ principal, dataset, purpose, now });
        return { context: g.context, denials: g.denials.map((d) => `${d.code}: ${d.message}`) };
      },
    });
    let acknowledged: string | null = null;
    if (values.acknowledge) {
      if (!report.widenings.some((w) => w.kind === 'policy')) throw usage('the draft newly unmasks no regulated column: there is nothing to acknowledge');
      const { ACK_DIR, acknowledgementProblem, signAcknowledgement } = await import('../governance/whatif/reload-guard.ts');
      const ack = signAcknowledgement({ from: report.currentVersion, to: report.draftVersion, widenings: report.wideningsDigest, admin: values.as }, readFileSync(values['signing-key'], 'utf8'));
      const problem = acknowledgementProblem(ack, gh.workspace, report.draftVersion, report.wideningsDigest);
      if (problem) throw usage(`this acknowledgement would not be accepted: ${problem}`);
      const dir = join(resolve(values.draft), ACK_DIR);
      mkdirSync(dir, { recursive: true });
      acknowledged = join(dir, `${values.as}-${report.draftVersion.slice(7, 19)}.json`);
      writeFileSync(acknowledged, `${JSON.stringify(ack, null, 2)}\n`);
    }
    if (values.json) out.write(`${JSON.stringify({ ...report, acknowledgement: acknowledged }, null, 2)}\n`);
    else out.write(`${renderWhatIf(report)}${acknowledged ? `\nacknowledged by ${values.as}: ${acknowledged} (deploy it with the draft)\n` : ''}`);
    return report.widenings.some((w) => w.kind === 'policy') && !acknowledged ? EXIT.refused : EXIT.ok;
  } finally {
    await node.close();
  }
}
