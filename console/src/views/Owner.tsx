/**
 * The owner views: classifier proposals to confirm or reject, agreements / grants /
 * acknowledgements / training, one approvals inbox (access requests and elevations), the
 * data-flow map as an interactive graph, and charts (budget use, accesses per partner,
 * denials over time, suppression rates).
 */
import { useMemo, useState } from 'react';
import { get, post } from '../api.ts';
import { BarChart, LineChart } from '../charts.tsx';
import { ErrorBox, Loading, RecordTable, Section, useLoad } from '../ui.tsx';
import { sectionColumn, useReport } from './Auditor.tsx';

export function CatalogView() {
  const proposals = useLoad(() => get<{ proposals?: Record<string, unknown>[] }>('/v1/governance/classify'), []);
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const decide = (what: 'confirm' | 'reject', r: Record<string, unknown>) => {
    setError(null);
    post(`/v1/governance/classify/${what}`, { dataset: r.dataset, column: r.column, ...(what === 'reject' ? { reason: 'rejected in the console' } : {}) }).then(proposals.reload, (e: Error) => setError(e));
  };
  const rows = (proposals.data?.proposals ?? []) as Record<string, unknown>[];
  return (
    <Section title="Catalog and classification">
      <ErrorBox error={proposals.error ?? error} />
      <button type="button" disabled={busy} onClick={() => { setBusy(true); post('/v1/governance/classify/run', {}).then(proposals.reload, (e: Error) => setError(e)).finally(() => setBusy(false)); }}>Run the classifier</button>
      {!proposals.data && !proposals.error && <Loading what="proposals" />}
      {proposals.data && <RecordTable caption="Classifier proposals" rows={rows} empty="No pending proposals: run the classifier."
        actions={(r) => <><button type="button" onClick={() => decide('confirm', r)}>Confirm</button> <button type="button" onClick={() => decide('reject', r)}>Reject</button></>} />}
    </Section>
  );
}

function List({ title, path, pick }: { title: string; path: string; pick: string | null }) {
  const d = useLoad(() => get<Record<string, unknown>>(path), [path]);
  const rows = (pick === null ? (d.data ?? {}) : (d.data?.[pick] ?? [])) as Record<string, unknown>[];
  return (
    <article className="card">
      <h3>{title}</h3>
      <ErrorBox error={d.error} />
      {!d.data && !d.error ? <Loading what={title.toLowerCase()} /> : <RecordTable caption={title} rows={Array.isArray(rows) ? rows : [rows]} />}
    </article>
  );
}

export function GovernanceView() {
  return (
    <Section title="Agreements and grants">
      <List title="Agreements" path="/v1/governance/agreements" pick="agreements" />
      <List title="Grants" path="/v1/governance/grants" pick="grants" />
      <List title="Acknowledgements and training required (gate)" path="/v1/governance/gate" pick={null} />
      <List title="Training" path="/v1/governance/training" pick="records" />
    </Section>
  );
}

interface Req { id: string; principalId: string; dataset: string; purpose: string; days: number; justification: string; canDecide: boolean }

export function ApprovalsView() {
  const grants = useLoad(() => get<{ requests: Req[] }>('/v1/governance/grants/requests'), []);
  const elevations = useLoad(() => get<{ requests?: Record<string, unknown>[] }>('/v1/elevation'), []);
  const [error, setError] = useState<Error | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const act = (p: Promise<unknown>, msg: string) => { setError(null); p.then(() => { setDone(msg); grants.reload(); elevations.reload(); }, (e: Error) => setError(e)); };
  const pendingElev = ((elevations.data?.requests ?? []) as Record<string, unknown>[]).filter((r) => r.status === 'pending');
  return (
    <Section title="Approvals">
      <ErrorBox error={grants.error ?? elevations.error ?? error} />
      <CodeApprovals onDone={(m) => setDone(m)} onError={setError} />
      {done && <p role="status" className="ok">{done}</p>}
      <RequestForm onDone={(m) => { setDone(m); grants.reload(); }} />
      {grants.data && <RecordTable caption="Access requests" rows={grants.data.requests.map((r) => ({ id: r.id, principal: r.principalId, dataset: r.dataset, purpose: r.purpose, days: r.days, justification: r.justification, canDecide: r.canDecide }))} empty="No pending access requests."
        actions={(r) => r.canDecide ? <><button type="button" onClick={() => act(post('/v1/governance/grants/requests/approve', { id: r.id }), `Request ${String(r.id)} approved`)}>Approve {String(r.id)}</button> <button type="button" onClick={() => act(post('/v1/governance/grants/requests/deny', { id: r.id, reason: 'denied in the console' }), `Request ${String(r.id)} denied`)}>Deny</button></> : <span className="muted">awaiting an owner</span>} />}
      {elevations.data && <RecordTable caption="Elevation requests" rows={pendingElev} empty="No pending elevation requests."
        actions={(r) => <><button type="button" onClick={() => act(post(`/v1/elevation/requests/${String(r.id)}/approve`), 'Elevation approved')}>Approve</button> <button type="button" onClick={() => act(post(`/v1/elevation/requests/${String(r.id)}/deny`, { reason: 'denied in the console' }), 'Elevation denied')}>Deny</button></>} />}
    </Section>
  );
}

interface JobRow { id: string; name: string; codeHash: string; submitter: string; status: string; submittedAt: string }
interface JobDetail { job: { id: string; purpose: string; datasets: string[]; codeHash: string; submitter: string } }
interface AirlockRow { id: string; jobId: string; requester: string; state: string; outputsSha256: string; reviews: { reviewer: string; decision: string }[]; createdAt: string }

/**
 * Code-to-data approvals in the same inbox: submitted jobs awaiting a data owner's approval of
 * their code hash (POST /v1/jobs/:id/approve, reading as the submitter for the manifest's
 * datasets and purpose), and airlock requests in review (POST /v1/airlock/:id/review; two
 * distinct reviewers, never the author). A caller who may not see them (a partner) gets an
 * empty list from the server, not an error.
 */
function CodeApprovals({ onDone, onError }: { onDone: (m: string) => void; onError: (e: Error) => void }) {
  const jobs = useLoad(() => get<{ jobs: JobRow[] }>('/v1/jobs'), []);
  const airlock = useLoad(() => get<{ requests: AirlockRow[] }>('/v1/airlock'), []);
  const act = (p: Promise<unknown>, msg: string) => p.then(() => { onDone(msg); jobs.reload(); airlock.reload(); }, onError);
  const approveJob = async (id: string) => {
    const { job } = await get<JobDetail>(`/v1/jobs/${encodeURIComponent(id)}`);
    await post(`/v1/jobs/${encodeURIComponent(id)}/approve`, { codeHash: job.codeHash, datasets: job.datasets, purpose: job.purpose, principal: job.submitter });
  };
  const review = (id: string, decision: 'approve' | 'reject') => post(`/v1/airlock/${encodeURIComponent(id)}/review`, { decision, reason: `${decision === 'approve' ? 'approved' : 'rejected'} in the console` });
  const pendingJobs = (jobs.data?.jobs ?? []).filter((j) => j.status === 'submitted');
  const inReview = (airlock.data?.requests ?? []).filter((r) => r.state === 'in_review');
  return (
    <>
      <ErrorBox error={jobs.error ?? airlock.error} />
      {jobs.data && <RecordTable caption="Jobs awaiting approval" rows={pendingJobs.map((j) => ({ id: j.id, name: j.name, submitter: j.submitter, codeHash: `${j.codeHash.slice(0, 16)}…`, submittedAt: j.submittedAt }))} empty="No job awaits approval."
        actions={(r) => <button type="button" onClick={() => act(approveJob(String(r.id)), `Job ${String(r.id)} approved`)}>Approve job {String(r.id)}</button>} />}
      {airlock.data && <RecordTable caption="Airlock reviews" rows={inReview.map((r) => ({ id: r.id, job: r.jobId, requester: r.requester, state: r.state, reviews: r.reviews.map((v) => `${v.reviewer}: ${v.decision}`).join(', ') || null, outputs: `${r.outputsSha256.slice(0, 16)}…`, createdAt: r.createdAt }))} empty="No airlock request awaits review."
        actions={(r) => <><button type="button" onClick={() => act(review(String(r.id), 'approve'), `Airlock request ${String(r.id)} approved`)}>Approve release {String(r.id)}</button> <button type="button" onClick={() => act(review(String(r.id), 'reject'), `Airlock request ${String(r.id)} rejected`)}>Reject</button></>} />}
    </>
  );
}

function RequestForm({ onDone }: { onDone: (m: string) => void }) {
  const [f, setF] = useState({ dataset: '', purpose: '', days: '30', justification: '' });
  const [error, setError] = useState<Error | null>(null);
  return (
    <form className="filters" aria-label="Request access" onSubmit={(e) => {
      e.preventDefault(); setError(null);
      post<{ request: { id: string } }>('/v1/governance/grants/requests', { ...f, days: Number(f.days) }).then((r) => onDone(`Access request ${r.request.id} submitted`), (x: Error) => setError(x));
    }}>
      <h3>Request access</h3>
      <label>Dataset <input name="req-dataset" required value={f.dataset} onChange={(e) => setF({ ...f, dataset: e.target.value })} /></label>
      <label>Purpose <input name="req-purpose" required value={f.purpose} onChange={(e) => setF({ ...f, purpose: e.target.value })} /></label>
      <label>Days <input name="req-days" type="number" min={1} max={366} value={f.days} onChange={(e) => setF({ ...f, days: e.target.value })} /></label>
      <label>Justification <input name="req-justification" required value={f.justification} onChange={(e) => setF({ ...f, justification: e.target.value })} /></label>
      <button type="submit">Submit request</button>
      <ErrorBox error={error} />
    </form>
  );
}

interface FlowMap { nodes: { id: string; kind: 'dataset' | 'interface' | 'partner'; label: string }[]; edges: { from: string; to: string; interface: string; queries: number; rowsReleased: number; denied: number }[] }

/** Datasets → interfaces → partners in three columns; focus or click a node to highlight its flows. */
export function FlowsView() {
  const d = useLoad(() => get<FlowMap>('/v1/governance/flows'), []);
  const [focus, setFocus] = useState<string | null>(null);
  const layout = useMemo(() => {
    const pos = new Map<string, { x: number; y: number }>();
    const cols = { dataset: 90, interface: 330, partner: 570 } as const;
    for (const kind of ['dataset', 'interface', 'partner'] as const) {
      const ns = (d.data?.nodes ?? []).filter((n) => n.kind === kind);
      ns.forEach((n, i) => pos.set(n.id, { x: cols[kind], y: 40 + i * 60 }));
    }
    return pos;
  }, [d.data]);
  if (d.error) return <Section title="Data flows"><ErrorBox error={d.error} /></Section>;
  if (!d.data) return <Section title="Data flows"><Loading what="the data-flow map" /></Section>;
  const H = Math.max(200, ...[...layout.values()].map((p) => p.y + 40));
  const on = (e: { from: string; to: string; interface: string }) => !focus || e.from === focus || e.to === focus || e.interface === focus;
  return (
    <Section title="Data flows">
      {d.data.nodes.length === 0 ? <p>No data has flowed in this period.</p> : (
        <svg className="flows" viewBox={`0 0 660 ${H}`} role="group" aria-label="Data-flow map: datasets, interfaces and partners">
          {d.data.edges.map((e, i) => {
            const a = layout.get(e.from)!; const m = layout.get(e.interface)!; const b = layout.get(e.to)!;
            return <g key={i} className={on(e) ? 'edge' : 'edge dim'}><path d={`M${a.x},${a.y} C${(a.x + m.x) / 2},${a.y} ${(a.x + m.x) / 2},${m.y} ${m.x},${m.y} S${(m.x + b.x) / 2},${b.y} ${b.x},${b.y}`} strokeWidth={1 + Math.log2(1 + e.queries)} /><title>{`${e.from} → ${e.to} via ${e.interface}: ${e.queries} queries, ${e.rowsReleased} rows, ${e.denied} denied`}</title></g>;
          })}
          {d.data.nodes.map((n) => {
            const p = layout.get(n.id)!;
            return (
              <g key={n.id} className={`node ${n.kind}${focus === n.id ? ' focused' : ''}`} tabIndex={0} role="button" aria-pressed={focus === n.id}
                aria-label={`${n.kind} ${n.label}`} onClick={() => setFocus(focus === n.id ? null : n.id)}
                onKeyDown={(e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); setFocus(focus === n.id ? null : n.id); } }}>
                <rect x={p.x - 80} y={p.y - 16} width={160} height={32} rx={6} />
                <text x={p.x} y={p.y + 5} textAnchor="middle">{n.label.slice(0, 22)}</text>
              </g>
            );
          })}
        </svg>
      )}
      <RecordTable caption="Flows" rows={d.data.edges.filter(on).map((e) => ({ dataset: e.from.replace(/^dataset:/, ''), via: e.interface.replace(/^interface:/, ''), partner: e.to.replace(/^partner:/, ''), queries: e.queries, rows: e.rowsReleased, denied: e.denied }))} />
    </Section>
  );
}

interface Hit { entry: { time: string; action: string; decision: string; principal: string | null; obligations: string[]; datasets: string[] } }

/** ε per query named by a differentialPrivacy obligation ("…ε=1/query…"), else 0. */
function epsilonOf(obligations: readonly string[]): number {
  for (const o of obligations) {
    const m = /^differentialPrivacy:.*?ε=([0-9.]+)/.exec(o);
    if (m) return Number(m[1]);
  }
  return 0;
}

/**
 * Charts for owners and auditors. Aggregates come from the compliance report and the flow map
 * (administrators and auditors); the time series come from the audit entries the caller may
 * read (all of them for an auditor).
 */
export function ChartsView() {
  const flows = useLoad(() => get<FlowMap>('/v1/governance/flows'), []);
  const entries = useLoad(() => get<{ entries: Hit[] }>('/v1/audit/entries', { limit: 10000 }), []);
  const report = useReport();
  const es = entries.data?.entries ?? [];
  const days = [...new Set(es.map((h) => h.entry.time.slice(0, 10)))].sort();
  const perDay = (pred: (h: Hit) => boolean) => days.map((d) => ({ label: d, value: es.filter((h) => h.entry.time.startsWith(d) && pred(h)).length }));
  const perPartner = new Map<string, number>();
  for (const e of flows.data?.edges ?? []) { const p = e.to.replace(/^partner:/, ''); perPartner.set(p, (perPartner.get(p) ?? 0) + e.queries); }
  let spent = 0;
  const budgetOverTime = es.filter((h) => h.entry.decision === 'allow' && epsilonOf(h.entry.obligations) > 0)
    .map((h) => { spent += epsilonOf(h.entry.obligations); return { label: h.entry.time.slice(0, 16).replace('T', ' '), value: spent }; });
  const answers = es.filter((h) => h.entry.action === 'query' && h.entry.decision === 'allow');
  const suppression = new Map<string, [number, number]>();
  for (const h of answers) for (const d of h.entry.datasets) {
    const v = suppression.get(d) ?? [0, 0];
    v[1]++; if (h.entry.obligations.some((o) => /aggregat|suppress|minGroup|differentialPrivacy/i.test(o))) v[0]++;
    suppression.set(d, v);
  }
  const sections = report.data?.sections ?? [];
  const budgets = sections.find((s) => s.id === 'budgets');
  const denials = sections.find((s) => s.id === 'denials');
  const subjects = sectionColumn(budgets, 'subject'); const bDatasets = sectionColumn(budgets, 'dataset'); const used = sectionColumn(budgets, 'used');
  const codes = sectionColumn(denials, 'code'); const refused = sectionColumn(denials, 'requests');
  return (
    <Section title="Charts">
      <ErrorBox error={flows.error ?? report.error ?? entries.error} />
      {(!flows.data || !report.data || !entries.data) && !flows.error && !report.error && !entries.error && <Loading what="charts" />}
      <div className="grid">
        <BarChart title="Accesses per partner (queries)" bars={[...perPartner.entries()].map(([label, value]) => ({ label, value }))} />
        <BarChart title="Privacy budget used (%)" bars={subjects.map((s, i) => ({ label: `${String(s).replace(/^org:/, '')} / ${String(bDatasets[i])}`, value: 100 * Number(used[i] ?? 0) }))} />
        <LineChart title="Privacy budget spent over time (cumulative ε)" points={budgetOverTime.slice(-100)} />
        <LineChart title="Denials per day" points={perDay((h) => h.entry.decision === 'deny')} />
        <BarChart title="Refused requests by reason" bars={codes.map((c, i) => ({ label: String(c), value: Number(refused[i] ?? 0) }))} />
        <BarChart title="Answers under suppression or noise rules, per dataset (%)" bars={[...suppression.entries()].map(([label, [s, n]]) => ({ label, value: n ? (100 * s) / n : 0 }))} />
      </div>
    </Section>
  );
}

interface WhatIf { decision: string; code: string | null; reasons: string[]; policies: string[]; datasets: string[]; obligationsApplied: string[]; rewrittenSql: string | null; differentialPrivacy: boolean; policyVersion: string; auditId: string }

/** Policies are code in the workspace (read-only here); the simulator shows how they answer. */
export function PoliciesView() {
  const [f, setF] = useState({ principal: 'ivan', purpose: 'claims-processing', sql: 'SELECT patient_id, ssn, region FROM patients LIMIT 10' });
  const [answer, setAnswer] = useState<WhatIf | null>(null);
  const [error, setError] = useState<Error | null>(null);
  return (
    <Section title="Policies: what-if simulator">
      <p>Policies are code in the workspace (<code>policies/*.cedar</code>, <code>gatehouse.yaml</code>) and are read-only here. Ask how they would answer a request; nothing runs and no budget is spent.</p>
      <form className="filters" aria-label="What-if" onSubmit={(e) => { e.preventDefault(); setError(null); post<WhatIf>('/v1/policy/simulate', f).then(setAnswer, (x: Error) => setError(x)); }}>
        <label>As principal <input name="wi-principal" required value={f.principal} onChange={(e) => setF({ ...f, principal: e.target.value })} /></label>
        <label>For purpose <input name="wi-purpose" required value={f.purpose} onChange={(e) => setF({ ...f, purpose: e.target.value })} /></label>
        <label className="wide">SQL <input name="wi-sql" required size={60} value={f.sql} onChange={(e) => setF({ ...f, sql: e.target.value })} /></label>
        <button type="submit">Simulate</button>
      </form>
      <ErrorBox error={error} />
      {answer && (
        <div className={answer.decision === 'allow' ? 'ok' : 'error'} role="status" data-testid="what-if">
          <strong>Decision: {answer.decision}</strong>{answer.code ? ` (${answer.code})` : ''}{answer.differentialPrivacy ? ' — released with differential privacy' : ''}
          <dl>
            <dt>Reasons</dt><dd>{answer.reasons.join('; ') || '—'}</dd>
            <dt>Policies</dt><dd>{answer.policies.join(', ') || '—'}</dd>
            <dt>Obligations</dt><dd>{answer.obligationsApplied.join(', ') || '—'}</dd>
            <dt>Rewritten SQL</dt><dd><pre className="sql">{answer.rewrittenSql ?? '—'}</pre></dd>
          </dl>
        </div>
      )}
    </Section>
  );
}
