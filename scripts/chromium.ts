/**
 * Debian's chromium for the console's browser tests.
 *
 *   npx node scripts/chromium.ts install   ensure /usr/bin/chromium exists (apt-get install -y chromium when missing, as root)
 *   npx node scripts/chromium.ts path      print the browser's path, or fail with what to do
 *
 * Why Debian's package: the browser tests drive a real browser with playwright-core, and a
 * security product's CI must not download an unpinned browser build from a test tool's CDN
 * (`npx playwright install` is never run). The distribution's chromium is signed by the
 * distribution, patched with the rest of the machine, and installed by the same apt-get that
 * brings PostgreSQL (scripts/postgres.ts).
 *
 * Idempotent: when the binary is present it does nothing. When it is missing and we are not
 * root (or apt-get fails), it says exactly what to run.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

export function findChromium(): string | null {
  const fromEnv = process.env.GATEHOUSE_CHROMIUM;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return CHROMIUM_PATHS.find((p) => existsSync(p)) ?? null;
}

export function ensureChromium(): string {
  const found = findChromium();
  if (found) return found;
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!asRoot) {
    throw new Error('chromium is not installed: run `apt-get install -y chromium` as root (or `sudo npx node scripts/chromium.ts install`)');
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): number | null =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium', 'fonts-dejavu-core'], { stdio: 'inherit', env }).status;
  let status = install();
  if (status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    status = install();
  }
  const bin = findChromium();
  if (status !== 0 || !bin) {
    throw new Error('`apt-get install -y chromium` did not provide /usr/bin/chromium: run it by hand (as root) and check its output');
  }
  return bin;
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const cmd = process.argv[2];
  try {
    if (cmd === 'install') console.log(`chromium: ${ensureChromium()}`);
    else if (cmd === 'path') {
      const bin = findChromium();
      if (!bin) throw new Error('chromium is not installed: run `npx node scripts/chromium.ts install` (as root)');
      console.log(bin);
    } else {
      console.error('usage: npx node scripts/chromium.ts install | path');
      process.exitCode = 2;
    }
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
