/**
 * One process per log (or witness) directory, with a lock the kernel releases when the
 * holder dies — however it dies (kill -9, OOM killer, power loss of a container).
 *
 * Why not a PID file: "is the recorded PID alive?" is wrong both ways. In a container the
 * server is often PID 1 again after a restart, so the stale file names a live process
 * (itself, or an unrelated one after PID reuse) and the node refuses to start forever.
 *
 * Node has no flock(2). SQLite's unix VFS takes POSIX advisory record locks (fcntl
 * F_SETLK) on its database file; `BEGIN EXCLUSIVE` in rollback-journal mode holds the
 * EXCLUSIVE lock until the transaction ends or the connection closes, and POSIX locks are
 * dropped by the kernel when the owning process exits. SQLite also tracks locks per inode
 * inside one process, so a second open in the same process is refused too
 * (https://sqlite.org/lockingv3.html, https://sqlite.org/lang_transaction.html).
 * The lock file holds no data; it is never read for its contents.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DirLocked, LogUnavailable } from './errors.ts';

export const LOCK_FILE = 'lock.sqlite';

export interface ProcessLock { release(): void }

/**
 * Takes the directory's lock or throws LogUnavailable (AUDIT_LOCKED) at once. A `LOCK`
 * PID file left by an earlier version is removed: it is not a lock any more.
 */
export function acquireDirLock(dir: string, what = 'audit log'): ProcessLock {
  const path = join(dir, LOCK_FILE);
  let db: DatabaseSync | null = null;
  try {
    db = new DatabaseSync(path, { timeout: 0 });
    db.exec('PRAGMA journal_mode = DELETE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    try { db?.close(); } catch { /* not open */ }
    const busy = /locked|busy/i.test((e as Error).message ?? '');
    if (busy) throw new DirLocked(what, dir);
    throw new LogUnavailable(`cannot take the ${what} lock in ${dir} (check the directory's permissions and disk)`, { cause: e });
  }
  const legacy = join(dir, 'LOCK');
  if (existsSync(legacy)) { try { unlinkSync(legacy); } catch { /* read-only: harmless, it is ignored */ } }
  let held = true;
  return {
    release(): void {
      if (!held) return;
      held = false;
      try { db!.close(); } catch { /* already closed */ }
    },
  };
}
