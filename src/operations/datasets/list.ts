/**
 * GET /v1/datasets: the datasets a principal may query (for a purpose, or for any declared
 * purpose), each described by its effective access — the same function the mask
 * transformer applies, so a column is described exactly as a query returns it. The wire
 * front's catalog is built from this listing.
 */
import { GatehouseError } from '../../errors.ts';
import type { Decision } from '../../policy/engine.ts';
import { effectiveAccess } from '../../query/govern/effective-access.ts';
import { describeMask } from '../../query/govern/mask.ts';
import type { DatasetDef, ObligationDef } from '../../model/types.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { DatasetView, RequestMeta } from '../../kernel/types.ts';
import { effectiveDataset, gate, PURPOSE, requestContext } from '../query/plan.ts';

export async function listDatasets(rt: Runtime, req: RequestMeta & { purpose: string | null }): Promise<{ datasets: DatasetView[]; auditId: string; policyVersion: string }> {
  const { value, auditId } = await audited(rt, req, 'datasets.list', { purpose: req.purpose }, async ({ state, entry, auth }) => {
    const ws = state.loaded.workspace;
    if (req.purpose !== null && !PURPOSE.test(req.purpose)) throw new GatehouseError('REQUEST_INVALID', 'purpose must be lower-case letters, digits, _ . -');
    const views: DatasetView[] = [];
    for (const declared of ws.datasets.values()) {
      const ds = await effectiveDataset(rt, declared);
      const purposes = req.purpose !== null ? [req.purpose] : ds.purposes;
      const allowed: { purpose: string; d: Decision }[] = [];
      for (const p of purposes) {
        const ctx = requestContext(rt, req, p);
        const g = await gate(rt, auth.principal, ds, p, ctx.time);
        if (!g.allowed) continue;
        const d = state.loaded.policy.decide(auth.principal, ds, { ...ctx, governance: g.context });
        if (d.allowed) allowed.push({ purpose: p, d });
      }
      if (allowed.length === 0) continue;
      views.push(datasetView(ds, allowed.map((a) => a.purpose), allowed[0]!.d.obligations, ws.defaults.rowCap));
    }
    entry.datasets = views.map((v) => v.name);
    entry.rowsReturned = views.length;
    return { datasets: views, policyVersion: ws.policyVersion };
  });
  return { ...value, auditId };
}

export function datasetView(ds: DatasetDef, purposes: readonly string[], obligations: readonly ObligationDef[], defaultRowCap: number): DatasetView {
  const access = effectiveAccess(ds, obligations, defaultRowCap);
  return {
    name: ds.name, description: ds.description, classification: ds.classification, region: ds.region, purposes: [...purposes],
    privacyUnit: ds.privacyUnit,
    rowFilter: access.rowFilter,
    aggregationOnly: access.aggregationOnly,
    rowCap: access.rowCap ?? defaultRowCap,
    columns: ds.columns.map((c) => {
      const a = access.columns.get(c.name)!;
      return {
        name: c.name, type: a.type, classification: c.classification, tags: c.tags, description: c.description,
        masked: a.mask ? describeMask(a.mask) : null, joinOnly: a.joinOnly,
      };
    }),
  };
}
