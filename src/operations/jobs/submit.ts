/**
 * Registering a partner's signing key (data owners) and submitting a signed code bundle
 * (partners). A bundle is accepted only if its signature verifies with a key registered for
 * the submitter's own organisation; its code hash is what the owner then approves.
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import { GatehouseError } from '../../errors.ts';
import { verifyBundle } from '../../jobs/bundle.ts';
import { audited } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import { jobsContext, requireOwner } from './context.ts';

export async function addSigner(rt: Runtime, meta: RequestMeta, body: { keyId: string; org: string; publicKeyPem: string }) {
  return (await audited(rt, meta, 'job.signer.add', {}, async ({ auth, entry }) => {
    requireOwner(rt, auth.principal, 'registering a partner signing key');
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(body.keyId ?? '') || !/^[A-Za-z0-9._-]{1,64}$/.test(body.org ?? '')) throw new GatehouseError('REQUEST_INVALID', 'keyId and org must be short identifiers');
    let type: string | undefined;
    try { type = createPublicKey(body.publicKeyPem).asymmetricKeyType; } catch { type = undefined; }
    if (type !== 'ed25519') throw new GatehouseError('REQUEST_INVALID', 'publicKeyPem must be an Ed25519 public key in PEM (SPKI)');
    const ctx = jobsContext(rt);
    if (!(await ctx.jobs.addSigner(body.keyId, body.org, body.publicKeyPem, auth.principal.id, rt.now().toISOString()))) {
      throw new GatehouseError('CONFLICT', `signing key "${body.keyId}" is already registered`, { hint: 'register a rotated key under a new key id' });
    }
    entry.reasons = [`signing key ${body.keyId} registered for ${body.org}`];
    return { keyId: body.keyId, org: body.org };
  })).value;
}

export async function submitJob(rt: Runtime, meta: RequestMeta, bundle: unknown) {
  return (await audited(rt, meta, 'job.submit', {}, async ({ auth, entry }) => {
    const ctx = jobsContext(rt);
    const org = auth.principal.attributes.org;
    const named = (bundle as { signer?: unknown } | null)?.signer;
    const s = typeof named === 'string' && named.length <= 64 ? await ctx.jobs.signer(named) : null;
    const { bundle: b, codeHash } = verifyBundle(bundle, (keyId) => (keyId === named && s && s.org === org ? s.pem : null));
    entry.purpose = b.manifest.purpose;
    entry.datasets = [...b.manifest.datasets];
    const id = `job_${randomUUID()}`;
    await ctx.jobs.addJob({ id, codeHash, bundle: b, submitter: auth.principal.id, submittedAt: rt.now().toISOString() });
    entry.reasons = [`job ${id} "${b.manifest.name}" submitted, code hash ${codeHash}`];
    return { jobId: id, codeHash, status: 'submitted' as const };
  })).value;
}
