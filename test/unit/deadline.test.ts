import { describe, expect, it } from '@jest/globals';
import { raceAbort, timeoutSignal } from '../../src/deadline.js';

describe('raceAbort', () => {
  it('settles with the promise when it wins', async () => {
    await expect(raceAbort(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    await expect(raceAbort(Promise.reject(new Error('boom')), new AbortController().signal)).rejects.toThrow(
      'boom',
    );
  });

  it('rejects with the signal reason (or the mapped one) as soon as the signal aborts', async () => {
    const never = new Promise<number>(() => undefined);
    const c = new AbortController();
    const p = raceAbort(never, c.signal);
    c.abort(new Error('gone'));
    await expect(p).rejects.toThrow('gone');
    const t0 = Date.now();
    await expect(raceAbort(never, timeoutSignal(30), () => new Error('mapped'))).rejects.toThrow('mapped');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('rejects at once for an already-aborted signal and swallows the late rejection', async () => {
    const c = new AbortController();
    c.abort(new Error('early'));
    const late = new Promise<number>((_, reject) => setTimeout(() => reject(new Error('late')), 10));
    await expect(raceAbort(late, c.signal)).rejects.toThrow('early');
    await new Promise((r) => setTimeout(r, 30)); // an unhandled 'late' would fail the run
  });
});
