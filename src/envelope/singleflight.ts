/**
 * Single-flight: concurrent callers asking for the same key share one execution.
 *
 * Each caller brings its own AbortSignal. A caller whose signal aborts stops waiting (and gets
 * its own abort reason) without disturbing the others; the shared execution is aborted only when
 * every caller has gone, so one impatient caller cannot fail a burst of cold-start Decrypts.
 */

interface Flight<V> {
  promise: Promise<V>;
  controller: AbortController;
  waiters: number;
}

export class SingleFlight<K, V> {
  private readonly flights = new Map<K, Flight<V>>();

  get inFlight(): number {
    return this.flights.size;
  }

  /**
   * Runs `fn` for `key`, or joins the execution already in flight. `joined` tells the caller
   * whether it shared someone else's call (for metrics).
   */
  do(key: K, signal: AbortSignal, fn: (shared: AbortSignal) => Promise<V>, onJoin?: () => void): Promise<V> {
    if (signal.aborted) return Promise.reject(signal.reason);
    let flight = this.flights.get(key);
    if (flight) {
      onJoin?.();
    } else {
      const controller = new AbortController();
      const promise = (async () => fn(controller.signal))();
      const f: Flight<V> = { promise, controller, waiters: 0 };
      const cleanup = (): void => {
        if (this.flights.get(key) === f) this.flights.delete(key);
      };
      promise.then(cleanup, cleanup);
      this.flights.set(key, f);
      flight = f;
    }
    const f = flight;
    f.waiters += 1;
    return new Promise<V>((resolve, reject) => {
      let settled = false;
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        f.waiters -= 1;
        if (f.waiters === 0) {
          f.controller.abort(signal.reason);
          if (this.flights.get(key) === f) this.flights.delete(key);
        }
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      f.promise.then(
        (v) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          f.waiters -= 1;
          resolve(v);
        },
        (e: unknown) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          f.waiters -= 1;
          reject(e);
        },
      );
    });
  }
}
