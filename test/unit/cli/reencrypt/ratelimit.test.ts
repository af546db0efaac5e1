import { RateLimiter } from '../../../../src/cli/reencrypt/ratelimit.js';
import { FakeClock } from './fake-clock.js';

describe('RateLimiter', () => {
  test('burst at once, then one per 1/qps; any window holds at most burst + qps × T', async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(10, 3, clock);
    const times: number[] = [];
    for (let i = 0; i < 23; i++) {
      expect(await rl.take()).toBe(true);
      times.push(clock.now());
    }
    expect(times.slice(0, 3)).toEqual([0, 0, 0]);
    expect(times[3]).toBeCloseTo(100);
    expect(times[22]).toBeCloseTo(2000);
    for (let i = 0; i < times.length; i++)
      for (let j = i; j < times.length; j++)
        expect(j - i + 1).toBeLessThanOrEqual(3 + (10 * (times[j] - times[i])) / 1000 + 1e-9);
  });

  test('tokens refill while idle, up to the burst only', async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(2, 2, clock);
    await rl.take();
    await rl.take();
    clock.t += 10_000; // idle 10 s: refills to 2, not 20
    const start = clock.now();
    for (let i = 0; i < 4; i++) await rl.take();
    expect(clock.now() - start).toBeCloseTo(1000); // 2 free, then 2 at 500 ms each
  });

  test('burst defaults to ceil(qps), at least 1', () => {
    expect(new RateLimiter(0.5).burst).toBe(1);
    expect(new RateLimiter(7.2).burst).toBe(8);
  });

  test('qps 0 is unlimited: no waiting', async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(0, undefined, clock);
    for (let i = 0; i < 1000; i++) await rl.take();
    expect(clock.now()).toBe(0);
    expect(rl.unlimited).toBe(true);
  });

  test('an aborted wait returns false and gives its token back', async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(1, 1, clock);
    await rl.take();
    const ac = new AbortController();
    ac.abort();
    expect(await rl.take(ac.signal)).toBe(false);
    // The next caller waits one interval, not two.
    await rl.take();
    expect(clock.now()).toBeCloseTo(1000);
  });
});
