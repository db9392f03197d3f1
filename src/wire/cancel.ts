/**
 * PostgreSQL query cancellation (protocol v3, "Canceling Requests in Progress"):
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 *
 * At start-up each session gets BackendKeyData: a process id and a secret key. To cancel
 * the running query the client opens a NEW connection and sends CancelRequest (length 16,
 * code 80877102, the process id, the secret key); the server answers nothing on that
 * connection and closes it, and the session's query fails with 57014.
 *
 * Every session of this front lives in one Node process, so the "process id" is a random
 * per-session number, and the secret is 4 random bytes from node:crypto (protocol 3.0
 * allows no more). The key is compared in constant time, and an unknown process id is
 * compared against a decoy, so timing says nothing about which ids exist. A guess has a
 * 1 in 2^32 chance per attempt, and each attempt costs the attacker a connection counted
 * against the per-address admission limit (src/wire/admission.ts) and an audit entry.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export const SECRET_BYTES = 4;

/** A session that can be asked to cancel its running query. */
export interface Cancellable {
  cancelRunningQuery(): void;
}

export interface CancelKey {
  readonly pid: number;
  readonly secret: Buffer;
  /** The session ended: its key no longer cancels anything. */
  revoke(): void;
}

export class CancelKeys {
  readonly #sessions = new Map<number, { readonly secret: Buffer; readonly target: Cancellable }>();
  readonly #decoy = randomBytes(SECRET_BYTES);

  issue(target: Cancellable): CancelKey {
    let pid: number;
    do pid = randomInt(1, 2 ** 31 - 1); while (this.#sessions.has(pid));
    const secret = randomBytes(SECRET_BYTES);
    this.#sessions.set(pid, { secret, target });
    return { pid, secret, revoke: () => { if (this.#sessions.get(pid)?.target === target) this.#sessions.delete(pid); } };
  }

  /** Cancels the running query of session `pid` when `secret` is its key; false (and nothing happens) otherwise. */
  cancel(pid: number, secret: Buffer): boolean {
    const s = this.#sessions.get(pid);
    const expected = s?.secret ?? this.#decoy;
    const match = secret.length === SECRET_BYTES && timingSafeEqual(secret, expected) && s !== undefined;
    if (match) s.target.cancelRunningQuery();
    return match;
  }

  get size(): number { return this.#sessions.size; }
}

/** Reads a CancelRequest packet (length, code, pid, key); null when it is not exactly one. */
export function parseCancelRequest(msg: Buffer): { pid: number; secret: Buffer } | null {
  if (msg.length !== 16 || msg.readInt32BE(0) !== 16) return null;
  return { pid: msg.readInt32BE(8), secret: Buffer.from(msg.subarray(12, 16)) };
}
