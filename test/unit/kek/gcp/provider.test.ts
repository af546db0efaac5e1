/**
 * GcpKekProvider with a stub KmsApi: the parts that do not need the SDK or the fake.
 */
import { describe, expect, it } from '@jest/globals';
import { gcpSchema } from '../../../../src/config/providers/gcp.js';
import { timeoutSignal } from '../../../../src/deadline.js';
import { PluginError } from '../../../../src/errors.js';
import type { KmsApi } from '../../../../src/kek/gcp/api.js';
import { GcpKekProvider } from '../../../../src/kek/gcp/provider.js';
import { silentLogger } from '../../../../src/observability/logger.js';
import { Metrics } from '../../../../src/observability/metrics.js';

const KEY = 'projects/p-1/locations/global/keyRings/r/cryptoKeys/k';

function stubApi(overrides: Partial<KmsApi> = {}): KmsApi & { calls: number } {
  const api = {
    calls: 0,
    getCryptoKey: async () => {
      api.calls += 1;
      return {
        name: KEY,
        purpose: 'ENCRYPT_DECRYPT' as const,
        primary: {
          name: `${KEY}/cryptoKeyVersions/7`,
          state: 'ENABLED' as const,
          createTime: { seconds: '1795629686', nanos: 1 },
        },
      };
    },
    listCryptoKeyVersions: async () => ({ versions: [] }),
    encrypt: async () => ({}),
    decrypt: async () => ({}),
    close: async () => undefined,
    ...overrides,
  };
  return api;
}

function providerWith(api: KmsApi, overrides: Record<string, unknown> = {}): GcpKekProvider {
  return new GcpKekProvider(
    gcpSchema.parse({ keyName: KEY, ...overrides }),
    api,
    { logger: silentLogger(), metrics: new Metrics({ processMetrics: false }), role: 'primary' },
    { caller: { retry: { baseBackoffMs: 5, maxBackoffMs: 10 } } },
  );
}

describe('gcp provider: client loading', () => {
  it('does not charge loading the SDK to the per-call timeout', async () => {
    const api = stubApi({ ready: () => new Promise((r) => setTimeout(r, 300)) });
    const p = providerWith(api, { attemptTimeout: '100ms', maxAttempts: 1 });
    const info = await p.currentVersion(timeoutSignal(2000));
    expect(info.ref.version).toBe('7');
    expect(info.ordinal).toBe(7);
    expect(api.calls).toBe(1);
  });

  it('still honours the caller deadline while the client loads', async () => {
    const api = stubApi({ ready: () => new Promise(() => undefined) });
    const p = providerWith(api);
    const started = Date.now();
    let err: unknown;
    try {
      await p.currentVersion(timeoutSignal(150));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).kind).toBe('deadline');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(api.calls).toBe(0);
  });

  it('surfaces a client that cannot load as that error, without a remote call', async () => {
    const api = stubApi({ ready: () => Promise.reject(new PluginError('invalid_input', 'no SDK')) });
    const p = providerWith(api);
    await expect(p.currentVersion(timeoutSignal(1000))).rejects.toMatchObject({ kind: 'invalid_input' });
    expect(api.calls).toBe(0);
  });

  it('classifies errors by the operation that failed, even with concurrent operations', async () => {
    const invalid = Object.assign(new Error('3 INVALID_ARGUMENT: bad'), { code: 3, details: 'bad' });
    const api = stubApi({
      encrypt: () => new Promise((_r, reject) => setTimeout(() => reject(invalid), 20)),
      decrypt: () => new Promise((_r, reject) => setTimeout(() => reject(invalid), 10)),
    });
    const p = providerWith(api);
    const info = await p.currentVersion(timeoutSignal(1000));
    const [wrap, unwrap] = await Promise.allSettled([
      p.wrap(Buffer.alloc(32, 1), info, timeoutSignal(1000)),
      p.unwrap(Buffer.alloc(40, 2), info.ref, timeoutSignal(1000)),
    ]);
    expect(wrap.status === 'rejected' && (wrap.reason as PluginError).kind).toBe('invalid_input');
    expect(unwrap.status === 'rejected' && (unwrap.reason as PluginError).kind).toBe('unauthenticated');
  });
});
