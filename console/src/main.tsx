/**
 * The Gatehouse web console: one page, views chosen by the URL hash, grouped by who uses
 * them (partner first, then auditor, then owner). Every view calls the public HTTP API only.
 */
import { StrictMode, useEffect, useState, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { post, whenSessionExpires } from './api.ts';
import { ActivityView } from './views/Activity.tsx';
import { ComplianceView, LogExplorerView } from './views/Auditor.tsx';
import { ApprovalsView, CatalogView, ChartsView, FlowsView, GovernanceView, PoliciesView } from './views/Owner.tsx';
import { DatasetsView, ReceiptsView, ResultsView, WorkbenchView } from './views/Partner.tsx';
import { SignIn, type Session } from './views/SignIn.tsx';
import './styles.css';

const VIEWS: readonly { group: string; path: string; label: string; render: (q: URLSearchParams) => ReactNode }[] = [
  { group: 'Partner', path: 'workbench', label: 'Workbench', render: () => <WorkbenchView /> },
  { group: 'Partner', path: 'datasets', label: 'My datasets', render: () => <DatasetsView /> },
  { group: 'Partner', path: 'results', label: 'Saved results', render: () => <ResultsView /> },
  { group: 'Partner', path: 'receipts', label: 'Receipts', render: (q) => <ReceiptsView query={q} /> },
  { group: 'Auditor', path: 'audit', label: 'Audit log', render: () => <LogExplorerView /> },
  { group: 'Auditor', path: 'activity', label: 'Live activity', render: () => <ActivityView /> },
  { group: 'Auditor', path: 'compliance', label: 'Compliance', render: () => <ComplianceView /> },
  { group: 'Auditor', path: 'charts', label: 'Charts', render: () => <ChartsView /> },
  { group: 'Owner', path: 'catalog', label: 'Catalog', render: () => <CatalogView /> },
  { group: 'Owner', path: 'policies', label: 'Policies', render: () => <PoliciesView /> },
  { group: 'Owner', path: 'governance', label: 'Agreements', render: () => <GovernanceView /> },
  { group: 'Owner', path: 'approvals', label: 'Approvals', render: () => <ApprovalsView /> },
  { group: 'Owner', path: 'flows', label: 'Data flows', render: () => <FlowsView /> },
];

function route(): { path: string; query: URLSearchParams } {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, q] = h.split('?');
  return { path: path || 'workbench', query: new URLSearchParams(q ?? '') };
}

function App() {
  const [session, setSession] = useState<Session | null>(() => {
    const p = sessionStorage.getItem('gh_principal');
    return p && document.cookie.includes('gh_csrf=') ? { principal: p, expiresAt: 0, mfa: true } : null;
  });
  const [notice, setNotice] = useState<string | null>(null);
  const [r, setR] = useState(route);
  useEffect(() => {
    const f = () => setR(route());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  useEffect(() => { whenSessionExpires(() => { sessionStorage.removeItem('gh_principal'); setSession(null); setNotice('Your session expired: sign in again.'); }); }, []);

  if (!session) return <SignIn notice={notice} onSignedIn={(s) => { setNotice(null); setSession(s); }} />;
  const view = VIEWS.find((v) => v.path === r.path) ?? VIEWS[0]!;
  const signOut = async () => {
    try { await post('/console/session/logout'); } catch { /* the cookies are cleared either way */ }
    sessionStorage.removeItem('gh_principal');
    setSession(null); setNotice('You are signed out.');
  };
  return (
    <>
      <a className="skip" href="#main">Skip to content</a>
      <header>
        <h1 className="brand">Gatehouse</h1>
        <nav aria-label="Views">
          {['Partner', 'Auditor', 'Owner'].map((g) => (
            <div key={g} className="group"><span className="group-name">{g}</span>
              {VIEWS.filter((v) => v.group === g).map((v) => <a key={v.path} href={`#/${v.path}`} aria-current={v === view ? 'page' : undefined}>{v.label}</a>)}
            </div>
          ))}
        </nav>
        <span className="who">Signed in as <strong data-testid="principal">{session.principal}</strong></span>
        <button type="button" onClick={() => void signOut()}>Sign out</button>
      </header>
      <main id="main" tabIndex={-1} data-view={view.path}>{view.render(r.query)}</main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(<StrictMode><App /></StrictMode>);
