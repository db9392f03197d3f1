/**
 * Release auditing (issue 12): the cells disclosure control is about to publish are checked,
 * as linear constraints, against every cell published to this principal before; a cell that
 * together with them would pin a combination of fewer units than the threshold is withheld
 * (src/privacy/release-audit.ts: tau-ARGUS-style audit, Kenthapadi–Mishra–Nissim simulatable
 * auditing). The audit queries are internal reads through the one executor.
 */
import { auditRelease, type ReleaseAuditor } from '../../privacy/release-audit.ts';
import type { SdcPlan } from '../../query/govern/index.ts';
import type { Protection } from '../execute.ts';

export function releaseAudit(auditor: ReleaseAuditor, subject: string, plan: SdcPlan, now: () => number): Protection {
  return {
    name: 'release-audit',
    async after(ctx, r) {
      if (plan.probes.length === 0) return r;
      // One query runs on one engine: every protected dataset's audit reads where the query read.
      const dataset = plan.probes[0]!.dataset;
      const a = await auditRelease(auditor, (q) => ctx.internal('release audit', q, dataset), subject, plan, r.rows, now());
      return a.withheld === 0 ? r : { ...r, rows: a.rows, rowsSuppressed: r.rowsSuppressed + a.withheld };
    },
  };
}
