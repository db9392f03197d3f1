/**
 * `gatehouse airlock submit|review|release|list`: the only way a job's outputs leave. Over
 * HTTP (--url, --key) or in-process (--workspace DIR); each is one audited transition.
 */
import { writeFileSync } from 'node:fs';
import { call, parseFor, usage } from './job.ts';

type Out = NodeJS.WritableStream;

export async function airlockCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'submit' && sub !== 'review' && sub !== 'release' && sub !== 'list') throw usage('airlock', sub === undefined ? 'give a sub-command (gatehouse airlock --help lists them)' : `unknown sub-command "airlock ${sub}"`);
  const { values, positionals } = parseFor('airlock', rest);
  const print = (v: unknown) => { out.write(`${JSON.stringify(v, null, 2)}\n`); return 0; };
  const id = positionals[0];
  switch (sub) {
    case 'submit':
      if (!id) throw usage('airlock', 'give the run id (gatehouse airlock submit RUN_ID)');
      return print(await call(values, { method: 'POST', path: '/v1/airlock', body: { runId: id } }, (gh, m) => gh.airlockSubmit(m, { runId: id })));
    case 'review': {
      if (!id || values.approve === values.reject || !values.reason) throw usage('airlock', 'give ID, one of --approve or --reject, and --reason TEXT');
      const body = { decision: (values.approve ? 'approve' : 'reject') as 'approve' | 'reject', reason: values.reason as string };
      return print(await call(values, { method: 'POST', path: `/v1/airlock/${encodeURIComponent(id)}/review`, body }, (gh, m) => gh.airlockReview(m, { id, ...body })));
    }
    case 'release': {
      if (!id) throw usage('airlock', 'give the request id (gatehouse airlock release ID)');
      const r = await call(values, { method: 'POST', path: `/v1/airlock/${encodeURIComponent(id)}/release` }, (gh, m) => gh.airlockRelease(m, { id }));
      if (values.out) {
        writeFileSync(values.out as string, `${JSON.stringify(r, null, 2)}\n`);
        out.write(`released ${id} → ${values.out}\n`);
        return 0;
      }
      return print(r);
    }
    case 'list':
      return print(await call(values, { method: 'GET', path: '/v1/airlock' }, (gh, m) => gh.airlockList(m)));
  }
}
