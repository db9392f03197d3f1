/**
 * `gatehouse erasure record|list|receipt|verify` (issue 23, docs/erasure.md).
 *
 *   record   an administrator records one subject's erasure or opt-out (POST /v1/erasures);
 *            the receipt, which holds the salt that opens its commitment, goes to --out for
 *            the subject
 *   list     what was recorded (never the subjects' identifiers)
 *   receipt  refreshes a receipt's log proof against the log's latest checkpoint (the entry,
 *            its inclusion proof and the signed checkpoint: GET /v1/audit/receipt/ID)
 *   verify   offline: the receipt is about this subject, its entry is in the log under the
 *            pinned log key, and the entry lists exactly the places the receipt claims
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadVerifiers } from '../audit/cli.ts';
import { verifyErasureReceipt, type ErasureReceipt } from '../governance/erasure/receipt.ts';
import { bearerHeader } from '../identity/credentials.ts';
import { DEFAULT_PORT } from './commands.ts';
import { EXIT } from './exit.ts';
import { call, parseFor, usage } from './job.ts';

type Out = NodeJS.WritableStream;

function readReceipt(file: string | undefined): ErasureReceipt {
  if (!file) throw usage('erasure', 'give the receipt file');
  if (!existsSync(file)) throw usage('erasure', `no receipt file ${JSON.stringify(file.slice(0, 200))}`);
  try { return JSON.parse(readFileSync(file, 'utf8')) as ErasureReceipt; } catch { throw usage('erasure', 'the receipt is not a readable JSON file'); }
}

export async function erasureCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'record' && sub !== 'list' && sub !== 'receipt' && sub !== 'verify') throw usage('erasure', sub === undefined ? 'give a sub-command (gatehouse erasure --help lists them)' : `unknown sub-command "erasure ${sub}"`);
  const { values, positionals } = parseFor('erasure', rest);
  const print = (v: unknown) => { out.write(`${JSON.stringify(v, null, 2)}\n`); return EXIT.ok; };
  switch (sub) {
    case 'record': {
      if (typeof values.unit !== 'string' || typeof values.value !== 'string') throw usage('erasure', 'give --unit COLUMN and --value ID');
      const purposes = ((values.purpose as string[] | undefined) ?? []).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
      const body = { unit: values.unit, value: values.value, ...(values.kind ? { kind: values.kind as string } : {}), ...(purposes.length ? { purposes } : {}) };
      const receipt = await call(values, { method: 'POST', path: '/v1/erasures', body }, (gh, m) => gh.recordErasure(m, body));
      if (values.out) {
        writeFileSync(values.out as string, `${JSON.stringify(receipt, null, 2)}\n`, { mode: 0o600 });
        out.write(`recorded ${receipt.erasureId}; receipt → ${values.out} (give it to the subject: it holds the salt that opens the commitment)\n`);
        return EXIT.ok;
      }
      return print(receipt);
    }
    case 'list':
      return print(await call(values, { method: 'GET', path: '/v1/governance/erasures' }, (gh, m) => gh.governanceOp(m, 'erasure.list', {})));
    case 'receipt': {
      const file = positionals[0];
      const receipt = readReceipt(file);
      const url: string = values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
      const key: string | undefined = values.key ?? process.env.GATEHOUSE_API_KEY;
      const res = await fetch(new URL(`/v1/audit/receipt/${encodeURIComponent(receipt.auditId)}`, url), { headers: key ? { authorization: bearerHeader(key) } : {} });
      if (!res.ok) { out.write(`FAILED: the server answered ${res.status} for the log receipt of entry ${receipt.auditId}\n`); return EXIT.error; }
      const refreshed = { ...receipt, log: await res.json() as unknown };
      const target = (values.out as string | undefined) ?? file!;
      writeFileSync(target, `${JSON.stringify(refreshed, null, 2)}\n`, { mode: 0o600 });
      out.write(`refreshed the log proof of ${receipt.erasureId} (entry ${receipt.auditId}) → ${target}\n`);
      return EXIT.ok;
    }
    case 'verify': {
      const receipt = readReceipt(positionals[0]);
      if (typeof values.value !== 'string') throw usage('erasure', 'give the subject\'s identifier: --value ID (it never leaves this machine)');
      const verifiers = loadVerifiers(values['public-key'] as string[] | undefined);
      try {
        const r = verifyErasureReceipt(receipt, values.value, verifiers);
        if (values.json) return print({ ok: true, erasureId: receipt.erasureId, index: r.index, checkpointSize: r.checkpointSize, places: receipt.places });
        out.write(`OK: ${receipt.kind} ${receipt.erasureId} of this ${receipt.unit} is entry ${r.index} of the log (checkpoint size ${r.checkpointSize});\n  excluded from: ${receipt.places.datasets.join(', ')}; results shredded: ${receipt.places.shreddedResults.length}; DP releases kept: ${receipt.places.keptReleases.length}; held: ${receipt.places.heldResults.length}\n`);
        return EXIT.ok;
      } catch (e) {
        const message = (e as Error).message;
        out.write(values.json ? `${JSON.stringify({ ok: false, message })}\n` : `FAILED: ${message}\n`);
        return EXIT.error;
      }
    }
  }
}
