/**
 * Deadlines travel as AbortSignals. A signal made here also remembers its absolute deadline, so a
 * layer further down (a KEK provider's retry loop) can tell how much time is left and never retry
 * past the caller's deadline.
 */

const deadlines = new WeakMap<AbortSignal, number>();

/** A signal that aborts with a TimeoutError at `deadlineMs` (epoch ms) or when `parent` aborts. */
export function deadlineSignal(deadlineMs: number, parent?: AbortSignal): AbortSignal {
  const ms = Math.max(0, Math.floor(deadlineMs - Date.now()));
  const timeout = AbortSignal.timeout(ms);
  const signal = parent ? AbortSignal.any([parent, timeout]) : timeout;
  const parentDeadline = parent ? deadlines.get(parent) : undefined;
  deadlines.set(signal, parentDeadline === undefined ? deadlineMs : Math.min(deadlineMs, parentDeadline));
  return signal;
}

/** A signal that aborts after `ms` milliseconds, or earlier with `parent`. */
export function timeoutSignal(ms: number, parent?: AbortSignal): AbortSignal {
  return deadlineSignal(Date.now() + ms, parent);
}

/** The absolute deadline (epoch ms) of a signal made by this module, if any. */
export function deadlineOf(signal: AbortSignal): number | undefined {
  return deadlines.get(signal);
}

/**
 * Milliseconds left before the signal's deadline; `fallbackMs` when the signal carries none.
 * Returns 0 for an aborted signal.
 */
export function remainingMs(signal: AbortSignal, fallbackMs: number): number {
  if (signal.aborted) return 0;
  const d = deadlines.get(signal);
  return d === undefined ? fallbackMs : Math.max(0, d - Date.now());
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
