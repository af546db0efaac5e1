import { Checkpoint } from '../../../../src/cli/reencrypt/checkpoint.js';
import { keyOf, send, svmBody, svmState, type EngineOptions } from '../../../../src/cli/reencrypt/engine.js';
import { KubeError, type KubeRequest, type KubeTransport } from '../../../../src/cli/reencrypt/kube.js';
import { RateLimiter } from '../../../../src/cli/reencrypt/ratelimit.js';
import { FakeClock } from './fake-clock.js';

class Scripted implements KubeTransport {
  readonly server = 'https://fake';
  calls = 0;
  constructor(private readonly answers: Array<KubeError | unknown>) {}
  async request<T>(_req: KubeRequest): Promise<T> {
    const a = this.answers[Math.min(this.calls++, this.answers.length - 1)];
    if (a instanceof KubeError) throw a;
    return a as T;
  }
}

function opts(kube: KubeTransport, clock: FakeClock, over: Partial<EngineOptions> = {}): EngineOptions {
  return {
    kube,
    clock,
    limiter: new RateLimiter(0, undefined, clock),
    checkpoint: Checkpoint.open(undefined, 'https://fake', 'update'),
    stop: new AbortController().signal,
    concurrency: 1,
    pageSize: 10,
    maxRetries: 3,
    events: () => undefined,
    log: () => undefined,
    ...over,
  };
}

const req: KubeRequest = { method: 'PUT', path: '/x' };

describe('send: retries', () => {
  test('429 waits the Retry-After; 503, 500 and network errors back off; then succeeds', async () => {
    const clock = new FakeClock();
    const kube = new Scripted([
      new KubeError(429, 'TooManyRequests', 'x', { retryAfterMs: 7000 }),
      new KubeError(503, 'ServiceUnavailable', 'x'),
      new KubeError(0, 'NetworkError', 'x'),
      { ok: true },
    ]);
    expect(await send(opts(kube, clock), req)).toEqual({ ok: true });
    expect(clock.sleeps).toEqual([7000, 500, 1000]);
  });

  test('Retry-After is capped', async () => {
    const clock = new FakeClock();
    const kube = new Scripted([
      new KubeError(429, 'TooManyRequests', 'x', { retryAfterMs: 3_600_000 }),
      'ok',
    ]);
    await send(opts(kube, clock, { maxRetryAfterMs: 60_000 }), req);
    expect(clock.sleeps).toEqual([60_000]);
  });

  test('409, 404, 403, 422 are not retried; retries run out after maxRetries', async () => {
    for (const status of [409, 404, 403, 422, 400]) {
      const kube = new Scripted([new KubeError(status, 'X', 'x'), 'ok']);
      await expect(send(opts(kube, new FakeClock()), req)).rejects.toMatchObject({ status });
      expect(kube.calls).toBe(1);
    }
    const kube = new Scripted([new KubeError(500, 'InternalError', 'x')]);
    await expect(send(opts(kube, new FakeClock(), { maxRetries: 2 }), req)).rejects.toMatchObject({
      status: 500,
    });
    expect(kube.calls).toBe(3);
  });

  test('a stop during a retry wait returns without sending again', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const kube = new Scripted([new KubeError(429, 'TooManyRequests', 'x', { retryAfterMs: 1000 }), 'ok']);
    const origSleep = clock.sleep.bind(clock);
    clock.sleep = async (ms, signal) => {
      ac.abort();
      return origSleep(ms, signal);
    };
    const r = await send(opts(kube, clock, { stop: ac.signal }), req);
    expect(typeof r).toBe('symbol');
    expect(kube.calls).toBe(1);
  });
});

describe('StorageVersionMigration helpers', () => {
  const t = {
    id: 'deployments.apps',
    group: 'apps',
    version: 'v1',
    resource: 'deployments',
    kind: 'Deployment',
    namespaced: true,
    verbs: [],
  };

  test('the body per API version: v1alpha1 names the version, v1beta1/v1 only group and resource', () => {
    expect(svmBody('v1alpha1', t)).toMatchObject({
      apiVersion: 'storagemigration.k8s.io/v1alpha1',
      kind: 'StorageVersionMigration',
      metadata: { generateName: 'kms-reencrypt-deployments-apps-' },
      spec: { resource: { group: 'apps', version: 'v1', resource: 'deployments' } },
    });
    expect((svmBody('v1beta1', t) as { spec: unknown }).spec).toEqual({
      resource: { group: 'apps', resource: 'deployments' },
    });
  });

  test('state from the conditions the migrator sets (Running → False when it finishes)', () => {
    const c = (type: string, status: string, message?: string): object => ({ type, status, message });
    expect(svmState({})).toEqual({ state: 'Pending' });
    expect(svmState({ status: { conditions: [c('Running', 'True')] } as never })).toEqual({
      state: 'Running',
    });
    expect(
      svmState({ status: { conditions: [c('Running', 'False'), c('Succeeded', 'True')] } as never }),
    ).toEqual({ state: 'Succeeded' });
    expect(
      svmState({
        status: { conditions: [c('Running', 'False'), c('Failed', 'True', 'resource not found')] } as never,
      }),
    ).toEqual({
      state: 'Failed',
      message: 'resource not found',
    });
  });
});

test('keyOf: namespace/name in list (etcd key) order; cluster-scoped by name', () => {
  expect(keyOf({ metadata: { namespace: 'a', name: 'x' } })).toBe('a/x');
  expect(keyOf({ metadata: { name: 'default' } })).toBe('default');
  // "a-b/…" sorts before "a/…" as etcd keys do ('-' < '/').
  expect(
    keyOf({ metadata: { namespace: 'a-b', name: 'z' } }) < keyOf({ metadata: { namespace: 'a', name: 'a' } }),
  ).toBe(true);
});
