/**
 * Opt-in test against a real Cloud KMS CryptoKey. Skipped unless KMS_PLUGIN_LIVE_GCP_KEY_NAME is
 * set. Uses Application Default Credentials (or KMS_PLUGIN_LIVE_GCP_CREDENTIALS_FILE); the identity
 * needs roles/cloudkms.cryptoKeyEncrypterDecrypter and roles/cloudkms.viewer on the key (or the
 * custom role in deploy/policies/gcp-custom-role.yaml). It only reads key metadata and calls
 * Encrypt/Decrypt; it never changes the key.
 *
 *   KMS_PLUGIN_LIVE_GCP_KEY_NAME=projects/P/locations/L/keyRings/R/cryptoKeys/K \
 *   node --experimental-vm-modules --no-warnings node_modules/jest/bin/jest.js test/live/gcp.live.test.ts
 *
 * Optional: KMS_PLUGIN_LIVE_GCP_ENDPOINT (e.g. a regional endpoint).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from '@jest/globals';
import { gcpSchema } from '../../src/config/providers/gcp.js';
import { timeoutSignal } from '../../src/deadline.js';
import { createProvider } from '../../src/kek/gcp/index.js';
import type { KekProvider } from '../../src/kek/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

const keyName = process.env.KMS_PLUGIN_LIVE_GCP_KEY_NAME;
const maybe = keyName ? describe : describe.skip;

maybe('gcp provider against real Cloud KMS (live, opt-in)', () => {
  const logs: string[] = [];
  let provider: KekProvider | undefined;

  async function get(): Promise<KekProvider> {
    if (provider) return provider;
    const config = gcpSchema.parse({
      keyName,
      ...(process.env.KMS_PLUGIN_LIVE_GCP_ENDPOINT
        ? { endpoint: process.env.KMS_PLUGIN_LIVE_GCP_ENDPOINT }
        : {}),
      ...(process.env.KMS_PLUGIN_LIVE_GCP_CREDENTIALS_FILE
        ? { credentialsFile: process.env.KMS_PLUGIN_LIVE_GCP_CREDENTIALS_FILE }
        : {}),
      aad: 'k8s-kms-plugin/live-test',
    });
    provider = await createProvider(config, {
      logger: createLogger({ level: 'debug', destination: { write: (l: string) => void logs.push(l) } }),
      metrics: new Metrics({ processMetrics: false }),
      role: 'primary',
    });
    return provider;
  }

  afterAll(async () => {
    await provider?.close();
  });

  it('reads the primary version, wraps with it and unwraps, with CRC32C verified', async () => {
    const p = await get();
    const info = await p.currentVersion(timeoutSignal(10_000));
    expect(info.ref.key).toBe(keyName);
    expect(info.ref.version).toMatch(/^\d+$/);
    expect(info.ref.unique).toMatch(/^created=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z;aad=[0-9a-f]{16}$/);
    expect(info.state).toBe('enabled');
    const again = await p.currentVersion(timeoutSignal(10_000));
    expect(again.ref).toEqual(info.ref); // stable while the primary does not change

    const dek = randomBytes(32);
    const { wrapped, ref } = await p.wrap(dek, info, timeoutSignal(10_000));
    expect(ref).toEqual(info.ref);
    expect((await p.unwrap(wrapped, ref, timeoutSignal(10_000))).equals(dek)).toBe(true);

    const damaged = Buffer.from(wrapped);
    damaged[damaged.length - 1] ^= 1;
    await expect(p.unwrap(damaged, ref, timeoutSignal(10_000))).rejects.toMatchObject({
      kind: 'unauthenticated',
    });
    const text = logs.join('\n');
    for (const s of [dek.toString('hex'), dek.toString('base64'), wrapped.toString('base64')])
      expect(text).not.toContain(s);
  });

  it('respects a short caller deadline', async () => {
    const p = await get();
    const started = Date.now();
    await expect(p.currentVersion(timeoutSignal(1))).rejects.toBeDefined();
    expect(Date.now() - started).toBeLessThan(500);
  });
});
