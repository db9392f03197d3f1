/**
 * The console's only way to the server: the public HTTP API, same origin, with the session
 * cookie (httpOnly: this code never sees the token) and the double-submit CSRF header on
 * every state-changing request (src/server/console-session.ts). An expired access token is
 * renewed once with the refresh cookie; if that fails the app shows the sign-in again.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | null;
  readonly reasons: readonly string[];
  constructor(status: number, code: string, message: string, hint: string | null, reasons: readonly string[]) {
    super(message);
    this.status = status; this.code = code; this.hint = hint; this.reasons = reasons;
  }
}

function csrfToken(): string {
  const c = document.cookie.split('; ').find((x) => x.startsWith('gh_csrf='));
  return c ? c.slice('gh_csrf='.length) : '';
}

let onExpired: () => void = () => undefined;
export function whenSessionExpires(f: () => void): void { onExpired = f; }

async function raw(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-gatehouse-csrf'] = csrfToken() || 'sign-in';
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

async function errorOf(r: Response): Promise<ApiError> {
  let e: { code?: string; message?: string; hint?: string | null; reasons?: string[] } = {};
  try { e = ((await r.json()) as { error?: typeof e }).error ?? {}; } catch { /* not JSON */ }
  return new ApiError(r.status, e.code ?? `HTTP_${r.status}`, e.message ?? r.statusText, e.hint ?? null, e.reasons ?? []);
}

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  let r = await raw(method, path, body);
  if (r.status === 401 && !path.startsWith('/console/session')) {
    const again = await raw('POST', '/console/session/refresh');
    if (again.ok) r = await raw(method, path, body);
    else { onExpired(); throw await errorOf(r); }
  }
  if (!r.ok) throw await errorOf(r);
  return (await r.json()) as T;
}

export const get = <T>(path: string, query: Record<string, string | number | boolean | undefined> = {}): Promise<T> => {
  const q = Object.entries(query).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
  return api<T>('GET', q ? `${path}?${q}` : path);
};
export const post = <T>(path: string, body?: unknown): Promise<T> => api<T>('POST', path, body ?? {});
