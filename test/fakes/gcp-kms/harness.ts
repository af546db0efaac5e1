/**
 * Test harness: the fake plus a real gcp provider (real @google-cloud/kms SDK) pointed at it, with
 * captured logs and a private metrics registry.
 */
import { gcpSchema, type GcpConfig } from '../../../src/config/providers/gcp.js';
import { createProvider, type GcpProviderOptions } from '../../../src/kek/gcp/index.js';
import type { KekProvider } from '../../../src/kek/types.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { FakeGcpKms } from './server.js';

export const TEST_KEY = 'projects/test-project/locations/global/keyRings/k8s/cryptoKeys/etcd';

export interface ProviderHandle {
  provider: KekProvider;
  config: GcpConfig;
  metrics: Metrics;
  /** Every log line the provider wrote (JSON text). */
  logs: string[];
}

/** Config for a provider talking plaintext to `fake` (insecure test mode). */
export function fakeConfig(fake: FakeGcpKms, overrides: Record<string, unknown> = {}): GcpConfig {
  return gcpSchema.parse({ keyName: TEST_KEY, endpoint: fake.endpoint, insecure: true, ...overrides });
}

/** A real gcp provider pointed at `fake`; fast back-off so retry tests stay quick. */
export async function providerFor(
  fake: FakeGcpKms,
  overrides: Record<string, unknown> = {},
  options: GcpProviderOptions = {},
): Promise<ProviderHandle> {
  const config = fakeConfig(fake, overrides);
  const logs: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void logs.push(line) },
  });
  const metrics = new Metrics({ processMetrics: false });
  const provider = await createProvider(
    config,
    { logger, metrics, role: 'primary' },
    {
      caller: { ...options.caller, retry: { baseBackoffMs: 10, maxBackoffMs: 50, ...options.caller?.retry } },
    },
  );
  return { provider, config, metrics, logs };
}

/** Starts a fake with TEST_KEY (version 1 primary). */
export async function startFakeWithKey(): Promise<FakeGcpKms> {
  const fake = await FakeGcpKms.start();
  fake.createKey(TEST_KEY);
  return fake;
}
