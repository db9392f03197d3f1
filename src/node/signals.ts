/**
 * Serving until told to stop. SIGTERM (what an orchestrator sends) and SIGINT (Ctrl-C)
 * start a graceful shutdown: the node drains HTTP requests in flight for at most the
 * deadline, then closes everything in reverse order (start.ts), flushing the audit log
 * last. A second SIGTERM or SIGINT during that shutdown exits at once (128 + the signal's
 * number, as shells report it). SIGHUP re-reads the workspace.
 */
import type { GatehouseNode } from './start.ts';

const EXIT_CODE: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

export async function serveUntilSignal(node: Pick<GatehouseNode, 'close' | 'reload'>, options: { readonly drainMs: number; readonly notify: (line: string) => void }): Promise<void> {
  const hup = (): void => { void node.reload(); };
  process.on('SIGHUP', hup);
  const signal = await new Promise<NodeJS.Signals>((done) => {
    const first = (s: NodeJS.Signals): void => {
      process.off('SIGINT', first);
      process.off('SIGTERM', first);
      done(s);
    };
    process.on('SIGINT', first);
    process.on('SIGTERM', first);
  });
  const now = (s: NodeJS.Signals): void => {
    options.notify(`${s} again: exiting now without draining`);
    process.exit(EXIT_CODE[s] ?? 1);
  };
  process.once('SIGINT', now);
  process.once('SIGTERM', now);
  options.notify(`${signal}: draining requests in flight (at most ${Math.ceil(options.drainMs / 1000)} s), then stopping`);
  try {
    await node.close({ drainMs: options.drainMs });
  } finally {
    process.off('SIGHUP', hup);
    process.off('SIGINT', now);
    process.off('SIGTERM', now);
  }
}
