/**
 * The partner (analyst) views: my datasets and how I see each column; the SQL workbench that
 * shows every governance step applied to an answer; saved results; my receipts, verified here.
 */
import { useEffect, useState } from 'react';
import { ApiError, get, post } from '../api.ts';
import { BarChart, Gauge, type Bar } from '../charts.tsx';
import { SqlEditor } from '../sql-editor.tsx';
import { ErrorBox, Loading, RecordTable, Section, useLoad } from '../ui.tsx';
import { verifyReceipt, type Receipt, type Verified } from '../verify.ts';

interface Column { name: string; type: string; classification: string; tags: string[]; masked: string | null; joinOnly: boolean }
interface DatasetView { name: string; description: string | null; classification: string; purposes: string[]; privacyUnit: string | null; rowFilter: boolean; aggregationOnly: { minGroupSize: number } | null; rowCap: number; columns: Column[] }
interface Privacy {
  mechanism: string; guarantee: string; epsilon: number; delta: number;
  noise: { output: string; scale: number; ci95: number | null }[];
  budget: { subject: string; epsilon: number; spentEpsilon: number; resetsAt: string | null } | null; affordable?: boolean;
}
interface Governance { policyVersion: string; datasets: string[]; policies: string[]; obligationsApplied: string[]; rowsSuppressed: number; truncated: boolean; rowCap: number; auditId: string; privacy?: Privacy; resultId?: string }
export interface Answer { columns: { name: string; type: string }[]; rows: unknown[][]; intervals?: ([number, number] | null)[][]; governance: Governance }

export function usePurpose(): [string, (p: string) => void] {
  const [p, setP] = useState(() => localStorage.getItem('gh_purpose') ?? '');
  return [p, (x) => { localStorage.setItem('gh_purpose', x); setP(x); }];
}

export function PurposeField(props: { purpose: string; setPurpose: (p: string) => void }) {
  return <label className="purpose">Purpose <input name="purpose" value={props.purpose} onChange={(e) => props.setPurpose(e.target.value)} placeholder="e.g. research" /></label>;
}

export function DatasetsView() {
  const [purpose, setPurpose] = usePurpose();
  const { data, error } = useLoad(() => get<{ datasets: DatasetView[]; policyVersion: string }>('/v1/datasets', { purpose: purpose || undefined }), [purpose]);
  return (
    <Section title="My datasets">
      <PurposeField purpose={purpose} setPurpose={setPurpose} />
      <ErrorBox error={error} />
      {!data && !error && <Loading what="datasets" />}
      {data && data.datasets.length === 0 && <p>No dataset is open to you{purpose ? ` for ${purpose}` : ''}.</p>}
      {data?.datasets.map((d) => (
        <article key={d.name} className="card">
          <h3>{d.name} <span className={`badge c-${d.classification}`}>{d.classification}</span></h3>
          {d.description && <p>{d.description}</p>}
          <ul className="facts">
            <li>Purposes: {d.purposes.join(', ') || '—'}</li>
            <li>Row cap: {d.rowCap}</li>
            {d.rowFilter && <li>Rows are filtered for you</li>}
            {d.aggregationOnly && <li>Aggregates only, groups of at least {d.aggregationOnly.minGroupSize}</li>}
            {d.privacyUnit && <li>Differential privacy per {d.privacyUnit}</li>}
          </ul>
          <RecordTable caption={`Columns of ${d.name}`} rows={d.columns.map((c) => ({ column: c.name, type: c.type, classification: c.classification, 'you see': c.masked ? `masked (${c.masked})` : c.joinOnly ? 'join key only' : 'the value', tags: c.tags.join(', ') }))} />
        </article>
      ))}
    </Section>
  );
}

/** Every governance step applied to an answer, in words. */
export function GovernancePanel({ g }: { g: Governance }) {
  const masks = g.obligationsApplied.filter((o) => o.startsWith('mask'));
  const filters = g.obligationsApplied.filter((o) => o.includes('filter'));
  const other = g.obligationsApplied.filter((o) => !masks.includes(o) && !filters.includes(o));
  return (
    <aside className="governance" aria-label="Governance applied to this answer" data-testid="governance">
      <h3>Governance applied</h3>
      <dl>
        <dt>Policies</dt><dd>{g.policies.join(', ') || '—'} <span className="muted">(version {g.policyVersion.slice(0, 19)})</span></dd>
        <dt>Masks</dt><dd data-testid="masks">{masks.length ? masks.join(', ') : 'none'}</dd>
        <dt>Row filters</dt><dd>{filters.length ? filters.join(', ') : 'none'}</dd>
        {other.length > 0 && <><dt>Other obligations</dt><dd>{other.join(', ')}</dd></>}
        <dt>Suppressed groups</dt><dd data-testid="suppressed">{g.rowsSuppressed}</dd>
        <dt>Row cap</dt><dd>{g.rowCap}{g.truncated ? ' — the answer was truncated at the cap' : ' — not reached'}</dd>
        {g.privacy && <><dt>Noise</dt><dd data-testid="noise">{g.privacy.mechanism}, ε = {g.privacy.epsilon.toPrecision(3)}, δ = {g.privacy.delta.toExponential(1)}; {g.privacy.guarantee}; {g.privacy.noise.map((n) => `${n.output} ±${n.ci95 === null ? '?' : n.ci95.toPrecision(3)} (95 %)`).join(', ')}</dd></>}
        <dt>Audit entry</dt><dd><a href={`#/receipts?id=${g.auditId}`}>#{g.auditId}</a></dd>
        {g.resultId && <><dt>Saved as</dt><dd>{g.resultId}</dd></>}
      </dl>
    </aside>
  );
}

/** The answer grid; noisy values carry their interval. */
export function AnswerTable({ a }: { a: Answer }) {
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label="Answer rows">
      <table data-testid="answer">
        <caption>{a.rows.length} row(s)</caption>
        <thead><tr>{a.columns.map((c) => <th key={c.name} scope="col">{c.name} <span className="muted">{c.type}</span></th>)}</tr></thead>
        <tbody>{a.rows.slice(0, 500).map((r, i) => <tr key={i}>{r.map((v, j) => {
          const iv = a.intervals?.[i]?.[j];
          return <td key={j}>{v === null ? <span className="muted">null</span> : String(v)}{iv ? <span className="interval"> [{iv[0].toFixed(1)}, {iv[1].toFixed(1)}]</span> : null}</td>;
        })}</tr>)}</tbody>
      </table>
    </div>
  );
}

function chartOf(a: Answer): Bar[] | null {
  const num = a.columns.findIndex((c, j) => a.rows.length > 0 && a.rows.every((r) => typeof r[j] === 'number' || r[j] === null) && /int|double|float|decimal|numeric|real|big/i.test(c.type));
  if (num < 0 || a.rows.length === 0 || a.rows.length > 40) return null;
  const key = a.columns.findIndex((_, j) => j !== num);
  return a.rows.map((r, i) => {
    const iv = a.intervals?.[i]?.[num] ?? null;
    return { label: key >= 0 ? String(r[key]) : String(i + 1), value: Number(r[num] ?? 0), low: iv ? iv[0] : null, high: iv ? iv[1] : null };
  });
}

export function WorkbenchView() {
  const [purpose, setPurpose] = usePurpose();
  const [sql, setSql] = useState(() => sessionStorage.getItem('gh_sql') ?? 'SELECT count(*) AS n FROM patients');
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [estimate, setEstimate] = useState<{ privacy: Privacy | null; obligationsApplied: string[] } | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const [save, setSave] = useState(false);
  useEffect(() => { sessionStorage.setItem('gh_sql', sql); }, [sql]);

  const doEstimate = async () => {
    setError(null);
    try { setEstimate(await post('/v1/query/estimate', { sql, purpose })); } catch (e) { setError(e as Error); }
  };
  const run = async () => {
    setBusy(true); setError(null);
    try { setAnswer(await post<Answer>('/v1/query', { sql, purpose, ...(save ? { save: true } : {}) })); } catch (e) { setError(e as Error); setAnswer(null); } finally { setBusy(false); }
  };
  const budget = answer?.governance.privacy?.budget ?? estimate?.privacy?.budget ?? null;
  const bars = answer ? chartOf(answer) : null;
  return (
    <Section title="SQL workbench">
      <div className="row">
        <PurposeField purpose={purpose} setPurpose={setPurpose} />
        {budget && <Gauge label={`Privacy budget (ε) for ${budget.subject}`} spent={budget.spentEpsilon} total={budget.epsilon} />}
      </div>
      <SqlEditor label="SQL query" value={sql} onChange={setSql} onRun={() => void run()} />
      <div className="row">
        <button type="button" onClick={() => void doEstimate()}>Estimate cost</button>
        <button type="button" onClick={() => void run()} disabled={busy}>Run query</button>
        <label className="inline"><input type="checkbox" checked={save} onChange={(e) => setSave(e.target.checked)} /> Save the result</label>
      </div>
      {estimate && (
        <p role="status" data-testid="estimate">
          {estimate.privacy ? <>This query would spend ε = {estimate.privacy.epsilon.toPrecision(3)}{estimate.privacy.affordable === false ? ' — more than the budget left' : ''}; 95 % accuracy {estimate.privacy.noise.map((n) => `${n.output} ±${n.ci95?.toPrecision(3) ?? '?'}`).join(', ')}.</> : 'This query spends no privacy budget.'}
          {estimate.obligationsApplied.length > 0 && <> Obligations: {estimate.obligationsApplied.join(', ')}.</>}
        </p>
      )}
      <ErrorBox error={error} />
      {answer && (
        <div className="answer">
          <GovernancePanel g={answer.governance} />
          <div>
            {bars && <BarChart title={answer.intervals ? 'Noisy values with 95 % intervals' : 'Values'} bars={bars} />}
            <AnswerTable a={answer} />
          </div>
        </div>
      )}
    </Section>
  );
}

export function ResultsView() {
  const list = useLoad(() => get<{ results: Record<string, unknown>[] }>('/v1/results'), []);
  const [shown, setShown] = useState<Answer | null>(null);
  const [error, setError] = useState<Error | null>(null);
  return (
    <Section title="Saved results">
      <ErrorBox error={list.error ?? error} />
      {!list.data && !list.error && <Loading what="saved results" />}
      {list.data && <RecordTable caption="Saved results" rows={list.data.results} empty="No saved results yet: tick “Save the result” in the workbench."
        actions={(r) => <button type="button" onClick={() => { setError(null); get<Answer>(`/v1/results/${String(r.id)}`).then(setShown, (e: Error) => setError(e)); }}>Open</button>} />}
      {shown && <div className="answer"><GovernancePanel g={shown.governance} /><AnswerTable a={shown} /></div>}
    </Section>
  );
}

/** The vkeys the browser trusts: pinned at first use, and a changed key is shown as such. */
export async function trustedKeys(): Promise<{ vkeys: string[]; changed: boolean }> {
  const k = await get<{ vkeys: string[] }>('/v1/audit/keys');
  const pinned = localStorage.getItem('gh_vkeys');
  if (!pinned) { localStorage.setItem('gh_vkeys', JSON.stringify(k.vkeys)); return { vkeys: k.vkeys, changed: false }; }
  const old = JSON.parse(pinned) as string[];
  return { vkeys: old, changed: k.vkeys.some((v) => !old.includes(v)) };
}

/** A receipt and its verification, with a button to tamper with the proof and see it fail. */
export function ReceiptCheck({ id }: { id: string }) {
  const [receipt, setReceipt] = useState<Receipt | null>(null);
  const [result, setResult] = useState<Verified | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [keysChanged, setKeysChanged] = useState(false);
  const check = async (r: Receipt) => {
    const k = await trustedKeys();
    setKeysChanged(k.changed);
    setResult(await verifyReceipt(r, k.vkeys));
  };
  useEffect(() => {
    setReceipt(null); setResult(null); setError(null);
    get<Receipt>(`/v1/audit/receipt/${id}`).then((r) => { setReceipt(r); return check(r); }).catch((e: Error) => setError(e));
  }, [id]);
  const tamper = () => {
    if (!receipt) return;
    const flip = (h: string) => { const b = Uint8Array.from(atob(h), (c) => c.charCodeAt(0)); b[0]! ^= 1; return btoa(String.fromCharCode(...b)); };
    const t: Receipt = receipt.proof.length > 0
      ? { ...receipt, proof: [flip(receipt.proof[0]!), ...receipt.proof.slice(1)] }
      : { ...receipt, leaf: { ...receipt.leaf, entry: { ...receipt.leaf.entry, decision: receipt.leaf.entry.decision === 'allow' ? 'deny' : 'allow' } } };
    setReceipt(t); void check(t);
  };
  return (
    <div className="card" data-testid="receipt">
      <h3>Audit entry #{id}</h3>
      <ErrorBox error={error} />
      {keysChanged && <p role="alert" className="error">The log's public key differs from the one this browser pinned: verify it out of band.</p>}
      {receipt && <RecordTable caption="Entry" rows={[receipt.leaf.entry]} columns={['time', 'action', 'decision', 'purpose', 'datasets', 'obligations', 'rowsReturned']} />}
      {result && (
        <div role="status" className={result.ok ? 'ok' : 'error'} data-testid="verification">
          <strong>{result.ok ? 'Verified in this browser' : 'Verification FAILED'}</strong>
          <ul>{result.steps.map((s, i) => <li key={i}>{s.ok ? '✓' : '✗'} {s.what}</li>)}</ul>
          {result.error && <div>{result.error}</div>}
        </div>
      )}
      {receipt && <button type="button" onClick={tamper}>Tamper with the proof</button>}
    </div>
  );
}

export function ReceiptsView(props: { query: URLSearchParams }) {
  const [id, setId] = useState(props.query.get('id') ?? '');
  const [shown, setShown] = useState(props.query.get('id') ?? '');
  const mine = useLoad(() => get<{ entries: { auditId: string; entry: Record<string, unknown> }[] }>('/v1/audit/entries', { limit: 20, action: 'query' }), []);
  return (
    <Section title="My receipts">
      <form className="row" onSubmit={(e) => { e.preventDefault(); setShown(id); }}>
        <label>Audit id <input name="auditId" inputMode="numeric" value={id} onChange={(e) => setId(e.target.value)} /></label>
        <button type="submit">Verify</button>
      </form>
      {shown && /^\d+$/.test(shown) && <ReceiptCheck id={shown} />}
      <ErrorBox error={mine.error instanceof ApiError && mine.error.status === 403 ? null : mine.error} />
      {!mine.data && !mine.error && <Loading what="your recent queries" />}
      {mine.data && <RecordTable caption="My recent queries" rows={mine.data.entries.map((e) => ({ id: e.auditId, time: e.entry.time, decision: e.entry.decision, datasets: e.entry.datasets }))}
        actions={(r) => <button type="button" onClick={() => { setId(String(r.id)); setShown(String(r.id)); }}>Verify #{String(r.id)}</button>} empty="No queries yet." />}
    </Section>
  );
}
