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

/**
 * Records (or, with undefined, forgets) the absolute deadline of a signal the caller controls and
 * aborts itself, e.g. a shared execution that must run until its latest waiter gives up.
 */
export function setDeadline(signal: AbortSignal, deadlineMs: number | undefined): void {
  if (deadlineMs === undefined) deadlines.delete(signal);
  else deadlines.set(signal, deadlineMs);
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

/**
 * A per-RPC deadline whose AbortSignal is created only if something asks for it (a remote call),
 * and whose timer is cleared when the RPC ends. Status and cached Decrypts never allocate a
 * signal or a timer, which keeps the hot path free of garbage.
 */
export class CallDeadline {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private cancelledReason: unknown;

  /**
   * `reserveMs`: the signal (what remote work runs under) aborts this long before `deadlineMs`, so
   * a call whose remote work runs out of time still sends its own error before the caller gives
   * up, instead of the caller seeing only its own timeout. `expired` uses the full deadline.
   */
  constructor(
    readonly deadlineMs: number,
    private readonly reserveMs = 0,
  ) {}

  /** True once the deadline passed or the call was cancelled. */
  get expired(): boolean {
    return (
      this.cancelledReason !== undefined ||
      Date.now() >= this.deadlineMs ||
      (this.controller?.signal.aborted ?? false)
    );
  }

  /** The reason to report once expired. */
  get reason(): unknown {
    if (this.controller?.signal.aborted) return this.controller.signal.reason;
    return this.cancelledReason ?? new DOMException('deadline exceeded', 'TimeoutError');
  }

  /** The signal (created on first use) that aborts at the deadline or on cancel(). */
  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      const workDeadline = this.deadlineMs - this.reserveMs;
      deadlines.set(controller.signal, workDeadline);
      if (this.cancelledReason !== undefined) controller.abort(this.cancelledReason);
      else {
        const ms = Math.max(0, workDeadline - Date.now());
        this.timer = setTimeout(
          () => controller.abort(new DOMException('deadline exceeded', 'TimeoutError')),
          ms,
        );
        this.timer.unref?.();
      }
    }
    return this.controller.signal;
  }

  cancel(reason: unknown): void {
    if (this.cancelledReason !== undefined) return;
    this.cancelledReason = reason;
    if (this.timer) clearTimeout(this.timer);
    this.controller?.abort(reason);
  }

  /** Releases the timer; call when the RPC is finished. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * Settles with `promise`, or rejects as soon as `signal` aborts, whichever comes first. The
 * rejection is the signal's reason, or `onAbort(reason)` when given. `promise` keeps running; a
 * late rejection from it is swallowed.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onAbort?: (reason: unknown) => unknown,
): Promise<T> {
  const reasonOf = (): unknown => (onAbort ? onAbort(signal.reason) : signal.reason);
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(reasonOf());
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(reasonOf());
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e);
      },
    );
  });
}
