/**
 * The JSON body of `POST /v1/query`, written in one pass (issue 15, "serialise results
 * without intermediate copies"). The route's schema serializer (fast-json-stringify) has no
 * type for a cell, so it called JSON.stringify once per cell array and joined the pieces;
 * here the rows are one native JSON.stringify call straight from the released arrays, and
 * the rest is the few fixed members of the response schema (src/server/openapi.ts
 * `routeSchemas.query`), in the serializer's order (a test holds the two byte-equal), with nothing else: what the schema would strip is
 * never written.
 */
import type { QueryResponse } from '../pipeline/gatehouse.ts';
import type { ResidencyAnswer } from '../residency/service.ts';

const s = JSON.stringify;

/** A routed answer (a federated node) also carries `residency`: how the query travelled. */
export function queryResponseJson(r: QueryResponse | ResidencyAnswer): string {
  const g = r.governance;
  let out = '{"columns":[';
  for (let i = 0; i < r.columns.length; i++) {
    const c = r.columns[i]!;
    out += (i ? ',{"name":' : '{"name":') + s(c.name) + ',"type":' + s(c.type) + '}';
  }
  out += '],"rows":' + s(r.rows);
  if (r.intervals) out += ',"intervals":' + s(r.intervals);
  // The schema serializer writes the required members first, then the others in schema order.
  out += ',"governance":{"policyVersion":' + s(g.policyVersion) + ',"decision":' + s(g.decision)
    + ',"obligationsApplied":' + s(g.obligationsApplied) + ',"rowsSuppressed":' + s(g.rowsSuppressed) + ',"auditId":' + s(g.auditId)
    + ',"datasets":' + s(g.datasets) + ',"policies":' + s(g.policies) + ',"truncated":' + s(g.truncated) + ',"rowCap":' + s(g.rowCap);
  if (g.privacy !== undefined) out += ',"privacy":' + s(g.privacy);
  if (g.resultId !== undefined) out += ',"resultId":' + s(g.resultId);
  out += '}';
  const t = (r as Partial<ResidencyAnswer>).residency;
  if (t !== undefined && t !== null) {
    out += ',"residency":{"requestId":' + s(t.requestId) + ',"route":' + s(t.route) + ',"parts":[';
    for (let i = 0; i < t.parts.length; i++) {
      const p = t.parts[i]!;
      out += (i ? ',{"region":' : '{"region":') + s(p.region) + ',"node":' + s(p.node) + ',"auditId":' + s(p.auditId)
        + ',"rowsSuppressed":' + s(p.rowsSuppressed) + ',"obligationsApplied":' + s(p.obligationsApplied) + '}';
    }
    out += '],"complete":' + s(t.complete) + '}';
  }
  return out + '}';
}
