/**
 * A throwaway PostgreSQL cluster for tests: Debian's server binaries, initdb into a fresh
 * temporary directory as an unprivileged user, pg_ctl start on a free loopback port with the
 * unix socket inside the data directory, stopped (and the directory removed) by `stop()` or
 * when the process exits. Nothing outside the temporary directory is touched, apart from
 * installing the `postgresql` package when asked to (CI=true or GATEHOUSE_INSTALL_DEPS=1).
 *
 *   const pg = await startPostgres();
 *   const client = new pg.Client({ connectionString: pg.superuserUrl }); …
 *   await pg.stop();
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PgCluster {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The temporary directory (data directory in `data/`, socket and log beside it). */
  readonly dir: string;
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  readonly superuserUrl: string;
  readonly superuserPassword: string;
  /** Kills the server as a crash would (`pg_ctl stop -m immediate`), keeping its data directory. */
  crash(): Promise<void>;
  /** Starts a crashed server again on the same port (it replays its WAL, as after a real crash). */
  restart(): Promise<void>;
  /** Stops the server immediately and removes the directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface PgInstallOptions {
  /** Install the Debian package when the binaries are missing (default: CI=true or GATEHOUSE_INSTALL_DEPS=1). */
  readonly install?: boolean;
}

const ROOT = '/usr/lib/postgresql';
const SYSTEM_USER = 'postgres';

/** The newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl, or null. */
export function findPostgresBin(): string | null {
  if (!existsSync(ROOT)) return null;
  const versions = readdirSync(ROOT).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(ROOT, v, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

/** Returns the binary directory, installing Debian's `postgresql` package first when allowed. */
export function ensurePostgresBinaries(options: PgInstallOptions = {}): string {
  const found = findPostgresBin();
  if (found) return found;
  const install = options.install ?? (process.env.CI === 'true' || process.env.GATEHOUSE_INSTALL_DEPS === '1');
  if (!install) {
    throw new Error(
      'PostgreSQL server binaries were not found in /usr/lib/postgresql/<version>/bin. ' +
      'Install them with `apt-get install -y postgresql` (as root), or run `npx node scripts/postgres.ts install`, ' +
      'or set GATEHOUSE_INSTALL_DEPS=1 to let the tests install them.',
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { stdio: 'inherit', env });
  }
  const bin = findPostgresBin();
  if (r.status !== 0 || !bin) {
    throw new Error('`apt-get install -y postgresql` did not provide the server binaries: run it by hand (as root) and check its output');
  }
  return bin;
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** initdb refuses root: as root, run the server tools as the `postgres` system user. */
function ensureSystemUser(): { uid: number; gid: number } | null {
  if (!asRoot) return null;
  const id = (flag: string): number | null => {
    const r = spawnSync('id', [flag, SYSTEM_USER], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : null;
  };
  if (id('-u') === null) {
    const r = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/var/lib/postgresql', '--shell', '/usr/sbin/nologin', SYSTEM_USER], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`could not create the "${SYSTEM_USER}" system user for PostgreSQL: ${r.stderr.trim()}`);
  }
  return { uid: id('-u')!, gid: id('-g')! };
}

function command(bin: string, tool: string, args: readonly string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', SYSTEM_USER, '--', join(bin, tool), ...args]] : [join(bin, tool), [...args]];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Live { bin: string; dir: string; data: string; stopped: boolean }
const live = new Set<Live>();
let exitHookInstalled = false;

function stopSync(c: Live): void {
  if (c.stopped) return;
  c.stopped = true;
  live.delete(c);
  const [cmd, args] = command(c.bin, 'pg_ctl', ['-D', c.data, '-m', 'immediate', '-w', 'stop']);
  spawnSync(cmd, args, { stdio: 'ignore', cwd: c.dir });
  rmSync(c.dir, { recursive: true, force: true });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => { for (const c of [...live]) stopSync(c); });
}

/**
 * Settings for a cluster whose tests are about what the state does (transactions, locks,
 * constraints, triggers, concurrency), not about what survives a crash: fsync off. Every commit
 * then returns without waiting for the disk, which on a machine whose disk other processes keep
 * busy was most of such a file's wall time (state-budget-contract: 23–28 s with fsync, 7.5–10 s
 * without, same load). Gatehouse runs exactly the same statements either way (it still commits
 * with synchronous_commit = on); only `openPostgresState` must be told `allowUnsafeDurability`,
 * since it refuses such a server. Durability itself is proven on a cluster with fsync on
 * (test/state-durability.test.ts, which crashes it). Not for a test that needs commits to
 * take time: test/state-audit-log.test.ts checks that two nodes' appends really interleave,
 * which fast commits made less likely (it failed once in 5 runs without fsync).
 */
export const NO_DURABILITY_SETTINGS: Readonly<Record<string, string>> = { fsync: 'off' };

/**
 * Starts a fresh cluster: superuser `postgres` with a random password (SCRAM-SHA-256 over
 * TCP; trust only on the socket inside the private data directory).
 *
 * fsync and full_page_writes stay on: Gatehouse refuses a server without them (src/state/
 * postgres.ts), and a crash test must see what a real server would keep. synchronous_commit is
 * off, as on many tuned servers, so tests prove that Gatehouse makes its own commits durable
 * (SET LOCAL synchronous_commit = on) rather than relying on the server's default. Pass
 * `settings` to change any of these (a test of the refusal turns fsync off).
 */
export async function startPostgres(options: PgInstallOptions & { readonly settings?: Readonly<Record<string, string>> } = {}): Promise<PgCluster> {
  const bin = ensurePostgresBinaries(options);
  const owner = ensureSystemUser();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  const data = join(dir, 'data');
  const c: Live = { bin, dir, data, stopped: false };
  try {
    if (owner) chownSync(dir, owner.uid, owner.gid);
    const password = randomBytes(18).toString('base64url');
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    const [initCmd, initArgs] = command(bin, 'initdb', [
      '-D', data, '-U', SYSTEM_USER, '-A', 'scram-sha-256', '--auth-local=trust', `--pwfile=${pwfile}`,
      '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
    ]);
    try {
      await run(initCmd, initArgs, { cwd: dir });
    } catch (err) {
      throw new Error(`initdb failed: ${String((err as { stderr?: string }).stderr ?? err).trim()}`);
    }
    rmSync(pwfile, { force: true });
    live.add(c);
    installExitHook();
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1', unix_socket_directories: dir,
      synchronous_commit: 'off',
      max_connections: '50', shared_buffers: '128MB', ...options.settings,
    };
    let lastError = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const opts = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
      const [ctlCmd, ctlArgs] = command(bin, 'pg_ctl', ['-D', data, '-w', '-t', '60', '-l', join(dir, 'server.log'), '-o', opts, 'start']);
      try {
        await run(ctlCmd, ctlArgs, { cwd: dir });
      } catch (err) {
        lastError = String((err as { stderr?: string; stdout?: string }).stderr || (err as { stdout?: string }).stdout || err).trim();
        continue; // most likely the port was taken between probing and binding
      }
      const superuserUrl = `postgres://${SYSTEM_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
      return {
        host: '127.0.0.1', port, dir, superuserUrl, superuserPassword: password,
        async crash(): Promise<void> {
          const [cmd, args] = command(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
          await run(cmd, args, { cwd: dir });
        },
        async restart(): Promise<void> {
          await run(ctlCmd, ctlArgs, { cwd: dir });
        },
        async stop(): Promise<void> {
          if (c.stopped) return;
          c.stopped = true;
          live.delete(c);
          const [cmd, args] = command(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
          await run(cmd, args, { cwd: dir }).catch(() => undefined);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    throw new Error(`pg_ctl could not start PostgreSQL after 5 attempts: ${lastError}`);
  } catch (err) {
    stopSync(c);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
