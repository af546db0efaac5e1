/**
 * The gcp provider with the real @google-cloud/kms SDK against the local gRPC fake.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { timeoutSignal } from '../../src/deadline.js';
import { PluginError } from '../../src/errors.js';
import { KeyStateReporter } from '../../src/health/kek-state.js';
import { createLogger } from '../../src/observability/logger.js';
import type { KeyVersionInfo } from '../../src/kek/types.js';
import { FakeGcpKms } from '../fakes/gcp-kms/server.js';
import { TEST_KEY, providerFor, startFakeWithKey, type ProviderHandle } from '../fakes/gcp-kms/harness.js';

const deadline = (ms = 3000): AbortSignal => timeoutSignal(ms);

async function rejection(p: Promise<unknown>): Promise<PluginError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PluginError);
    return err as PluginError;
  }
  throw new Error('expected a rejection');
}

async function stateGauge(h: ProviderHandle): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await h.metrics.kekState.get()).values) out[String(v.labels.state)] = v.value;
  return out;
}

/** A probe as the rotation watcher runs it: the provider returns the state, the one owner reports it. */
const owners = new WeakMap<ProviderHandle, KeyStateReporter>();
async function probe(h: ProviderHandle): Promise<KeyVersionInfo> {
  let owner = owners.get(h);
  if (!owner) {
    const logger = createLogger({
      level: 'debug',
      destination: { write: (l: string) => void h.logs.push(l) },
    });
    owner = new KeyStateReporter({ logger, metrics: h.metrics, role: 'primary' });
    owners.set(h, owner);
  }
  const info = await h.provider.currentVersion(deadline());
  owner.report(info);
  return info;
}

let fake: FakeGcpKms;
const handles: ProviderHandle[] = [];

async function provider(overrides: Record<string, unknown> = {}): Promise<ProviderHandle> {
  const h = await providerFor(fake, overrides);
  handles.push(h);
  return h;
}

beforeEach(async () => {
  fake = await startFakeWithKey();
});

afterEach(async () => {
  for (const h of handles.splice(0)) await h.provider.close();
  await fake.close();
});

describe('gcp provider: round trip and references', () => {
  it('wraps with the primary version and unwraps, with checksums and AAD on every call', async () => {
    const { provider: p } = await provider();
    const info = await p.currentVersion(deadline());
    const primary = fake.primary(TEST_KEY)!;
    expect(info.state).toBe('enabled');
    expect(info.ordinal).toBe(1);
    expect(info.ref).toEqual({
      provider: 'gcp',
      key: TEST_KEY,
      version: '1',
      unique: expect.stringMatching(/^created=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z;aad=[0-9a-f]{16}$/),
    });
    expect(info.ref.unique).toContain(`.${String(primary.createTime.nanos).padStart(9, '0')}Z;`);

    const dek = randomBytes(32);
    const { wrapped, ref } = await p.wrap(dek, info, deadline());
    expect(ref).toEqual(info.ref);
    expect(wrapped.includes(dek)).toBe(false);
    const enc = fake.callsTo('encrypt');
    expect(enc).toHaveLength(1);
    expect(enc[0].name).toBe(`${TEST_KEY}/cryptoKeyVersions/1`); // the explicit version, not the CryptoKey
    expect(enc[0].code).toBe(0);

    const back = await p.unwrap(wrapped, ref, deadline());
    expect(back.equals(dek)).toBe(true);
    expect(fake.callsTo('decrypt')[0].name).toBe(TEST_KEY); // Decrypt takes the CryptoKey name
  });

  it('gives every replica and every restart the same reference for the same version', async () => {
    const a = await (await provider()).provider.currentVersion(deadline());
    const b = await (await provider()).provider.currentVersion(deadline());
    const again = await handles[0].provider.currentVersion(deadline());
    expect(b).toEqual(a);
    expect(again).toEqual(a);
  });

  it('binds the configured AAD: another gcp.aad is another key_id, and Cloud KMS refuses the wrong AAD', async () => {
    const { provider: writer } = await provider({ aad: 'cluster-a' });
    const { provider: other } = await provider({ aad: 'cluster-b' });
    const info = await writer.currentVersion(deadline());
    const otherInfo = await other.currentVersion(deadline());
    expect(otherInfo.ref.version).toBe(info.ref.version);
    expect(otherInfo.ref.unique).not.toBe(info.ref.unique); // so key_id differs
    const dek = randomBytes(32);
    const { wrapped, ref } = await writer.wrap(dek, info, deadline());
    // Routing: only a provider with the same AAD claims the ref (a decryptOnly entry keeps the old AAD).
    expect(writer.canUnwrap(ref)).toBe(true);
    expect(other.canUnwrap(ref)).toBe(false);
    expect((await rejection(other.unwrap(wrapped, ref, deadline()))).kind).toBe('unknown_key');
    expect(fake.callsTo('decrypt')).toHaveLength(0);
    // Even if the routing were bypassed, Cloud KMS authenticates the AAD: fail closed, not retried.
    const forged = { ...ref, unique: otherInfo.ref.unique };
    expect((await rejection(other.unwrap(wrapped, forged, deadline()))).kind).toBe('unauthenticated');
    expect(fake.callsTo('decrypt')).toHaveLength(1);
    expect((await writer.unwrap(wrapped, ref, deadline())).equals(dek)).toBe(true);
  });

  it('refuses refs for another key or provider without calling Cloud KMS', async () => {
    const { provider: p } = await provider();
    const info = await p.currentVersion(deadline());
    const foreign = { ...info.ref, key: `${TEST_KEY}-other` };
    expect(p.canUnwrap(info.ref)).toBe(true);
    expect(p.canUnwrap(foreign)).toBe(false);
    expect(p.canUnwrap({ ...info.ref, provider: 'aws' })).toBe(false);
    expect((await rejection(p.unwrap(Buffer.alloc(40), foreign, deadline()))).kind).toBe('unknown_key');
    // A foreign version on wrap is a wrong argument (src/kek/ownership.ts): INVALID_ARGUMENT under
    // every provider (was unknown_key here, issue 14).
    expect((await rejection(p.wrap(randomBytes(32), { ...info, ref: foreign }, deadline()))).kind).toBe(
      'invalid_input',
    );
    expect(fake.callsTo('decrypt')).toHaveLength(0);
    expect(fake.callsTo('encrypt')).toHaveLength(0);
  });

  it('sends a gRPC deadline on every call, capped by gcp.attemptTimeout and the caller', async () => {
    const { provider: p } = await provider({ attemptTimeout: '1500ms' });
    const info = await p.currentVersion(deadline(5000));
    await p.wrap(randomBytes(32), info, deadline(400));
    const [get, enc] = fake.calls;
    expect(get.deadlineMs! - get.at).toBeLessThanOrEqual(1500);
    expect(get.deadlineMs! - get.at).toBeGreaterThan(1000);
    expect(enc.deadlineMs! - enc.at).toBeLessThanOrEqual(400);
  });
});

describe('gcp provider: rotation', () => {
  it('a primary change gives a new reference, wraps use the exact version, old data still decrypts', async () => {
    const { provider: p } = await provider();
    const v1 = await p.currentVersion(deadline());
    const dek1 = randomBytes(32);
    const w1 = await p.wrap(dek1, v1, deadline());

    fake.addVersion(TEST_KEY, { primary: true });
    const v2 = await p.currentVersion(deadline());
    expect(v2.ref.version).toBe('2');
    expect(v2.ordinal).toBeGreaterThan(v1.ordinal);
    expect(v2.ref.unique).not.toBe(v1.ref.unique);
    expect(v2.ref.key).toBe(v1.ref.key);

    // Wrapping with the adopted (older) info still uses version 1, whatever the primary is now.
    const again = await p.wrap(randomBytes(32), v1, deadline());
    expect(again.ref.version).toBe('1');
    expect(fake.callsTo('encrypt').at(-1)!.name).toBe(`${TEST_KEY}/cryptoKeyVersions/1`);

    const dek2 = randomBytes(32);
    const w2 = await p.wrap(dek2, v2, deadline());
    expect(fake.callsTo('encrypt').at(-1)!.name).toBe(`${TEST_KEY}/cryptoKeyVersions/2`);
    expect((await p.unwrap(w1.wrapped, w1.ref, deadline())).equals(dek1)).toBe(true);
    expect((await p.unwrap(w2.wrapped, w2.ref, deadline())).equals(dek2)).toBe(true);
  });

  it('follows changes made through the Cloud KMS management RPCs (real SDK client)', async () => {
    const { KeyManagementServiceClient } = await import('@google-cloud/kms');
    const grpc = await import('@grpc/grpc-js');
    const { OAuth2Client } = await import('google-auth-library');
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'admin', expiry_date: Date.now() + 3600e3 });
    const admin = new KeyManagementServiceClient({
      apiEndpoint: '127.0.0.1',
      port: fake.port,
      sslCreds: grpc.credentials.createInsecure(),
      authClient: auth as never,
    });
    try {
      const { provider: p } = await provider();
      const [created] = await admin.createCryptoKeyVersion(
        { parent: TEST_KEY, cryptoKeyVersion: {} },
        { timeout: 2000 },
      );
      expect(created.name).toBe(`${TEST_KEY}/cryptoKeyVersions/2`);
      expect((await p.currentVersion(deadline())).ref.version).toBe('1');
      await admin.updateCryptoKeyPrimaryVersion(
        { name: TEST_KEY, cryptoKeyVersionId: '2' },
        { timeout: 2000 },
      );
      expect((await p.currentVersion(deadline())).ref.version).toBe('2');
      await admin.destroyCryptoKeyVersion({ name: created.name }, { timeout: 2000 });
      const info = await p.currentVersion(deadline());
      expect(info.state).toBe('pending_deletion');
      await admin.restoreCryptoKeyVersion({ name: created.name }, { timeout: 2000 });
      expect((await p.currentVersion(deadline())).state).toBe('disabled');
    } finally {
      await admin.close();
    }
  });
});

describe('gcp provider: newest enabled version (rollback guard)', () => {
  it('finds the highest ENABLED version whether or not it is primary, with the same ref shape as currentVersion', async () => {
    const { provider: p } = await provider();
    const newestOf = (): Promise<KeyVersionInfo | undefined> => p.newestVersion!(deadline());
    expect(await newestOf()).toEqual(await p.currentVersion(deadline()));

    fake.addVersion(TEST_KEY, { primary: true }); // 2
    const v2 = await p.currentVersion(deadline());
    expect(await newestOf()).toEqual(v2);

    fake.setPrimary(TEST_KEY, 1); // the primary moved back
    fake.addVersion(TEST_KEY, { state: 'DISABLED' }); // 3, not usable
    expect((await p.currentVersion(deadline())).ref.version).toBe('1');
    expect(await newestOf()).toEqual(v2);
    const list = fake.callsTo('listCryptoKeyVersions').at(-1)!;
    expect(list.name).toBe(TEST_KEY);
  });

  it('pages through more than one page of versions', async () => {
    for (let i = 0; i < 1004; i++) fake.addVersion(TEST_KEY);
    const { provider: p } = await provider();
    const newest = await p.newestVersion!(deadline(5000));
    expect(newest?.ref.version).toBe('1005');
    expect(newest?.ordinal).toBe(1005);
    expect(fake.callsTo('listCryptoKeyVersions')).toHaveLength(2);
  });

  it('is undefined when no version is enabled', async () => {
    fake.disableVersion(TEST_KEY, 1);
    const { provider: p } = await provider();
    expect(await p.newestVersion!(deadline())).toBeUndefined();
  });

  it.each(['permission_denied', 'unimplemented'] as const)(
    'a %s list is optional: undefined, one warning naming cloudkms.cryptoKeyVersions.list, a metric, an issue for /healthz (issue 12.4)',
    async (kind) => {
      const h = await provider();
      fake.injectFault({ kind, method: 'listCryptoKeyVersions' });
      expect(await h.provider.newestVersion!(deadline())).toBeUndefined();
      expect(await h.provider.newestVersion!(deadline())).toBeUndefined();
      expect(fake.callsTo('listCryptoKeyVersions')).toHaveLength(1); // not retried on every probe
      const warns = h.logs.filter(
        (l) => l.includes('"level":"warn"') && l.includes('cloudkms.cryptoKeyVersions.list'),
      );
      expect(warns).toHaveLength(1);
      const gauge = (await h.metrics.optionalCallUnavailable.get()).values.find(
        (v) => v.labels.call === 'listCryptoKeyVersions',
      );
      expect(gauge?.value).toBe(1);
      expect(h.provider.optionalIssues?.()).toEqual([
        expect.objectContaining({
          call: 'listCryptoKeyVersions',
          permission: 'cloudkms.cryptoKeyVersions.list',
        }),
      ]);
    },
  );
});

describe('gcp provider: version states', () => {
  it('a disabled primary is reported loudly (state, detail, metric, error log) and not used', async () => {
    const h = await provider();
    const enabled = await probe(h);
    expect((await stateGauge(h)).enabled).toBe(1);

    fake.disableVersion(TEST_KEY, 1);
    const info = await probe(h);
    expect(info.state).toBe('disabled');
    expect(info.detail).toMatch(/DISABLED/);
    const gauge = await stateGauge(h);
    expect(gauge.disabled).toBe(1);
    expect(gauge.enabled).toBe(0);
    const errorLines = h.logs
      .map((l) => JSON.parse(l) as { level: string; msg: string })
      .filter((l) => l.level === 'error');
    expect(errorLines.some((l) => /not usable/.test(l.msg))).toBe(true);

    // Not used for new DEKs: refused locally with the disabled info...
    const before = fake.callsTo('encrypt').length;
    expect((await rejection(h.provider.wrap(randomBytes(32), info, deadline()))).kind).toBe('key_disabled');
    expect(fake.callsTo('encrypt').length).toBe(before);
    // ...and if an older "enabled" view is used, Cloud KMS's FAILED_PRECONDITION is key_disabled, not retried.
    expect((await rejection(h.provider.wrap(randomBytes(32), enabled, deadline()))).kind).toBe(
      'key_disabled',
    );
    expect(fake.callsTo('encrypt').length).toBe(before + 1);
  });

  it('a destroy-scheduled primary is pending_deletion with the destruction time; its data no longer decrypts', async () => {
    const h = await provider();
    const v1 = await probe(h);
    const w = await h.provider.wrap(randomBytes(32), v1, deadline());
    fake.scheduleDestroy(TEST_KEY, 1);
    const info = await probe(h);
    expect(info.state).toBe('pending_deletion');
    expect(info.detail).toMatch(/scheduled for destruction at \d{4}-/);
    expect((await stateGauge(h)).pending_deletion).toBe(1);
    expect((await rejection(h.provider.unwrap(w.wrapped, w.ref, deadline()))).kind).toBe('key_disabled');
  });

  it('a key without a primary version is key_disabled', async () => {
    const other = 'projects/test-project/locations/global/keyRings/k8s/cryptoKeys/empty';
    fake.createKey(other, { withVersion: false });
    const { provider: p } = await provider({ keyName: other });
    const err = await rejection(p.currentVersion(deadline()));
    expect(err.kind).toBe('key_disabled');
    expect(err.message).toMatch(/no primary version/);
  });

  it('a missing key is unknown_key and a non-ENCRYPT_DECRYPT key is refused', async () => {
    const { provider: missing } = await provider({
      keyName: 'projects/test-project/locations/global/keyRings/k8s/cryptoKeys/nope',
    });
    expect((await rejection(missing.currentVersion(deadline()))).kind).toBe('unknown_key');
    const mac = 'projects/test-project/locations/global/keyRings/k8s/cryptoKeys/mac';
    fake.createKey(mac, { purpose: 'MAC' });
    const { provider: p } = await provider({ keyName: mac });
    const err = await rejection(p.currentVersion(deadline()));
    expect(err.kind).toBe('invalid_input');
    expect(err.message).toMatch(/ENCRYPT_DECRYPT/);
  });
});

describe('gcp provider: CRC32C integrity fails closed', () => {
  it('a corrupted ciphertext checksum in every Encrypt response is corrupt, after bounded retries', async () => {
    const { provider: p } = await provider({ maxAttempts: 3 });
    const info = await p.currentVersion(deadline());
    fake.injectFault({ kind: 'corrupt_checksum', method: 'encrypt' });
    const err = await rejection(p.wrap(randomBytes(32), info, deadline()));
    expect(err.kind).toBe('corrupt');
    expect(err.message).toMatch(/ciphertextCrc32c/);
    expect(fake.callsTo('encrypt')).toHaveLength(3);
  });

  it('one damaged response is retried (Google procedure) and the verified result is returned', async () => {
    const { provider: p } = await provider();
    const info = await p.currentVersion(deadline());
    fake.injectFault({ kind: 'corrupt_ciphertext', method: 'encrypt', times: 1 });
    const dek = randomBytes(32);
    const w = await p.wrap(dek, info, deadline());
    expect(fake.callsTo('encrypt')).toHaveLength(2);
    expect((await p.unwrap(w.wrapped, w.ref, deadline())).equals(dek)).toBe(true);
  });

  it('a corrupted plaintext checksum in Decrypt responses is corrupt and no plaintext is returned', async () => {
    const { provider: p } = await provider({ maxAttempts: 2 });
    const info = await p.currentVersion(deadline());
    const w = await p.wrap(randomBytes(32), info, deadline());
    fake.injectFault({ kind: 'corrupt_checksum', method: 'decrypt' });
    const err = await rejection(p.unwrap(w.wrapped, w.ref, deadline()));
    expect(err.kind).toBe('corrupt');
    expect(err.message).toMatch(/plaintextCrc32c/);
    expect(fake.callsTo('decrypt')).toHaveLength(2);
  });

  it('an Encrypt response that does not confirm our checksums is corrupt', async () => {
    const { provider: p } = await provider({ maxAttempts: 1 });
    const info = await p.currentVersion(deadline());
    fake.injectFault({ kind: 'unverified_checksum', method: 'encrypt' });
    const err = await rejection(p.wrap(randomBytes(32), info, deadline()));
    expect(err.kind).toBe('corrupt');
    expect(err.message).toMatch(/verifiedPlaintextCrc32c/);
  });

  it('an Encrypt response naming another version is refused and not retried', async () => {
    const { provider: p } = await provider();
    const info = await p.currentVersion(deadline());
    fake.injectFault({ kind: 'wrong_version', method: 'encrypt' });
    const err = await rejection(p.wrap(randomBytes(32), info, deadline()));
    expect(err.kind).toBe('corrupt');
    expect(err.message).toMatch(/cryptoKeyVersions\/101/);
    expect(fake.callsTo('encrypt')).toHaveLength(1);
  });

  it('a damaged wrapped DEK fails authentication at Cloud KMS and is not retried', async () => {
    const { provider: p } = await provider();
    const info = await p.currentVersion(deadline());
    const w = await p.wrap(randomBytes(32), info, deadline());
    const damaged = Buffer.from(w.wrapped);
    damaged[damaged.length - 3] ^= 0x40;
    const err = await rejection(p.unwrap(damaged, w.ref, deadline()));
    expect(err.kind).toBe('unauthenticated');
    expect(fake.callsTo('decrypt')).toHaveLength(1);
  });
});

describe('gcp provider: faults and deadlines', () => {
  it('retries UNAVAILABLE and RESOURCE_EXHAUSTED within the deadline, with no SDK retries underneath', async () => {
    const { provider: p, metrics } = await provider();
    fake.injectFault({ kind: 'unavailable', method: 'getCryptoKey', times: 2 });
    fake.injectFault({ kind: 'resource_exhausted', method: 'getCryptoKey', times: 1 });
    const info = await p.currentVersion(deadline());
    expect(info.state).toBe('enabled');
    // Exactly one RPC per RemoteCaller attempt: 3 failures + 1 success.
    expect(fake.callsTo('getCryptoKey').map((c) => c.code)).toEqual([14, 14, 8, 0]);
    const retries = (await metrics.remoteRetries.get()).values.find(
      (v) => v.labels.operation === 'getCryptoKey',
    );
    expect(retries?.value).toBe(3);
  });

  it('one attempt means one RPC: google-gax does not retry UNAVAILABLE on its own', async () => {
    const { provider: p } = await provider({ maxAttempts: 1 });
    fake.injectFault({ kind: 'unavailable', method: 'getCryptoKey' });
    const started = Date.now();
    const err = await rejection(p.currentVersion(deadline(5000)));
    expect(err.kind).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 300)); // a gax retry would show up here
    expect(fake.callsTo('getCryptoKey')).toHaveLength(1);
  });

  it('PERMISSION_DENIED is permission_denied at once, with a hint about the role', async () => {
    const { provider: p } = await provider();
    fake.injectFault({ kind: 'permission_denied', method: 'getCryptoKey' });
    const err = await rejection(p.currentVersion(deadline()));
    expect(err.kind).toBe('permission_denied');
    expect(err.message).toMatch(/cryptoKeyEncrypterDecrypter/);
    expect(fake.callsTo('getCryptoKey')).toHaveLength(1);
  });

  it('persistent UNAVAILABLE ends by the caller deadline, not the SDK 600 s budget', async () => {
    const { provider: p } = await provider({ maxAttempts: 10 });
    const info = await p.currentVersion(deadline());
    fake.injectFault({ kind: 'unavailable', method: 'encrypt' });
    const started = Date.now();
    const err = await rejection(p.wrap(randomBytes(32), info, deadline(600)));
    const took = Date.now() - started;
    expect(['unavailable', 'deadline']).toContain(err.kind);
    expect(took).toBeLessThan(1000); // the SDK's own budget would be 600 s
    expect(fake.callsTo('encrypt').length).toBeGreaterThan(1);
  });

  it('a hanging Cloud KMS is cut off at the per-call timeout and retried inside the deadline', async () => {
    const { provider: p } = await provider({ attemptTimeout: '300ms' });
    const info = await p.currentVersion(deadline());
    fake.injectFault({ kind: 'hang', method: 'encrypt', times: 1 });
    const started = Date.now();
    const w = await p.wrap(randomBytes(32), info, deadline(2000));
    const took = Date.now() - started;
    expect(w.wrapped.length).toBeGreaterThan(0);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1500);
    expect(fake.callsTo('encrypt')).toHaveLength(2);
  });

  it('a hang past the caller deadline fails by the deadline', async () => {
    const { provider: p } = await provider();
    const info = await p.currentVersion(deadline());
    fake.injectFault({ kind: 'hang', method: 'encrypt' });
    const started = Date.now();
    const err = await rejection(p.wrap(randomBytes(32), info, deadline(500)));
    const took = Date.now() - started;
    expect(['deadline', 'unavailable']).toContain(err.kind);
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1200); // gcp.attemptTimeout (2 s) would be the bound if the deadline were ignored
  });

  it('a caller that goes away cancels the RPC', async () => {
    const { provider: p } = await provider();
    const info = await p.currentVersion(deadline());
    fake.injectFault({ kind: 'hang', method: 'encrypt' });
    const controller = new AbortController();
    const pending = p.wrap(randomBytes(32), info, controller.signal);
    await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    const started = Date.now();
    const err = await rejection(pending);
    expect(err.kind).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(500);
    // The server saw the call end (cancelled), so it is no longer hanging.
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.callsTo('encrypt').at(-1)!.code).toBe(14);
  });
});

describe('gcp provider: no secrets in errors or logs', () => {
  it('keeps DEKs, wrapped DEKs, AAD-adjacent data and tokens out of messages and log lines', async () => {
    const h = await provider();
    const p = h.provider;
    const info = await p.currentVersion(deadline());
    const dek = randomBytes(32);
    const w = await p.wrap(dek, info, deadline());
    const errors: PluginError[] = [];
    const attempt = async (fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        errors.push(err as PluginError);
      }
    };
    fake.injectFault({ kind: 'corrupt_checksum', method: 'decrypt', times: 10 });
    await attempt(() => p.unwrap(w.wrapped, w.ref, deadline()));
    fake.clearFaults();
    fake.injectFault({
      kind: 'permission_denied',
      details: 'denied for Bearer ya29.a0AfH6SMBsecretsecret and access_token=ya29.zzzsecret',
    });
    await attempt(() => p.wrap(dek, info, deadline()));
    await attempt(() => p.unwrap(w.wrapped, w.ref, deadline()));
    fake.clearFaults();
    fake.disableVersion(TEST_KEY, 1);
    await attempt(() => p.unwrap(w.wrapped, w.ref, deadline()));
    await p.currentVersion(deadline());
    expect(errors.length).toBe(4);

    const secrets = [dek, w.wrapped].flatMap((b) => [
      b.toString('hex'),
      b.toString('base64'),
      b.toString('base64url'),
    ]);
    secrets.push('ya29.a0AfH6SMBsecretsecret', 'ya29.zzzsecret', 'insecure-test-mode');
    const texts = [
      ...errors.map((e) => `${e.message} ${String((e as { cause?: unknown }).cause ?? '')}`),
      ...h.logs,
    ];
    expect(texts.join('\n')).toMatch(/permission_denied|PERMISSION_DENIED/);
    for (const text of texts) for (const s of secrets) expect(text).not.toContain(s);
  });

  it('bypasses the SDK request logging (GOOGLE_SDK_NODE_LOGGING), which would print plaintext DEKs', async () => {
    const captured: string[] = [];
    const capture = (...args: unknown[]): void => void captured.push(args.map((a) => String(a)).join(' '));
    const spies = [
      jest.spyOn(console, 'error').mockImplementation(capture),
      jest.spyOn(console, 'log').mockImplementation(capture),
    ];
    const saved = process.env.GOOGLE_SDK_NODE_LOGGING;
    process.env.GOOGLE_SDK_NODE_LOGGING = 'kms';
    const { KeyManagementServiceClient } = await import('@google-cloud/kms');
    const grpc = await import('@grpc/grpc-js');
    const { OAuth2Client } = await import('google-auth-library');
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'x', expiry_date: Date.now() + 3600e3 });
    const raw = new KeyManagementServiceClient({
      apiEndpoint: '127.0.0.1',
      port: fake.port,
      sslCreds: grpc.credentials.createInsecure(),
      authClient: auth as never,
    });
    let own: ProviderHandle | undefined;
    try {
      const asJson = (b: Buffer): string => JSON.stringify([...b]).slice(1, -1);
      // Control: the public client method does log the request, plaintext included.
      const control = randomBytes(32);
      await raw.encrypt({ name: TEST_KEY, plaintext: control }, { timeout: 2000 });
      expect(captured.join('\n')).toContain(asJson(control));
      // The provider's calls do not.
      own = await providerFor(fake);
      const p = own.provider;
      const info = await p.currentVersion(deadline());
      const dek = randomBytes(32);
      const w = await p.wrap(dek, info, deadline());
      expect((await p.unwrap(w.wrapped, w.ref, deadline())).equals(dek)).toBe(true);
      const text = captured.join('\n');
      for (const s of [
        asJson(dek),
        asJson(w.wrapped),
        dek.toString('base64'),
        w.wrapped.toString('base64'),
      ]) {
        expect(text).not.toContain(s);
      }
    } finally {
      await own?.provider.close(); // closing logs too: before the console is restored
      await raw.close();
      if (saved === undefined) delete process.env.GOOGLE_SDK_NODE_LOGGING;
      else process.env.GOOGLE_SDK_NODE_LOGGING = saved;
      for (const spy of spies) spy.mockRestore();
    }
  });
});
