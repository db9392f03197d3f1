/** `email_domain`: keeps the domain of an e-mail address, hides the mailbox. */
import { isWord, maskNode, type MaskKind } from './kind.ts';

export interface EmailDomainMask { readonly kind: 'email_domain' }

export const emailDomain: MaskKind<EmailDomainMask> = {
  kind: 'email_domain',
  words: ['email_domain'],
  mapping: null,
  parse: (y) => (isWord(y, 'email_domain') ? { kind: 'email_domain' } : null),
  appliesTo: ['VARCHAR'],
  resultType: () => 'VARCHAR',
  describe: () => 'email_domain',
  doc: { summary: 'Keeps the domain, hides the mailbox; a value without `@` becomes `***`.', example: '`ana.silva@mail.example` → `***@mail.example`' },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (_spec, x) => `(CASE WHEN ${x} IS NULL THEN NULL WHEN strpos(${x}, '@') = 0 THEN '***' ELSE '***@' || split_part(${x}, '@', 2) END)`,
};
