/**
 * Opt-in live test against a real AWS KMS key. Skipped (and reported as skipped) unless
 * KMS_PLUGIN_LIVE_AWS_KEY_ID is set.
 *
 *   KMS_PLUGIN_LIVE_AWS_KEY_ID   key ARN, key id, alias/NAME or alias ARN of a symmetric
 *                                customer managed key (required)
 *   AWS_REGION                   region, unless the key id is an ARN
 *   KMS_PLUGIN_LIVE_AWS_ROLE_ARN optional role to assume on top of the default chain
 *   credentials                  the SDK's default chain (env, profile, SSO, IRSA, instance profile, ...)
 *
 * The identity needs kms:Encrypt, kms:Decrypt, kms:DescribeKey and kms:ListKeyRotations on the key
 * (deploy/policies/aws-iam-policy.json). The test wraps and unwraps a few random DEKs; it never
 * rotates, disables or deletes the key.
 */
import { randomBytes } from 'node:crypto';
import { awsSchema } from '../../src/config/providers/aws.js';
import { timeoutSignal } from '../../src/deadline.js';
import { PluginError } from '../../src/errors.js';
import { createProvider } from '../../src/kek/aws/index.js';
import type { KekProvider } from '../../src/kek/types.js';
import { Metrics } from '../../src/observability/metrics.js';
import { silentLogger } from '../../src/observability/logger.js';

const keyId = process.env.KMS_PLUGIN_LIVE_AWS_KEY_ID;
const maybe = keyId ? describe : describe.skip;

maybe('aws provider against real AWS KMS (live)', () => {
  const providers: KekProvider[] = [];
  const make = async (extra: Record<string, unknown> = {}): Promise<KekProvider> => {
    const config = awsSchema.parse({
      keyId,
      ...(process.env.AWS_REGION && !keyId?.startsWith('arn:') ? { region: process.env.AWS_REGION } : {}),
      ...(process.env.KMS_PLUGIN_LIVE_AWS_ROLE_ARN
        ? { roleArn: process.env.KMS_PLUGIN_LIVE_AWS_ROLE_ARN }
        : {}),
      ...extra,
    });
    const p = await createProvider(config, {
      logger: silentLogger(),
      metrics: new Metrics({ processMetrics: false }),
      role: 'primary',
    });
    providers.push(p);
    return p;
  };
  afterAll(async () => {
    for (const p of providers) await p.close();
  });

  test('the key is enabled and its version is stable', async () => {
    const p = await make();
    const v1 = await p.currentVersion(timeoutSignal(10_000));
    const v2 = await p.currentVersion(timeoutSignal(10_000));
    expect(v1.state).toBe('enabled');
    expect(v1.ref.key).toMatch(/^arn:aws[a-z-]*:kms:/);
    expect(v2).toEqual(v1);
  });

  test('round trip, and a different EncryptionContext fails closed', async () => {
    const p = await make({ cluster: 'live-test-a' });
    const q = await make({ cluster: 'live-test-b' });
    const v = await p.currentVersion(timeoutSignal(10_000));
    const dek = randomBytes(32);
    const w = await p.wrap(dek, v, timeoutSignal(10_000));
    expect((await p.unwrap(w.wrapped, w.ref, timeoutSignal(10_000))).equals(dek)).toBe(true);
    const vq = await q.currentVersion(timeoutSignal(10_000));
    const err = await q.unwrap(w.wrapped, vq.ref, timeoutSignal(10_000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).kind).toBe('unauthenticated');
  });

  test('a tiny deadline gives a deadline error, not a late answer', async () => {
    const p = await make();
    const v = await p.currentVersion(timeoutSignal(10_000));
    const started = Date.now();
    const err = await p.wrap(randomBytes(32), v, timeoutSignal(1)).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(500);
    expect(err).toBeInstanceOf(PluginError);
    expect(['deadline', 'cancelled']).toContain((err as PluginError).kind);
  });
});
