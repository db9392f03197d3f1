/**
 * Governed SQL: the whole path for one query, inside the audited envelope.
 *
 *   authenticate → plan (decide, bind, obligations) → execute (protections before, one
 *   engine run, protections after) → optionally save → one audit entry → respond
 */
import { audited } from '../../kernel/audited.ts';
import { resultDigest, sqlFingerprint } from '../../kernel/digest.ts';
import { execute, executionContext } from '../../kernel/execute.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { QueryRequest, QueryResponse } from '../../kernel/types.ts';
import { plan } from './plan.ts';
import { protectionsFor } from './protections.ts';
import { saveResult } from './save-result.ts';
import { keepQueryText } from '../../governance/whatif/query-texts.ts';

export function auditedQueryOptions(req: QueryRequest): { purpose: string | null; sqlFingerprint: string | null } {
  return {
    purpose: typeof req.purpose === 'string' ? req.purpose.slice(0, 64) : null,
    sqlFingerprint: typeof req.sql === 'string' ? fingerprintOf(req.sql) : null,
  };
}

/**
 * The SQL fingerprint per SQL text (a pure function of the text): the same query sent again
 * is not normalised and hashed again. The last FINGERPRINTS_KEPT texts of at most 4 KiB.
 */
const fingerprints = new Map<string, string>();
const FINGERPRINTS_KEPT = 1_000;
function fingerprintOf(sql: string): string {
  if (sql.length > 4096) return sqlFingerprint(sql);
  let f = fingerprints.get(sql);
  if (f === undefined) {
    f = sqlFingerprint(sql);
    if (fingerprints.size >= FINGERPRINTS_KEPT) fingerprints.delete(fingerprints.keys().next().value!);
    fingerprints.set(sql, f);
  }
  return f;
}

/** The statement timeout: the workspace's, or the caller's own when it is shorter. */
function timeoutOf(req: QueryRequest, workspaceMs: number): number {
  const own = req.timeoutMs;
  return typeof own === 'number' && Number.isFinite(own) && own > 0 ? Math.min(own, workspaceMs) : workspaceMs;
}

export async function query(rt: Runtime, req: QueryRequest): Promise<QueryResponse> {
  const { value, auditId } = await audited(rt, req, 'query', auditedQueryOptions(req), async (env) => {
    const { state, entry } = env;
    const ws = state.loaded.workspace;
    keepQueryText(rt, ws, req.sql, entry.sqlFingerprint); // opt-in (audit.keepSqlText): the what-if replay's text, by the entry's fingerprint
    const p = await plan(rt, env, req);
    // The one engine holding every dataset of the query (a mix of engines is refused).
    const engine = state.engines.forDatasets(p.bound.datasets);
    // Fair admission: one partner's flood waits its turn instead of starving everyone else.
    const org = typeof p.principal.attributes.org === 'string' ? p.principal.attributes.org : null;
    const slot = await rt.admission.acquire(p.principal.id, org, req.signal);
    let released;
    try {
      released = await execute(
        { query: p.governed.query, engine, timeoutMs: timeoutOf(req, ws.defaults.statementTimeoutMs), ...(req.signal ? { signal: req.signal } : {}), protections: protectionsFor(rt, state, p) },
        executionContext(env, state.engines, ws.defaults.statementTimeoutMs),
      );
    } finally {
      slot.release();
    }
    const obligationsApplied = [...p.governed.obligationsApplied, ...released.labels];
    entry.reasons = p.decisions.flatMap((d) => d.reasons);
    entry.obligations = obligationsApplied;
    entry.rowsReturned = released.rows.length;
    entry.resultDigest = resultDigest(released.columns, released.rows);
    let response: QueryResponse = {
      columns: released.columns, rows: released.rows,
      ...(released.intervals ? { intervals: released.intervals } : {}),
      governance: {
        policyVersion: ws.policyVersion, decision: 'allow', datasets: p.bound.datasets,
        policies: [...new Set(p.decisions.flatMap((d) => d.policies))],
        obligationsApplied, rowsSuppressed: released.rowsSuppressed, truncated: released.truncated, rowCap: p.governed.rowCap, auditId: '',
        ...(released.privacy ? { privacy: released.privacy } : {}),
      },
    };
    if (req.save === true) {
      const resultId = await saveResult(rt, p.principal, req.purpose, p.gates, p.bound.datasets, response);
      entry.reasons = [...entry.reasons, `result saved encrypted as ${resultId}`];
      response = { ...response, governance: { ...response.governance, resultId } };
    }
    return response;
  });
  return { ...value, governance: { ...value.governance, auditId } };
}
