/**
 * The pkcs11 provider against a real SoftHSM token (temp dir per run, via SOFTHSM2_CONF): round
 * trips with each wrapping scheme, the CKA_ID version scheme, rotation with `rotate`'s generator,
 * key states from the token (disabled, destroyed), the session pool and deadlines.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { pkcs11Schema, type Pkcs11ConfigInput } from '../../src/config/providers/pkcs11.js';
import { KeyStateReporter } from '../../src/health/kek-state.js';
import { createProvider, generateNextVersion } from '../../src/kek/pkcs11/index.js';
import type { Pkcs11Module } from '../../src/kek/pkcs11/module.js';
import type { Pkcs11Provider } from '../../src/kek/pkcs11/provider.js';
import { Metrics } from '../../src/observability/metrics.js';
import { captureLogger } from '../fakes/vault-transit/harness.js';
import { SOFTHSM_MODULE, SoftHsm, describeSoftHsm, findKeyObject, onToken } from '../support/softhsm.js';

const sig = (ms = 10_000): AbortSignal => AbortSignal.timeout(ms);

describeSoftHsm('pkcs11 provider on SoftHSM', () => {
  let hsm: SoftHsm;
  let token: { label: string; pin: string; pinFile: string };
  const logs = captureLogger();
  const metrics = new Metrics({ processMetrics: false });
  const providers: Pkcs11Provider[] = [];

  const config = (over: Partial<Pkcs11ConfigInput> = {}) =>
    pkcs11Schema.parse({
      modulePath: SOFTHSM_MODULE,
      tokenLabel: token.label,
      pinFile: token.pinFile,
      keyLabel: 'kek',
      ...over,
    });
  const provider = async (over: Partial<Pkcs11ConfigInput> = {}): Promise<Pkcs11Provider> => {
    const p = (await createProvider(
      config(over),
      { logger: logs.logger, metrics, role: 'primary' },
      {
        retry: { maxAttempts: 3, baseBackoffMs: 5 },
      },
    )) as Pkcs11Provider;
    providers.push(p);
    return p;
  };
  const withToken = <T>(fn: (m: Pkcs11Module, s: Buffer) => T): Promise<T> =>
    onToken(token.label, token.pin, fn);
  const findKey = findKeyObject;

  beforeAll(async () => {
    hsm = await new SoftHsm().activate();
    token = hsm.initToken('kms-unit');
    hsm.aesKey(token.label, token.pin, 'kek', 1); // version 1, made with pkcs11-tool as documented
  });
  afterAll(async () => {
    for (const p of providers) await p.close();
    hsm.cleanup();
  });

  test('a pkcs11-tool key is version 1: enabled, AES-GCM round trip, wrapped bytes hide the DEK', async () => {
    const p = await provider();
    const v = await p.currentVersion(sig());
    expect(v.state).toBe('enabled');
    expect(v.ordinal).toBe(1);
    expect(v.ref).toMatchObject({
      provider: 'pkcs11',
      key: 'pkcs11:token=kms-unit;object=kek',
      version: '1',
    });
    expect(v.ref.unique).toMatch(/^[0-9a-f]{6}$/); // CKA_CHECK_VALUE
    const dek = randomBytes(32);
    const { wrapped, ref } = await p.wrap(dek, v, sig());
    expect(wrapped[0]).toBe(1); // AES-GCM tag
    expect(wrapped.length).toBe(1 + 12 + 32 + 16);
    expect(wrapped.includes(dek.subarray(0, 8))).toBe(false);
    expect(await p.unwrap(wrapped, ref, sig())).toEqual(dek);
    // Bound to the version: the same bytes under another version's ref do not authenticate.
    const tampered = Buffer.from(wrapped);
    tampered[20] ^= 1;
    await expect(p.unwrap(tampered, ref, sig())).rejects.toMatchObject({ kind: 'unauthenticated' });
    await expect(p.unwrap(wrapped.subarray(0, 10), ref, sig())).rejects.toMatchObject({
      kind: 'unauthenticated',
    });
  });

  test('rotate generates the next non-extractable version; the watcher sees it, old DEKs still unwrap', async () => {
    const p = await provider();
    const v1 = await p.currentVersion(sig());
    const dek = randomBytes(32);
    const w1 = await p.wrap(dek, v1, sig());
    const g = await generateNextVersion(config(), logs.logger);
    expect(g).toMatchObject({ version: 2, id: '00000002', family: 'aes', versions: [1, 2] });
    const v2 = await p.currentVersion(sig());
    expect(v2.ordinal).toBe(2);
    expect(v2.ref.version).toBe('2');
    expect((await p.newestVersion(sig()))?.ref.version).toBe('2');
    expect(await p.unwrap(w1.wrapped, w1.ref, sig())).toEqual(dek);
    const w2 = await p.wrap(dek, v2, sig());
    expect(await p.unwrap(w2.wrapped, w2.ref, sig())).toEqual(dek);
    // the new object is sensitive and never extractable
    await withToken((m, s) => {
      const h = findKey(m, s, 'kek', 2);
      const [sens, ext] = m.lib.C_GetAttributeValue(s, h, [
        { type: m.api.CKA_SENSITIVE },
        { type: m.api.CKA_EXTRACTABLE },
      ]);
      expect((sens.value as Buffer)[0]).toBe(1);
      expect((ext.value as Buffer)[0]).toBe(0);
    });
    // A wrong version in the ref fails (AAD binds it)
    await expect(
      p.unwrap(w1.wrapped, { ...w1.ref, version: '2', unique: v2.ref.unique }, sig()),
    ).rejects.toMatchObject({
      kind: 'unauthenticated',
    });
  });

  test('AES key wrap with padding (forced) round trips', async () => {
    const p = await provider({ mechanism: 'aes-kwp' });
    const v = await p.currentVersion(sig());
    const dek = randomBytes(32);
    const { wrapped, ref } = await p.wrap(dek, v, sig());
    expect([2, 3]).toContain(wrapped[0]);
    expect(wrapped.includes(dek.subarray(0, 8))).toBe(false);
    expect(await p.unwrap(wrapped, ref, sig())).toEqual(dek);
    const bad = Buffer.from(wrapped);
    bad[5] ^= 0x40;
    await expect(p.unwrap(bad, ref, sig())).rejects.toMatchObject({ kind: 'unauthenticated' });
    // A provider preferring GCM still unwraps the KWP DEK (the tag names the scheme).
    const gcm = await provider();
    expect(await gcm.unwrap(wrapped, ref, sig())).toEqual(dek);
  });

  test('RSA-OAEP fallback: rotate makes an RSA pair when asked, wrap/unwrap through it', async () => {
    const cfg = config({ keyLabel: 'rsa-kek', mechanism: 'rsa-oaep' });
    const g = await generateNextVersion(cfg, logs.logger);
    expect(g).toMatchObject({ version: 1, family: 'rsa' });
    const p = await provider({ keyLabel: 'rsa-kek', mechanism: 'rsa-oaep' });
    const v = await p.currentVersion(sig());
    expect(v.state).toBe('enabled');
    const dek = randomBytes(32);
    const { wrapped, ref } = await p.wrap(dek, v, sig());
    expect([4, 5]).toContain(wrapped[0]); // OAEP SHA-256, or SHA-1 where SoftHSM offers only that
    expect(wrapped.length).toBe(1 + 384);
    expect(await p.unwrap(wrapped, ref, sig())).toEqual(dek);
    const auto = await provider({ keyLabel: 'rsa-kek' });
    expect(await auto.unwrap(wrapped, ref, sig())).toEqual(dek);
  });

  test('CKA_DECRYPT false → disabled (wrap refused); object deleted → destroyed (unwrap fails closed)', async () => {
    hsm.aesKey(token.label, token.pin, 'state-kek', 1);
    const p = await provider({ keyLabel: 'state-kek' });
    const v = await p.currentVersion(sig());
    expect(v.state).toBe('enabled');
    const dek = randomBytes(32);
    const w = await p.wrap(dek, v, sig());
    await withToken((m, s) =>
      m.lib.C_SetAttributeValue(s, findKey(m, s, 'state-kek', 1), [
        { type: m.api.CKA_DECRYPT, value: false },
      ]),
    );
    const d = await p.currentVersion(sig());
    expect(d.state).toBe('disabled');
    expect(d.detail).toContain('CKA_DECRYPT');
    await expect(p.wrap(dek, d, sig())).rejects.toMatchObject({ kind: 'key_disabled' });
    await expect(p.newestVersion(sig())).resolves.toBeUndefined();
    await withToken((m, s) => m.lib.C_DestroyObject(s, findKey(m, s, 'state-kek', 1)));
    const gone = await p.currentVersion(sig());
    // The provider returns the state; the one key-state owner writes the metric (src/health/kek-state.ts).
    new KeyStateReporter({ logger: logs.logger, metrics, role: 'primary' }).report(gone);
    expect(gone.state).toBe('destroyed');
    expect(gone.detail).toContain('state-kek');
    await expect(p.unwrap(w.wrapped, w.ref, sig())).rejects.toMatchObject({ kind: 'unknown_key' });
    const text = (await metrics.registry.metrics()).split('\n');
    expect(text).toContain('kms_plugin_kek_state{provider="pkcs11",role="primary",state="destroyed"} 1');
  });

  test('bounded pool: 16 unwraps in flight over 2 sessions all succeed; an expired deadline rejects', async () => {
    const p = await provider({ concurrency: 2 });
    const v = await p.currentVersion(sig());
    const deks = Array.from({ length: 16 }, () => randomBytes(32));
    const wrapped = await Promise.all(deks.map((d) => p.wrap(d, v, sig())));
    const back = await Promise.all(wrapped.map((w) => p.unwrap(w.wrapped, w.ref, sig())));
    expect(back).toEqual(deks);
    await expect(p.unwrap(wrapped[0].wrapped, wrapped[0].ref, AbortSignal.timeout(0))).rejects.toMatchObject({
      kind: expect.stringMatching(/deadline|cancelled/),
    });
  });

  test('refs for another key or provider are refused without touching the token', async () => {
    const p = await provider();
    const v = await p.currentVersion(sig());
    expect(p.canUnwrap({ ...v.ref, key: 'pkcs11:token=other;object=kek' })).toBe(false);
    expect(p.canUnwrap({ ...v.ref, provider: 'local' })).toBe(false);
    expect(p.canUnwrap({ ...v.ref, version: '0' })).toBe(false);
    // The foreign-reference check shared by every provider (src/kek/ownership.ts).
    await expect(
      p.wrap(Buffer.alloc(32), { ...v, ref: { ...v.ref, key: 'pkcs11:token=other;object=kek' } }, sig()),
    ).rejects.toMatchObject({ kind: 'invalid_input', name: 'ForeignWrapRefError' });
    await expect(p.unwrap(Buffer.alloc(40), { ...v.ref, key: 'x' }, sig())).rejects.toMatchObject({
      kind: 'unknown_key',
    });
  });

  test('logs and metrics never carry the PIN', async () => {
    const all = logs.lines.join('\n') + (await metrics.registry.metrics());
    expect(all).not.toContain(token.pin);
  });
});

describe('pkcs11 CKA_ID version scheme', () => {
  test('4-byte big-endian ids round trip; other shapes are not versions', async () => {
    const { versionId, parseVersionId } = await import('../../src/kek/pkcs11/keys.js');
    expect(versionId(1).toString('hex')).toBe('00000001');
    expect(versionId(258).toString('hex')).toBe('00000102');
    expect(parseVersionId(Buffer.from('0000002a', 'hex'))).toBe(42);
    expect(parseVersionId(Buffer.from('00000000', 'hex'))).toBeUndefined();
    expect(parseVersionId(Buffer.from('01', 'hex'))).toBeUndefined();
    expect(parseVersionId(undefined)).toBeUndefined();
    expect(() => versionId(0)).toThrow(RangeError);
  });
});
