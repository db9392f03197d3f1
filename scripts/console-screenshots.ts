/**
 * Regenerates the console screenshots in docs/console/ (one PNG per view):
 *
 *   npx node scripts/console-screenshots.ts
 *
 * Starts the served demo on a free loopback port (test/console-node.ts), drives Debian's
 * chromium (scripts/chromium.ts install) through a few real requests so the views have
 * something to show (a DP query, a masked query, an access request), then captures each view
 * as the partner, the auditor or the owner would see it.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { findChromium } from './chromium.ts';
import { generateTotp, totpStep } from '../src/identity/totp.ts';
import { PASSWORDS, startConsoleNode } from '../test/console-node.ts';

const OUT = fileURLToPath(new URL('../docs/console/', import.meta.url));
const exe = findChromium();
if (!exe) { console.error('error: chromium is not installed: npx node scripts/chromium.ts install'); process.exit(1); }
mkdirSync(OUT, { recursive: true });

const node = await startConsoleNode({ patients: 2000 });
const browser = await chromium.launch({ executablePath: exe, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
try {
  const open = async (): Promise<Page> => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${node.url}/console/`);
    return page;
  };
  const signIn = async (page: Page, who: keyof typeof PASSWORDS, code?: string) => {
    await page.getByLabel('Principal').fill(who);
    await page.getByLabel('Password').fill(PASSWORDS[who]);
    if (code) await page.getByLabel('Authenticator code').fill(code);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  const shot = async (page: Page, view: string, name = view) => {
    await page.goto(`${node.url}/console/#/${view}`);
    await page.locator(`main[data-view="${view}"] h2`).waitFor();
    while (await page.locator('[aria-busy="true"]').count() > 0) await page.locator('[aria-busy="true"]').first().waitFor({ state: 'detached' });
    await page.screenshot({ path: `${OUT}${name}.png`, fullPage: true });
    console.log(`docs/console/${name}.png`);
  };

  // The contractor: enrolment (the QR code), then a DP query.
  const rhea = await open();
  await signIn(rhea, 'rhea');
  const qr = rhea.getByAltText(/QR code/);
  await qr.waitFor();
  await rhea.screenshot({ path: `${OUT}sign-in-enrol.png` });
  console.log('docs/console/sign-in-enrol.png');
  const secret = new URL((await qr.getAttribute('data-otpauth'))!).searchParams.get('secret')!;
  await rhea.getByLabel('Authenticator code').fill(await generateTotp(secret));
  await rhea.getByRole('button', { name: 'Confirm authenticator' }).click();
  await rhea.getByText(/recovery codes/).waitFor();
  await signIn(rhea, 'rhea', await generateTotp(secret, { now: (totpStep() + 1) * 30_000 }));
  await rhea.getByTestId('principal').waitFor();
  await rhea.getByLabel('Purpose').fill('research');
  await rhea.getByLabel('SQL query').fill('SELECT region, count(*) AS n FROM patients GROUP BY region');
  await rhea.getByRole('button', { name: 'Estimate cost' }).click();
  await rhea.getByTestId('estimate').waitFor();
  await rhea.getByRole('button', { name: 'Run query' }).click();
  await rhea.getByTestId('answer').waitFor();
  await rhea.screenshot({ path: `${OUT}workbench-dp.png`, fullPage: true });
  console.log('docs/console/workbench-dp.png');
  const auditId = (await rhea.getByTestId('governance').getByRole('link').innerText()).replace('#', '');
  await rhea.goto(`${node.url}/console/#/receipts?id=${auditId}`);
  await rhea.getByTestId('verification').waitFor();
  await rhea.screenshot({ path: `${OUT}receipts.png`, fullPage: true });
  console.log('docs/console/receipts.png');
  await shot(rhea, 'datasets');

  // The insurer: a masked answer, an access request.
  const ivan = await open();
  await signIn(ivan, 'ivan');
  await ivan.getByTestId('principal').waitFor();
  await ivan.getByLabel('Purpose').fill('claims-processing');
  await ivan.getByLabel('SQL query').fill('SELECT patient_id, name, ssn, region FROM patients LIMIT 8');
  await ivan.getByRole('button', { name: 'Run query' }).click();
  await ivan.getByTestId('answer').waitFor();
  await ivan.screenshot({ path: `${OUT}workbench-masked.png`, fullPage: true });
  console.log('docs/console/workbench-masked.png');
  await ivan.goto(`${node.url}/console/#/approvals`);
  await ivan.getByLabel('Dataset').fill('encounters');
  await ivan.getByLabel('Purpose').fill('claims-processing');
  await ivan.getByLabel('Justification').fill('reconcile encounter dates for disputed claims');
  await ivan.getByRole('button', { name: 'Submit request' }).click();
  await ivan.getByText(/submitted/).waitFor();
  await shot(ivan, 'results');

  const audrey = await open();
  await signIn(audrey, 'audrey');
  await audrey.getByTestId('principal').waitFor();
  await shot(audrey, 'audit');
  await shot(audrey, 'compliance');
  await shot(audrey, 'charts');
  await shot(audrey, 'activity');

  const olivia = await open();
  await signIn(olivia, 'olivia');
  await olivia.getByTestId('principal').waitFor();
  await shot(olivia, 'approvals');
  await olivia.goto(`${node.url}/console/#/policies`);
  await olivia.getByRole('button', { name: 'Simulate' }).click();
  await olivia.getByTestId('what-if').waitFor();
  await olivia.screenshot({ path: `${OUT}policies.png`, fullPage: true });
  console.log('docs/console/policies.png');
  for (const v of ['catalog', 'governance', 'flows']) await shot(olivia, v);
} finally {
  await browser.close();
  await node.close();
}
