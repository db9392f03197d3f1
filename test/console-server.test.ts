/**
 * The console's server side, attacked over real HTTP (no browser): the static handler's
 * headers and its refusal of traversal, the cookie sign-in and its CSRF defences (a forged
 * cross-site request is refused and audited; API clients with a bearer header are not
 * affected), and the owners-only what-if route.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { CONSOLE_CSP, resolveConsoleFile } from '../src/server/console-static.ts';
import { readCookies } from '../src/server/console-session.ts';
import { KEYS } from './helpers/workspace.ts';
import { PASSWORDS, startConsoleNode, type ConsoleNode } from './console-node.ts';

let node: ConsoleNode;
before(async () => { node = await startConsoleNode({ patients: 200 }); });
after(async () => { await node?.close(); });

/** A request with the path sent exactly as written (fetch would normalise "../"). */
function raw(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(node.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function signIn(who: keyof typeof PASSWORDS): Promise<{ cookie: string; csrf: string; setCookie: string[] }> {
  const r = await fetch(`${node.url}/console/session`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-gatehouse-csrf': 'sign-in', origin: node.url },
    body: JSON.stringify({ principal: who, password: PASSWORDS[who] }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  const setCookie = r.headers.getSetCookie();
  const jar = new Map(setCookie.map((c) => c.split(';')[0]!.split('=') as [string, string]));
  return { cookie: `gh_session=${jar.get('gh_session')}; gh_csrf=${jar.get('gh_csrf')}`, csrf: jar.get('gh_csrf')!, setCookie };
}

const grantRequest = JSON.stringify({ dataset: 'encounters', purpose: 'claims-processing', days: 7, justification: 'forgery probe' });

describe('the console static handler', () => {
  it('serves the page with a strict CSP, nosniff, no framing and no caching of index.html', async () => {
    const r = await raw('/console/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['content-security-policy'], CONSOLE_CSP);
    assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval|\*/);
    assert.match(CONSOLE_CSP, /frame-ancestors 'none'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['cache-control'], 'no-cache');
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(r.body)![1]!;
    const a = await raw(asset);
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(a.headers['cache-control'], 'public, max-age=31536000, immutable');
  });

  it('answers a client-side route with the page and /console with a redirect', async () => {
    assert.equal((await raw('/console/audit')).headers['content-type'], 'text/html; charset=utf-8');
    const r = await raw('/console');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/console/');
  });

  it('refuses every traversal, dot-file and unknown-type path an attacker tries', async () => {
    for (const p of [
      '/console/../package.json', '/console/assets/../../package.json', '/console/%2e%2e/package.json', '/console/..%2f..%2fpackage.json',
      '/console/assets/%2e%2e%2f%2e%2e%2fvite.config.ts', '/console/.gitignore', '/console/assets/.hidden.js', '/console/..\\..\\package.json',
      '/console/src/main.tsx', '/console/vite.config.ts', '/console/assets//etc/passwd.txt', '/console/assets/missing.js',
    ]) {
      const r = await raw(p);
      assert.ok(r.status === 404 || r.status === 400, `${p} → ${r.status}`);
      assert.doesNotMatch(r.body, /"devDependencies"|defineConfig|createRoot/, `${p} leaks nothing`);
    }
  });

  it('keeps resolved files inside the build folder', () => {
    assert.equal(resolveConsoleFile('/srv/dist', '../secret.js'), null);
    assert.equal(resolveConsoleFile('/srv/dist', 'assets/../../x.js'), null);
    assert.equal(resolveConsoleFile('/srv/dist', '/etc/passwd.txt'), null);
    assert.equal(resolveConsoleFile('/srv/dist', 'assets/a.js')!.file, '/srv/dist/assets/a.js');
  });
});

describe('the console session and CSRF', () => {
  it('sets the session as an httpOnly, SameSite=Strict cookie the page cannot read', async () => {
    const { setCookie } = await signIn('ivan');
    const session = setCookie.find((c) => c.startsWith('gh_session='))!;
    assert.match(session, /HttpOnly/);
    assert.match(session, /SameSite=Strict/);
    assert.doesNotMatch(session, /Secure/, 'plain HTTP on loopback: not Secure');
    assert.doesNotMatch(setCookie.find((c) => c.startsWith('gh_csrf='))!, /HttpOnly/, 'the CSRF token is readable by the page');
    assert.match(setCookie.find((c) => c.startsWith('gh_refresh='))!, /Path=\/console\/session; .*HttpOnly/);
  });

  it('refuses a sign-in posted from another site or without the custom header', async () => {
    const body = JSON.stringify({ principal: 'ivan', password: PASSWORDS.ivan });
    const noHeader = await fetch(`${node.url}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(noHeader.status, 403);
    assert.equal(((await noHeader.json()) as { error: { code: string } }).error.code, 'CSRF_REJECTED');
    const evil = await fetch(`${node.url}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-gatehouse-csrf': 'x', origin: 'https://evil.example' }, body });
    assert.equal(evil.status, 403);
  });

  it('refuses a state-changing request that rides on the cookie without the matching token, and audits it', async () => {
    const { cookie, csrf } = await signIn('ivan');
    const post = (headers: Record<string, string>) => fetch(`${node.url}/v1/governance/grants/requests`, { method: 'POST', headers: { 'content-type': 'application/json', cookie, ...headers }, body: grantRequest });
    for (const headers of [{} as Record<string, string>, { 'x-gatehouse-csrf': 'guessed-token' }, { 'x-gatehouse-csrf': csrf, origin: 'https://evil.example' }]) {
      const r = await post(headers);
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'CSRF_REJECTED');
    }
    const pending = await fetch(`${node.url}/v1/governance/grants/requests`, { headers: { cookie } });
    assert.equal(((await pending.json()) as { requests: unknown[] }).requests.length, 0, 'no forged request was created');
    const audit = await fetch(`${node.url}/v1/audit/entries?decision=deny&limit=10000`, { headers: { authorization: `Bearer ${KEYS.audrey}` } });
    const entries = ((await audit.json()) as { entries: { entry: { errorCode: string | null } }[] }).entries;
    assert.ok(entries.filter((e) => e.entry.errorCode === 'CSRF_REJECTED').length >= 3, 'each refusal left an audit entry');
    const ok = await post({ 'x-gatehouse-csrf': csrf, origin: node.url });
    assert.equal(ok.status, 200, 'the console itself (token + same origin) is served');
  });

  it('leaves bearer API clients and safe reads alone', async () => {
    const { cookie } = await signIn('ivan');
    assert.equal((await fetch(`${node.url}/v1/datasets`, { headers: { cookie } })).status, 200, 'a GET needs no token');
    const api = await fetch(`${node.url}/v1/query/estimate`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.ada}` }, body: JSON.stringify({ sql: 'SELECT count(*) FROM patients', purpose: 'operations' }) });
    assert.equal(api.status, 200);
  });

  it('renews an expiring session once per refresh token (rotating, single use)', async () => {
    const { setCookie } = await signIn('ivan');
    const refresh = setCookie.find((c) => c.startsWith('gh_refresh='))!.split(';')[0]!;
    const renew = () => fetch(`${node.url}/console/session/refresh`, { method: 'POST', headers: { cookie: refresh, 'x-gatehouse-csrf': 'sign-in', origin: node.url } });
    const first = await renew();
    assert.equal(first.status, 200);
    const fresh = first.headers.getSetCookie().find((c) => c.startsWith('gh_session='))!.split(';')[0]!;
    assert.equal((await fetch(`${node.url}/v1/datasets`, { headers: { cookie: fresh } })).status, 200, 'the renewed session works');
    const replay = await renew();
    assert.equal(replay.status, 401, 'a refresh token is single use');
    assert.ok(replay.headers.getSetCookie().some((c) => /^gh_session=;/.test(c)), 'a failed renewal clears the cookies');
  });

  it('logs out: the session token stops working at once', async () => {
    const { cookie, csrf } = await signIn('ivan');
    const r = await fetch(`${node.url}/console/session/logout`, { method: 'POST', headers: { cookie, 'x-gatehouse-csrf': csrf, origin: node.url } });
    assert.equal(r.status, 200);
    assert.ok(r.headers.getSetCookie().some((c) => /^gh_session=;.*Max-Age=0/.test(c)), 'the cookie is cleared');
    assert.equal((await fetch(`${node.url}/v1/datasets`, { headers: { cookie } })).status, 401);
  });

  it('parses cookies by their first occurrence only', () => {
    assert.equal(readCookies('gh_session=a; gh_session=b').get('gh_session'), 'a');
    assert.equal(readCookies(undefined).size, 0);
  });
});

describe('the request simulator route', () => {
  const ask = (key: string, body: object) => fetch(`${node.url}/v1/policy/simulate`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });

  it('shows an owner the insurer\'s decision and the SQL with the SSN mask applied', async () => {
    const r = await ask(KEYS.olivia, { principal: 'ivan', purpose: 'claims-processing', sql: 'SELECT ssn FROM patients' });
    assert.equal(r.status, 200);
    const a = (await r.json()) as { decision: string; rewrittenSql: string; obligationsApplied: string[] };
    assert.equal(a.decision, 'allow');
    assert.ok(a.obligationsApplied.some((o) => /mask.*ssn|ssn.*mask/i.test(o)), a.obligationsApplied.join());
    assert.doesNotMatch(a.rewrittenSql, /SELECT\s+"?ssn"?\s+FROM/i, 'the raw column is not selected as is');
  });

  it('tells an owner a request would be denied, with the reasons', async () => {
    const a = (await (await ask(KEYS.olivia, { principal: 'rhea', purpose: 'marketing', sql: 'SELECT count(*) FROM patients' })).json()) as { decision: string; reasons: string[] };
    assert.equal(a.decision, 'deny');
    assert.ok(a.reasons.length > 0);
  });

  it('is refused to a partner', async () => {
    const r = await ask(KEYS.ivan, { principal: 'rhea', purpose: 'research', sql: 'SELECT count(*) FROM patients' });
    assert.equal(r.status, 403);
  });
});
