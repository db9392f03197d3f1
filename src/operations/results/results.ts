/**
 * Saved results (`query --save`): read back by their owner only, and only while the
 * governance that allowed them still holds (the agreement active, the grant current).
 */
import { GatehouseError } from '../../errors.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { gate } from '../query/plan.ts';

/** GET /v1/results/:id */
export async function getResult(rt: Runtime, meta: RequestMeta, id: string): Promise<{ id: string; createdAt: string; content: unknown }> {
  return (await audited(rt, meta, 'result.get', {}, async ({ state, entry, auth }) => {
    const { artefacts } = await rt.governance.vault();
    let saved;
    try { saved = await artefacts.meta(String(id)); } catch { saved = null; }
    if (!saved || saved.owner !== auth.principal.id || saved.kind !== 'result') throw new GatehouseError('NOT_FOUND', 'no saved result with this id is yours', { hint: 'list your saved results with GET /v1/results' });
    if (saved.destroyedAt !== null) throw new GatehouseError('NOT_FOUND', `result ${saved.id} was destroyed at ${saved.destroyedAt} (${saved.destroyReason ?? 'retention'})`, { hint: 'its data key was destroyed; the certificate is in the audit log' });
    const ws = state.loaded.workspace;
    const names = (saved.labels.datasets ?? '').split(',').filter((n) => n !== '');
    entry.datasets = names;
    for (const n of names) {
      const ds = ws.datasets.get(n);
      if (!ds) throw new GatehouseError('POLICY_DENIED', `dataset "${n}" of this result is no longer shared`);
      const g = await gate(rt, auth.principal, ds, saved.labels.purpose ?? '', rt.now());
      if (g.denials.length > 0) throw new GatehouseError('POLICY_DENIED', g.denials[0]!.message, { reasons: g.denials.map((d) => `${d.code}: ${d.message}`), hint: g.denials[0]!.hint });
      if (saved.labels.agreement && g.context.governed === true && g.context.agreementId !== saved.labels.agreement) {
        throw new GatehouseError('POLICY_DENIED', `the agreement this result was shared under (${saved.labels.agreement}) is no longer in force`);
      }
    }
    const { content } = await artefacts.get(saved.id);
    entry.reasons = [`saved result ${saved.id} read`];
    return { id: saved.id, createdAt: saved.createdAt, content: JSON.parse(content.toString('utf8')) as unknown };
  })).value;
}

/** GET /v1/results — the caller's saved results (metadata only). */
export async function listResults(rt: Runtime, meta: RequestMeta): Promise<{ results: { id: string; createdAt: string; datasets: string[]; agreement: string | null; retainUntil: string | null; destroyedAt: string | null; bytes: number }[] }> {
  return (await audited(rt, meta, 'result.list', {}, async ({ auth }) => {
    const { artefacts } = await rt.governance.vault();
    const results = (await artefacts.list({ owner: auth.principal.id, kind: 'result', includeDestroyed: true })).map((a) => ({
      id: a.id, createdAt: a.createdAt, datasets: (a.labels.datasets ?? '').split(',').filter((x) => x), agreement: a.labels.agreement ?? null,
      retainUntil: a.retainUntil, destroyedAt: a.destroyedAt, bytes: a.bytes,
    }));
    return { results };
  })).value;
}
