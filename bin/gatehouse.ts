#!/usr/bin/env node
/**
 * The `gatehouse` executable: turns on Node's module compile cache, then runs the CLI.
 *
 * Node runs Gatehouse's TypeScript directly (type stripping, no build step), so a process that
 * starts cold strips and compiles every module it loads: about 0.2 s of CPU on each CLI call
 * before any work, more for `serve`. The compile cache (https://nodejs.org/api/module.html,
 * "Module compile cache") keeps the stripped and compiled code on disk and reuses it while a
 * file's content is unchanged; an edited file is compiled again. It is enabled before the CLI
 * is imported (a dynamic import, so that every module of the program goes through it), in
 * `node_modules/.cache/node-compile` of this checkout: the directory `npm test` uses, owned by
 * whoever owns the checkout (not a directory other users of the machine can write to).
 * NODE_COMPILE_CACHE=DIR chooses another directory, NODE_DISABLE_COMPILE_CACHE=1 turns it off;
 * if the directory cannot be written Node runs without the cache, as before. The directory is
 * passed on to the node processes and worker threads the CLI starts (clean-room, residency and
 * federated demos) through NODE_COMPILE_CACHE. docs/cli.md says so.
 */
import { constants, enableCompileCache } from 'node:module';
import { join } from 'node:path';

// With NODE_COMPILE_CACHE set, Node has enabled the cache there already (ALREADY_ENABLED) and
// the children inherit the variable as it is.
const cache = enableCompileCache(join(import.meta.dirname, '..', 'node_modules', '.cache', 'node-compile'));
if (cache.status === constants.compileCacheStatus.ENABLED && cache.directory) process.env.NODE_COMPILE_CACHE = cache.directory;

// A reader that stops early (`| head`, `| grep -m1`) closes the pipe: that is the reader's
// choice, not an error of ours, so stop quietly as other Unix tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
