/**
 * The result columns a query would return — names and types after every obligation and
 * output protection — without releasing a row: what a PostgreSQL client's Describe (JDBC's
 * ResultSetMetaData, a BI tool's field list) needs. Decided and planned exactly as `query`
 * is, admitted like any query, then run through the one executor with no row allowed out
 * (LIMIT 0) and only the protections that shape columns; nothing is charged to a budget and
 * nothing is remembered for differencing. Audited as query.describe.
 */
import type { ResultColumn } from '../../engine/engine.ts';
import { audited } from '../../kernel/audited.ts';
import { execute, executionContext, type Protection } from '../../kernel/execute.ts';
import { disclosureControl } from '../../kernel/protections/disclosure.ts';
import { dpNoise } from '../../kernel/protections/dp-release.ts';
import { truncate } from '../../kernel/protections/truncate.ts';
import { planNoise } from '../../privacy/release.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { QueryRequest } from '../../kernel/types.ts';
import { plan } from './plan.ts';
import { auditedQueryOptions } from './query.ts';

export async function describe(rt: Runtime, req: QueryRequest): Promise<{ columns: readonly ResultColumn[]; auditId: string }> {
  const { value, auditId } = await audited(rt, req, 'query.describe', auditedQueryOptions(req), async (env) => {
    const { state, entry } = env;
    const ws = state.loaded.workspace;
    const p = await plan(rt, env, req);
    const engine = state.engines.forDatasets(p.bound.datasets);
    const g = p.governed;
    const shape: Protection[] = g.dp ? [dpNoise(planNoise(g.dp), 0, 0)] : g.disclosure ? [disclosureControl(g.disclosure, 0, 0)] : [truncate(0)];
    const org = typeof p.principal.attributes.org === 'string' ? p.principal.attributes.org : null;
    const slot = await rt.admission.acquire(p.principal.id, org, req.signal);
    try {
      const released = await execute(
        { query: { ...g.query, limit: 0 }, engine, timeoutMs: ws.defaults.statementTimeoutMs, ...(req.signal ? { signal: req.signal } : {}), protections: shape },
        executionContext(env, state.engines, ws.defaults.statementTimeoutMs),
      );
      entry.reasons = p.decisions.flatMap((d) => d.reasons);
      entry.rowsReturned = 0;
      return { columns: released.columns };
    } finally {
      slot.release();
    }
  });
  return { ...value, auditId };
}
