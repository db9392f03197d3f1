/**
 * The web console in a real browser (playwright-core driving Debian's chromium, installed by
 * scripts/chromium.ts): sign-in with MFA enrolment, a masked query and a differentially
 * private one with its intervals, an access request approved by another user, a receipt
 * verified in the browser and a tampered proof refused, sign-out, and every view rendered
 * non-empty, without console errors, passing axe-core.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { findChromium } from '../scripts/chromium.ts';
import { generateTotp, totpStep } from '../src/identity/totp.ts';
import { PASSWORDS, startConsoleNode, type ConsoleNode } from './console-node.ts';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let node: ConsoleNode;
let browser: Browser;
const contexts: BrowserContext[] = [];
const consoleErrors = new Map<Page, string[]>();

before(async () => {
  const exe = findChromium();
  assert.ok(exe, 'chromium is installed (npx node scripts/chromium.ts install)');
  browser = await chromium.launch({ executablePath: exe, args: ARGS });
  node = await startConsoleNode();
});
after(async () => {
  await browser?.close();
  await node?.close();
});

async function newPage(): Promise<Page> {
  const ctx = await browser.newContext();
  contexts.push(ctx);
  const page = await ctx.newPage();
  const errs: string[] = [];
  consoleErrors.set(page, errs);
  // A refused request (401, 403) is logged by the browser as a failed resource: expected in
  // tests that are refused on purpose, so only script errors count.
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errs.push(m.text()); });
  page.on('pageerror', (e) => errs.push(e.message));
  await page.goto(`${node.url}/console/`);
  return page;
}

async function signIn(page: Page, who: keyof typeof PASSWORDS, code?: string): Promise<void> {
  await page.getByLabel('Principal').fill(who);
  await page.getByLabel('Password').fill(PASSWORDS[who]);
  if (code) await page.getByLabel('Authenticator code').fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function axe(page: Page): Promise<{ id: string; nodes: number }[]> {
  // Evaluated through the DevTools protocol: the console's CSP (rightly) refuses an injected <script>.
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const r = await (globalThis as unknown as { axe: { run: (o: object) => Promise<{ violations: { id: string; nodes: unknown[] }[] }> } }).axe.run({ resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, nodes: v.nodes.length }));
  });
}

let rhea: Page;
let auditId = '';

describe('the web console in chromium', () => {
  it('enrols a contractor in TOTP from the QR code of the otpauth URI, then signs her in with password and code', async () => {
    rhea = await newPage();
    await signIn(rhea, 'rhea');
    const qr = rhea.getByAltText(/QR code of the otpauth URI/);
    await qr.waitFor();
    assert.match((await qr.getAttribute('src'))!, /^data:image\/png;base64,/);
    const uri = (await qr.getAttribute('data-otpauth'))!;
    const secret = new URL(uri).searchParams.get('secret')!;
    await rhea.getByLabel('Authenticator code').fill(await generateTotp(secret));
    await rhea.getByRole('button', { name: 'Confirm authenticator' }).click();
    await rhea.getByText(/recovery codes/).waitFor();
    await signIn(rhea, 'rhea', await generateTotp(secret, { now: (totpStep() + 1) * 30_000 }));
    await rhea.getByTestId('principal').filter({ hasText: 'rhea' }).waitFor();
    const cookies = await rhea.context().cookies();
    const session = cookies.find((c) => c.name === 'gh_session')!;
    assert.equal(session.httpOnly, true, 'the session cookie is httpOnly');
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.secure, false, 'not Secure on loopback');
    assert.equal(await rhea.evaluate('document.cookie.includes("gh_session")'), false, 'page scripts cannot read the session token');
  });

  it('shows the ε estimate, then a differentially private answer with 95 % intervals drawn as error bars', async () => {
    await rhea.goto(`${node.url}/console/#/workbench`);
    await rhea.getByLabel('Purpose').fill('research');
    await rhea.getByLabel('SQL query').fill('SELECT region, count(*) AS n FROM patients GROUP BY region');
    await rhea.getByRole('button', { name: 'Estimate cost' }).click();
    assert.match(await rhea.getByTestId('estimate').innerText(), /would spend ε = [0-9.]+/);
    await rhea.getByRole('button', { name: 'Run query' }).click();
    await rhea.getByTestId('answer').waitFor();
    assert.match(await rhea.getByTestId('noise').innerText(), /gaussian|laplace/);
    assert.ok(await rhea.locator('.interval').count() >= 3, 'every noisy count shows its interval');
    assert.ok(await rhea.getByTestId('error-bar').count() >= 3, 'the chart draws an error bar per noisy value');
    assert.ok(await rhea.getByRole('img', { name: /Privacy budget/ }).count() === 1, 'the budget gauge is shown');
    auditId = (await rhea.getByTestId('governance').getByRole('link').innerText()).replace('#', '');
    assert.match(auditId, /^\d+$/);
  });

  it('verifies my receipt in the browser, and refuses it once a proof hash is changed', async () => {
    await rhea.goto(`${node.url}/console/#/receipts?id=${auditId}`);
    const v = rhea.getByTestId('verification');
    await v.waitFor();
    assert.match(await v.innerText(), /Verified in this browser/);
    assert.match(await v.innerText(), /signed by the log key/);
    await rhea.getByRole('button', { name: 'Tamper with the proof' }).click();
    await rhea.getByText('Verification FAILED').waitFor();
    assert.match(await v.innerText(), /does not lead to the signed root|proof/);
  });

  it('shows an insurer its masked columns and a masked answer', async () => {
    const ivan = await newPage();
    await signIn(ivan, 'ivan');
    await ivan.getByTestId('principal').waitFor();
    await ivan.goto(`${node.url}/console/#/datasets`);
    await ivan.getByLabel('Purpose').fill('claims-processing');
    await ivan.getByText(/masked \(last4\)/).first().waitFor();
    await ivan.goto(`${node.url}/console/#/workbench`);
    await ivan.getByLabel('SQL query').fill('SELECT patient_id, ssn FROM patients LIMIT 5');
    await ivan.getByRole('button', { name: 'Run query' }).click();
    await ivan.getByTestId('answer').waitFor();
    assert.match(await ivan.getByTestId('masks').innerText(), /ssn/);
    const cells = await ivan.getByTestId('answer').locator('tbody tr td:nth-child(2)').allInnerTexts();
    assert.ok(cells.length > 0 && cells.every((c) => !/^\d{3}-\d{2}-\d{4}$/.test(c)), 'no full SSN reaches the page');
  });

  it('lets a partner request access and another user (the data owner) approve it', async () => {
    const ivan = await newPage();
    await signIn(ivan, 'ivan');
    await ivan.getByTestId('principal').waitFor();
    await ivan.goto(`${node.url}/console/#/approvals`);
    await ivan.getByLabel('Dataset').fill('encounters');
    await ivan.getByLabel('Purpose').fill('claims-processing');
    await ivan.getByLabel('Justification').fill('reconcile encounter dates for disputed claims');
    await ivan.getByRole('button', { name: 'Submit request' }).click();
    const id = (await ivan.getByText(/Access request .* submitted/).innerText()).match(/Access request (\S+) submitted/)![1]!;
    assert.match(await ivan.getByRole('region', { name: 'Access requests' }).innerText(), /awaiting an owner/, 'the requester cannot approve their own request');

    const olivia = await newPage();
    await signIn(olivia, 'olivia');
    await olivia.getByTestId('principal').waitFor();
    await olivia.goto(`${node.url}/console/#/approvals`);
    await olivia.getByRole('button', { name: `Approve ${id}` }).click();
    await olivia.getByText(`Request ${id} approved`).waitFor();
    await ivan.goto(`${node.url}/console/#/governance`);
    await ivan.getByRole('region', { name: 'Grants' }).getByText('encounters').first().waitFor();
  });

  it('renders every view non-empty, without console errors, and passes axe-core', async () => {
    const audrey = await newPage();
    await signIn(audrey, 'audrey');
    await audrey.getByTestId('principal').waitFor();
    const olivia = await newPage();
    await signIn(olivia, 'olivia');
    await olivia.getByTestId('principal').waitFor();
    const views: [Page, string][] = [
      [rhea, 'workbench'], [rhea, 'datasets'], [rhea, 'results'], [rhea, 'receipts'],
      [audrey, 'audit'], [audrey, 'compliance'], [audrey, 'activity'], [olivia, 'activity'],
      [olivia, 'catalog'], [olivia, 'policies'], [olivia, 'governance'], [olivia, 'approvals'], [olivia, 'flows'], [olivia, 'charts'], [audrey, 'charts'],
    ];
    for (const [page, view] of views) {
      await page.goto(`${node.url}/console/#/${view}`);
      await page.locator(`main[data-view="${view}"] h2`).waitFor();
      // Loading placeholders (aria-busy) gone: polled through locators, since the CSP forbids eval in the page.
      for (const deadline = Date.now() + 10_000; await page.locator('[aria-busy="true"]').count() > 0;) {
        assert.ok(Date.now() < deadline, `${view} finished loading`);
        await page.locator('[aria-busy="true"]').first().waitFor({ state: 'detached', timeout: 10_000 });
      }
      const text = (await page.locator('main').innerText()).trim();
      assert.ok(text.length > 40, `${view} renders content`);
      assert.equal(await page.locator('main [role="alert"]').count(), 0, `${view} shows no error: ${text.slice(0, 300)}`);
      assert.deepEqual(await axe(page), [], `${view} passes axe-core`);
    }
    for (const [page] of views) assert.deepEqual(consoleErrors.get(page), [], 'no console errors');
  });

  it('shows an auditor live activity as it happens, raises an alert on repeated denials, and lets her acknowledge and resolve it', async () => {
    const audrey = await newPage();
    await signIn(audrey, 'audrey');
    await audrey.getByTestId('principal').waitFor();
    await audrey.goto(`${node.url}/console/#/activity`);
    await audrey.getByText('Live: new requests and alert changes appear as they happen.').waitFor();
    // Another user, over the API with his console cookies: five refused queries (a purpose he has no grant for).
    const ivan = await newPage();
    await signIn(ivan, 'ivan');
    await ivan.getByTestId('principal').waitFor();
    const jar = await ivan.context().cookies();
    const cookie = jar.map((c) => `${c.name}=${c.value}`).join('; ');
    const csrf = jar.find((c) => c.name === 'gh_csrf')!.value;
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${node.url}/v1/query`, { method: 'POST', headers: { cookie, 'x-gatehouse-csrf': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ sql: 'SELECT count(*) FROM patients', purpose: 'marketing' }) });
      assert.equal(r.status, 403, 'the query is refused');
    }
    const feed = audrey.getByTestId('feed');
    await feed.getByText(/ivan query on .*: deny/).first().waitFor();
    await feed.getByText(/alert opened: repeated-denials on ivan/).waitFor();
    const alerts = audrey.getByRole('region', { name: 'Open alerts' });
    await alerts.getByText('repeated-denials').waitFor();
    const ack = alerts.getByRole('button', { name: /^Acknowledge / });
    const id = (await ack.first().innerText()).replace('Acknowledge ', '');
    await ack.first().click();
    await audrey.getByText(`Alert ${id} acknowledged`).waitFor();
    await feed.getByText(/alert acknowledged: repeated-denials on ivan/).waitFor();
    await alerts.getByRole('button', { name: `Resolve ${id}` }).click();
    await audrey.getByText(`Alert ${id} resolved`).waitFor();
    await audrey.getByText('No open alerts.').waitFor();
    assert.deepEqual(consoleErrors.get(audrey), [], 'no console errors');
    // A partner watching sees only himself: the auditor's own activity is not in his stream or tables.
    await ivan.goto(`${node.url}/console/#/activity`);
    await ivan.getByText(/your own activity/).waitFor();
    assert.doesNotMatch(await ivan.locator('main').innerText(), /audrey/);
  });

  it('lets a data owner simulate a request as another principal and see the decision, reasons and rewritten SQL', async () => {
    const olivia = await newPage();
    await signIn(olivia, 'olivia');
    await olivia.getByTestId('principal').waitFor();
    await olivia.goto(`${node.url}/console/#/policies`);
    await olivia.getByRole('button', { name: 'Simulate' }).click();
    const out = await olivia.getByTestId('what-if').innerText();
    assert.match(out, /Decision: allow/);
    assert.match(out, /mask/i, 'the insurer\'s SSN mask is among the obligations');
    assert.match(out, /SELECT/, 'the rewritten SQL is shown');
    await olivia.getByLabel('As principal').fill('rhea');
    await olivia.getByLabel('For purpose').fill('marketing');
    await olivia.getByRole('button', { name: 'Simulate' }).click();
    await olivia.getByText(/Decision: deny/).waitFor();
    // A partner may not simulate (it would reveal how others are governed).
    const ivan = await newPage();
    await signIn(ivan, 'ivan');
    await ivan.getByTestId('principal').waitFor();
    await ivan.goto(`${node.url}/console/#/policies`);
    await ivan.getByRole('button', { name: 'Simulate' }).click();
    await ivan.getByText(/reserved to the administrator groups/).waitFor();
  });

  it('sends the user back to sign-in when the session has expired and cannot be renewed', async () => {
    const ivan = await newPage();
    await signIn(ivan, 'ivan');
    await ivan.getByTestId('principal').waitFor();
    // What the browser holds once both tokens have expired: neither cookie is sent any more.
    const keep = (await ivan.context().cookies()).filter((c) => c.name === 'gh_csrf');
    await ivan.context().clearCookies();
    await ivan.context().addCookies(keep);
    // The next view's request is refused, the renewal too: the notice shows on the sign-in form.
    // (No reload after it: the expiry clears the remembered principal, so a reload racing the
    // refusals would land on a plain sign-in form without the notice.)
    await ivan.goto(`${node.url}/console/#/datasets`);
    await ivan.getByText('Your session expired: sign in again.').waitFor();
    assert.equal(await ivan.getByRole('button', { name: 'Sign in' }).count(), 1);
  });

  it('signs out: the cookies are cleared and the old session token is revoked', async () => {
    const token = (await rhea.context().cookies()).find((c) => c.name === 'gh_session')!.value;
    await rhea.getByRole('button', { name: 'Sign out' }).click();
    await rhea.getByText('You are signed out.').waitFor();
    assert.equal((await rhea.context().cookies()).some((c) => c.name === 'gh_session' && c.value), false);
    const r = await fetch(`${node.url}/v1/datasets`, { headers: { cookie: `gh_session=${token}` } });
    assert.equal(r.status, 401, 'the revoked session token is refused');
  });
});
