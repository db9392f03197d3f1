/**
 * Acknowledgement documents (an acceptable-use policy, a data-handling notice).
 *
 * Publishing text creates a new version identified by the SHA-256 of the text (UTF-8);
 * publishing the same text again is a no-op. A principal signs the current version by
 * presenting its hash — the signature records the hash, so a signature proves which text
 * was acknowledged, and a hash that is not the current one is refused (the signer saw an
 * old text). Publishing changed text makes every older signature stale: the principal
 * must acknowledge again before the gate lets them through.
 */
import { createHash } from 'node:crypto';
import { event, iso, parseName, parseText, requireObject, GovernanceError, invalid, type Core, type GovernanceEvent, type Row } from './types.ts';

export interface DocumentVersion {
  readonly name: string;
  readonly version: number;
  /** Hex SHA-256 of the UTF-8 text. */
  readonly sha256: string;
  readonly text: string;
  readonly publishedAt: string;
  readonly publishedBy: string;
}

export interface Signature {
  readonly principalId: string;
  readonly document: string;
  readonly version: number;
  readonly sha256: string;
  readonly signedAt: string;
}

/** missing: never signed; stale: signed an older version; unpublished: no such document. */
export type AckState =
  | { readonly state: 'current'; readonly signature: Signature }
  | { readonly state: 'stale'; readonly signature: Signature; readonly current: { readonly version: number; readonly sha256: string } }
  | { readonly state: 'missing'; readonly current: { readonly version: number; readonly sha256: string } }
  | { readonly state: 'unpublished' };

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const toDoc = (r: Row): DocumentVersion => ({
  name: r.name as string, version: r.version as number, sha256: r.sha256 as string, text: r.text as string, publishedAt: r.published_at as string, publishedBy: r.published_by as string,
});
const toSig = (r: Row): Signature => ({ principalId: r.principal_id as string, document: r.document as string, version: r.version as number, sha256: r.sha256 as string, signedAt: r.signed_at as string });

export class Acknowledgements {
  readonly #core: Core;
  constructor(core: Core) {
    this.#core = core;
  }

  /** Publishes `text` as the next version of `name` (unchanged text: returns the current version, `changed: false`). */
  async publish(input: { name: string; text: string; by: string }, at: Date = this.#core.now()): Promise<{ document: DocumentVersion; changed: boolean; event: GovernanceEvent | null }> {
    const o = requireObject(input, 'document');
    const name = parseName(o.name, 'document name');
    const text = parseText(o.text, 'text', 200_000);
    const by = parseName(o.by, 'by');
    const hash = sha256Hex(o.text as string);
    return this.#core.tx(async () => {
      const cur = await this.current(name);
      if (cur && cur.sha256 === hash) return { document: cur, changed: false, event: null };
      const version = (cur?.version ?? 0) + 1;
      await this.#core.stmt('INSERT INTO gov_documents (name, version, sha256, text, published_at, published_by) VALUES (?, ?, ?, ?, ?, ?)').run(name, version, hash, o.text as string, iso(at), by);
      void text;
      return {
        document: (await this.current(name))!, changed: true,
        event: event({ action: 'acknowledgement.publish', actor: by, time: iso(at), subject: `document:${name}`, outcome: 'published', refs: { document: name, sha256: hash },
          detail: `${by} published version ${version} of "${name}" (sha256 ${hash.slice(0, 16)}…)${version > 1 ? '; earlier acknowledgements are now stale' : ''}` }),
      };
    });
  }

  async current(name: string): Promise<DocumentVersion | null> {
    const r = await this.#core.stmt('SELECT * FROM gov_documents WHERE name = ? ORDER BY version DESC LIMIT 1').get(String(name)) as Row | undefined;
    return r ? toDoc(r) : null;
  }

  async documents(): Promise<DocumentVersion[]> {
    return (await this.#core.stmt('SELECT d.* FROM gov_documents d WHERE version = (SELECT MAX(version) FROM gov_documents e WHERE e.name = d.name) ORDER BY name').all() as Row[]).map(toDoc);
  }

  /** The principal acknowledges the current version, identified by the hash of the text they read. */
  async sign(input: { principalId: string; document: string; sha256: string }, at: Date = this.#core.now()): Promise<{ signature: Signature; event: GovernanceEvent }> {
    const o = requireObject(input, 'signature');
    const principalId = parseName(o.principalId, 'principalId');
    const name = parseName(o.document, 'document');
    if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) invalid('sha256 must be the 64-hex-digit SHA-256 of the text being acknowledged', `read the text and its hash with: gatehouse acknowledge show ${name}`);
    return this.#core.tx(async () => {
      const cur = await this.current(name);
      if (!cur) throw new GovernanceError('GOV_NOT_FOUND', `no document "${name}" has been published`, 'an administrator publishes it first');
      if (cur.sha256 !== o.sha256) {
        throw new GovernanceError('GOV_ACK_HASH_MISMATCH', `the text you acknowledged is not the current version of "${name}" (version ${cur.version})`, `read the current text and acknowledge it: gatehouse acknowledge show ${name}, then gatehouse acknowledge sign ${name} --sha256 ${cur.sha256}`);
      }
      await this.#core.stmt('INSERT INTO gov_signatures (principal_id, document, version, sha256, signed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING').run(principalId, name, cur.version, cur.sha256, iso(at));
      const signature = toSig(await this.#core.stmt('SELECT * FROM gov_signatures WHERE principal_id = ? AND document = ? AND version = ?').get(principalId, name, cur.version) as Row);
      return { signature, event: event({ action: 'acknowledgement.sign', actor: principalId, time: iso(at), subject: principalId, outcome: 'signed', refs: { document: name, sha256: cur.sha256 }, detail: `${principalId} acknowledged version ${cur.version} of "${name}"` }) };
    });
  }

  /** Whether the principal's latest signature is of the current version (one indexed query). */
  async state(principalId: string, name: string): Promise<AckState> {
    const r = await this.#core.stmt(`SELECT d.version AS cur_version, d.sha256 AS cur_sha, s.version AS s_version, s.sha256 AS s_sha, s.signed_at AS s_at
      FROM (SELECT version, sha256 FROM gov_documents WHERE name = ?1 ORDER BY version DESC LIMIT 1) d
      LEFT JOIN (SELECT version, sha256, signed_at FROM gov_signatures WHERE principal_id = ?2 AND document = ?1 ORDER BY version DESC LIMIT 1) s ON 1 = 1`).get(name, principalId) as Row | undefined;
    if (!r) return { state: 'unpublished' };
    const current = { version: r.cur_version as number, sha256: r.cur_sha as string };
    if (r.s_version === null) return { state: 'missing', current };
    const signature: Signature = { principalId, document: name, version: r.s_version as number, sha256: r.s_sha as string, signedAt: r.s_at as string };
    return r.s_sha === current.sha256 ? { state: 'current', signature } : { state: 'stale', signature, current };
  }

  async signatures(principalId: string): Promise<Signature[]> {
    return (await this.#core.stmt('SELECT * FROM gov_signatures WHERE principal_id = ? ORDER BY document, version').all(principalId) as Row[]).map(toSig);
  }
}
