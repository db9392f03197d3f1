/**
 * The live activity view (issue 21's four questions, issue 22's console): who is accessing
 * data now, under what conditions, for what purpose, and what they have extracted, with the
 * open alerts and their acknowledge / resolve actions.
 *
 * Live through server-sent events (WHATWG HTML §9.2 `EventSource`) on GET /v1/activity: the
 * browser sends the httpOnly session cookie with the same-origin stream, as with every other
 * call (api.ts), and the server filters each event to the viewer's scope. Each event is shown
 * in the feed as it arrives; the four answers are re-read (GET /v1/activity, throttled) after
 * it, so the tables are always the server's own answer rather than a tally kept in the page.
 */
import { useEffect, useRef, useState } from 'react';
import { get, post } from '../api.ts';
import { ErrorBox, Loading, RecordTable, Section, useLoad } from '../ui.tsx';

interface Alert { id: string; rule: string; severity: string; principal: string; dataset: string | null; summary: string; state: 'open' | 'acknowledged' | 'resolved'; occurrences: number; openedAt: string }
interface Activity {
  at: string; scope: 'all' | 'self'; recentMinutes: number;
  who: { sessions: Record<string, unknown>[]; connectionPasswords: Record<string, unknown>[]; elevations: Record<string, unknown>[]; serviceKeys: Record<string, unknown>[]; recent: (Record<string, unknown> & { principal: string; purpose: string | null })[] };
  conditions: (Record<string, unknown> & { principal: string; agreements: string[]; grants: { dataset: string; purpose: string; until: string }[] })[];
  extraction: (Record<string, unknown> & { principal: string; dataset: string; purposes: string[]; columnsUnmasked: string[]; budget: { spentRho: number; capRho: number } | null })[];
  alerts: { open: number; acknowledged: number; resolved: number; active: Alert[] };
}
interface FeedItem { key: number; at: string; text: string }

const FEED = 30;
const RELOAD_MS = 1500;

function describe(type: string, data: Record<string, unknown>): string {
  if (type === 'request') {
    const ds = (data.datasets as string[] | undefined)?.join(', ') || '—';
    const score = Number(data.score ?? 0) > 0 ? `, score ${String(data.score)}` : '';
    return `${String(data.principal)} ${String(data.action)} on ${ds}: ${String(data.decision)}, ${String(data.rows)} rows${data.purpose ? ` for ${String(data.purpose)}` : ''}${score}`;
  }
  const a = data.alert as Alert | undefined;
  return `${type.replace('alert.', 'alert ')}: ${a ? `${a.rule} on ${a.principal} (${a.severity})` : ''}`;
}

/** Subscribes to the activity stream while mounted; calls `onEvent` for each event. */
function useActivityStream(onEvent: (type: string, data: Record<string, unknown>) => void): 'connecting' | 'live' | 'reconnecting' {
  const [status, setStatus] = useState<'connecting' | 'live' | 'reconnecting'>('connecting');
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    const es = new EventSource('/v1/activity?stream=true');
    const types = ['request', 'alert.opened', 'alert.repeated', 'alert.acknowledged', 'alert.resolved', 'alert.confirmed', 'alert.response'];
    const listen = (t: string) => (m: MessageEvent<string>) => { try { handler.current(t, JSON.parse(m.data) as Record<string, unknown>); } catch { /* a malformed event is skipped */ } };
    for (const t of types) es.addEventListener(t, listen(t) as EventListener);
    es.onopen = () => setStatus('live');
    es.onerror = () => setStatus('reconnecting');
    return () => es.close();
  }, []);
  return status;
}

export function ActivityView() {
  const snap = useLoad(() => get<Activity>('/v1/activity'), []);
  const [feed, setFeed] = useState<FeedItem[]>([]);
  const [error, setError] = useState<Error | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  const seq = useRef(0);
  const reloadSoon = () => {
    if (pending.current) return;
    pending.current = setTimeout(() => { pending.current = null; snap.reload(); }, RELOAD_MS);
  };
  useEffect(() => () => { if (pending.current) clearTimeout(pending.current); }, []);
  const status = useActivityStream((type, data) => {
    const at = typeof data.at === 'string' ? data.at : new Date().toISOString();
    setFeed((f) => [{ key: seq.current++, at, text: describe(type, data) }, ...f].slice(0, FEED));
    reloadSoon();
  });
  const act = (id: string, change: 'acknowledge' | 'resolve') => {
    setError(null);
    post(`/v1/alerts/${encodeURIComponent(id)}/${change}`, { note: `${change}d in the console` }).then(() => { setDone(`Alert ${id} ${change}d`); snap.reload(); }, (e: Error) => setError(e));
  };
  const d = snap.data;
  const purposes = d ? purposeRows(d) : [];
  return (
    <Section title="Live activity">
      <p role="status" data-testid="stream-status" className={status === 'live' ? 'ok' : 'muted'}>
        {status === 'live' ? 'Live: new requests and alert changes appear as they happen.' : status === 'connecting' ? 'Connecting to the live stream…' : 'The live stream was interrupted; reconnecting…'}
      </p>
      <ErrorBox error={snap.error ?? error} />
      {done && <p role="status" className="ok">{done}</p>}
      {!d && !snap.error && <Loading what="activity" />}
      {d && (
        <>
          <p className="muted">As of {d.at}; {d.scope === 'all' ? 'every principal' : 'your own activity'}; recent means the last {d.recentMinutes} minutes.</p>
          <ul className="figures">
            <li><strong>{d.who.sessions.length}</strong> active sessions</li>
            <li><strong>{d.who.recent.length}</strong> principals active recently</li>
            <li><strong>{d.alerts.open}</strong> open alerts</li>
            <li><strong>{d.alerts.acknowledged}</strong> acknowledged</li>
          </ul>
          <article className="card">
            <h3>Alerts</h3>
            <RecordTable caption="Open alerts" rows={d.alerts.active.map((a) => ({ id: a.id, state: a.state, rule: a.rule, severity: a.severity, principal: a.principal, dataset: a.dataset, occurrences: a.occurrences, summary: a.summary, opened: a.openedAt }))}
              empty="No open alerts."
              actions={(r) => <>{r.state === 'open' && <button type="button" onClick={() => act(String(r.id), 'acknowledge')}>Acknowledge {String(r.id)}</button>} <button type="button" onClick={() => act(String(r.id), 'resolve')}>Resolve {String(r.id)}</button></>} />
          </article>
          <article className="card">
            <h3>Who is accessing data now</h3>
            <RecordTable caption="Active sessions" rows={d.who.sessions} empty="No active session." />
            <RecordTable caption="Recent requests by principal" rows={d.who.recent.map((r) => ({ principal: r.principal, lastAt: r.lastAt, action: r.action, channel: r.channel, zone: r.zone, requests: r.requests, denials: r.denials, score: r.score, reasons: r.reasons }))} empty="Nobody has made a request recently." />
            {d.who.elevations.length > 0 && <RecordTable caption="Elevations in force" rows={d.who.elevations} />}
            {d.who.connectionPasswords.length > 0 && <RecordTable caption="Connection passwords" rows={d.who.connectionPasswords} />}
            {d.who.serviceKeys.length > 0 && <RecordTable caption="Service keys" rows={d.who.serviceKeys} />}
          </article>
          <article className="card">
            <h3>Under what conditions</h3>
            <RecordTable caption="Conditions" rows={d.conditions.map((c) => ({ principal: c.principal, org: c.org, mfaAgeSeconds: c.mfaAgeSeconds, posture: c.posture ?? null, zone: c.zone, hold: c.hold, agreements: c.agreements.join(', ') || null, grants: c.grants.map((g) => `${g.dataset} for ${g.purpose}`).join(', ') || null }))} empty="No principal in scope." />
          </article>
          <article className="card">
            <h3>For what purpose</h3>
            <RecordTable caption="Purposes" rows={purposes} empty="No purpose declared yet." />
          </article>
          <article className="card">
            <h3>What they can extract</h3>
            <RecordTable caption="Extraction" rows={d.extraction.map((x) => ({ principal: x.principal, dataset: x.dataset, requests: x.requests, rowsReleased: x.rowsReleased, unitsReleased: x.unitsReleased, columnsUnmasked: x.columnsUnmasked.join(', ') || null, budget: x.budget ? `ρ ${x.budget.spentRho.toFixed(3)} of ${x.budget.capRho.toFixed(3)}` : null, lastAt: x.lastAt }))} empty="Nothing released yet." />
          </article>
        </>
      )}
      <article className="card">
        <h3>Live feed</h3>
        {feed.length === 0 ? <p className="muted">No event since this page opened.</p> : (
          <ol className="feed" aria-label="Live feed" data-testid="feed">{feed.map((f) => <li key={f.key}><time dateTime={f.at}>{f.at.slice(11, 19)}</time> {f.text}</li>)}</ol>
        )}
      </article>
    </Section>
  );
}

/** The purpose question: each principal's declared purposes, per dataset. */
function purposeRows(d: Activity): Record<string, unknown>[] {
  const rows = d.extraction.map((x) => ({ principal: x.principal, dataset: x.dataset, purposes: x.purposes.join(', ') || null }));
  for (const r of d.who.recent) {
    if (r.purpose && !rows.some((x) => x.principal === r.principal)) rows.push({ principal: r.principal, dataset: '—', purposes: r.purpose });
  }
  return rows;
}
