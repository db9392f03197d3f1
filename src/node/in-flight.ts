/**
 * Calls in progress inside the pipeline, so shutdown never closes the engines or the audit
 * log under a request.
 *
 * The faces (HTTP, the wire front) are given a view of the Gatehouse that counts every call
 * returning a promise. Closing a face stops new requests, and cutting a connection at the
 * drain deadline stops the client waiting, but a request already inside the pipeline runs
 * on until its statement timeout; it must still write its one audit entry (invariant 8)
 * before the log is flushed and closed. `settle()` waits for those calls.
 *
 * The view calls each method on the real object (never with the view as `this`), so the
 * pipeline's private state is untouched.
 */
export interface InFlight<T extends object> {
  /** The tracked view to hand to a face. */
  readonly view: T;
  readonly count: number;
  /** Resolves when every call made so far has settled. */
  settle(): Promise<void>;
}

export function trackInFlight<T extends object>(target: T): InFlight<T> {
  const running = new Set<Promise<unknown>>();
  const view = new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(t, args);
        if (result instanceof Promise) {
          const settled = result.then(() => undefined, () => undefined);
          running.add(settled);
          void settled.then(() => running.delete(settled));
        }
        return result;
      };
    },
  });
  return {
    view,
    get count() { return running.size; },
    async settle() {
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}
