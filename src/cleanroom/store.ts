/**
 * This node's copy of each collaboration it belongs to, behind a narrow interface (the
 * node's StateBackend can implement it; the file store below is the embedded default).
 * Writes are atomic (write, fsync, rename), so a crash leaves the old version or the new.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Collaboration } from './model.ts';
import { CleanroomError } from './errors.ts';

export interface CollaborationStore {
  get(id: string): Collaboration | null;
  put(c: Collaboration): void;
  list(): Collaboration[];
  /** Invitation nonces already accepted (the coordinator accepts each once). */
  useNonce(nonce: string): boolean;
  /** Invitations this node received and has not accepted yet (verified before they are kept). */
  putInvitation(collaborationId: string, invitation: unknown): void;
  takeInvitation(collaborationId: string): unknown;
  invitations(): unknown[];
  dropInvitation(collaborationId: string): void;
}

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export class FileCollaborationStore implements CollaborationStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    mkdirSync(join(dir, 'collaborations'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, 'nonces'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, 'invitations'), { recursive: true, mode: 0o700 });
  }

  putInvitation(collaborationId: string, invitation: unknown): void {
    if (!ID.test(collaborationId)) return;
    writeFileSync(join(this.#dir, 'invitations', `${collaborationId}.json`), JSON.stringify(invitation), { mode: 0o600 });
  }

  takeInvitation(collaborationId: string): unknown {
    if (!ID.test(collaborationId)) return null;
    try {
      return JSON.parse(readFileSync(join(this.#dir, 'invitations', `${collaborationId}.json`), 'utf8'));
    } catch {
      return null;
    }
  }

  dropInvitation(collaborationId: string): void {
    if (ID.test(collaborationId)) rmSync(join(this.#dir, 'invitations', `${collaborationId}.json`), { force: true });
  }

  invitations(): unknown[] {
    return readdirSync(join(this.#dir, 'invitations')).filter((n) => n.endsWith('.json')).map((n) => this.takeInvitation(n.slice(0, -5))).filter((x) => x !== null);
  }

  get(id: string): Collaboration | null {
    if (!ID.test(id)) return null;
    try {
      return JSON.parse(readFileSync(join(this.#dir, 'collaborations', `${id}.json`), 'utf8')) as Collaboration;
    } catch {
      return null;
    }
  }

  require(id: string): Collaboration {
    const c = this.get(id);
    if (!c) throw new CleanroomError('CLEANROOM_NOT_FOUND', `this node is in no collaboration "${id}"`, 'list them with gatehouse cleanroom list');
    return c;
  }

  put(c: Collaboration): void {
    const file = join(this.#dir, 'collaborations', `${c.id}.json`);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(c, null, 2), { mode: 0o600 });
    const fd = openSync(tmp, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, file);
  }

  list(): Collaboration[] {
    return readdirSync(join(this.#dir, 'collaborations')).filter((n) => n.endsWith('.json')).map((n) => this.get(n.slice(0, -5))).filter((c): c is Collaboration => c !== null);
  }

  useNonce(nonce: string): boolean {
    const name = Buffer.from(nonce).toString('hex').slice(0, 128);
    try {
      writeFileSync(join(this.#dir, 'nonces', name), '', { flag: 'wx', mode: 0o600 });
      return true;
    } catch {
      return false;
    }
  }

  remove(id: string): void {
    if (ID.test(id)) rmSync(join(this.#dir, 'collaborations', `${id}.json`), { force: true });
  }
}
