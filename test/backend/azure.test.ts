/**
 * The Azure provider with the real @azure/keyvault-keys SDK against the HTTPS Key Vault fake:
 * round trip, exact versions, rotation, key states, Managed HSM, faults and deadlines, secrecy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { timeoutSignal } from '../../src/deadline.js';
import { KeyStateReporter } from '../../src/health/kek-state.js';
import { AzureKekProvider } from '../../src/kek/azure/index.js';
import type { AzureProviderOptions } from '../../src/kek/azure/provider.js';
import type { AzureConfigInput } from '../../src/config/providers/azure.js';
import type { KekProvider, KekRef, KeyVersionInfo } from '../../src/kek/types.js';
import { makeTestPki } from '../fakes/azure-keyvault/certs.js';
import { FakeKeyVault } from '../fakes/azure-keyvault/server.js';
import {
  captureDeps,
  fakeConfig,
  metricValue,
  StaticCredential,
  TempDir,
  writeCa,
  type Captured,
} from '../fakes/azure-keyvault/harness.js';

const pki = makeTestPki();
const dir = new TempDir();
const caFile = writeCa(dir, pki);
let vault: FakeKeyVault;
const providers: AzureKekProvider[] = [];
/** Every DEK, token and wrapped value used, to prove none reaches a log line or error message. */
const secrets: string[] = [];
const captures: Captured[] = [];
const errorsSeen: string[] = [];

function track(buf: Buffer): Buffer {
  secrets.push(buf.toString('hex'), buf.toString('base64'), buf.toString('base64url'));
  return buf;
}

function make(
  over: Partial<AzureConfigInput> = {},
  options: AzureProviderOptions = {},
  v: FakeKeyVault = vault,
) {
  const cap = captureDeps();
  captures.push(cap);
  const credential = new StaticCredential();
  secrets.push(credential.token);
  const provider = new AzureKekProvider(fakeConfig(v.url, caFile, over), cap.deps, {
    credential,
    retry: { baseBackoffMs: 10, maxBackoffMs: 40 },
    ...options,
  });
  providers.push(provider);
  return { provider, cap, credential };
}

async function expectReject(p: Promise<unknown>): Promise<Error & { kind?: string; retryable?: boolean }> {
  try {
    await p;
  } catch (err) {
    errorsSeen.push(
      String((err as Error).message),
      String(((err as Error).cause as Error | undefined)?.message ?? ''),
    );
    return err as Error & { kind?: string };
  }
  throw new Error('expected a rejection');
}

const sig = (ms = 3000): AbortSignal => timeoutSignal(ms);

beforeAll(async () => {
  vault = new FakeKeyVault({ pki });
  await vault.listen();
});

afterEach(async () => {
  vault.faults.length = 0;
  while (providers.length) await providers.pop()?.close();
});

afterAll(async () => {
  await vault.close();
  dir.remove();
});

describe('round trip', () => {
  it('resolves the current version, wraps with RSA-OAEP-256 on the versioned path, and unwraps', async () => {
    const v1 = vault.createKey('kek');
    const { provider } = make();
    const info = await provider.currentVersion(sig());
    expect(info.state).toBe('enabled');
    expect(info.ref).toEqual({
      provider: 'azure',
      key: `${vault.url}/keys/kek`,
      version: v1,
      unique: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(info.ordinal).toBe(Date.parse(info.ref.unique as string));

    const dek = track(randomBytes(32));
    const seenBefore = vault.seen.length;
    const res = await provider.wrap(dek, info, sig());
    track(res.wrapped);
    expect(res.ref).toEqual(info.ref);
    expect(res.wrapped.length).toBe(256);
    const wraps = vault.seen.slice(seenBefore).filter((s) => s.op === 'wrapKey' && s.authorized);
    expect(wraps).toHaveLength(1);
    expect(wraps[0]).toMatchObject({ alg: 'RSA-OAEP-256', version: v1, usedVersion: v1, status: 200 });
    // No key prefetch by the SDK (the CryptographyClient is built without GET).
    expect(vault.seen.slice(seenBefore).filter((s) => s.op === 'getKey')).toHaveLength(0);

    const back = await provider.unwrap(res.wrapped, res.ref, sig());
    expect(back.equals(dek)).toBe(true);
  });

  it('gives the same ref on every replica (separate provider instances)', async () => {
    const a = await make().provider.currentVersion(sig());
    const b = await make().provider.currentVersion(sig());
    expect(b.ref).toEqual(a.ref);
    expect(b.ordinal).toBe(a.ordinal);
  });

  it('another replica unwraps what one wrapped', async () => {
    const a = make().provider;
    const b = make().provider;
    const info = await a.currentVersion(sig());
    const dek = track(randomBytes(32));
    const res = await a.wrap(dek, info, sig());
    expect((await b.unwrap(res.wrapped, res.ref, sig())).equals(dek)).toBe(true);
  });

  it('fails closed on a tampered wrapped DEK', async () => {
    const { provider } = make();
    const info = await provider.currentVersion(sig());
    const res = await provider.wrap(track(randomBytes(32)), info, sig());
    const bad = Buffer.from(res.wrapped);
    bad[10] ^= 0xff;
    const err = await expectReject(provider.unwrap(bad, res.ref, sig()));
    expect(err.kind).toBe('unauthenticated');
  });

  it('records the version the service says it used (response kid) and refuses a mismatch', async () => {
    vault.createKey('kidcheck');
    const { provider } = make({ keyName: 'kidcheck' });
    const info = await provider.currentVersion(sig());
    vault.faults.push({ op: 'wrapKey', kidVersion: 'ffffffffffffffffffffffffffffffff' });
    const err = await expectReject(provider.wrap(track(randomBytes(32)), info, sig()));
    expect(err.kind).toBe('corrupt');
    expect(err.message).toMatch(/answered for kidcheck version f{32}; the wrapped DEK was discarded/);
    // A normal answer names the requested version and is accepted.
    expect((await provider.wrap(track(randomBytes(32)), info, sig())).ref.version).toBe(info.ref.version);
  });

  it('canUnwrap only its own key; unwrap refuses foreign refs', async () => {
    const { provider } = make();
    const info = await provider.currentVersion(sig());
    expect(provider.canUnwrap(info.ref)).toBe(true);
    expect(provider.canUnwrap({ ...info.ref, key: `${vault.url}/keys/other` })).toBe(false);
    expect(provider.canUnwrap({ ...info.ref, key: 'https://elsewhere.vault.azure.net/keys/kek' })).toBe(
      false,
    );
    expect(provider.canUnwrap({ ...info.ref, provider: 'aws' })).toBe(false);
    const foreign: KekRef = { ...info.ref, key: `${vault.url}/keys/other` };
    expect((await expectReject(provider.unwrap(Buffer.alloc(256), foreign, sig()))).kind).toBe('unknown_key');
    // The foreign-reference check shared by every provider (src/kek/ownership.ts): a foreign
    // version on wrap is a wrong argument (was unknown_key here, issue 14).
    const w = await expectReject(provider.wrap(Buffer.alloc(32), { ...info, ref: foreign }, sig()));
    expect(w.kind).toBe('invalid_input');
    expect(w.name).toBe('ForeignWrapRefError');
  });
});

describe('rotation', () => {
  it('follows a new version; old data still unwraps with the stored version', async () => {
    vault.createKey('rot');
    const { provider } = make({ keyName: 'rot' });
    const first = await provider.currentVersion(sig());
    const dek1 = track(randomBytes(32));
    const w1 = await provider.wrap(dek1, first, sig());

    const v2 = vault.rotateKey('rot');
    const second = await provider.currentVersion(sig());
    expect(second.ref.version).toBe(v2);
    expect(second.ref).not.toEqual(first.ref);
    expect(second.ordinal).toBeGreaterThan(first.ordinal);

    const dek2 = track(randomBytes(32));
    const w2 = await provider.wrap(dek2, second, sig());
    expect(w2.ref.version).toBe(v2);
    expect(vault.seen.filter((s) => s.op === 'wrapKey' && s.status === 200).at(-1)?.usedVersion).toBe(v2);

    const before = vault.seen.length;
    expect((await provider.unwrap(w1.wrapped, w1.ref, sig())).equals(dek1)).toBe(true);
    const unwraps = vault.seen.slice(before).filter((s) => s.op === 'unwrapKey' && s.authorized);
    expect(unwraps.map((s) => s.version)).toEqual([first.ref.version]);
    expect((await provider.unwrap(w2.wrapped, w2.ref, sig())).equals(dek2)).toBe(true);
  });

  it('a pinned version stays put after a rotation', async () => {
    const v1 = vault.createKey('pinned');
    vault.rotateKey('pinned');
    const { provider } = make({ keyName: 'pinned', keyVersion: v1 });
    const info = await provider.currentVersion(sig());
    expect(info.ref.version).toBe(v1);
    expect(provider.description).toContain(`pinned to version ${v1}`);
  });

  it('logs the change of current version', async () => {
    vault.createKey('rotlog');
    const { provider, cap } = make({ keyName: 'rotlog' });
    await provider.currentVersion(sig());
    const v2 = vault.rotateKey('rotlog');
    await provider.currentVersion(sig());
    expect(cap.logs().some((l) => l.msg === 'azure key has a new current version' && l.version === v2)).toBe(
      true,
    );
  });
});

/** A probe as the rotation watcher runs it: the provider returns the state, the one owner reports it. */
const owners = new WeakMap<Captured, KeyStateReporter>();
async function probe(provider: KekProvider, cap: Captured): Promise<KeyVersionInfo> {
  let owner = owners.get(cap);
  if (!owner) {
    owner = new KeyStateReporter({ logger: cap.deps.logger, metrics: cap.metrics, role: cap.deps.role });
    owners.set(cap, owner);
  }
  const info = await provider.currentVersion(sig());
  owner.report(info);
  return info;
}

describe('key states', () => {
  it('disabled: loud, metric, no wrap attempted, unwrap refused by the service', async () => {
    vault.createKey('dis');
    const { provider, cap } = make({ keyName: 'dis' });
    const good = await provider.currentVersion(sig());
    const wrapped = await provider.wrap(track(randomBytes(32)), good, sig());
    vault.setAttributes('dis', undefined, { enabled: false });

    const info = await probe(provider, cap);
    expect(info.state).toBe('disabled');
    expect(info.detail).toMatch(/disabled/);
    expect(
      await metricValue(cap.metrics, 'kms_plugin_kek_state', {
        provider: 'azure',
        state: 'disabled',
        role: 'primary',
      }),
    ).toBe(1);
    expect(
      await metricValue(cap.metrics, 'kms_plugin_kek_state', {
        provider: 'azure',
        state: 'enabled',
        role: 'primary',
      }),
    ).toBe(0);
    expect(cap.logs().some((l) => l.level === 'error' && l.state === 'disabled')).toBe(true);

    const wrapsBefore = vault.count('wrapKey');
    expect((await expectReject(provider.wrap(randomBytes(32), info, sig()))).kind).toBe('key_disabled');
    // Even with a stale "enabled" info, the provider re-checks what it knows.
    expect((await expectReject(provider.wrap(randomBytes(32), good, sig()))).kind).toBe('key_disabled');
    expect(vault.count('wrapKey')).toBe(wrapsBefore);

    expect((await expectReject(provider.unwrap(wrapped.wrapped, wrapped.ref, sig()))).kind).toBe(
      'key_disabled',
    );
  });

  it('expired: not used for new DEKs, but old data still unwraps (the service allows it)', async () => {
    vault.createKey('exp');
    const { provider, cap } = make({ keyName: 'exp' });
    const good = await provider.currentVersion(sig());
    const dek = track(randomBytes(32));
    const wrapped = await provider.wrap(dek, good, sig());
    vault.setAttributes('exp', undefined, { expiresOn: new Date(Date.now() - 60_000) });

    const info = await probe(provider, cap);
    expect(info.state).toBe('expired');
    expect(info.detail).toMatch(/expired on/);
    expect(
      await metricValue(cap.metrics, 'kms_plugin_kek_state', { provider: 'azure', state: 'expired' }),
    ).toBe(1);
    const before = vault.count('wrapKey');
    expect((await expectReject(provider.wrap(randomBytes(32), info, sig()))).kind).toBe('key_disabled');
    expect(vault.count('wrapKey')).toBe(before);
    expect((await provider.unwrap(wrapped.wrapped, wrapped.ref, sig())).equals(dek)).toBe(true);
    // A fresh replica (e.g. after a restart) too: the SDK's local expiry check must not get in the way.
    const fresh = make({ keyName: 'exp' }).provider;
    expect((await fresh.unwrap(wrapped.wrapped, wrapped.ref, sig())).equals(dek)).toBe(true);
  });

  it('a version that expires between the probe and the wrap is refused at wrap time', async () => {
    vault.createKey('soon', { expiresOn: new Date(Date.now() + 3_600_000) });
    let now = Date.now();
    const { provider, cap } = make({ keyName: 'soon' }, { now: () => new Date(now) });
    const info = await provider.currentVersion(sig());
    expect(info.state).toBe('enabled');
    expect(
      cap.logs().some((l) => l.msg === 'azure KEK version expires soon; rotate the key before then'),
    ).toBe(true);
    now += 2 * 3_600_000;
    const before = vault.count('wrapKey');
    expect((await expectReject(provider.wrap(randomBytes(32), info, sig()))).kind).toBe('key_disabled');
    expect(vault.count('wrapKey')).toBe(before);
  });

  it('a vault that refuses even the GET of a disabled key still yields state disabled', async () => {
    vault.createKey('dis403');
    const { provider } = make({ keyName: 'dis403' });
    const good = await provider.currentVersion(sig());
    vault.faults.push({
      op: 'getKey',
      status: 403,
      innerCode: 'KeyDisabled',
      message: 'Operation get is not allowed on a disabled key.',
    });
    const info = await provider.currentVersion(sig());
    expect(info.state).toBe('disabled');
    expect(info.ref).toEqual(good.ref);
    expect((await expectReject(provider.wrap(randomBytes(32), info, sig()))).kind).toBe('key_disabled');
  });

  it('not yet valid', async () => {
    vault.createKey('nbf', { notBefore: new Date(Date.now() + 86_400_000) });
    const { provider } = make({ keyName: 'nbf' });
    const info = await provider.currentVersion(sig());
    expect(info.state).toBe('not_yet_valid');
    expect((await expectReject(provider.wrap(randomBytes(32), info, sig()))).kind).toBe('key_disabled');
  });

  it('soft-deleted: pending_deletion with the purge date', async () => {
    vault.createKey('del');
    const { provider } = make({ keyName: 'del' });
    const good = await provider.currentVersion(sig());
    vault.deleteKey('del', 7);
    const info = await provider.currentVersion(sig());
    expect(info.state).toBe('pending_deletion');
    expect(info.ref).toEqual(good.ref);
    expect(info.detail).toMatch(/purge scheduled/);
    vault.recoverKey('del');
    expect((await provider.currentVersion(sig())).state).toBe('enabled');
  });

  it('a missing key is unknown_key, loudly', async () => {
    const { provider, cap } = make({ keyName: 'does-not-exist' });
    const err = await expectReject(provider.currentVersion(sig()));
    expect(err.kind).toBe('unknown_key');
    expect(err.message).toContain('does-not-exist');
    expect(cap.logs().some((l) => l.level === 'error')).toBe(true);
  });

  it('warns once when the vault has no purge protection', async () => {
    const soft = new FakeKeyVault({ pki, recoveryLevel: 'Recoverable+Purgeable' });
    await soft.listen();
    try {
      soft.createKey('kek');
      const { provider, cap } = make({}, {}, soft);
      await provider.currentVersion(sig());
      await provider.currentVersion(sig());
      expect(cap.logs().filter((l) => /no purge protection/.test(String(l.msg)))).toHaveLength(1);
    } finally {
      await soft.close();
    }
  });
});

describe('Managed HSM (oct-HSM, A256KW)', () => {
  it('wraps with AES key wrap and unwraps', async () => {
    const hsm = new FakeKeyVault({ pki, managedHsm: true });
    await hsm.listen();
    try {
      hsm.createKey('kek', { kty: 'oct-HSM' });
      const { provider } = make({}, {}, hsm);
      const info = await provider.currentVersion(sig());
      const dek = track(randomBytes(32));
      const res = await provider.wrap(dek, info, sig());
      expect(res.wrapped.length).toBe(40);
      expect(hsm.seen.find((s) => s.op === 'wrapKey' && s.status === 200)?.alg).toBe('A256KW');
      expect((await provider.unwrap(res.wrapped, res.ref, sig())).equals(dek)).toBe(true);
    } finally {
      await hsm.close();
    }
  });
});

describe('faults and deadlines', () => {
  async function ready(name: string, over: Partial<AzureConfigInput> = {}) {
    if (!vaultHas(name)) vault.createKey(name);
    const made = make({ keyName: name, ...over });
    const info = await made.provider.currentVersion(sig());
    return { ...made, info };
  }
  const created = new Set<string>();
  function vaultHas(name: string): boolean {
    if (created.has(name)) return true;
    created.add(name);
    return false;
  }

  it('429 with Retry-After that fits in the deadline: waits it out and succeeds', async () => {
    const { provider, info } = await ready('f429');
    vault.faults.push({ op: 'wrapKey', status: 429, retryAfter: '1' });
    const before = vault.count('wrapKey');
    const t0 = Date.now();
    await provider.wrap(track(randomBytes(32)), info, sig(3000));
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2500);
    expect(vault.count('wrapKey') - before).toBe(2);
  });

  it('429 with Retry-After past the deadline: fails fast as throttled, no second request', async () => {
    const { provider, info } = await ready('f429');
    vault.faults.push({ op: 'wrapKey', status: 429, retryAfter: '5' });
    const before = vault.count('wrapKey');
    const t0 = Date.now();
    const err = await expectReject(provider.wrap(randomBytes(32), info, sig(2000)));
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(err.kind).toBe('throttled');
    expect(err.message).toMatch(/Retry-After 5 s does not fit/);
    expect(vault.count('wrapKey') - before).toBe(1);
  });

  it('5xx is retried within the deadline', async () => {
    const { provider, info } = await ready('f5xx');
    vault.faults.push({ op: 'unwrapKey', status: 503 }, { op: 'unwrapKey', status: 500 });
    const dek = track(randomBytes(32));
    const w = await provider.wrap(dek, info, sig());
    const before = vault.count('unwrapKey');
    expect((await provider.unwrap(w.wrapped, w.ref, sig())).equals(dek)).toBe(true);
    expect(vault.count('unwrapKey') - before).toBe(3);
  });

  it('5xx past the retry budget is unavailable', async () => {
    const { provider, info } = await ready('f5xx');
    for (let i = 0; i < 6; i++) vault.faults.push({ op: 'wrapKey', status: 503 });
    const before = vault.count('wrapKey');
    const err = await expectReject(provider.wrap(randomBytes(32), info, sig()));
    expect(err.kind).toBe('unavailable');
    expect(vault.count('wrapKey') - before).toBe(4); // RemoteCaller's maxAttempts; SDK retries are off
  });

  it('403 is permission_denied with the role hint, not retried', async () => {
    const { provider, info } = await ready('f403');
    vault.faults.push({
      op: 'wrapKey',
      status: 403,
      message: 'The user does not have keys wrap key permission on key vault.',
    });
    const before = vault.count('wrapKey');
    const err = await expectReject(provider.wrap(randomBytes(32), info, sig()));
    expect(err.kind).toBe('permission_denied');
    expect(err.message).toMatch(/Key Vault Crypto User/);
    expect(err.message).toMatch(/does not have keys wrap key permission/);
    expect(vault.count('wrapKey') - before).toBe(1);
  });

  it('a hung request is cut by attemptTimeout and retried within the deadline', async () => {
    const { provider, info } = await ready('fhang', { attemptTimeout: '300ms' });
    vault.faults.push({ op: 'wrapKey', hang: true });
    const t0 = Date.now();
    const before = vault.count('wrapKey');
    await provider.wrap(track(randomBytes(32)), info, sig(3000));
    const took = Date.now() - t0;
    expect(vault.count('wrapKey') - before).toBe(2);
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(2500);
  });

  it('a server that hangs past the caller deadline gives a deadline error on time', async () => {
    const { provider, info } = await ready('fhang', { attemptTimeout: '2s' });
    for (let i = 0; i < 3; i++) vault.faults.push({ op: 'wrapKey', hang: true });
    const t0 = Date.now();
    const err = await expectReject(provider.wrap(randomBytes(32), info, sig(700)));
    const took = Date.now() - t0;
    expect(err.kind).toBe('deadline');
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(1700); // generous: a 2-core CI box under load fires timers late
  });

  it('a connection reset is retried', async () => {
    const { provider, info } = await ready('freset');
    vault.faults.push({ op: 'getKey', reset: true });
    const again = await provider.currentVersion(sig());
    expect(again.ref).toEqual(info.ref);
  });

  it('counts remote calls by outcome', async () => {
    const { provider, info, cap } = await ready('fmetrics');
    vault.faults.push({ op: 'wrapKey', status: 403 });
    await expectReject(provider.wrap(randomBytes(32), info, sig()));
    await provider.wrap(track(randomBytes(32)), info, sig());
    expect(
      await metricValue(cap.metrics, 'kms_plugin_remote_calls_total', {
        provider: 'azure',
        operation: 'wrapKey',
        outcome: 'permission_denied',
      }),
    ).toBe(1);
    expect(
      await metricValue(cap.metrics, 'kms_plugin_remote_calls_total', {
        provider: 'azure',
        operation: 'wrapKey',
        outcome: 'ok',
      }),
    ).toBe(1);
  });
});

describe('secrecy', () => {
  it('no DEK, wrapped DEK or token in any log line or error message', () => {
    const text = [...captures.flatMap((c) => c.lines), ...errorsSeen].join('\n');
    expect(captures.length).toBeGreaterThan(10);
    expect(errorsSeen.length).toBeGreaterThan(10);
    expect(secrets.length).toBeGreaterThan(20);
    for (const s of secrets) expect(text.includes(s)).toBe(false);
    expect(text).not.toMatch(/Bearer\s+static-/);
  });
});

describe('log volume', () => {
  it('an unusable version logs an error on change, not on every probe', async () => {
    vault.createKey('quiet');
    const { provider, cap } = make({ keyName: 'quiet' });
    vault.setAttributes('quiet', undefined, { enabled: false });
    for (let i = 0; i < 5; i++) expect((await probe(provider, cap)).state).toBe('disabled');
    const errors = () => cap.logs().filter((l) => l.level === 'error' && l.state === 'disabled').length;
    expect(errors()).toBe(1);
    vault.setAttributes('quiet', undefined, { enabled: true, expiresOn: new Date(Date.now() - 1000) });
    await probe(provider, cap);
    expect(cap.logs().filter((l) => l.level === 'error' && l.state === 'expired')).toHaveLength(1);
  });
});
