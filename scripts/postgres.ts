/**
 * PostgreSQL for development and CI.
 *
 *   npx node scripts/postgres.ts install   ensure Debian's server binaries exist (apt-get install -y postgresql when missing)
 *   npx node scripts/postgres.ts start     start a throwaway cluster, print its URL, keep running until Ctrl-C
 *
 * The cluster is the same one the tests use (test/support/postgres.ts): a fresh data
 * directory, a free loopback port, a random superuser password; removed when stopped.
 */
import { ensurePostgresBinaries, startPostgres } from '../test/support/postgres.ts';

const cmd = process.argv[2];
if (cmd === 'install') {
  try {
    const bin = ensurePostgresBinaries({ install: true });
    console.log(`PostgreSQL server binaries: ${bin}`);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exitCode = 1;
  }
} else if (cmd === 'start') {
  try {
    const pg = await startPostgres();
    console.log(`PostgreSQL is running (data in ${pg.dir}).`);
    console.log(`superuser URL: ${pg.superuserUrl}`);
    console.log(`psql "${pg.superuserUrl}"`);
    console.log('Press Ctrl-C to stop it and delete its data.');
    const stop = (): void => { void pg.stop().then(() => process.exit(0)); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    setInterval(() => undefined, 1 << 30);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exitCode = 1;
  }
} else {
  console.error('usage: npx node scripts/postgres.ts install | start');
  process.exitCode = 2;
}
