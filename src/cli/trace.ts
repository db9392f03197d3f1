/**
 * `gatehouse trace FILE [--json]`: sends a leaked extract (CSV or JSON, as found) to a
 * running server (POST /v1/trace; auditors and administrators) and prints who most likely
 * released it — partner, query fingerprint, audit entry — with the confidence and evidence.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GatehouseError } from '../errors.ts';
import { bearerHeader } from '../identity/credentials.ts';
import type { TraceResult } from '../monitoring/leaks.ts';
import { COMMANDS, DEFAULT_PORT, parseOptions } from './commands.ts';
import { errorFromBody, UsageError } from './exit.ts';
import { formatTable } from './table.ts';

export function renderTrace(t: TraceResult): string {
  const lines = [`${t.verdict}`, `(${t.rows} rows in the extract)`];
  if (t.candidates.length > 0) {
    lines.push(formatTable(['partner', 'confidence', 'audit entry', 'released at', 'datasets', 'rows matched', 'canaries', 'query fingerprint'],
      t.candidates.map((c) => [c.principal, c.confidence, c.auditId ?? '?', c.at, c.datasets.join(','), c.matchedRows, c.canaryRows, (c.sqlFingerprint ?? '').slice(0, 16)])));
    const best = t.candidates[0]!;
    lines.push(...best.evidence.map((e) => `  · ${e}`));
    if (best.releases.length > 1) lines.push(`  · found in: ${best.releases.map((r) => `audit entry ${r.auditId ?? '?'} (${r.matchedRows} rows)`).join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function cmdTrace(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: parseOptions(COMMANDS.trace!.options), allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
  if (positionals.length !== 1) throw new UsageError('give the leaked file: gatehouse trace FILE', { hint: 'gatehouse trace --help' });
  let extract: string;
  try { extract = readFileSync(positionals[0]!, 'utf8'); } catch (err) {
    throw new UsageError(`cannot read ${positionals[0]}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`, { hint: 'pass the path of the leaked CSV or JSON file' });
  }
  const url = values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  let res: Response;
  try {
    res = await fetch(new URL('/v1/trace', url), { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: bearerHeader(key) } : {}) }, body: JSON.stringify({ extract }), signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    throw new GatehouseError('UNAVAILABLE', `cannot reach ${url}: ${(err as Error).message}`, { hint: 'start the server, or set --url (or GATEHOUSE_URL)' });
  }
  const body = await res.json().catch(() => ({})) as TraceResult & { error?: { code: string; message: string } };
  if (!res.ok) throw errorFromBody(body.error, res.status);
  out.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : renderTrace(body));
  return 0;
}
