/** Small shared pieces: async loading, error display, a generic table of records. */
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { ApiError } from './api.ts';

export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): { data: T | null; error: ApiError | Error | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | Error | null>(null);
  const [n, setN] = useState(0);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  useEffect(() => {
    let live = true;
    run().then((d) => { if (live) { setData(d); setError(null); } }, (e: Error) => { if (live) setError(e); });
    return () => { live = false; };
  }, [run, n]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

export function ErrorBox({ error }: { error: ApiError | Error | null }) {
  if (!error) return null;
  const e = error as ApiError;
  return (
    <div role="alert" className="error">
      <strong>{e.code ?? 'Error'}</strong>: {e.message}
      {e.reasons?.length ? <ul>{e.reasons.map((r, i) => <li key={i}>{r}</li>)}</ul> : null}
      {e.hint ? <div className="hint">{e.hint}</div> : null}
    </div>
  );
}

export function Loading({ what }: { what: string }) { return <p aria-busy="true">Loading {what}…</p>; }

function cell(v: unknown): ReactNode {
  if (v === null || v === undefined) return <span className="muted">—</span>;
  if (typeof v === 'object') return <code>{JSON.stringify(v).slice(0, 160)}</code>;
  return String(v);
}

/** A table of records; columns are the union of their keys unless given. */
export function RecordTable(props: { caption: string; rows: readonly Record<string, unknown>[]; columns?: readonly string[]; actions?: (row: Record<string, unknown>) => ReactNode; empty?: string }) {
  const cols = props.columns ?? [...new Set(props.rows.flatMap((r) => Object.keys(r)))].slice(0, 9);
  if (props.rows.length === 0) return <p className="muted">{props.empty ?? `No ${props.caption.toLowerCase()}.`}</p>;
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label={props.caption}>
      <table>
        <caption>{props.caption}</caption>
        <thead><tr>{cols.map((c) => <th key={c} scope="col">{c}</th>)}{props.actions && <th scope="col">actions</th>}</tr></thead>
        <tbody>{props.rows.map((r, i) => <tr key={i}>{cols.map((c) => <td key={c}>{cell(r[c])}</td>)}{props.actions && <td>{props.actions(r)}</td>}</tr>)}</tbody>
      </table>
    </div>
  );
}

export function Section(props: { title: string; children: ReactNode }) {
  return <section aria-labelledby={`h-${props.title}`}><h2 id={`h-${props.title}`}>{props.title}</h2>{props.children}</section>;
}
