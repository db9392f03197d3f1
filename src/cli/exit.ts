/**
 * How the `gatehouse` command line ends: where its errors go and which exit status it returns.
 *
 * One scheme for every command, derived from the error table (src/errors.ts), so a script can
 * tell "you may not" from "it broke" without reading text:
 *
 *   0  success
 *   1  error: the request failed (every code whose audit outcome is `error`, an unreachable
 *      server, an invalid workspace)
 *   2  usage: the command line itself is wrong (unknown command or option, a missing
 *      argument); nothing was sent
 *   3  refused: the request was decided and denied (every code whose audit outcome is
 *      `deny`: authentication, MFA, policy, obligations, budget, rate limits, not found)
 *
 * Errors always go to stderr, never stdout, so `$(…)`, `| grep` and `> file` capture only
 * results. Under `--json` an error is one line `{"error":{code,message,hint,reasons[,detail]}}`.
 */
import { ERRORS, GatehouseError, isErrorCode, type GatehouseErrorOptions } from '../errors.ts';

export const EXIT = { ok: 0, error: 1, usage: 2, refused: 3 } as const;

/** The scheme as the help and docs/cli.md print it. */
export const EXIT_CODES_HELP = `Exit status: 0 success · 1 error (the request failed) · 2 usage (the command line is wrong;
nothing was sent) · 3 refused (authentication, MFA, policy, obligation, budget, rate limit,
not found: every code whose audit outcome is "deny" in docs/errors.md). Errors go to stderr;
with --json as {"error":{"code","message","hint","reasons"}}.`;

/** A command line that cannot be run as typed (exit 2). Its code is REQUEST_INVALID. */
export class UsageError extends GatehouseError {
  constructor(message: string, options: GatehouseErrorOptions = {}) {
    super('REQUEST_INVALID', message, options);
  }
}

/** The exit status of a failure. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (isParseArgsError(err)) return EXIT.usage;
  if (err instanceof GatehouseError) return ERRORS[err.code].outcome === 'deny' ? EXIT.refused : EXIT.error;
  return EXIT.error;
}

export function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

type Out = NodeJS.WritableStream;

/** stderr when the caller writes to stdout; an in-process caller's own stream otherwise (tests). */
export function errorStream(out: Out): Out {
  return out === process.stdout ? process.stderr : out;
}

/** Writes the error where errors go and returns the exit status. */
export function reportError(out: Out, err: unknown, options: { json: boolean; command?: string }): number {
  const to = errorStream(out);
  const code = exitCodeOf(err);
  if (isParseArgsError(err)) {
    err = new UsageError((err as Error).message, { hint: `gatehouse ${options.command ?? ''} --help`.replace('  ', ' ') });
  }
  const g = err instanceof GatehouseError ? err : null;
  if (options.json) {
    const body = g ? g.toJSON() : { code: 'INTERNAL', message: messageOf(err), hint: null, reasons: [] };
    to.write(`${JSON.stringify({ error: { ...body, ...(g && g.detail !== null ? { detail: g.detail } : {}) } })}\n`);
    return code;
  }
  // WorkspaceInvalid (src/workspace/load.ts) carries its problems; matched by shape so that
  // every command need not load the workspace reader just to print errors.
  const problems = (g as { problems?: readonly { file: string; line: number | null; message: string }[] } | null)?.problems;
  if (g?.code === 'WORKSPACE_INVALID' && Array.isArray(problems)) {
    to.write(`workspace invalid:\n${problems.map((p) => `  ${p.file}${p.line === null ? '' : `:${p.line}`}: ${p.message}`).join('\n')}\n`);
    return code;
  }
  if (g) {
    to.write(`error ${g.code}: ${g.message}\n`);
    for (const r of g.reasons) to.write(`  reason: ${r}\n`);
    if (g.hint) to.write(`  hint: ${g.hint}\n`);
  } else {
    to.write(`error: ${messageOf(err)}\n`);
  }
  return code;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An `{error:{code,…}}` body from a server (or an older CLI part) as a GatehouseError. */
export function errorFromBody(e: { code?: unknown; message?: unknown; hint?: unknown; reasons?: unknown } | undefined, status: number): Error {
  if (e && typeof e.code === 'string' && typeof e.message === 'string') {
    const options = { hint: typeof e.hint === 'string' ? e.hint : null, reasons: Array.isArray(e.reasons) ? e.reasons.map(String) : [] };
    if (isErrorCode(e.code)) return new GatehouseError(e.code, e.message, options);
    return new GatehouseError('INTERNAL', e.message, { ...options, detail: e.code });
  }
  return new GatehouseError(status >= 500 ? 'UNAVAILABLE' : 'INTERNAL', `the server answered ${status}`);
}
