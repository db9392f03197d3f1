/**
 * What the output protections did to a released result, said the way a PostgreSQL client
 * can hear it: NoticeResponse messages sent after the rows (psql prints them, JDBC keeps
 * them as SQLWarnings, psycopg2 in `connection.notices`) and read-only `gatehouse.last_*`
 * session parameters a client can `SHOW` or read with current_setting(). A psql or JDBC
 * user so learns what an HTTP caller reads in `governance`: the differential-privacy
 * interval and the ε spent and left, a row-cap truncation, suppressed small groups.
 *
 * Nothing here adds information: every figure is already in the governed response the
 * one path released to this principal.
 */
import type { QueryResponse } from '../pipeline/gatehouse.ts';

export interface ProtectionNotice {
  readonly message: string;
  readonly detail: string | null;
}

/** The read-only session parameters a released result sets (SHOW gatehouse.last_privacy …). */
export const LAST_RESULT_SETTINGS = ['gatehouse.last_audit_id', 'gatehouse.last_privacy', 'gatehouse.last_truncated', 'gatehouse.last_rows_suppressed'] as const;

export interface ProtectionReport {
  readonly notices: readonly ProtectionNotice[];
  readonly settings: readonly (readonly [typeof LAST_RESULT_SETTINGS[number], string])[];
}

/** A number to the precision its use needs (ε and intervals): at most 6 significant digits. */
function num(n: number): string { return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6))); }

export function protectionReport(r: QueryResponse): ProtectionReport {
  const g = r.governance;
  const notices: ProtectionNotice[] = [];
  let privacy = '';
  if (g.privacy) {
    const p = g.privacy;
    const intervals = p.noise.filter((n) => n.ci95 !== null).map((n) => `${n.output} ±${num(n.ci95!)}`);
    const budget = p.budget ? `; budget of ${p.budget.subject}: ε spent ${num(p.budget.spentEpsilon)} of ${num(p.budget.epsilon)}, ε left ${num(Math.max(0, p.budget.epsilon - p.budget.spentEpsilon))}${p.budget.resetsAt ? ` (resets ${p.budget.resetsAt})` : ''}` : '';
    privacy = `${p.mechanism} noise, ε=${num(p.epsilon)}, δ=${num(p.delta)}${intervals.length ? `; 95% interval ${intervals.join(', ')}` : ''}${budget}`;
    notices.push({ message: `differentially private result: ${privacy}`, detail: p.guarantee });
  }
  if (g.truncated) notices.push({ message: `result truncated at the row cap of ${g.rowCap} rows`, detail: 'narrow the query (WHERE, LIMIT) or aggregate to see everything you may see' });
  if (g.rowsSuppressed > 0) notices.push({ message: `${g.rowsSuppressed} row(s) suppressed by disclosure control (groups below the minimum size)`, detail: null });
  return {
    notices,
    settings: [
      ['gatehouse.last_audit_id', g.auditId],
      ['gatehouse.last_privacy', privacy],
      ['gatehouse.last_truncated', g.truncated ? 'on' : 'off'],
      ['gatehouse.last_rows_suppressed', String(g.rowsSuppressed)],
    ],
  };
}
