/** A manual clock for the reencrypt unit tests: sleep() advances time at once. */
import type { Clock } from '../../../../src/cli/reencrypt/ratelimit.js';

export class FakeClock implements Clock {
  t = 0;
  readonly sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    if (signal?.aborted) return;
    this.t += Math.max(0, ms);
    await Promise.resolve();
  }
}
