/**
 * Reading the audit log: checkpoints and proofs ('proofs') are open to every authenticated
 * principal (partners verify the log themselves; they are hashes). Receipts, entries and
 * exports ('own-entries') return the grant { principal, auditor }: the audit HTTP plugin
 * (src/audit/http.ts) shows an auditor (group `auditors`) every entry and anyone else only
 * entries whose principal is theirs. 'entries' is reserved to auditors outright. Each read
 * is itself audited. Requests a front refused before they reached the path are audited here too.
 */
import { GatehouseError } from '../../errors.ts';
import { audited, auditedOpen } from '../../kernel/audited.ts';
import { claimedPrincipal } from '../../kernel/authenticate.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';

export const AUDITORS = 'auditors';

/** Who may read what: an auditor reads every entry; anyone else only their own. */
export interface AuditReadGrant {
  readonly principal: string;
  readonly auditor: boolean;
}

export async function authorizeAuditRead(rt: Runtime, meta: RequestMeta, what: 'proofs' | 'entries' | 'own-entries'): Promise<AuditReadGrant> {
  return (await audited(rt, meta, `audit.read.${what}`, {}, async ({ auth }) => {
    const auditor = auth.principal.groups.includes(AUDITORS);
    if (what === 'entries' && !auditor) {
      throw new GatehouseError('POLICY_DENIED', 'reading audit entries is reserved to the auditors group', { hint: 'checkpoints and proofs are open to you; ask an auditor for entries or a receipt', reasons: ['not a member of group "auditors"'] });
    }
    return { principal: auth.principal.id, auditor };
  })).value;
}

/** Audits a request an interface refused before it reached the path (malformed body, unknown route). */
export async function rejectRequest(rt: Runtime, meta: RequestMeta, action: string, error: GatehouseError): Promise<void> {
  const principal = await claimedPrincipal(rt, rt.state, meta.credential);
  await auditedOpen(rt, meta, action, { principal }, async () => { throw error; }).catch((e: unknown) => {
    if (e !== error) throw e;
  });
}
