import { describe, expect, it } from '@jest/globals';
import { InternalError, PermissionDeniedError, UnavailableError } from '../../../src/errors.js';
import { OPTIONAL_RETRY_MS, OptionalCalls } from '../../../src/kek/optional.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';

function setup() {
  const clock = { t: 1_000_000 };
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
  const metrics = new Metrics({ processMetrics: false });
  const calls = new OptionalCalls({ provider: 'gcp', logger, metrics, now: () => clock.t });
  const gauge = async (): Promise<number | undefined> =>
    (await metrics.optionalCallUnavailable.get()).values.find((v) => v.labels.call === 'list')?.value;
  const warnings = (): string[] =>
    lines
      .map((l) => JSON.parse(l) as { level: string; msg: string })
      .filter((l) => l.level === 'warn')
      .map((l) => l.msg);
  return { clock, calls, gauge, warnings };
}

describe('OptionalCalls (issue 12.4)', () => {
  it('a refused optional call yields undefined, warns ONCE naming the permission, sets the metric, and is retried at most hourly', async () => {
    const { clock, calls, gauge, warnings } = setup();
    let attempts = 0;
    const denied = async (): Promise<string> => {
      attempts += 1;
      throw new PermissionDeniedError(
        "gcp listCryptoKeyVersions: PERMISSION_DENIED: Permission 'cloudkms.cryptoKeyVersions.list' denied",
      );
    };
    await expect(calls.run('list', 'cloudkms.cryptoKeyVersions.list', denied)).resolves.toBeUndefined();
    expect(await gauge()).toBe(1);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toContain('cloudkms.cryptoKeyVersions.list');
    expect(calls.issues()).toEqual([
      expect.objectContaining({
        call: 'list',
        permission: 'cloudkms.cryptoKeyVersions.list',
        kind: 'permission_denied',
      }),
    ]);
    // Skipped (no remote call) until an hour has passed.
    clock.t += OPTIONAL_RETRY_MS - 1;
    await expect(calls.run('list', 'cloudkms.cryptoKeyVersions.list', denied)).resolves.toBeUndefined();
    expect(attempts).toBe(1);
    clock.t += 1;
    await expect(calls.run('list', 'cloudkms.cryptoKeyVersions.list', denied)).resolves.toBeUndefined();
    expect(attempts).toBe(2);
    expect(warnings()).toHaveLength(1); // still one warning
    // Granted: works again, metric back to 0, issue cleared.
    clock.t += OPTIONAL_RETRY_MS;
    await expect(calls.run('list', 'p', async () => 'v7')).resolves.toBe('v7');
    expect(await gauge()).toBe(0);
    expect(calls.issues()).toEqual([]);
  });

  it('UNIMPLEMENTED (classified internal) counts as refused too', async () => {
    const { calls } = setup();
    await expect(
      calls.run('list', 'perm', async () => {
        throw new InternalError('gcp listCryptoKeyVersions: UNIMPLEMENTED');
      }),
    ).resolves.toBeUndefined();
    expect(calls.issues()).toHaveLength(1);
  });

  it('a transient failure is skipped this time only: not reported, retried on the next call', async () => {
    const { calls, gauge } = setup();
    let attempts = 0;
    const flaky = async (): Promise<string> => {
      attempts += 1;
      if (attempts === 1) throw new UnavailableError('blip');
      return 'ok';
    };
    await expect(calls.run('list', 'p', flaky)).resolves.toBeUndefined();
    expect(calls.issues()).toEqual([]);
    expect(await gauge()).toBeUndefined();
    await expect(calls.run('list', 'p', flaky)).resolves.toBe('ok');
  });
});
