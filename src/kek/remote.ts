/**
 * RemoteCaller: the one way a provider talks to its KMS.
 *
 * - Every attempt runs under a signal bounded by the caller's deadline (which already leaves the
 *   reply reserve, see CallDeadline) and, only when `attemptTimeout` is configured, by a
 *   per-attempt cap. By default one attempt may use all the time left: a KMS that answers in 2 s
 *   serves a caller with a 3 s deadline. The attempt is raced against that signal, so an SDK call
 *   that ignores it is abandoned on time; an SDK that wants a timeout number (a gRPC deadline, an
 *   HTTP request timeout) takes it from the signal with `attemptTimeLeftMs`.
 * - What an attempt throws is classified here, once, by the provider's `classify` for the
 *   operation (and subject) this call names.
 * - Retryable failures (throttling, transient unavailability, per-attempt timeouts) are retried
 *   with jittered exponential back-off, or after the server's Retry-After (./retry-after.ts, read
 *   from the raw error for every backend), but only while that wait plus a useful attempt still
 *   fits before the caller's deadline; otherwise the call fails at once (RESOURCE_EXHAUSTED /
 *   UNAVAILABLE): we never answer late.
 * - A concurrency limit keeps a cold-start burst from becoming a throttling storm.
 * - A circuit breaker fails fast while the KMS is clearly down, then lets one probe call through.
 * - Outcomes are counted by error kind (bounded labels), never by raw message.
 */
import { raceAbort, remainingMs, sleep, timeoutSignal } from '../deadline.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderMetrics } from '../observability/metrics.js';
import {
  CircuitOpenError,
  DeadlineError,
  PluginError,
  UnavailableError,
  abortReasonToError,
  isAbortError,
} from './errors.js';
import { retryAfterMs } from './retry-after.js';

export interface RetryPolicy {
  /** Attempts in total, including the first. */
  maxAttempts: number;
  /**
   * Cap on one attempt (config `attemptTimeout`). Undefined (the default): the time left before
   * the caller's deadline, minus the reply reserve the caller's signal already leaves.
   */
  attemptTimeoutMs: number | undefined;
  baseBackoffMs: number;
  maxBackoffMs: number;
  /** Deadline assumed when the caller's signal carries none. */
  defaultDeadlineMs: number;
  /** Least time worth starting an attempt with. */
  minAttemptMs: number;
}

export interface BreakerPolicy {
  /** Consecutive unavailable/deadline failures that open the circuit. 0 disables the breaker. */
  failureThreshold: number;
  cooldownMs: number;
}

export interface RemoteCallerOptions<Op extends string = string> {
  provider: string;
  /**
   * Maps whatever an attempt threw (not a PluginError, not our own abort) into the shared error
   * classes, for `operation` on `subject` (what the call acts on, e.g. a key name, when the call
   * names one). Must not copy secrets into messages.
   */
  classify: (err: unknown, operation: Op, subject: string | undefined) => PluginError;
  metrics?: ProviderMetrics;
  logger?: Logger;
  retry?: Partial<RetryPolicy>;
  breaker?: Partial<BreakerPolicy>;
  /** Concurrent remote calls allowed; more wait in line (bounded by their own deadlines). */
  concurrency?: number;
  /** Injected for tests. */
  random?: () => number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  attemptTimeoutMs: undefined,
  baseBackoffMs: 50,
  maxBackoffMs: 1000,
  defaultDeadlineMs: 10_000,
  minAttemptMs: 50,
};

export const DEFAULT_BREAKER: BreakerPolicy = { failureThreshold: 8, cooldownMs: 5000 };

export class RemoteCaller<Op extends string = string> {
  private readonly retry: RetryPolicy;
  private readonly breaker: BreakerPolicy;
  private readonly limit: Semaphore;
  private consecutiveFailures = 0;
  private openUntil = 0;
  private halfOpenInFlight = false;
  /** The failure that counted last towards the breaker: named while the circuit is open. */
  private lastFailure: PluginError | undefined;
  private readonly random: () => number;

  constructor(private readonly options: RemoteCallerOptions<Op>) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.breaker = { ...DEFAULT_BREAKER, ...options.breaker };
    this.limit = new Semaphore(options.concurrency ?? 16);
    this.random = options.random ?? Math.random;
  }

  /**
   * Runs `fn` with retries. `fn` receives a signal for this attempt; it should pass it to the SDK
   * so the request is really cancelled, not merely abandoned (an attempt that ignores it is
   * abandoned when it fires). `fn` throws what the SDK threw: this classifies it. `subject` names
   * what the call acts on, for `classify`'s messages (never a metric label).
   */
  async call<T>(
    operation: Op,
    signal: AbortSignal,
    fn: (attemptSignal: AbortSignal) => Promise<T>,
    subject?: string,
  ): Promise<T> {
    const { provider, metrics } = this.options;
    const started = process.hrtime.bigint();
    let outcome: string = 'ok';
    try {
      const result = await this.run(operation, subject, signal, fn);
      return result;
    } catch (err) {
      const e = err instanceof PluginError ? err : this.options.classify(err, operation, subject);
      outcome = e.kind;
      throw e;
    } finally {
      metrics?.remoteCalls.inc({ provider, operation, outcome });
      metrics?.remoteDuration.observe(
        { provider, operation },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    }
  }

  private async run<T>(
    operation: Op,
    subject: string | undefined,
    signal: AbortSignal,
    fn: (s: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const { retry } = this;
    let attempt = 0;
    for (;;) {
      attempt += 1;
      if (signal.aborted) throw abortReasonToError(signal, `${this.options.provider} ${operation}`);
      const left = remainingMs(signal, retry.defaultDeadlineMs);
      if (left < Math.min(retry.minAttemptMs, 1)) {
        throw new DeadlineError(`${this.options.provider} ${operation}: deadline exceeded before the call`);
      }
      // After the deadline check: a call that cannot run must not take the half-open probe slot.
      this.checkBreaker(operation);
      // When the caller's deadline is nearer than the per-attempt cap, the attempt timer *is* the
      // caller's deadline (and may fire a millisecond before the caller's own timer).
      const cap = retry.attemptTimeoutMs;
      const cappedByCaller = cap === undefined || left <= cap;
      const attemptSignal = timeoutSignal(cap === undefined ? left : Math.min(cap, left), signal);
      let error: PluginError;
      const release = await this.limit.acquire(attemptSignal).catch((err: unknown) => {
        throw isAbortError(err) || attemptSignal.aborted
          ? abortReasonToError(
              attemptSignal,
              `${this.options.provider} ${operation} (waiting for a free slot)`,
            )
          : err;
      });
      try {
        // Raced against the attempt signal: an SDK call that ignores it is abandoned, not awaited.
        const value = await raceAbort(fn(attemptSignal), attemptSignal);
        this.recordSuccess();
        return value;
      } catch (err) {
        error = this.normalise(err, attemptSignal, signal, operation, subject, cappedByCaller);
      } finally {
        release();
      }
      this.recordFailure(error);
      if (!error.retryable || attempt >= retry.maxAttempts || signal.aborted) throw error;
      const retryAfter = error.retryAfterMs;
      const backoff = Math.max(this.backoff(attempt), retryAfter ?? 0);
      const leftAfter = remainingMs(signal, retry.defaultDeadlineMs);
      if (leftAfter < backoff + retry.minAttemptMs) {
        if (retryAfter !== undefined && retryAfter > 0) {
          throw rebuild(
            error,
            `${error.message}; Retry-After ${Math.ceil(retryAfter / 1000)} s does not fit in the ${leftAfter} ms left before the deadline`,
          );
        }
        throw error;
      }
      this.options.metrics?.remoteRetries.inc({ provider: this.options.provider, operation });
      this.options.logger?.debug(
        { provider: this.options.provider, operation, attempt, kind: error.kind, backoffMs: backoff },
        'retrying remote KMS call',
      );
      try {
        await sleep(backoff, signal);
      } catch {
        throw abortReasonToError(signal, `${this.options.provider} ${operation}`);
      }
    }
  }

  /**
   * Classifies an attempt failure (once, here); a per-attempt timeout (caller still alive) is
   * retryable; a throttled or unavailable answer carries the server's Retry-After, if any.
   */
  private normalise(
    err: unknown,
    attemptSignal: AbortSignal,
    signal: AbortSignal,
    operation: Op,
    subject: string | undefined,
    cappedByCaller: boolean,
  ): PluginError {
    const what = `${this.options.provider} ${operation}`;
    if (signal.aborted) return abortReasonToError(signal, what);
    if (attemptSignal.aborted && cappedByCaller) {
      return new DeadlineError(`${what}: deadline exceeded`, { cause: err });
    }
    if (attemptSignal.aborted || isAbortError(err)) {
      return new UnavailableError(`${what}: no answer within ${this.retry.attemptTimeoutMs ?? '?'} ms`, {
        cause: err,
      });
    }
    if (err instanceof PluginError) return err;
    const e = this.options.classify(err, operation, subject);
    if ((e.kind !== 'throttled' && e.kind !== 'unavailable') || e.retryAfterMs !== undefined) return e;
    const wait = retryAfterMs(err);
    return wait !== undefined && wait > 0 ? withRetryAfter(e, wait) : e;
  }

  private backoff(attempt: number): number {
    const exp = Math.min(this.retry.maxBackoffMs, this.retry.baseBackoffMs * 2 ** (attempt - 1));
    return Math.round(exp / 2 + (this.random() * exp) / 2); // "equal jitter"
  }

  private checkBreaker(operation: string): void {
    if (this.breaker.failureThreshold <= 0 || this.openUntil === 0) return;
    const now = Date.now();
    if (now < this.openUntil) {
      throw new CircuitOpenError(
        `${this.options.provider} ${operation}: ${this.lastCause()} (circuit open after ${this.consecutiveFailures} consecutive failures; retrying in ${Math.ceil((this.openUntil - now) / 1000)} s)`,
        'open',
      );
    }
    if (this.halfOpenInFlight) {
      throw new CircuitOpenError(
        `${this.options.provider} ${operation}: ${this.lastCause()} (circuit half-open, probe call in flight)`,
        'half_open',
      );
    }
    this.halfOpenInFlight = true;
  }

  /** The underlying cause while the circuit is open: last error class plus its (scrubbed) message. */
  private lastCause(): string {
    const e = this.lastFailure;
    if (!e) return 'remote KMS failing';
    const msg = e.message.length > 300 ? `${e.message.slice(0, 300)}…` : e.message;
    return `${e.kind}: ${msg}`;
  }

  private recordSuccess(): void {
    this.consecutiveFailures = 0;
    this.lastFailure = undefined;
    if (this.openUntil !== 0) {
      this.openUntil = 0;
      this.options.metrics?.circuitOpen.set({ provider: this.options.provider }, 0);
      this.options.logger?.info(
        { provider: this.options.provider },
        'remote KMS reachable again; circuit closed',
      );
    }
    this.halfOpenInFlight = false;
  }

  private recordFailure(error: PluginError): void {
    this.halfOpenInFlight = false;
    // Only "the KMS is not answering" counts; a denied or invalid request proves it is up.
    if (error.kind !== 'unavailable' && error.kind !== 'deadline') {
      this.consecutiveFailures = 0;
      return;
    }
    if (error instanceof CircuitOpenError) return; // the breaker's own refusal is no new failure
    this.consecutiveFailures += 1;
    this.lastFailure = error;
    if (this.breaker.failureThreshold > 0 && this.consecutiveFailures >= this.breaker.failureThreshold) {
      const wasOpen = this.openUntil !== 0;
      this.openUntil = Date.now() + this.breaker.cooldownMs;
      this.options.metrics?.circuitOpen.set({ provider: this.options.provider }, 1);
      if (!wasOpen) {
        this.options.logger?.warn(
          {
            provider: this.options.provider,
            failures: this.consecutiveFailures,
            cooldownMs: this.breaker.cooldownMs,
          },
          'remote KMS failing repeatedly; circuit opened',
        );
      }
    }
  }
}

/** The same error class and kind with a new message (the retry hint dropped: it was not honoured). */
function rebuild(e: PluginError, message: string): PluginError {
  const copy = new PluginError(e.kind, message, { cause: e.cause ?? e, retryable: false });
  Object.defineProperty(copy, 'name', { value: e.name });
  return copy;
}

/** The same error (class, kind, message, cause, extra fields) with the server's retry hint. */
function withRetryAfter(e: PluginError, ms: number): PluginError {
  const copy = Object.create(Object.getPrototypeOf(e) as object) as PluginError;
  Object.defineProperties(copy, Object.getOwnPropertyDescriptors(e));
  Object.defineProperty(copy, 'retryAfterMs', { value: ms, enumerable: true });
  return copy;
}

/**
 * Milliseconds an attempt may still run, from the signal RemoteCaller gave it: the number an SDK
 * needs for its own timeout (a gRPC deadline, an HTTP request timeout). Rounded up, so the SDK's
 * timer never fires before the attempt signal it backs up. `fallbackMs` for a signal without a
 * deadline (one not made by RemoteCaller).
 */
export function attemptTimeLeftMs(
  attemptSignal: AbortSignal,
  fallbackMs = DEFAULT_RETRY.defaultDeadlineMs,
): number {
  return Math.max(1, Math.ceil(remainingMs(attemptSignal, fallbackMs)));
}

/** A counting semaphore whose waiters give up when their signal aborts. */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<{ resolve: (release: () => void) => void; reject: (e: unknown) => void }> =
    [];

  constructor(size: number) {
    this.available = Math.max(1, size);
  }

  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.available > 0) {
      this.available -= 1;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (release: () => void) => {
          signal.removeEventListener('abort', onAbort);
          resolve(release);
        },
        reject,
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next.resolve(this.releaser());
      else this.available += 1;
    };
  }
}
