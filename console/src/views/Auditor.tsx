/**
 * The auditor views: a paged log explorer (search by principal, dataset, decision and time;
 * pages are `fromIndex` + `limit` on GET /v1/audit/entries, so each page reads only what it
 * shows), every entry's inclusion proof and checkpoint verified in the browser, and the
 * compliance report with findings and destruction certificates.
 */
import { useState } from 'react';
import { get } from '../api.ts';
import { ErrorBox, Loading, RecordTable, Section, useLoad } from '../ui.tsx';
import { ReceiptCheck } from './Partner.tsx';

const PAGE = 50;
interface Hit { auditId: string; index: number; entry: Record<string, unknown> }
interface Filter { principal: string; dataset: string; decision: string; from: string; to: string }
const EMPTY: Filter = { principal: '', dataset: '', decision: '', from: '', to: '' };
const iso = (local: string): string | undefined => (local ? new Date(local).toISOString() : undefined);

export function LogExplorerView() {
  const [draft, setDraft] = useState<Filter>(EMPTY);
  const [filter, setFilter] = useState<Filter>(EMPTY);
  const [starts, setStarts] = useState<number[]>([0]);
  const [selected, setSelected] = useState<string | null>(null);
  const from = starts[starts.length - 1]!;
  const page = useLoad(() => get<{ entries: Hit[] }>('/v1/audit/entries', {
    principal: filter.principal || undefined, dataset: filter.dataset || undefined, decision: filter.decision || undefined,
    from: iso(filter.from), to: iso(filter.to), fromIndex: from, limit: PAGE,
  }), [filter, from]);
  const set = (k: keyof Filter) => (e: { target: { value: string } }) => setDraft({ ...draft, [k]: e.target.value });
  const entries = page.data?.entries ?? [];
  return (
    <Section title="Audit log">
      <form className="filters" onSubmit={(e) => { e.preventDefault(); setFilter(draft); setStarts([0]); }}>
        <label>Principal <input name="principal" value={draft.principal} onChange={set('principal')} /></label>
        <label>Dataset <input name="dataset" value={draft.dataset} onChange={set('dataset')} /></label>
        <label>Decision <select name="decision" value={draft.decision} onChange={set('decision')}><option value="">any</option><option>allow</option><option>deny</option><option>error</option></select></label>
        <label>From <input name="from" type="datetime-local" value={draft.from} onChange={set('from')} /></label>
        <label>To <input name="to" type="datetime-local" value={draft.to} onChange={set('to')} /></label>
        <button type="submit">Search</button>
      </form>
      <ErrorBox error={page.error} />
      {!page.data && !page.error && <Loading what="entries" />}
      {page.data && <RecordTable caption={`Entries from #${from}`} rows={entries.map((h) => ({ id: h.auditId, time: h.entry.time, principal: h.entry.principal, action: h.entry.action, decision: h.entry.decision, datasets: h.entry.datasets, purpose: h.entry.purpose, obligations: h.entry.obligations }))}
        actions={(r) => <button type="button" onClick={() => setSelected(String(r.id))}>Proof #{String(r.id)}</button>} empty="No entry matches." />}
      <nav className="row" aria-label="Pages">
        <button type="button" disabled={starts.length <= 1} onClick={() => setStarts(starts.slice(0, -1))}>Previous page</button>
        <button type="button" disabled={entries.length < PAGE} onClick={() => setStarts([...starts, entries[entries.length - 1]!.index + 1])}>Next page</button>
      </nav>
      {selected && <ReceiptCheck id={selected} />}
    </Section>
  );
}

export interface ReportSection { id: string; title: string; caption: string; columns: { key: string; label: string }[]; rows: { cells: unknown[] }[]; empty: string }
export interface ReportJson { title: string; summary: string; figures: { label: string; value: number }[]; sections: ReportSection[] }

/** A report section's rows as records keyed by its column labels. */
export function sectionRecords(s: ReportSection): Record<string, unknown>[] {
  return s.rows.map((r) => Object.fromEntries(s.columns.map((c, i) => [c.label, r.cells[i]])));
}

/** One column of a report section by key, as numbers or strings. */
export function sectionColumn(s: ReportSection | undefined, key: string): unknown[] {
  if (!s) return [];
  const i = s.columns.findIndex((c) => c.key === key);
  return i < 0 ? [] : s.rows.map((r) => r.cells[i]);
}

export function ReportSections({ report, only }: { report: ReportJson; only?: (id: string) => boolean }) {
  return <>{report.sections.filter((s) => !only || only(s.id)).map((s) => (
    <article key={s.id} className="card">
      <h3>{s.title}</h3>
      <p className="muted">{s.caption}</p>
      <RecordTable caption={s.title} rows={sectionRecords(s)} empty={s.empty} />
    </article>
  ))}</>;
}

export function useReport() {
  return useLoad(async () => {
    const r = await get<{ body: string | ReportJson }>('/v1/governance/report', { format: 'json' });
    return (typeof r.body === 'string' ? JSON.parse(r.body) : r.body) as ReportJson;
  }, []);
}

export function ComplianceView() {
  const report = useReport();
  const findings = useLoad(() => get<{ findings: Record<string, unknown>[] }>('/v1/governance/findings'), []);
  return (
    <Section title="Compliance">
      <ErrorBox error={report.error ?? findings.error} />
      {!report.data && !report.error && <Loading what="the compliance report" />}
      {report.data && (
        <>
          <p>{report.data.summary}</p>
          <ul className="figures">{report.data.figures.map((f) => <li key={f.label}><strong>{f.value}</strong> {f.label}</li>)}</ul>
        </>
      )}
      <h3>Findings</h3>
      {findings.data && <RecordTable caption="Findings" rows={findings.data.findings} empty="No open findings." />}
      {report.data && <ReportSections report={report.data} />}
    </Section>
  );
}
