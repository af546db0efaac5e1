/**
 * A token bucket shared by every request `reencrypt` sends: at most `burst` requests at once,
 * then `qps` per second. Callers reserve a token and sleep until it is due (so waiting callers
 * queue in order), which bounds the requests in any window of T seconds by burst + qps × T.
 */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (ms <= 0 || signal?.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export class RateLimiter {
  private tokens: number;
  private last: number;

  /** `qps` 0 or Infinity: no limit. `burst` defaults to max(1, ceil(qps)). */
  constructor(
    readonly qps: number,
    readonly burst = Math.max(1, Math.ceil(qps)),
    private readonly clock: Clock = realClock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  get unlimited(): boolean {
    return !(this.qps > 0 && Number.isFinite(this.qps));
  }

  /** Waits for a token. Returns false if `signal` aborted the wait (no token is then consumed). */
  async take(signal?: AbortSignal): Promise<boolean> {
    if (this.unlimited) return !signal?.aborted;
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return true;
    const wait = (-this.tokens / this.qps) * 1000;
    await this.clock.sleep(wait, signal);
    if (signal?.aborted) {
      this.tokens += 1;
      return false;
    }
    return true;
  }
}
