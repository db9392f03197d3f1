/**
 * Serves the built console (console/dist, written by scripts/console-build.ts) at /console.
 *
 * A deliberately tiny static handler instead of @fastify/static: the console is a handful of
 * files, and every byte it serves must carry the same strict headers:
 *
 * - Content-Security-Policy (W3C CSP Level 3): scripts, styles and connections from this
 *   origin only, images from this origin or data: (the TOTP QR code), no plugins, no framing,
 *   no <base> rewriting, forms only to this origin. No 'unsafe-inline' anywhere, so an
 *   injected <script> or inline handler does not run.
 * - X-Content-Type-Options: nosniff and an explicit Content-Type per extension; files of any
 *   other extension are not served.
 * - Caching: Vite names assets by content hash, so /console/assets/* are immutable for a
 *   year; index.html is `no-cache` so a new build is picked up at the next load.
 * - No directory traversal: a request path is matched against a strict pattern (no `..`, no
 *   dot-files, no backslashes, no encoded separators), resolved, and must stay inside the
 *   folder; only regular files are read. A client-side route (/console/audit) gets index.html.
 */
import { readFileSync, statSync } from 'node:fs';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../errors.ts';

export const CONSOLE_DIST = fileURLToPath(new URL('../../console/dist/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'", "object-src 'none'",
].join('; ');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const ROUTE = /^[A-Za-z0-9_-]{1,64}(?:\/[A-Za-z0-9_-]{1,64}){0,3}$/;
/** Path segments: letters, digits, `-`, `_`, `.`, not starting with a dot. */
const SAFE_PATH = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,127})(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){0,7}$/;

/**
 * The file under `root` a request path names, or null when it names none we may serve.
 * `rel` is the part after /console/ (already URL-decoded by nothing: the raw path).
 */
export function resolveConsoleFile(root: string, rel: string): { file: string; type: string; immutable: boolean } | null {
  // A client-side route (letters, digits, - and _ only: no dot anywhere) gets the page.
  if (rel === '' || ROUTE.test(rel)) return { file: resolve(root, 'index.html'), type: TYPES['.html']!, immutable: false };
  if (!SAFE_PATH.test(rel) || rel.split('/').some((s) => s === '.' || s === '..')) return null;
  const type = TYPES[extname(rel).toLowerCase()];
  if (!type) return null;
  const base = resolve(root);
  const file = resolve(base, rel);
  if (!file.startsWith(base + sep)) return null;
  return { file, type, immutable: rel.startsWith('assets/') };
}

function send(reply: FastifyReply, body: Buffer, type: string, immutable: boolean): FastifyReply {
  return reply.headers({
    'content-type': type,
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  }).send(body);
}

export interface ConsoleStaticOptions { readonly root?: string }

export async function registerConsoleStatic(app: FastifyInstance, options: ConsoleStaticOptions = {}): Promise<void> {
  const root = options.root ?? CONSOLE_DIST;
  const notFound = (request: FastifyRequest) => new GatehouseError('NOT_FOUND', `no console file ${request.url.split('?')[0]!.slice(0, 200)}`, { hint: 'open /console' });
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const raw = request.url.split('?')[0]!;
    if (raw === '/console') return reply.redirect('/console/', 301);
    const target = resolveConsoleFile(root, raw.slice('/console/'.length));
    if (!target) throw notFound(request);
    let body: Buffer;
    try {
      if (!statSync(target.file).isFile()) throw notFound(request);
      body = readFileSync(target.file);
    } catch (err) {
      if (err instanceof GatehouseError) throw err;
      if (target.type === TYPES['.html']) {
        throw new GatehouseError('UNAVAILABLE', 'the console is not built', { hint: 'run `npx node scripts/console-build.ts` (npm ci and npm start do it)' });
      }
      throw notFound(request);
    }
    return send(reply, body, target.type, target.immutable);
  };
  const schema = { hide: true } as object;
  app.get('/console', { schema }, handler);
  app.get('/console/*', { schema }, handler);
}
