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
import type { DatasetDef, ObligationDef, PrincipalDef } from '../../model/types.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime, WorkspaceState } from '../../kernel/runtime.ts';
import type { DatasetView, RequestMeta } from '../../kernel/types.ts';
import { effectiveDataset, gate, PURPOSE, requestContext } from '../query/plan.ts';

export async function listDatasets(rt: Runtime, req: RequestMeta & { purpose: string | null }): Promise<{ datasets: DatasetView[]; auditId: string; policyVersion: string }> {
  const { value, auditId } = await audited(rt, req, 'datasets.list', { purpose: req.purpose }, async ({ state, entry, auth }) => {
    const views = await visibleDatasets(rt, state, auth.principal, req.purpose, req);
    entry.datasets = views.map((v) => v.name);
    entry.rowsReturned = views.length;
    return { datasets: views, policyVersion: state.loaded.workspace.policyVersion };
  });
  return { ...value, auditId };
}

/**
 * What a principal may see, each dataset described by its effective access: the datasets
 * Cedar and contractor governance allow for the purpose (or for any declared purpose).
 * The listing above and the wire catalog (operations/catalog/) are built from it.
 */
export async function visibleDatasets(rt: Runtime, state: WorkspaceState, principal: PrincipalDef, purpose: string | null, req: RequestMeta): Promise<DatasetView[]> {
  const ws = state.loaded.workspace;
  if (purpose !== null && !PURPOSE.test(purpose)) throw new GatehouseError('REQUEST_INVALID', 'purpose must be lower-case letters, digits, _ . -');
  const views: DatasetView[] = [];
  for (const declared of ws.datasets.values()) {
    const ds = await effectiveDataset(rt, declared);
    const purposes = purpose !== null ? [purpose] : ds.purposes;
    const allowed: { purpose: string; d: Decision }[] = [];
    for (const p of purposes) {
      const ctx = requestContext(rt, req, p);
      const g = await gate(rt, principal, ds, p, ctx.time);
      if (!g.allowed) continue;
      const d = state.loaded.policy.decide(principal, ds, { ...ctx, governance: g.context });
      if (d.allowed) allowed.push({ purpose: p, d });
    }
    if (allowed.length === 0) continue;
    views.push(datasetView(ds, allowed.map((a) => a.purpose), allowed[0]!.d.obligations, ws.defaults.rowCap));
  }
  return views;
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
