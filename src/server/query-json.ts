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

const s = JSON.stringify;

export function queryResponseJson(r: QueryResponse): string {
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
  return out + '}}';
}
