/**
 * Tracing a leaked extract (POST /v1/trace, `gatehouse trace FILE`): auditors and
 * administrators hand in the extract; the node's release registry, watermarks and canaries
 * (src/monitoring/leaks.ts) name the partner, the query and the audit entry that most
 * likely released it, with a confidence. The request is audited like any other; the
 * extract itself is neither stored nor logged (only its row count).
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { parseExtract, type TraceResult } from '../../monitoring/leaks.ts';
import { scopeOf } from './activity.ts';
import { monitorOf } from './attach.ts';

export async function traceExtract(rt: Runtime, meta: RequestMeta, extract: string): Promise<TraceResult> {
  return (await audited(rt, meta, 'monitoring.trace', {}, async ({ auth, entry }) => {
    if (!scopeOf(rt, auth.principal).all) throw new GatehouseError('POLICY_DENIED', 'tracing leaks is reserved to auditors and administrators', { hint: 'send the extract to your security team', reasons: ['not a member of group "auditors" or an admin group'] });
    let parsed: ReturnType<typeof parseExtract>;
    try { parsed = parseExtract(extract); } catch (err) {
      throw new GatehouseError('REQUEST_INVALID', `the extract is neither CSV with a header row nor JSON rows: ${(err as Error).message.slice(0, 120)}`, { hint: 'pass the file as it was found (CSV or JSON)' });
    }
    const result = monitorOf(rt).leaks.trace(parsed);
    entry.reasons = [`traced an extract of ${parsed.rows.length} rows: ${result.candidates[0] ? `best match ${result.candidates[0].principal}, confidence ${result.candidates[0].confidence}` : 'no match'}`];
    return result;
  })).value;
}
