/**
 * Runs the shell blocks of a Markdown document the way a reader would, and checks that each
 * prints what the document says it prints.
 *
 * The document's own conventions (docs/cli.md, "Runnable docs"):
 *   ```sh            a block to run; blocks of one document run in order, in one directory,
 *                    and variables set by one block are seen by the next (as in one terminal)
 *   ```text          right after a sh block: what it prints (stdout and stderr, in order).
 *                    `…` inside a line matches any text; a line that is only `…` matches any
 *                    number of lines (none included). Trailing spaces are ignored.
 *   `# exit N`       at the end of a command: it must end with status N (a refusal is 3);
 *                    any other command that fails fails the block (set -e, pipefail)
 *   <!-- walkthrough: skip REASON -->   on the line before a sh block: not run (REASON says why)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface DocBlock {
  readonly line: number;
  readonly code: string;
  readonly expected: string | null;
  readonly skip: string | null;
}

const FENCE = /^```(\w*)\s*$/;

export function shellBlocks(markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: { line: number; lang: string; body: string[]; skip: string | null; end: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = FENCE.exec(lines[i]!);
    if (!m) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    let k = start - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const skip = k >= 0 ? /^<!--\s*walkthrough:\s*skip\b\s*(.*?)\s*-->$/.exec(lines[k]!.trim())?.[1] ?? null : null;
    blocks.push({ line: start + 1, lang: m[1]!, body, skip: skip === null ? null : skip || 'skipped', end: i });
  }
  const out: DocBlock[] = [];
  for (let b = 0; b < blocks.length; b++) {
    const x = blocks[b]!;
    if (x.lang !== 'sh' && x.lang !== 'bash') continue;
    const next = blocks[b + 1];
    const adjacent = next && next.lang === 'text' && lines.slice(x.end + 1, next.line - 1).every((l) => l.trim() === '');
    out.push({ line: x.line, code: x.body.join('\n'), expected: adjacent ? next.body.join('\n') : null, skip: x.skip });
  }
  return out;
}

/** Joins `\`-continued lines and turns `# exit N` annotations into checks. */
export function instrument(code: string): string {
  const logical: string[] = [];
  let acc = '';
  for (const l of code.split('\n')) {
    if (/\\\s*$/.test(l)) { acc += `${l.replace(/\\\s*$/, '')} `; continue; }
    logical.push(acc + l);
    acc = '';
  }
  if (acc) logical.push(acc);
  return logical.map((l) => {
    const m = /^(.*?)\s+#\s*exit (\d+)\b.*$/.exec(l);
    if (!m) return l;
    const cmd = m[1]!;
    const label = JSON.stringify(cmd.trim().slice(0, 120));
    return `set +e; ${cmd}; __rc=$?; set -e; if [ "$__rc" != ${m[2]} ]; then echo "walkthrough: expected exit ${m[2]}, got $__rc: "${label.replace(/\$/g, '\\$')} >&2; exit 97; fi`;
  }).join('\n');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether `actual` is what `expected` (with `…` wildcards) says. */
export function matchesExpected(actual: string, expected: string): boolean {
  const norm = (s: string): string[] => s.replace(/\s+$/, '').split('\n').map((l) => l.replace(/\s+$/, ''));
  const want = norm(expected);
  const got = norm(actual);
  const pattern = want.map((l) => (l.trim() === '…' ? '(?:[^\\n]*\\n)*?' : `${l.split('…').map(escapeRegExp).join('[^\\n]*')}\\n`)).join('');
  return new RegExp(`^${pattern}$`).test(`${got.join('\n')}\n`);
}

export interface BlockResult { readonly status: number | null; readonly output: string }

/**
 * Runs one block in `cwd` with bash; `state` is the file that carries the shell's variables
 * from block to block (every assignment is exported with `set -a`).
 */
export function runBlock(code: string, options: { cwd: string; env: NodeJS.ProcessEnv; state: string; timeoutMs?: number }): BlockResult {
  const prologue = `set -a\n${existsSync(options.state) ? `. '${options.state}'\n` : ''}trap 'export -p | grep -v -E "^declare -x (PWD|OLDPWD|SHLVL|_)=" > "${options.state}"' EXIT\nset -eo pipefail\n`;
  // In its own session and process group (setsid(1) execs bash in place, so r.pid leads the
  // group): a block that runs out of time is stopped with everything it started, instead of
  // leaving a demo's node processes to load the rest of the suite.
  const r = spawnSync('setsid', ['bash', '-c', `exec 2>&1\n${prologue}${instrument(code)}\n`], {
    cwd: options.cwd, env: options.env, encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024,
  });
  if (r.error || r.signal) {
    try { process.kill(-r.pid, 'SIGKILL'); } catch { /* the group has already gone */ }
  }
  return { status: r.status, output: r.stdout + (r.error ? `\n[${r.error.message}]` : '') };
}
