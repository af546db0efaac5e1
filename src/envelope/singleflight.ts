/**
 * Single-flight: concurrent callers asking for the same key share one execution.
 *
 * Each caller brings its own AbortSignal. A caller whose signal aborts stops waiting (and gets
 * its own abort reason) without disturbing the others; the shared execution is aborted only when
 * every caller has gone, so one impatient caller cannot fail a burst of cold-start Decrypts.
 *
 * The shared execution runs under the LATEST deadline of its waiters (see src/deadline.ts): the
 * remote layer below sees how much time really is left (for back-off, Retry-After and per-attempt
 * timeouts), and the execution ends when the last waiter gives up. A waiter whose signal carries
 * no deadline leaves the shared one without a deadline (the remote layer's default applies).
 */
import { deadlineOf, setDeadline } from '../deadline.js';

interface Flight<V> {
  promise: Promise<V>;
  controller: AbortController;
  waiters: number;
  /** Latest deadline of the waiters so far; null once a waiter without a deadline joined. */
  deadline: number | null;
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
    const waiterDeadline = deadlineOf(signal);
    if (flight) {
      onJoin?.();
      if (flight.deadline !== null) {
        flight.deadline = waiterDeadline === undefined ? null : Math.max(flight.deadline, waiterDeadline);
        setDeadline(flight.controller.signal, flight.deadline ?? undefined);
      }
    } else {
      const controller = new AbortController();
      const deadline = waiterDeadline ?? null;
      setDeadline(controller.signal, deadline ?? undefined);
      const promise = (async () => fn(controller.signal))();
      const f: Flight<V> = { promise, controller, waiters: 0, deadline };
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
