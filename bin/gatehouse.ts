#!/usr/bin/env node
import { main } from '../src/cli/main.ts';

// A reader that stops early (`| head`, `| grep -m1`) closes the pipe: that is the reader's
// choice, not an error of ours, so stop quietly as other Unix tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
