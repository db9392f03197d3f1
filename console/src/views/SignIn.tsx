/** Sign-in: password, then the TOTP code; first-time users enrol and scan the otpauth QR code. */
import { useState } from 'react';
import QRCode from 'qrcode';
import { ApiError, post } from '../api.ts';
import { ErrorBox } from '../ui.tsx';

export interface Session { readonly principal: string; readonly expiresAt: number; readonly mfa: boolean }

export function SignIn(props: { onSignedIn: (s: Session) => void; notice: string | null }) {
  const [principal, setPrincipal] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [enrol, setEnrol] = useState<{ uri: string; qr: string; secret: string } | null>(null);
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);

  const signIn = async () => {
    setBusy(true); setError(null);
    try {
      const s = await post<Session>('/console/session', { principal, password, code: code || null });
      sessionStorage.setItem('gh_principal', s.principal);
      props.onSignedIn(s);
    } catch (e) {
      // Only an account that has never enrolled is offered enrolment; an enrolled one is asked for its code.
      if (e instanceof ApiError && e.code === 'MFA_REQUIRED' && /must enrol/.test(e.message) && !code) {
        try {
          const r = await post<{ otpauthUri: string; secret: string }>('/console/session/enrol', { principal, password });
          setEnrol({ uri: r.otpauthUri, secret: r.secret, qr: await QRCode.toDataURL(r.otpauthUri, { margin: 1, width: 200 }) });
        } catch (e2) { setError(e2 as Error); }
      } else setError(e as Error);
    } finally { setBusy(false); }
  };
  const confirm = async () => {
    setBusy(true); setError(null);
    try {
      const r = await post<{ recoveryCodes: string[] }>('/console/session/confirm', { principal, password, code });
      setRecovery(r.recoveryCodes); setEnrol(null); setCode('');
    } catch (e) { setError(e as Error); } finally { setBusy(false); }
  };

  return (
    <main id="main" className="signin">
      <h1>Gatehouse console</h1>
      {props.notice && <p role="status" className="notice">{props.notice}</p>}
      <form onSubmit={(e) => { e.preventDefault(); void (enrol ? confirm() : signIn()); }}>
        <label>Principal <input name="principal" autoComplete="username" required value={principal} onChange={(e) => setPrincipal(e.target.value)} /></label>
        <label>Password <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} /></label>
        {enrol && (
          <div className="enrol">
            <p>Scan this code with your authenticator app, then enter the first code it shows.</p>
            <img src={enrol.qr} alt="QR code of the otpauth URI for your authenticator app" width={200} height={200} data-otpauth={enrol.uri} />
            <p>Or type the secret: <code>{enrol.secret}</code></p>
          </div>
        )}
        {recovery && (
          <div className="enrol" role="status">
            <p>Authenticator enrolled. Keep these single-use recovery codes somewhere safe; they are shown once:</p>
            <ul className="codes">{recovery.map((c) => <li key={c}><code>{c}</code></li>)}</ul>
            <p>Now sign in with a fresh code.</p>
          </div>
        )}
        <label>Authenticator code <input name="code" inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} /></label>
        <button type="submit" disabled={busy}>{enrol ? 'Confirm authenticator' : 'Sign in'}</button>
      </form>
      <ErrorBox error={error} />
    </main>
  );
}
