import { describe, expect, it } from '@jest/globals';
import { deadlineOf, deadlineSignal, timeoutSignal } from '../../../src/deadline.js';
import {
  CircuitOpenError,
  InternalError,
  PermissionDeniedError,
  PluginError,
  ThrottledError,
  UnavailableError,
  InvalidInputError,
} from '../../../src/errors.js';
import { mapError } from '../../../src/server/errors.js';
import { status } from '@grpc/grpc-js';
import {
  RemoteCaller,
  Semaphore,
  attemptTimeLeftMs,
  type RemoteCallerOptions,
} from '../../../src/kek/remote.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { silentLogger } from '../../../src/observability/logger.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const never = (): AbortSignal => new AbortController().signal;

function caller(over: Partial<RemoteCallerOptions> = {}): { rc: RemoteCaller; metrics: Metrics } {
  const metrics = new Metrics({ processMetrics: false });
  const rc = new RemoteCaller({
    provider: 'fake',
    classify: (err) => (err instanceof PluginError ? err : new InternalError('classified')),
    metrics,
    logger: silentLogger(),
    random: () => 0,
    ...over,
    retry: { baseBackoffMs: 5, maxBackoffMs: 20, minAttemptMs: 5, attemptTimeoutMs: 1000, ...over.retry },
  });
  return { rc, metrics };
}

/** Value of a sample whose labels include every given pair (0 if absent). */
async function sample(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.split(' ').pop());
  }
  return 0;
}

async function errorOf(p: Promise<unknown>): Promise<PluginError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PluginError);
    return err as PluginError;
  }
  throw new Error('expected an error');
}

describe('RemoteCaller retries', () => {
  it('retries retryable errors and succeeds; counts retries and one ok call', async () => {
    const { rc, metrics } = caller();
    let attempts = 0;
    const v = await rc.call('wrap', never(), async () => {
      attempts += 1;
      if (attempts === 1) throw new ThrottledError('slow down');
      if (attempts === 2) throw new UnavailableError('blip');
      return 'done';
    });
    expect(v).toBe('done');
    expect(attempts).toBe(3);
    expect(
      await sample(metrics, 'kms_plugin_remote_retries_total', { provider: 'fake', operation: 'wrap' }),
    ).toBe(2);
    expect(await sample(metrics, 'kms_plugin_remote_calls_total', { operation: 'wrap', outcome: 'ok' })).toBe(
      1,
    );
    expect(
      await sample(metrics, 'kms_plugin_remote_calls_total', { operation: 'wrap', outcome: 'throttled' }),
    ).toBe(0);
  });

  it('gives up after maxAttempts with the last error', async () => {
    const { rc, metrics } = caller({ retry: { maxAttempts: 3 } });
    let attempts = 0;
    const err = await errorOf(
      rc.call('unwrap', never(), async () => {
        attempts += 1;
        throw new ThrottledError(`throttled ${attempts}`);
      }),
    );
    expect(attempts).toBe(3);
    expect(err.kind).toBe('throttled');
    expect(err.message).toBe('throttled 3');
    expect(
      await sample(metrics, 'kms_plugin_remote_calls_total', { operation: 'unwrap', outcome: 'throttled' }),
    ).toBe(1);
  });

  it('a non-retryable error is thrown at once', async () => {
    const { rc, metrics } = caller();
    let attempts = 0;
    const denied = new PermissionDeniedError('no');
    const err = await errorOf(
      rc.call('wrap', never(), async () => {
        attempts += 1;
        throw denied;
      }),
    );
    expect(err).toBe(denied);
    expect(attempts).toBe(1);
    expect(await sample(metrics, 'kms_plugin_remote_calls_total', { outcome: 'permission_denied' })).toBe(1);
    expect(await sample(metrics, 'kms_plugin_remote_retries_total', { operation: 'wrap' })).toBe(0);
  });

  it('errors that are not PluginErrors go through classify', async () => {
    const { rc, metrics } = caller({
      classify: (e) => new InvalidInputError(`classified: ${(e as Error).name}`),
    });
    const err = await errorOf(
      rc.call('wrap', never(), async () => {
        throw new TypeError('raw');
      }),
    );
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toBe('classified: TypeError');
    expect(await sample(metrics, 'kms_plugin_remote_calls_total', { outcome: 'invalid_input' })).toBe(1);
  });

  it('never retries past the caller’s deadline', async () => {
    const { rc } = caller({ retry: { maxAttempts: 1000, baseBackoffMs: 20, maxBackoffMs: 40 } });
    let attempts = 0;
    const started = Date.now();
    const err = await errorOf(
      rc.call('wrap', timeoutSignal(150), async () => {
        attempts += 1;
        throw new UnavailableError('down');
      }),
    );
    const elapsed = Date.now() - started;
    expect(['unavailable', 'deadline']).toContain(err.kind);
    expect(elapsed).toBeLessThan(300); // 150 ms deadline plus scheduling slack on a busy CI box
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThan(20);
  });

  it('does not start a back-off that cannot fit before the deadline (fails at once)', async () => {
    const { rc } = caller({ retry: { maxAttempts: 10, baseBackoffMs: 1000, maxBackoffMs: 1000 } });
    let attempts = 0;
    const started = Date.now();
    const err = await errorOf(
      rc.call('wrap', timeoutSignal(300), async () => {
        attempts += 1;
        throw new UnavailableError('down');
      }),
    );
    expect(err.kind).toBe('unavailable');
    expect(attempts).toBe(1);
    expect(Date.now() - started).toBeLessThan(150);
  });

  it('an already-expired caller signal makes no attempt', async () => {
    const { rc, metrics } = caller();
    const s = timeoutSignal(0);
    await sleep(5);
    let attempts = 0;
    const err = await errorOf(
      rc.call('wrap', s, async () => {
        attempts += 1;
        return 1;
      }),
    );
    expect(err.kind).toBe('deadline');
    expect(attempts).toBe(0);
    expect(await sample(metrics, 'kms_plugin_remote_calls_total', { outcome: 'deadline' })).toBe(1);
  });

  it('a cancelled caller (not a timeout) is reported as cancelled', async () => {
    const { rc } = caller();
    const c = new AbortController();
    const p = rc.call(
      'wrap',
      c.signal,
      (s) => new Promise((_r, rej) => s.addEventListener('abort', () => rej(s.reason))),
    );
    await sleep(10);
    c.abort();
    expect((await errorOf(p)).kind).toBe('cancelled');
  });

  it('a hung attempt is cut by attemptTimeoutMs and retried', async () => {
    const { rc } = caller({ retry: { attemptTimeoutMs: 50 } });
    let attempts = 0;
    const signals: AbortSignal[] = [];
    const started = Date.now();
    const v = await rc.call('wrap', timeoutSignal(5000), (s) => {
      attempts += 1;
      signals.push(s);
      if (attempts === 1)
        return new Promise<string>((_r, rej) => s.addEventListener('abort', () => rej(s.reason)));
      return Promise.resolve('second');
    });
    expect(v).toBe('second');
    expect(attempts).toBe(2);
    expect(signals[0].aborted).toBe(true);
    expect(signals[1].aborted).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a hung attempt that outlives the caller’s deadline → deadline error, not retried', async () => {
    const { rc, metrics } = caller({ retry: { attemptTimeoutMs: 5000 } });
    let attempts = 0;
    const started = Date.now();
    const err = await errorOf(
      rc.call('unwrap', timeoutSignal(80), (s) => {
        attempts += 1;
        return new Promise((_r, rej) => s.addEventListener('abort', () => rej(s.reason)));
      }),
    );
    expect(err.kind).toBe('deadline');
    expect(attempts).toBe(1);
    expect(Date.now() - started).toBeLessThan(500);
    expect(
      await sample(metrics, 'kms_plugin_remote_calls_total', { operation: 'unwrap', outcome: 'deadline' }),
    ).toBe(1);
  });
});

describe('RemoteCaller circuit breaker', () => {
  it('opens after N unavailable failures, fails fast, and closes after a successful half-open call', async () => {
    const { rc, metrics } = caller({
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 3, cooldownMs: 150 },
    });
    let attempts = 0;
    const failing = async (): Promise<number> => {
      attempts += 1;
      throw new UnavailableError('down');
    };
    for (let i = 0; i < 3; i++) await errorOf(rc.call('wrap', never(), failing));
    expect(attempts).toBe(3);
    expect(await sample(metrics, 'kms_plugin_remote_circuit_open', { provider: 'fake' })).toBe(1);
    // Open: fails fast without calling fn.
    const started = Date.now();
    const fast = await errorOf(
      rc.call('wrap', never(), async () => {
        attempts += 1;
        return 1;
      }),
    );
    expect(fast.kind).toBe('unavailable');
    expect(fast).toBeInstanceOf(CircuitOpenError);
    expect(fast).toBeInstanceOf(UnavailableError);
    expect((fast as CircuitOpenError).circuit).toBe('open');
    expect(mapError(fast).code).toBe(status.UNAVAILABLE); // the one error table, as before
    expect(fast.message).toMatch(/circuit open/);
    expect(fast.retryable).toBe(false);
    expect(attempts).toBe(3);
    expect(Date.now() - started).toBeLessThan(50);
    await sleep(170);
    // Half-open: one probe call goes through; a concurrent one fails fast.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const probe = rc.call('wrap', never(), async () => {
      attempts += 1;
      await gate;
      return 'probe-ok';
    });
    const concurrent = await errorOf(rc.call('wrap', never(), async () => 2));
    expect(concurrent).toBeInstanceOf(CircuitOpenError);
    expect((concurrent as CircuitOpenError).circuit).toBe('half_open');
    expect(concurrent.message).toMatch(/half-open/);
    release();
    expect(await probe).toBe('probe-ok');
    expect(attempts).toBe(4);
    expect(await sample(metrics, 'kms_plugin_remote_circuit_open', { provider: 'fake' })).toBe(0);
    // Closed again.
    expect(await rc.call('wrap', never(), async () => 'ok')).toBe('ok');
  });

  it("recognises its own refusals by type, not by text: a KMS message that says 'circuit ' still counts", async () => {
    const { rc } = caller({
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 2, cooldownMs: 10_000 },
    });
    // A remote KMS whose own front end says "circuit": a real failure, so it opens the breaker.
    const upstream = async (): Promise<number> => {
      throw new UnavailableError('upstream circuit breaker tripped (503)');
    };
    await errorOf(rc.call('wrap', never(), upstream));
    await errorOf(rc.call('wrap', never(), upstream));
    expect(await errorOf(rc.call('wrap', never(), async () => 1))).toBeInstanceOf(CircuitOpenError);
    // A breaker refusal from a nested caller (e.g. Vault's login caller inside a transit attempt)
    // is not a new failure of this caller: it does not open it.
    const outer = caller({
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, cooldownMs: 10_000 },
    }).rc;
    const nested = await errorOf(
      outer.call('wrap', never(), async () => {
        throw new CircuitOpenError('vault login: circuit open', 'open');
      }),
    );
    expect(nested).toBeInstanceOf(CircuitOpenError);
    expect(await outer.call('wrap', never(), async () => 'still closed')).toBe('still closed');
  });

  it('a failed half-open call re-opens the circuit', async () => {
    const { rc } = caller({ retry: { maxAttempts: 1 }, breaker: { failureThreshold: 2, cooldownMs: 80 } });
    const failing = async (): Promise<number> => {
      throw new UnavailableError('down');
    };
    await errorOf(rc.call('wrap', never(), failing));
    await errorOf(rc.call('wrap', never(), failing));
    await sleep(100);
    let ran = 0;
    await errorOf(
      rc.call('wrap', never(), async () => {
        ran += 1;
        throw new UnavailableError('still down');
      }),
    );
    expect(ran).toBe(1);
    const fast = await errorOf(
      rc.call('wrap', never(), async () => {
        ran += 1;
        return 1;
      }),
    );
    expect(fast.message).toMatch(/circuit open/);
    expect(ran).toBe(1);
  });

  it('a half-open call that fails its deadline check before running does not wedge the breaker', async () => {
    const { rc } = caller({ retry: { maxAttempts: 1 }, breaker: { failureThreshold: 1, cooldownMs: 30 } });
    await errorOf(
      rc.call('wrap', never(), async () => {
        throw new UnavailableError('down');
      }),
    );
    await sleep(50);
    // Deadline already reached (the timer has not fired yet): no attempt can be made.
    const late = await errorOf(rc.call('wrap', deadlineSignal(Date.now()), async () => 'never'));
    expect(late.kind).toBe('deadline');
    // The next caller must get its half-open probe through, not "probe call in flight" forever.
    expect(await rc.call('wrap', never(), async () => 'recovered')).toBe('recovered');
  });

  it('errors that prove the KMS is up (permission denied) do not open it, and reset the count', async () => {
    const { rc } = caller({
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 2, cooldownMs: 10_000 },
    });
    const unavailable = async (): Promise<number> => {
      throw new UnavailableError('x');
    };
    const denied = async (): Promise<number> => {
      throw new PermissionDeniedError('no');
    };
    for (let i = 0; i < 5; i++) await errorOf(rc.call('wrap', never(), denied));
    await errorOf(rc.call('wrap', never(), unavailable));
    await errorOf(rc.call('wrap', never(), denied));
    await errorOf(rc.call('wrap', never(), unavailable));
    expect(await rc.call('wrap', never(), async () => 'still closed')).toBe('still closed');
  });

  it('a success resets the consecutive-failure count', async () => {
    const { rc } = caller({
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 2, cooldownMs: 10_000 },
    });
    const fail = async (): Promise<number> => {
      throw new UnavailableError('x');
    };
    await errorOf(rc.call('wrap', never(), fail));
    await rc.call('wrap', never(), async () => 1);
    await errorOf(rc.call('wrap', never(), fail));
    expect(await rc.call('wrap', never(), async () => 'closed')).toBe('closed');
  });

  it('failureThreshold 0 disables the breaker', async () => {
    const { rc } = caller({ retry: { maxAttempts: 1 }, breaker: { failureThreshold: 0 } });
    for (let i = 0; i < 20; i++) {
      await errorOf(
        rc.call('wrap', never(), async () => {
          throw new UnavailableError('x');
        }),
      );
    }
    expect(await rc.call('wrap', never(), async () => 'through')).toBe('through');
  });
});

describe('RemoteCaller concurrency limit', () => {
  it('holds: never more than `concurrency` attempts in flight, and all complete', async () => {
    const { rc } = caller({ concurrency: 3 });
    let inFlight = 0;
    let max = 0;
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        rc.call('unwrap', timeoutSignal(5000), async () => {
          inFlight += 1;
          max = Math.max(max, inFlight);
          await sleep(15);
          inFlight -= 1;
          return i;
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(max).toBe(3);
  });

  it('a caller waiting for a slot gives up at its deadline', async () => {
    const { rc } = caller({ concurrency: 1 });
    let release!: () => void;
    const hold = rc.call('wrap', never(), () => new Promise<void>((r) => (release = r)));
    const started = Date.now();
    let ran = false;
    const err = await errorOf(
      rc.call('wrap', timeoutSignal(60), async () => {
        ran = true;
      }),
    );
    expect(err.kind).toBe('deadline');
    expect(ran).toBe(false);
    expect(Date.now() - started).toBeLessThan(500);
    release();
    await hold;
    // The slot is free again.
    expect(await rc.call('wrap', never(), async () => 'free')).toBe('free');
  });
});

describe('Semaphore', () => {
  it('hands slots out in order and removes aborted waiters', async () => {
    const s = new Semaphore(1);
    const r1 = await s.acquire(never());
    const c = new AbortController();
    const order: string[] = [];
    const p2 = s.acquire(c.signal).then(
      () => order.push('aborted-one-got-it'),
      () => order.push('aborted'),
    );
    const p3 = s.acquire(never()).then((rel) => {
      order.push('third');
      return rel;
    });
    c.abort();
    await p2;
    r1();
    r1(); // idempotent
    const r3 = await p3;
    expect(order).toEqual(['aborted', 'third']);
    r3();
    const r4 = await s.acquire(never());
    r4();
  });

  it('size below 1 is treated as 1', async () => {
    const s = new Semaphore(0);
    const r = await s.acquire(never());
    let got = false;
    void s.acquire(never()).then(() => (got = true));
    await sleep(5);
    expect(got).toBe(false);
    r();
    await sleep(5);
    expect(got).toBe(true);
  });
});

describe('RemoteCaller deadlines reach every attempt (issue 12.5)', () => {
  function plain(over: Partial<RemoteCallerOptions['retry']> = {}): RemoteCaller {
    return new RemoteCaller({
      provider: 'fake',
      classify: (err) => (err instanceof PluginError ? err : new InternalError('classified')),
      logger: silentLogger(),
      random: () => 0,
      retry: over,
    });
  }

  it('by default one attempt may use all the time left: a KMS answering in 2 s serves a 3 s deadline', async () => {
    const rc = plain();
    let attemptLeft = 0;
    const v = await rc.call('unwrap', timeoutSignal(3000), async (s) => {
      attemptLeft = (deadlineOf(s) ?? 0) - Date.now();
      await sleep(2000);
      if (s.aborted) throw new UnavailableError('cut');
      return 'dek';
    });
    expect(v).toBe('dek');
    expect(attemptLeft).toBeGreaterThan(2500);
  });

  it('a Retry-After that fits before the deadline is waited out, then the call is retried', async () => {
    const rc = plain();
    let attempts = 0;
    const t0 = Date.now();
    const v = await rc.call('wrap', timeoutSignal(3000), async () => {
      attempts += 1;
      if (attempts === 1) throw new ThrottledError('429', { retryAfterMs: 400 });
      return 'ok';
    });
    expect(v).toBe('ok');
    expect(attempts).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(380);
  });

  it('a Retry-After longer than the time left fails at once as throttled (RESOURCE_EXHAUSTED), never late', async () => {
    const rc = plain();
    let attempts = 0;
    const t0 = Date.now();
    const err = await errorOf(
      rc.call('unwrap', timeoutSignal(1500), async () => {
        attempts += 1;
        throw new ThrottledError('azure: 429 Too Many Requests', { retryAfterMs: 5000 });
      }),
    );
    expect(err.kind).toBe('throttled');
    expect(err.message).toMatch(/Retry-After 5 s does not fit/);
    expect(attempts).toBe(1);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('while the circuit is open, the error names the underlying cause (last error class and message)', async () => {
    const rc = new RemoteCaller({
      provider: 'vault',
      classify: (err) => (err instanceof PluginError ? err : new InternalError('classified')),
      logger: silentLogger(),
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 2, cooldownMs: 60_000 },
    });
    for (let i = 0; i < 2; i++) {
      await errorOf(
        rc.call('encrypt', never(), async () => {
          throw new UnavailableError('vault encrypt: Vault is sealed; unseal it');
        }),
      );
    }
    const err = await errorOf(rc.call('encrypt', never(), async () => 'never'));
    expect(err.message).toMatch(/unavailable: vault encrypt: Vault is sealed/);
    expect(err.message).toMatch(/circuit open after 2 consecutive failures/);
  });
});

describe('RemoteCaller owns classification, Retry-After and the attempt (issue 14.2)', () => {
  /** A raw SDK-style error: what a provider's attempt throws, unclassified. */
  function raw(name: string, extra: Record<string, unknown> = {}): Error {
    return Object.assign(new Error(`${name} from the SDK`), { name }, extra);
  }

  /** Maps `raw()` errors the way a provider's classifier would, naming operation and subject. */
  function classifier(calls: Array<[string, string | undefined]>): RemoteCallerOptions['classify'] {
    return (err, operation, subject) => {
      calls.push([operation, subject]);
      const what = `fake ${operation}${subject ? ` on ${subject}` : ''}`;
      const name = (err as Error).name;
      if (name === 'Throttled') return new ThrottledError(`${what}: throttled`, { cause: new Error('safe') });
      if (name === 'Sealed') return new SealedError(`${what}: sealed`);
      if (name === 'Denied') return new PermissionDeniedError(`${what}: denied`);
      return new InternalError(`${what}: ${name}`);
    };
  }

  class SealedError extends UnavailableError {
    readonly reason = 'sealed';
  }

  function rc(
    classify: RemoteCallerOptions['classify'],
    retry: Partial<RemoteCallerOptions['retry']> = {},
    over: Partial<RemoteCallerOptions> = {},
  ): RemoteCaller {
    return new RemoteCaller({
      provider: 'fake',
      classify,
      logger: silentLogger(),
      random: () => 0,
      ...over,
      retry: { baseBackoffMs: 5, maxBackoffMs: 20, minAttemptMs: 5, ...retry },
    });
  }

  it('classifies with the operation and subject of each call, also for concurrent calls', async () => {
    const calls: Array<[string, string | undefined]> = [];
    const caller = rc(classifier(calls), { maxAttempts: 1 });
    const [a, b, c] = await Promise.all([
      errorOf(caller.call('getKey', never(), async () => Promise.reject(raw('Boom')), 'kv/keys/k')),
      errorOf(caller.call('wrapKey', never(), async () => Promise.reject(raw('Denied')), 'kv/keys/k/v2')),
      errorOf(caller.call('decrypt', never(), async () => Promise.reject(raw('Boom')))),
    ]);
    expect(a.message).toBe('fake getKey on kv/keys/k: Boom');
    expect(b.message).toBe('fake wrapKey on kv/keys/k/v2: denied');
    expect(b.kind).toBe('permission_denied');
    expect(c.message).toBe('fake decrypt: Boom');
    expect(calls.sort()).toEqual([
      ['decrypt', undefined],
      ['getKey', 'kv/keys/k'],
      ['wrapKey', 'kv/keys/k/v2'],
    ]);
  });

  it('classifies each failure once, and never a PluginError or its own abort', async () => {
    const calls: Array<[string, string | undefined]> = [];
    const caller = rc(classifier(calls), { maxAttempts: 3, attemptTimeoutMs: 50 });
    let attempts = 0;
    const err = await errorOf(
      caller.call('encrypt', never(), async (s) => {
        attempts += 1;
        if (attempts === 1) throw raw('Throttled'); // classified
        if (attempts === 2) throw new UnavailableError('already classified'); // passed through
        await new Promise((r) => s.addEventListener('abort', r)); // cut by the attempt cap
        throw raw('AbortError');
      }),
    );
    expect(attempts).toBe(3);
    expect(calls).toEqual([['encrypt', undefined]]);
    expect(err.kind).toBe('unavailable');
    expect(err.message).toMatch(/fake encrypt: no answer within 50 ms/);
  });

  const HINTS: Array<[string, (ms: number) => Record<string, unknown>]> = [
    [
      'Retry-After seconds (Azure RestError)',
      (ms) => ({ response: { headers: hdrs({ 'retry-after': `${ms / 1000}` }) } }),
    ],
    [
      'retry-after-ms (Azure RestError)',
      (ms) => ({ response: { headers: hdrs({ 'retry-after-ms': `${ms}` }) } }),
    ],
    [
      'x-ms-retry-after-ms (Azure RestError)',
      (ms) => ({ response: { headers: hdrs({ 'x-ms-retry-after-ms': `${ms}` }) } }),
    ],
    ['Retry-After seconds (Vault HTTP error)', (ms) => ({ headers: { 'retry-after': `${ms / 1000}` } })],
    [
      'Retry-After seconds (AWS $response)',
      (ms) => ({ $response: { statusCode: 503, headers: { 'retry-after': `${ms / 1000}` } } }),
    ],
    [
      'gRPC RetryInfo',
      (ms) => ({
        statusDetails: [{ retryDelay: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } }],
      }),
    ],
  ];

  function hdrs(h: Record<string, string>): { get(n: string): string | undefined } {
    return { get: (n) => h[n.toLowerCase()] };
  }

  it.each(HINTS)('%s on a raw throttled error is waited out, then retried', async (_form, hint) => {
    const caller = rc(classifier([]), { maxAttempts: 3 });
    let attempts = 0;
    const t0 = Date.now();
    const v = await caller.call('unwrap', timeoutSignal(5000), async () => {
      attempts += 1;
      if (attempts === 1) throw raw('Throttled', hint(500));
      return 'ok';
    });
    expect(v).toBe('ok');
    expect(attempts).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(480); // the back-off alone would be 5 ms
  });

  it.each(HINTS)('%s past the deadline fails at once, naming the wait', async (_form, hint) => {
    const caller = rc(classifier([]), { maxAttempts: 3 });
    let attempts = 0;
    const err = await errorOf(
      caller.call('unwrap', timeoutSignal(1500), async () => {
        attempts += 1;
        throw raw('Throttled', hint(5000));
      }),
    );
    expect(attempts).toBe(1);
    expect(err.kind).toBe('throttled');
    expect(err.message).toMatch(/fake unwrap: throttled; Retry-After 5 s does not fit in the \d+ ms left/);
    expect(mapError(err).code).toBe(status.RESOURCE_EXHAUSTED);
  });

  it('keeps the classified error (subclass, fields, safe cause) when it adds the retry hint', async () => {
    const caller = rc(classifier([]), { maxAttempts: 1 });
    const err = await errorOf(
      caller.call('read_key', never(), async () => {
        throw raw('Sealed', { headers: { 'retry-after': '2' } });
      }),
    );
    expect(err).toBeInstanceOf(SealedError);
    expect((err as SealedError).reason).toBe('sealed');
    expect(err.retryAfterMs).toBe(2000);
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('fake read_key: sealed');
    const throttled = await errorOf(
      caller.call('wrap', never(), async () => {
        throw raw('Throttled', { headers: { 'retry-after': '1' } });
      }),
    );
    expect(throttled).toBeInstanceOf(ThrottledError);
    expect(throttled.retryAfterMs).toBe(1000);
    expect((throttled.cause as Error).message).toBe('safe'); // never the raw SDK error (it may hold the request)
  });

  it('a retry hint on an error that is neither throttled nor unavailable is ignored', async () => {
    const caller = rc(classifier([]), { maxAttempts: 3 });
    let attempts = 0;
    const err = await errorOf(
      caller.call('wrap', never(), async () => {
        attempts += 1;
        throw raw('Denied', { headers: { 'retry-after': '1' } });
      }),
    );
    expect(attempts).toBe(1);
    expect(err.kind).toBe('permission_denied');
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('the attempt may use the time left by default; attemptTimeout caps it; the SDK number comes from the signal', async () => {
    const seen: number[] = [];
    const probe = async (s: AbortSignal): Promise<string> => {
      seen.push(attemptTimeLeftMs(s));
      return 'ok';
    };
    await rc(classifier([])).call('a', timeoutSignal(3000), probe); // time left
    await rc(classifier([]), { attemptTimeoutMs: 400 }).call('b', timeoutSignal(3000), probe); // capped
    await rc(classifier([]), { attemptTimeoutMs: 5000 }).call('c', timeoutSignal(1000), probe); // time left < cap
    await rc(classifier([]), { defaultDeadlineMs: 2000 }).call('d', never(), probe); // no deadline: the default
    expect(seen[0]).toBeGreaterThan(2000);
    expect(seen[0]).toBeLessThanOrEqual(3000);
    expect(seen[1]).toBeGreaterThan(200);
    expect(seen[1]).toBeLessThanOrEqual(400);
    expect(seen[2]).toBeGreaterThan(500);
    expect(seen[2]).toBeLessThanOrEqual(1000);
    expect(seen[3]).toBeGreaterThan(1000);
    expect(seen[3]).toBeLessThanOrEqual(2000);
    // A signal RemoteCaller did not make: the fallback; an aborted one: at least 1 ms.
    expect(attemptTimeLeftMs(never(), 1234)).toBe(1234);
    const gone = new AbortController();
    gone.abort();
    expect(attemptTimeLeftMs(gone.signal)).toBe(1);
  });

  it('an SDK call that ignores the signal is abandoned at the attempt cap, retried, and its slot freed', async () => {
    const caller = rc(classifier([]), { maxAttempts: 2, attemptTimeoutMs: 100 }, { concurrency: 1 });
    let attempts = 0;
    const t0 = Date.now();
    const err = await errorOf(
      caller.call('decrypt', timeoutSignal(10_000), () => {
        attempts += 1;
        return new Promise<string>(() => undefined); // never settles, never looks at the signal
      }),
    );
    expect(attempts).toBe(2);
    expect(err.kind).toBe('unavailable');
    expect(err.message).toMatch(/no answer within 100 ms/);
    expect(Date.now() - t0).toBeLessThan(5000); // not the 10 s deadline
    // The only slot was given back although both hung calls still "run".
    await expect(caller.call('decrypt', timeoutSignal(2000), async () => 'next')).resolves.toBe('next');
  });

  it('an SDK call that ignores the signal ends at the caller deadline as DEADLINE_EXCEEDED', async () => {
    const caller = rc(classifier([]), { maxAttempts: 4 });
    const t0 = Date.now();
    let lateRejection = false;
    const err = await errorOf(
      caller.call(
        'unwrap',
        timeoutSignal(300),
        () =>
          new Promise<string>((_resolve, reject) =>
            setTimeout(() => {
              lateRejection = true;
              reject(raw('Boom')); // after the caller gave up: swallowed, not unhandled
            }, 800),
          ),
      ),
    );
    expect(err.kind).toBe('deadline');
    expect(mapError(err).code).toBe(status.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(750);
    await sleep(600);
    expect(lateRejection).toBe(true);
  });
});
