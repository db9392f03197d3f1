/**
 * The PostgreSQL clients the compatibility suite (test/clients-compat.test.ts) drives, from
 * Debian's packages: pgJDBC and a JDK to compile the probe, psycopg2, SQLAlchemy, pandas,
 * pgcli, tmux (pgcli needs a terminal) and psql.
 *
 *   npx node scripts/clients.ts install   apt-get install what is missing (as root; otherwise it says what to install)
 *   npx node scripts/clients.ts check     print what is present, exit 1 when a required client is missing
 *
 * pandas is optional: when apt cannot install it, its probe is skipped with a message.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PYTHON = '/usr/bin/python3';
export const JDBC_JAR = '/usr/share/java/postgresql.jar';

interface Client {
  readonly what: string;
  readonly packages: readonly string[];
  readonly present: () => boolean;
  readonly optional?: boolean;
}

const onPath = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
const pyModule = (m: string): boolean => existsSync(PYTHON) && spawnSync(PYTHON, ['-c', `import ${m}`], { stdio: 'ignore' }).status === 0;

export const CLIENTS: readonly Client[] = [
  { what: 'psql', packages: ['postgresql-client'], present: () => onPath('psql') },
  { what: 'pgJDBC', packages: ['libpostgresql-jdbc-java'], present: () => existsSync(JDBC_JAR) },
  { what: 'java and javac', packages: ['default-jdk-headless'], present: () => onPath('java') && onPath('javac') },
  { what: 'psycopg2', packages: ['python3-psycopg2'], present: () => pyModule('psycopg2') },
  { what: 'SQLAlchemy', packages: ['python3-sqlalchemy'], present: () => pyModule('sqlalchemy') },
  { what: 'pgcli', packages: ['pgcli'], present: () => onPath('pgcli') },
  { what: 'tmux', packages: ['tmux'], present: () => onPath('tmux') },
  { what: 'pandas', packages: ['python3-pandas'], present: () => pyModule('pandas'), optional: true },
];

function aptInstall(packages: readonly string[]): boolean {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: ['ignore', 'ignore', 'inherit'], env });
    return true;
  } catch {
    return false;
  }
}

export function installClients(): { missing: string[]; skipped: string[] } {
  const absent = CLIENTS.filter((c) => !c.present());
  if (absent.length > 0) {
    if (process.getuid?.() !== 0) {
      const pkgs = absent.flatMap((c) => c.packages).join(' ');
      return { missing: absent.filter((c) => !c.optional).map((c) => `${c.what} (sudo apt-get install ${pkgs})`), skipped: absent.filter((c) => c.optional).map((c) => c.what) };
    }
    try { execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'] }); } catch { /* install below says what failed */ }
    // Required ones together; each optional one alone, so its failure cannot stop the rest.
    const required = absent.filter((c) => !c.optional);
    if (required.length) aptInstall(required.flatMap((c) => c.packages));
    for (const c of absent.filter((x) => x.optional)) aptInstall(c.packages);
  }
  return {
    missing: CLIENTS.filter((c) => !c.optional && !c.present()).map((c) => `${c.what} (apt-get install ${c.packages.join(' ')})`),
    skipped: CLIENTS.filter((c) => c.optional && !c.present()).map((c) => `${c.what} (apt-get install ${c.packages.join(' ')} failed)`),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cmd = process.argv[2];
  if (cmd === 'install' || cmd === 'check') {
    const r = cmd === 'install' ? installClients() : {
      missing: CLIENTS.filter((c) => !c.optional && !c.present()).map((c) => c.what),
      skipped: CLIENTS.filter((c) => c.optional && !c.present()).map((c) => c.what),
    };
    for (const c of CLIENTS) console.log(`${c.present() ? 'ok     ' : c.optional ? 'skipped' : 'MISSING'} ${c.what}`);
    for (const s of r.skipped) console.log(`note: ${s}; its probe is skipped`);
    if (r.missing.length) {
      console.error(`error: missing PostgreSQL clients: ${r.missing.join(', ')}`);
      process.exitCode = 1;
    }
  } else {
    console.error('usage: npx node scripts/clients.ts install | check');
    process.exitCode = 2;
  }
}
