/**
 * One structured JSON line per HTTP request, for log pipelines (issue 21: "structured JSON
 * request logs with no secrets and no data values"). Only what cannot carry either: the
 * route *pattern* (`/v1/results/:id`, never the URL with its query string or ids), method,
 * status, duration and Fastify's request id. Headers (Authorization), bodies (SQL, passwords)
 * and query strings are never read here; the audit log holds who did what.
 */
export interface RequestLogFields {
  readonly id: string;
  readonly method: string;
  readonly route: string | null;
  readonly status: number;
  readonly seconds: number;
  readonly at: Date;
}

export function requestLogLine(f: RequestLogFields): string {
  return JSON.stringify({
    time: f.at.toISOString(), level: f.status >= 500 ? 'error' : 'info', msg: 'request', requestId: f.id,
    method: f.method, route: f.route ?? 'unmatched', status: f.status, durationMs: Math.round(f.seconds * 1e6) / 1e3,
  });
}
