/**
 * Custom analyses: parameterised SQL templates that every owner of a table they read
 * approves by hash (AWS Clean Rooms' analysis templates). The hash is SHA-256 over the exact
 * text, so any change — one character — is a new template that needs new approvals.
 * Parameters are `$1 … $n`, bound as literals by the parser, never spliced into the text.
 */
import { createHash } from 'node:crypto';
import type { Collaboration, Template } from './model.ts';
import { CleanroomError } from './errors.ts';

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

export function templateHash(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

export function templateOf(name: string, text: string, author: string): Template {
  if (!NAME.test(name)) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'a template name is lower-case letters, digits, _ and - (at most 63)');
  if (text.trim().length === 0 || text.length > 20_000) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'a template is one SELECT statement of at most 20,000 characters');
  return { name, text, hash: templateHash(text), author, approvals: {} };
}

export function findTemplate(c: Collaboration, name: string): Template {
  const t = c.templates.find((x) => x.name === name);
  if (!t) throw new CleanroomError('CLEANROOM_NOT_FOUND', `collaboration "${c.id}" has no template "${name}"`, 'list templates with gatehouse cleanroom list');
  return t;
}
