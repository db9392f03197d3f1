/**
 * Problems of a workspace: every one at once, each with the file and line it comes from.
 * Each part's config parser reports into these, and the workspace loader composes them.
 */
import { GatehouseError } from '../errors.ts';

export interface WorkspaceProblem {
  readonly file: string;
  readonly line: number | null;
  readonly message: string;
}

/** Every problem of a workspace at once, each with file:line (WORKSPACE_INVALID). */
export class WorkspaceInvalid extends GatehouseError {
  declare readonly code: 'WORKSPACE_INVALID';
  readonly problems: readonly WorkspaceProblem[];
  constructor(problems: readonly WorkspaceProblem[]) {
    super('WORKSPACE_INVALID', `workspace is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
      problems.map(formatProblem).join('\n'), { hint: 'run `gatehouse validate` and fix each problem at the file and line it gives' });
    this.problems = problems;
  }
}

export function formatProblem(p: WorkspaceProblem): string {
  return `  ${p.file}${p.line === null ? '' : `:${p.line}`}: ${p.message}`;
}


/** The 1-based line of a character offset in a text. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
