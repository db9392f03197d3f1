/**
 * Builds the web console (console/ → console/dist) with Vite.
 *
 *   npx node scripts/console-build.ts            build
 *   npx node scripts/console-build.ts --if-stale build only when a source is newer than the output
 *
 * Run by package.json `prepare` (so `npm ci` builds it) and by `prestart`/`pretest` with
 * --if-stale (so `npm start` and `npm test` serve what the sources say, without rebuilding
 * when nothing changed). The output is git-ignored: built assets are never committed.
 * Prints the size of the JavaScript, raw and gzipped (the budget is 300 kB gzipped).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = fileURLToPath(new URL('../console/', import.meta.url));
const DIST = join(ROOT, 'dist');
const SOURCES = ['index.html', 'vite.config.ts', 'src'];

function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return readdirSync(path).reduce((m, f) => Math.max(m, newest(join(path, f))), s.mtimeMs);
}

export function isStale(): boolean {
  const index = join(DIST, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  return SOURCES.some((s) => newest(join(ROOT, s)) > built);
}

/** Bytes of JavaScript in the build, raw and gzipped (level 9, as a server would send it). */
export function jsSize(): { raw: number; gzip: number; files: number } {
  const dir = join(DIST, 'assets');
  let raw = 0; let gzip = 0; let files = 0;
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    if (!f.endsWith('.js')) continue;
    const b = readFileSync(join(dir, f));
    raw += b.length; gzip += gzipSync(b, { level: 9 }).length; files++;
  }
  return { raw, gzip, files };
}

export async function buildConsole(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: join(ROOT, 'vite.config.ts'), root: ROOT, logLevel: 'warn' });
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const ifStale = process.argv.includes('--if-stale');
  if (ifStale && !isStale()) {
    console.log('console: up to date (console/dist)');
  } else {
    const t0 = performance.now();
    try {
      await buildConsole();
      const s = jsSize();
      console.log(`console: built console/dist in ${Math.round(performance.now() - t0)} ms; JavaScript ${(s.raw / 1024).toFixed(1)} kB, ${(s.gzip / 1024).toFixed(1)} kB gzipped`);
    } catch (err) {
      console.error(`console: build failed: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  }
}
