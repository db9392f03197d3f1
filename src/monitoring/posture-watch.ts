/**
 * Device posture as monitoring sees it (issue 21, "under what conditions": device posture).
 *
 * The request meta carries the client's signed posture token (header `Gatehouse-Posture`,
 * src/identity/posture.ts). Verifying it is asynchronous (JOSE signature check), so it never
 * runs inside the inline `observe`: the watcher verifies it after the request, with the same
 * `evaluatePosture` and configuration the policy uses, and keeps the principal's latest
 * result for the activity answer. An unverified claim is never shown: a forged or stale token
 * is "non-compliant" with its reason code, as the policy would see it.
 *
 * Results are cached per (principal, token, source) for a minute, so a client sending the same
 * token with every request costs one verification, and the cache is bounded.
 */
import { createHash } from 'node:crypto';
import { evaluatePosture, type PostureConfig } from '../identity/posture.ts';

export interface PostureSeen {
  readonly compliant: boolean;
  readonly zone: string;
  readonly source: 'token' | 'certificate' | 'token+certificate' | 'none';
  readonly deviceId: string | null;
  readonly reasonCode: string | null;
  /** Epoch ms of the request it was evaluated for. */
  readonly at: number;
}

const TTL_MS = 60_000;
const MAX_CACHE = 4096;

export class PostureWatch {
  readonly #latest = new Map<string, PostureSeen>();
  readonly #cache = new Map<string, { result: Omit<PostureSeen, 'at'>; until: number }>();

  /** The principal's posture at its latest evaluated request, or null. */
  of(principal: string): PostureSeen | null { return this.#latest.get(principal) ?? null; }

  /** Evaluates the posture of one request (off the request path); resolves once recorded. */
  async seen(input: { principal: string; token: string | null; sourceIp: string; at: number }, config: PostureConfig): Promise<void> {
    const key = createHash('sha256').update(`${input.principal}\u0000${input.token ?? ''}\u0000${input.sourceIp}`).digest('base64url');
    const hit = this.#cache.get(key);
    let result = hit && hit.until > input.at ? hit.result : null;
    if (!result) {
      const r = await evaluatePosture({ principalId: input.principal, token: input.token, sourceIp: input.sourceIp, now: new Date(input.at) }, config);
      result = { compliant: r.compliant, zone: r.zone, source: r.source, deviceId: r.deviceId, reasonCode: r.reasonCode };
      if (this.#cache.size >= MAX_CACHE) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(key, { result, until: input.at + TTL_MS });
    }
    const prev = this.#latest.get(input.principal);
    if (!prev || prev.at <= input.at) this.#latest.set(input.principal, { ...result, at: input.at });
  }
}

/** "compliant (token, device d-17, zone office)" / "non-compliant: POSTURE_STALE (zone internet)". */
export function describePosture(p: PostureSeen | null): string | null {
  if (!p) return null;
  const where = `zone ${p.zone}`;
  return p.compliant ? `compliant (${p.source}${p.deviceId ? `, device ${p.deviceId}` : ''}, ${where})` : `non-compliant: ${p.reasonCode ?? 'unknown'} (${where})`;
}
