/**
 * `gatehouse activity [--minutes N] [--watch] [--json]`: the four live questions from a
 * running server (GET /v1/activity), as tables; `--watch` then follows the server-sent-events
 * stream and prints one line per request and alert change until interrupted (NDJSON with
 * --json). The server decides the scope: auditors and administrators see everyone, anyone
 * else only themselves.
 */
import { parseArgs } from 'node:util';
import { GatehouseError } from '../errors.ts';
import { bearerHeader } from '../identity/credentials.ts';
import type { ActivityAnswer } from '../pipeline/gatehouse.ts';
import { COMMANDS, DEFAULT_PORT, parseOptions } from './commands.ts';
import { errorFromBody } from './exit.ts';
import { formatTable } from './table.ts';

type Out = NodeJS.WritableStream;

const ago = (iso: string, now: number): string => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};
const age = (s: number | null): string => (s === null ? 'no MFA' : s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`);

/** The snapshot as the four sections a person reads top to bottom. */
export function renderActivity(a: ActivityAnswer): string {
  const now = Date.parse(a.at);
  const parts: string[] = [];
  parts.push(`Activity at ${a.at} (${a.scope === 'all' ? 'every principal' : 'you only'}; recent = last ${a.recentMinutes} min)`);
  parts.push('\nWHO — requests in the last minutes');
  parts.push(a.who.recent.length === 0 ? '  nobody' : formatTable(['principal', 'org', 'last', 'from', 'zone', 'channel', 'action', 'requests', 'denied', 'score', 'why'],
    a.who.recent.map((r) => [r.principal, r.org ?? '', ago(r.lastAt, now), r.source, r.zone ?? '', r.channel, r.action, r.requests, r.denials, r.score, r.reasons.join('; ')])));
  const creds = [
    ...a.who.sessions.map((s) => [s.principal, 'session', s.session, `until ${s.expiresAt}`, `MFA ${age(s.mfaAgeSeconds)}`]),
    ...a.who.connectionPasswords.map((c) => [c.principal, 'pg password', c.name, `until ${c.expiresAt}`, '']),
    ...a.who.elevations.map((e) => [e.principal, e.breakGlass ? 'BREAK-GLASS' : 'elevation', e.role, `until ${e.expiresAt}`, e.purpose]),
    ...a.who.serviceKeys.map((k) => [k.principal, 'service key', k.id, k.expiresAt ? `until ${k.expiresAt}` : 'no expiry', k.datasets ? k.datasets.join(',') : 'all granted']),
  ];
  parts.push('\nWHO — access held now');
  parts.push(creds.length === 0 ? '  none' : formatTable(['principal', 'kind', 'id', 'valid', 'detail'], creds));
  parts.push('\nCONDITIONS');
  parts.push(formatTable(['principal', 'org', 'MFA age', 'zone', 'agreements', 'grants', 'hold'], a.conditions.map((c) => [
    c.principal, c.org ?? '', age(c.mfaAgeSeconds), c.zone ?? '', c.agreements.join(', '), c.grants.map((g) => `${g.dataset}/${g.purpose}`).join(', '), c.hold ?? '',
  ])));
  parts.push('\nPURPOSE AND EXTRACTION — per principal and dataset');
  parts.push(a.extraction.length === 0 ? '  nothing released yet' : formatTable(['principal', 'dataset', 'purposes', 'requests', 'rows released', 'units released', 'columns seen unmasked', 'budget spent'], a.extraction.map((x) => [
    x.principal, x.dataset, x.purposes.join(', '), x.requests, x.rowsReleased, x.unitsReleased === null ? '' : `${x.unitsAtLeast ? '≥ ' : ''}${x.unitsReleased}`, x.columnsUnmasked.join(', '), x.budget ? `${Math.round((x.budget.spentRho / x.budget.capRho) * 100)} %` : '',
  ])));
  parts.push(`\nALERTS — ${a.alerts.open} open, ${a.alerts.acknowledged} acknowledged, ${a.alerts.resolved} resolved`);
  if (a.alerts.active.length > 0) parts.push(formatTable(['id', 'rule', 'severity', 'principal', 'state', 'summary'], a.alerts.active.map((x) => [x.id, x.rule, x.severity, x.principal, x.state, x.summary])));
  return `${parts.join('\n')}\n`;
}

/** One line per streamed event. */
export function renderEvent(type: string, data: Record<string, any>): string {
  if (type === 'request') {
    return `${data.at}  ${String(data.principal).padEnd(12)} ${String(data.action).padEnd(18)} ${String(data.decision).padEnd(5)} rows=${data.rows} score=${data.score}${data.reasons.length ? `  (${data.reasons.join('; ')})` : ''}\n`;
  }
  const a = data.alert ?? {};
  return `${a.updatedAt ?? ''}  ${type.toUpperCase()}  ${a.rule} ${a.principal}: ${a.summary} [${a.state}]\n`;
}

export async function cmdActivity(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: parseOptions(COMMANDS.activity!.options), allowPositionals: false, strict: true }) as { values: Record<string, any> };
  const url = values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  const minutes = values.minutes !== undefined ? Number(values.minutes) : undefined;
  if (minutes !== undefined && (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440)) {
    throw new GatehouseError('REQUEST_INVALID', '--minutes must be a whole number from 1 to 1440', { hint: 'gatehouse activity --minutes 15' });
  }
  const headers: Record<string, string> = key ? { authorization: bearerHeader(key) } : {};
  const res = await call(url, `/v1/activity${minutes ? `?minutes=${minutes}` : ''}`, headers);
  const answer = (await res.json()) as ActivityAnswer;
  out.write(values.json ? `${JSON.stringify(answer, null, values.watch ? 0 : 2)}\n` : renderActivity(answer));
  if (!values.watch) return 0;
  const stream = await call(url, '/v1/activity', { ...headers, accept: 'text/event-stream' }, null);
  if (!values.json) out.write('\nWatching (Ctrl-C to stop)…\n');
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const type = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (!type || !data) continue;
      out.write(values.json ? `${JSON.stringify({ event: type, data: JSON.parse(data) })}\n` : renderEvent(type, JSON.parse(data)));
    }
  }
  return 0;
}

async function call(url: string, path: string, headers: Record<string, string>, timeoutMs: number | null = 60_000): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(new URL(path, url), { headers, ...(timeoutMs ? { signal: AbortSignal.timeout(timeoutMs) } : {}) });
  } catch (err) {
    throw new GatehouseError('UNAVAILABLE', `cannot reach ${url}: ${(err as Error).message}`, { hint: 'start the server ("gatehouse serve"), or set --url (or GATEHOUSE_URL)' });
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string; hint?: string | null; reasons?: string[] } };
    throw errorFromBody(body.error, res.status);
  }
  return res;
}
