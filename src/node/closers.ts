/**
 * A stack of things to close, closed last-opened-first.
 *
 * A node opens its parts in dependency order (state, audit log, pipeline, listeners,
 * background jobs); each step pushes its closer as soon as the step has succeeded. Closing
 * runs the stack in reverse, whether the node ran for days or a later start-up step
 * failed, so a half-started node leaks no port, engine, pool or log lock. Every closer runs
 * even when an earlier one throws: the first error is rethrown after all have run.
 */
export interface CloseStep {
  readonly name: string;
  readonly close: () => Promise<void> | void;
}

export class Closers {
  readonly #steps: CloseStep[] = [];
  readonly #trace: (event: string) => void;
  #closing: Promise<void> | null = null;

  constructor(trace: (event: string) => void = () => {}) {
    this.#trace = trace;
  }

  /** Records that `name` is open and how to close it. */
  push(name: string, close: () => Promise<void> | void): void {
    if (this.#closing) throw new Error(`cannot open ${name}: the node is closing`);
    this.#steps.push({ name, close });
    this.#trace(`opened ${name}`);
  }

  /** Closes everything opened so far, newest first; idempotent (a second call awaits the first). */
  close(): Promise<void> {
    this.#closing ??= this.#run();
    return this.#closing;
  }

  async #run(): Promise<void> {
    let first: unknown = null;
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step.close();
        this.#trace(`closed ${step.name}`);
      } catch (err) {
        this.#trace(`close failed ${step.name}`);
        first ??= err;
      }
    }
    if (first !== null) throw first;
  }
}
