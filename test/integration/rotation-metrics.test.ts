/**
 * Rotation observability, in process (startPlugin on a local key file, probes every 100 ms):
 * kms_plugin_key_id_info, kms_plugin_kek_rotations_total, kms_plugin_key_id_last_change_timestamp_seconds,
 * kms_plugin_decrypts_by_key_total{key="current"|"older"}, kms_plugin_kek_rollback_refusals_total and
 * kms_plugin_kek_rollback_active, and the health view's rollback note.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startPlugin, type PluginHandle } from '../../src/app/plugin.js';
import { keygen } from '../../src/cli/keygen.js';
import { rotateKeyFile } from '../../src/cli/rotate.js';
import { validateConfig } from '../../src/config/load.js';
import { timeoutSignal } from '../../src/deadline.js';
import { createLogger } from '../../src/observability/logger.js';
import { tempDir } from '../support/plugin-process.js';
import { setPrimary, sleep } from './rotation-support.js';

const dir = tempDir('kkp-rm-');
const handles: PluginHandle[] = [];
afterAll(async () => {
  await Promise.allSettled(handles.map((h) => h.close()));
  dir.cleanup();
});

async function start(keyFile: string): Promise<PluginHandle> {
  const config = validateConfig({
    listen: `unix:///@kkp-rm-${process.pid}-${handles.length}`,
    healthAddr: '',
    provider: 'local',
    local: { keyFile },
    probe: { interval: '100ms', jitter: 0 },
  });
  const h = await startPlugin(config, { logger: createLogger({ level: 'silent' }), waitForPrimeMs: 5000 });
  handles.push(h);
  return h;
}

async function value(
  h: PluginHandle,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const m = await h.metrics.registry.getSingleMetric(name)?.get();
  const hit = m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return hit?.value;
}

async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('rotation metrics', () => {
  it('key_id info, rotations, last change, decrypts by key age, rollback refusals', async () => {
    const keyFile = join(dir.path, 'kek.json');
    keygen(keyFile);
    const h = await start(keyFile);
    const a = h.envelope.currentKeyId()!;
    expect(await value(h, 'kms_plugin_key_id_info', { key_id: a, provider: 'local' })).toBe(1);
    expect(await value(h, 'kms_plugin_kek_rotations_total')).toBeUndefined();
    const primedAt = (await value(h, 'kms_plugin_key_id_last_change_timestamp_seconds'))!;
    expect(primedAt).toBeGreaterThan(Date.now() / 1000 - 60);

    const seedA = randomBytes(32);
    const underA = h.envelope.encrypt(seedA);
    await sleep(20);
    rotateKeyFile(keyFile);
    await waitFor(() => h.envelope.currentKeyId() !== a, 'the key_id switch');
    const b = h.envelope.currentKeyId()!;
    expect(await value(h, 'kms_plugin_kek_rotations_total', { provider: 'local' })).toBe(1);
    expect(await value(h, 'kms_plugin_key_id_info', { key_id: b })).toBe(1);
    expect(await value(h, 'kms_plugin_key_id_info', { key_id: a })).toBeUndefined(); // the old id is dropped
    expect(await value(h, 'kms_plugin_key_id_last_change_timestamp_seconds')).toBeGreaterThan(primedAt);

    const underB = h.envelope.encrypt(randomBytes(32));
    const decrypt = (r: typeof underA) =>
      h.envelope.decrypt(r.ciphertext, r.keyId, r.annotations, timeoutSignal(2000));
    expect(await decrypt(underA)).toEqual(seedA);
    await decrypt(underA);
    await decrypt(underB);
    expect(await value(h, 'kms_plugin_decrypts_by_key_total', { key: 'older' })).toBe(2);
    expect(await value(h, 'kms_plugin_decrypts_by_key_total', { key: 'current' })).toBe(1);

    // The primary goes back to version 1: refused, counted, flagged; key_id stays B.
    setPrimary(keyFile, 1);
    await waitFor(
      async () => ((await value(h, 'kms_plugin_kek_rollback_refusals_total')) ?? 0) >= 2,
      'rollback refusals',
    );
    expect(h.envelope.currentKeyId()).toBe(b);
    expect(await value(h, 'kms_plugin_kek_rollback_active', { provider: 'local' })).toBe(1);
    expect(h.watcher.snapshot().rollbackRefused).toMatchObject({ provider: 'local', version: '1' });
    expect(await value(h, 'kms_plugin_kek_rotations_total', { provider: 'local' })).toBe(1);

    // The operator moves forward (a new version): the flag clears and key_id switches once more.
    rotateKeyFile(keyFile);
    await waitFor(() => h.envelope.currentKeyId() !== b, 'the second switch');
    const c = h.envelope.currentKeyId()!;
    expect([a, b]).not.toContain(c);
    expect(await value(h, 'kms_plugin_kek_rollback_active', { provider: 'local' })).toBe(0);
    expect(h.watcher.snapshot().rollbackRefused).toBeUndefined();
    expect(await value(h, 'kms_plugin_kek_rotations_total', { provider: 'local' })).toBe(2);
  });

  it('a plugin started on a key file whose primary was moved back starts on the newest version and flags it', async () => {
    const keyFile = join(dir.path, 'kek-back.json');
    keygen(keyFile);
    rotateKeyFile(keyFile);
    const first = await start(keyFile);
    const b = first.envelope.currentKeyId()!;
    expect(first.envelope.currentVersion()?.ref.version).toBe('2');
    await first.close();

    setPrimary(keyFile, 1);
    const h = await start(keyFile);
    expect(h.envelope.currentKeyId()).toBe(b);
    expect(h.envelope.currentVersion()?.ref.version).toBe('2');
    expect(await value(h, 'kms_plugin_kek_rollback_active', { provider: 'local' })).toBe(1);
    expect(
      await value(h, 'kms_plugin_kek_rollback_refusals_total', { provider: 'local' }),
    ).toBeGreaterThanOrEqual(1);
    expect(h.watcher.snapshot().rollbackRefused).toMatchObject({ version: '1' });
  });
});
