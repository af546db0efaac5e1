import { describe, expect, it } from '@jest/globals';
import { SingleFlight } from '../../../src/envelope/singleflight.js';
import { deadlineOf, remainingMs, timeoutSignal } from '../../../src/deadline.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('SingleFlight', () => {
  it('concurrent callers share one execution and get the same value', async () => {
    const sf = new SingleFlight<string, number>();
    const d = deferred<number>();
    let runs = 0;
    let joins = 0;
    const fn = (): Promise<number> => {
      runs += 1;
      return d.promise;
    };
    const ps = Array.from({ length: 10 }, () =>
      sf.do('k', new AbortController().signal, fn, () => (joins += 1)),
    );
    expect(sf.inFlight).toBe(1);
    d.resolve(42);
    expect(await Promise.all(ps)).toEqual(Array(10).fill(42));
    expect(runs).toBe(1);
    expect(joins).toBe(9);
    await tick();
    expect(sf.inFlight).toBe(0);
  });

  it('different keys run separately', async () => {
    const sf = new SingleFlight<string, string>();
    let runs = 0;
    const fn = async (k: string): Promise<string> => {
      runs += 1;
      await tick();
      return k;
    };
    const [a, b] = await Promise.all([
      sf.do('a', new AbortController().signal, () => fn('a')),
      sf.do('b', new AbortController().signal, () => fn('b')),
    ]);
    expect([a, b]).toEqual(['a', 'b']);
    expect(runs).toBe(2);
  });

  it('one waiter aborting does not cancel the others (nor the shared signal)', async () => {
    const sf = new SingleFlight<string, number>();
    const d = deferred<number>();
    let shared: AbortSignal | undefined;
    const fn = (s: AbortSignal): Promise<number> => {
      shared = s;
      return d.promise;
    };
    const c1 = new AbortController();
    const c2 = new AbortController();
    const p1 = sf.do('k', c1.signal, fn);
    const p2 = sf.do('k', c2.signal, fn);
    const reason = new Error('caller 1 gave up');
    c1.abort(reason);
    await expect(p1).rejects.toBe(reason);
    expect(shared?.aborted).toBe(false);
    d.resolve(7);
    await expect(p2).resolves.toBe(7);
  });

  it('when every waiter aborts, the shared signal aborts and a new call starts a new flight', async () => {
    const sf = new SingleFlight<string, number>();
    const signals: AbortSignal[] = [];
    const fn = (s: AbortSignal): Promise<number> => {
      signals.push(s);
      return new Promise<number>(() => undefined); // never settles on its own
    };
    const c1 = new AbortController();
    const c2 = new AbortController();
    const p1 = sf.do('k', c1.signal, fn);
    const p2 = sf.do('k', c2.signal, fn);
    c1.abort(new Error('one'));
    await expect(p1).rejects.toThrow('one');
    expect(signals[0].aborted).toBe(false);
    const reason2 = new Error('two');
    c2.abort(reason2);
    await expect(p2).rejects.toBe(reason2);
    expect(signals[0].aborted).toBe(true);
    expect(signals[0].reason).toBe(reason2);
    expect(sf.inFlight).toBe(0);
    // A fresh caller gets a fresh execution, not the abandoned one.
    const d = deferred<number>();
    const p3 = sf.do('k', new AbortController().signal, (s) => {
      signals.push(s);
      return d.promise;
    });
    expect(signals).toHaveLength(2);
    expect(signals[1].aborted).toBe(false);
    d.resolve(3);
    await expect(p3).resolves.toBe(3);
  });

  it('an already-aborted signal is rejected at once without running fn', async () => {
    const sf = new SingleFlight<string, number>();
    const c = new AbortController();
    const reason = new Error('already');
    c.abort(reason);
    let runs = 0;
    await expect(
      sf.do('k', c.signal, async () => {
        runs += 1;
        return 1;
      }),
    ).rejects.toBe(reason);
    expect(runs).toBe(0);
    expect(sf.inFlight).toBe(0);
  });

  it('errors propagate to every waiter', async () => {
    const sf = new SingleFlight<string, number>();
    const d = deferred<number>();
    const ps = Array.from({ length: 5 }, () => sf.do('k', new AbortController().signal, () => d.promise));
    const err = new Error('kms down');
    d.reject(err);
    const results = await Promise.allSettled(ps);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBe(err);
    }
  });

  it('a synchronous throw in fn also reaches the caller', async () => {
    const sf = new SingleFlight<string, number>();
    await expect(
      sf.do('k', new AbortController().signal, () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await tick();
    expect(sf.inFlight).toBe(0);
  });

  it('a new flight starts after the previous one settled (success or failure)', async () => {
    const sf = new SingleFlight<string, number>();
    let runs = 0;
    const fn = async (): Promise<number> => {
      runs += 1;
      if (runs === 2) throw new Error('second fails');
      return runs;
    };
    await expect(sf.do('k', new AbortController().signal, fn)).resolves.toBe(1);
    await tick();
    await expect(sf.do('k', new AbortController().signal, fn)).rejects.toThrow('second fails');
    await tick();
    await expect(sf.do('k', new AbortController().signal, fn)).resolves.toBe(3);
    expect(runs).toBe(3);
  });

  it('a caller that joins after others aborted still shares the live flight', async () => {
    const sf = new SingleFlight<string, number>();
    const d = deferred<number>();
    let runs = 0;
    const fn = (): Promise<number> => {
      runs += 1;
      return d.promise;
    };
    const c1 = new AbortController();
    const p1 = sf.do('k', c1.signal, fn);
    const p2 = sf.do('k', new AbortController().signal, fn);
    c1.abort(new Error('x'));
    await expect(p1).rejects.toThrow('x');
    const p3 = sf.do('k', new AbortController().signal, fn);
    d.resolve(9);
    expect(await Promise.all([p2, p3])).toEqual([9, 9]);
    expect(runs).toBe(1);
  });
});

describe('SingleFlight deadline (issue 12.5)', () => {
  it('the shared execution runs under the LATEST deadline of its waiters; each waiter gives up at its own', async () => {
    const sf = new SingleFlight<string, string>();
    let shared: AbortSignal | undefined;
    let release: (v: string) => void = () => undefined;
    const early = timeoutSignal(200);
    const late = timeoutSignal(5000);
    const p1 = sf.do('k', early, (s) => {
      shared = s;
      return new Promise<string>((r) => (release = r));
    });
    const d1 = deadlineOf(shared!)!;
    expect(Math.abs(d1 - deadlineOf(early)!)).toBeLessThan(5);
    const p2 = sf.do('k', late, async () => 'unused');
    expect(deadlineOf(shared!)).toBe(deadlineOf(late));
    expect(remainingMs(shared!, 0)).toBeGreaterThan(4000);
    await expect(p1).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(shared!.aborted).toBe(false); // the later waiter is still there
    release('dek');
    await expect(p2).resolves.toBe('dek');
  });

  it('a waiter without a deadline leaves the shared one without a deadline', async () => {
    const sf = new SingleFlight<string, string>();
    let shared: AbortSignal | undefined;
    const p1 = sf.do('k', timeoutSignal(1000), async (s) => {
      shared = s;
      await new Promise((r) => setTimeout(r, 20));
      return 'v';
    });
    const p2 = sf.do('k', new AbortController().signal, async () => 'unused');
    expect(deadlineOf(shared!)).toBeUndefined();
    await expect(Promise.all([p1, p2])).resolves.toEqual(['v', 'v']);
  });
});
