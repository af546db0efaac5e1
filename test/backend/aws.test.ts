/**
 * The aws KEK provider with the real @aws-sdk/client-kms against the wire-level fake
 * (test/fakes/aws-kms): round trip, fail-closed context, rotation, alias repoint, key states,
 * throttling/5xx/hang within and past the deadline, error classification, and no secrets in
 * errors or logs.
 */
import { randomBytes } from 'node:crypto';
import { timeoutSignal } from '../../src/deadline.js';
import { PluginError } from '../../src/errors.js';
import { KeyStateReporter } from '../../src/health/kek-state.js';
import type { KeyVersionInfo } from '../../src/kek/types.js';
import { FakeAwsKms } from '../fakes/aws-kms/index.js';
import {
  STATIC_AWS_ENV,
  TEST_ACCESS_KEY_ID,
  TEST_SECRET_ACCESS_KEY,
  makeAwsProvider,
  setEnv,
  type Harness,
} from '../fakes/aws-kms/harness.js';

let fake: FakeAwsKms;
let restoreEnv: () => void;
const open: Harness[] = [];

beforeAll(async () => {
  restoreEnv = setEnv(STATIC_AWS_ENV);
  fake = new FakeAwsKms();
  // Signatures are verified: a request not signed with exactly these credentials is refused.
  fake.addCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
  await fake.listen();
});
afterAll(async () => {
  for (const h of open) await h.provider.close();
  await fake.close();
  restoreEnv();
});
afterEach(() => {
  fake.faults.length = 0;
  fake.faultRule = undefined;
  fake.omitCurrentKeyMaterialId = false;
});

async function harness(overrides: Record<string, unknown> = {}): Promise<Harness> {
  const h = await makeAwsProvider(fake, overrides);
  open.push(h);
  return h;
}

const sig = (ms = 3000): AbortSignal => timeoutSignal(ms);

/** A probe as the rotation watcher runs it: the provider returns the state, the one owner reports it. */
const owners = new WeakMap<Harness, KeyStateReporter>();
async function probe(h: Harness): Promise<KeyVersionInfo> {
  let owner = owners.get(h);
  if (!owner) {
    owner = new KeyStateReporter({ logger: h.log.logger, metrics: h.metrics, role: 'primary' });
    owners.set(h, owner);
  }
  const info = await h.provider.currentVersion(sig());
  owner.report(info);
  return info;
}

async function rejection(p: Promise<unknown>): Promise<PluginError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PluginError);
    return e as PluginError;
  }
  throw new Error('expected a rejection');
}

function since(op: string, from: number): number {
  return fake.log.slice(from).filter((r) => r.op === op).length;
}

async function gaugeValue(
  h: Harness,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const metric = await h.metrics.registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

describe('round trip', () => {
  test('wrap with Encrypt and unwrap with Decrypt pinned to the key ARN and the EncryptionContext', async () => {
    const key = fake.createKey();
    const { provider } = await harness({ keyId: key.arn, cluster: 'prod-1' });
    const v = await provider.currentVersion(sig());
    expect(v.state).toBe('enabled');
    expect(v.ref).toEqual({
      provider: 'aws',
      key: key.arn,
      version: `material:${key.materials[0].id}`,
      unique: expect.stringMatching(/^created=.+;ctx=[0-9a-f]{16}$/),
    });
    expect(v.ref.unique).toContain(`created=${new Date(key.creationDate).toISOString()}`);

    const dek = randomBytes(32);
    const from = fake.log.length;
    const w = await provider.wrap(dek, v, sig());
    expect(w.ref).toEqual(v.ref);
    expect(w.wrapped.includes(dek)).toBe(false);
    const back = await provider.unwrap(w.wrapped, w.ref, sig());
    expect(back.equals(dek)).toBe(true);

    const [enc, dec] = fake.log.slice(from);
    expect(enc).toMatchObject({
      op: 'Encrypt',
      status: 200,
      keyId: key.arn,
      region: 'us-east-1',
      accessKeyId: TEST_ACCESS_KEY_ID,
    });
    expect(enc.encryptionContext).toEqual({ 'k8s-kms-plugin': 'dek-wrap', cluster: 'prod-1' });
    expect(dec).toMatchObject({ op: 'Decrypt', status: 200, keyId: key.arn });
    expect(dec.encryptionContext).toEqual({ 'k8s-kms-plugin': 'dek-wrap', cluster: 'prod-1' });
    expect(provider.canUnwrap(v.ref)).toBe(true);
  });

  test('the ref is identical across calls and across a restart (new provider instance)', async () => {
    const key = fake.createKey();
    fake.rotate(key.keyId);
    const a = await harness({ keyId: key.arn });
    const b = await harness({ keyId: key.keyId }); // same key given as a bare key id
    const v1 = await a.provider.currentVersion(sig());
    const v2 = await a.provider.currentVersion(sig());
    const v3 = await b.provider.currentVersion(sig());
    expect(v2).toEqual(v1);
    expect(v3).toEqual(v1);
  });

  test('a key re-created with the same id gets a different ref (creation time is part of it)', async () => {
    // Without CurrentKeyMaterialId both keys are "original": only `unique` can tell them apart.
    fake.omitCurrentKeyMaterialId = true;
    const id = '0b0e0e0e-1111-4222-8333-444455556666';
    fake.createKey({ keyId: id, creationDate: Date.parse('2026-01-01T00:00:00Z') });
    const { provider } = await harness({ keyId: id });
    const before = await provider.currentVersion(sig());
    fake.store.keys.delete(id);
    fake.createKey({ keyId: id, creationDate: Date.parse('2026-06-01T00:00:00Z') });
    const after = await provider.currentVersion(sig());
    expect(after.ref.key).toBe(before.ref.key);
    expect(after.ref.version).toBe(before.ref.version);
    expect(after.ref.unique).not.toBe(before.ref.unique);
  });

  test('requests signed with other credentials are refused by the fake (signature check is live)', async () => {
    const restore = setEnv({ AWS_SECRET_ACCESS_KEY: 'not-the-right-secret' });
    try {
      const key = fake.createKey();
      const { provider } = await harness({ keyId: key.arn });
      const e = await rejection(provider.currentVersion(sig()));
      expect(e.kind).toBe('permission_denied');
      expect(e.message).toContain('InvalidSignatureException');
    } finally {
      restore();
    }
  });
});

describe('fail closed', () => {
  test('a wrapped DEK does not unwrap under another EncryptionContext', async () => {
    const key = fake.createKey();
    const a = await harness({ keyId: key.arn, cluster: 'a' });
    const b = await harness({ keyId: key.arn, cluster: 'b' });
    const va = await a.provider.currentVersion(sig());
    const vb = await b.provider.currentVersion(sig());
    expect(vb.ref.unique).not.toBe(va.ref.unique); // a context change is a new key_id
    const w = await a.provider.wrap(randomBytes(32), va, sig());

    // Routing: b does not claim a's refs, and says why.
    expect(b.provider.canUnwrap(w.ref)).toBe(false);
    const routed = await rejection(b.provider.unwrap(w.wrapped, w.ref, sig()));
    expect(routed.kind).toBe('unknown_key');
    expect(routed.message).toContain('different EncryptionContext');

    // Even if asked with its own ref, KMS refuses: the context is bound into the ciphertext.
    const from = fake.log.length;
    const e = await rejection(b.provider.unwrap(w.wrapped, vb.ref, sig()));
    expect(e.kind).toBe('unauthenticated');
    expect(fake.log.slice(from).map((r) => [r.op, r.error])).toEqual([
      ['Decrypt', 'InvalidCiphertextException'],
    ]);
  });

  test('a flipped byte and a DEK of another key fail closed', async () => {
    const k1 = fake.createKey();
    const k2 = fake.createKey();
    const p1 = await harness({ keyId: k1.arn, decryptKeyArns: [k2.arn] });
    const p2 = await harness({ keyId: k2.arn });
    const v1 = await p1.provider.currentVersion(sig());
    const v2 = await p2.provider.currentVersion(sig());
    const w1 = await p1.provider.wrap(randomBytes(32), v1, sig());
    const tampered = Buffer.from(w1.wrapped);
    tampered[tampered.length - 1] ^= 1;
    expect((await rejection(p1.provider.unwrap(tampered, w1.ref, sig()))).kind).toBe('unauthenticated');
    // k1's DEK presented as if it were k2's: KMS sees KeyId pinned to k2 and refuses.
    const e = await rejection(p1.provider.unwrap(w1.wrapped, v2.ref, sig()));
    expect(e.kind).toBe('unauthenticated');
    expect(fake.log[fake.log.length - 1].error).toBe('IncorrectKeyException');
  });

  test('refs of other providers or unknown keys are not claimed', async () => {
    const key = fake.createKey();
    const other = fake.createKey();
    const { provider } = await harness({ keyId: key.arn });
    const v = await provider.currentVersion(sig());
    expect(provider.canUnwrap({ ...v.ref, provider: 'gcp' })).toBe(false);
    expect(provider.canUnwrap({ ...v.ref, key: other.arn })).toBe(false);
    expect(provider.canUnwrap({ ...v.ref, key: 'alias/x' })).toBe(false);
    expect(
      (await rejection(provider.unwrap(Buffer.from('x'), { ...v.ref, key: other.arn }, sig()))).kind,
    ).toBe('unknown_key');
    // The foreign-reference check shared by every provider (src/kek/ownership.ts).
    const foreign = { ...v, ref: { ...v.ref, key: other.arn } };
    const w = await rejection(provider.wrap(Buffer.alloc(32), foreign, sig()));
    expect(w.kind).toBe('invalid_input');
    expect(w.name).toBe('ForeignWrapRefError');
    expect((await rejection(provider.unwrap(Buffer.from('x'), foreign.ref, sig()))).name).toBe(
      'ForeignUnwrapRefError',
    );
  });
});

describe('version marker: one DescribeKey per probe (CurrentKeyMaterialId)', () => {
  test('a probe is exactly one DescribeKey; version = the current material id', async () => {
    const key = fake.createKey();
    fake.rotate(key.keyId);
    const { provider } = await harness({ keyId: key.arn });
    const from = fake.log.length;
    const v = await provider.currentVersion(sig());
    await provider.currentVersion(sig());
    expect(fake.log.slice(from).map((r) => r.op)).toEqual(['DescribeKey', 'DescribeKey']);
    expect(v.ref.version).toBe(`material:${key.materials[1].id}`);
  });

  test('rotation gives a new ref with a higher ordinal, stable across a restart; old DEKs still unwrap', async () => {
    const key = fake.createKey();
    const { provider } = await harness({ keyId: key.arn });
    const v1 = await provider.currentVersion(sig());
    const dek1 = randomBytes(32);
    const w1 = await provider.wrap(dek1, v1, sig());

    fake.rotate(key.keyId);
    const v2 = await provider.currentVersion(sig());
    expect(v2.ref.key).toBe(v1.ref.key);
    expect(v2.ref.version).toBe(`material:${key.materials[1].id}`);
    expect(v2.ref.version).not.toBe(v1.ref.version);
    expect(v2.ordinal).toBeGreaterThan(v1.ordinal);
    expect(await provider.currentVersion(sig())).toEqual(v2); // stable until the next rotation

    fake.rotate(key.keyId, 'AUTOMATIC');
    const v3 = await provider.currentVersion(sig());
    expect(v3.ordinal).toBeGreaterThan(v2.ordinal);
    expect(new Set([v1.ref.version, v2.ref.version, v3.ref.version]).size).toBe(3);

    // A restart (new provider) computes the same ref for the same material.
    const restarted = await harness({ keyId: key.keyId });
    expect((await restarted.provider.currentVersion(sig())).ref).toEqual(v3.ref);
    expect((await provider.unwrap(w1.wrapped, w1.ref, sig())).equals(dek1)).toBe(true);
  });

  test('a material seen before keeps its ordinal (a primary moving back reads as a rollback)', async () => {
    const key = fake.createKey();
    const { provider } = await harness({ keyId: key.arn });
    const v1 = await provider.currentVersion(sig());
    fake.rotate(key.keyId);
    const v2 = await provider.currentVersion(sig());
    const newest = key.materials.pop(); // the fake's current material goes back to the original
    const back = await provider.currentVersion(sig());
    expect(back.ref).toEqual(v1.ref);
    expect(back.ordinal).toBe(v1.ordinal);
    expect(back.ordinal).toBeLessThan(v2.ordinal);
    if (newest) key.materials.push(newest);
  });
});

describe('version marker fallback: ListKeyRotations when DescribeKey has no CurrentKeyMaterialId', () => {
  beforeEach(() => {
    fake.omitCurrentKeyMaterialId = true;
  });

  test('a probe is DescribeKey + ListKeyRotations; a never-rotated key is "original"', async () => {
    const key = fake.createKey();
    const { provider } = await harness({ keyId: key.arn });
    const from = fake.log.length;
    const v = await provider.currentVersion(sig());
    expect(fake.log.slice(from).map((r) => r.op)).toEqual(['DescribeKey', 'ListKeyRotations']);
    expect(v.ref.version).toBe('original');
    const again = await harness({ keyId: key.keyId });
    expect(await again.provider.currentVersion(sig())).toEqual(v);
  });

  test('rotation gives a new ref with a higher ordinal, and old DEKs still unwrap', async () => {
    const key = fake.createKey();
    const { provider } = await harness({ keyId: key.arn });
    const v1 = await provider.currentVersion(sig());
    const dek1 = randomBytes(32);
    const w1 = await provider.wrap(dek1, v1, sig());

    await new Promise((r) => setTimeout(r, 5));
    fake.rotate(key.keyId);
    const v2 = await provider.currentVersion(sig());
    expect(v2.ref.key).toBe(v1.ref.key);
    expect(v2.ref.version).not.toBe(v1.ref.version);
    expect(v2.ref.version).toBe(new Date(key.materials[1].at).toISOString());
    expect(v2.ordinal).toBeGreaterThan(v1.ordinal);
    expect(await provider.currentVersion(sig())).toEqual(v2); // stable until the next rotation

    const dek2 = randomBytes(32);
    const w2 = await provider.wrap(dek2, v2, sig());
    expect((await provider.unwrap(w1.wrapped, w1.ref, sig())).equals(dek1)).toBe(true);
    expect((await provider.unwrap(w2.wrapped, w2.ref, sig())).equals(dek2)).toBe(true);

    await new Promise((r) => setTimeout(r, 5));
    fake.rotate(key.keyId, 'AUTOMATIC');
    const v3 = await provider.currentVersion(sig());
    expect(v3.ordinal).toBeGreaterThan(v2.ordinal);
    expect(new Set([v1.ref.version, v2.ref.version, v3.ref.version]).size).toBe(3);
  });

  test('ListKeyRotations is paged through to the newest rotation', async () => {
    const key = fake.createKey();
    for (let i = 0; i < 5; i++) fake.store.rotate(key);
    const { provider } = await harness({ keyId: key.arn });
    const original = fake.maxPageSize;
    fake.maxPageSize = 2;
    try {
      const v = await provider.currentVersion(sig());
      expect(v.ref.version).toBe(new Date(key.materials[5].at).toISOString());
    } finally {
      fake.maxPageSize = original;
    }
  });

  test('RotateKeyOnDemand over the wire', async () => {
    const { KMSClient, RotateKeyOnDemandCommand } = await import('@aws-sdk/client-kms');
    const key = fake.createKey();
    const { provider } = await harness({ keyId: key.arn });
    const v1 = await provider.currentVersion(sig());
    const client = new KMSClient({ endpoint: fake.url, region: fake.region });
    try {
      await client.send(new RotateKeyOnDemandCommand({ KeyId: key.arn }));
    } finally {
      client.destroy();
    }
    const v2 = await provider.currentVersion(sig());
    expect(v2.ref.version).not.toBe(v1.ref.version);
  });
  test('pending deletion refuses ListKeyRotations: the last version is kept', async () => {
    const key = fake.createKey();
    fake.rotate(key.keyId);
    const { provider } = await harness({ keyId: key.arn });
    const before = await provider.currentVersion(sig());
    expect(before.ref.version).toBe(new Date(key.materials[1].at).toISOString());
    fake.setKeyState(key.keyId, 'PendingDeletion');
    const v = await provider.currentVersion(sig());
    expect(v.state).toBe('pending_deletion');
    expect(v.ref).toEqual(before.ref);
  });
});

describe('alias', () => {
  test('an alias resolves to its target; repointing it gives a new ref; old DEKs still unwrap, also after a restart', async () => {
    const a = fake.createKey();
    const b = fake.createKey({ creationDate: a.creationDate + 1000 });
    fake.setAlias('alias/k8s-repoint', a.keyId);
    const h = await harness({ keyId: 'alias/k8s-repoint' });
    const va = await h.provider.currentVersion(sig());
    expect(va.ref.key).toBe(a.arn);
    expect(va.ref.unique).toContain('alias=alias/k8s-repoint');
    const dekA = randomBytes(32);
    const wa = await h.provider.wrap(dekA, va, sig());

    await new Promise((r) => setTimeout(r, 5));
    fake.setAlias('alias/k8s-repoint', b.keyId);
    const vb = await h.provider.currentVersion(sig());
    expect(vb.ref.key).toBe(b.arn);
    expect(vb.ref).not.toEqual(va.ref);
    expect(vb.ordinal).toBeGreaterThan(va.ordinal);
    const wb = await h.provider.wrap(randomBytes(32), vb, sig());
    expect(fake.log[fake.log.length - 1].keyId).toBe(b.arn); // wraps with the ref's key, not the alias

    expect((await h.provider.unwrap(wa.wrapped, wa.ref, sig())).equals(dekA)).toBe(true);
    const restarted = await harness({ keyId: 'alias/k8s-repoint' });
    expect(restarted.provider.canUnwrap(wa.ref)).toBe(true);
    expect((await restarted.provider.unwrap(wa.wrapped, wa.ref, sig())).equals(dekA)).toBe(true);
    expect(restarted.provider.canUnwrap(wb.ref)).toBe(true);
  });

  test('alias ARN works too', async () => {
    const a = fake.createKey();
    fake.setAlias('alias/k8s-arn', a.keyId);
    const { provider } = await harness({
      keyId: `arn:aws:kms:us-east-1:111122223333:alias/k8s-arn`,
      region: undefined,
    });
    const v = await provider.currentVersion(sig());
    expect(v.ref.key).toBe(a.arn);
  });
});

describe('key states', () => {
  test('disabled: not usable, loud in logs and the kek_state metric; wrap refuses without a remote call', async () => {
    const key = fake.createKey();
    const h = await harness({ keyId: key.arn });
    const enabled = await probe(h);
    const w = await h.provider.wrap(randomBytes(32), enabled, sig());
    expect(
      await gaugeValue(h, 'kms_plugin_kek_state', { state: 'enabled', provider: 'aws', role: 'primary' }),
    ).toBe(1);

    fake.setKeyState(key.keyId, 'Disabled');
    const v = await probe(h);
    expect(v.state).toBe('disabled');
    expect(v.detail).toContain('disabled');
    expect(v.ref).toEqual(enabled.ref); // the version did not change, only its state
    expect(await gaugeValue(h, 'kms_plugin_kek_state', { state: 'disabled' })).toBe(1);
    expect(await gaugeValue(h, 'kms_plugin_kek_state', { state: 'enabled' })).toBe(0);
    const loud = h.log.entries().filter((e) => e.level === 'error' && e.state === 'disabled');
    expect(loud.length).toBeGreaterThan(0);

    const from = fake.log.length;
    expect((await rejection(h.provider.wrap(randomBytes(32), v, sig()))).kind).toBe('key_disabled');
    expect(since('Encrypt', from)).toBe(0);
    const e = await rejection(h.provider.unwrap(w.wrapped, w.ref, sig()));
    expect(e.kind).toBe('key_disabled');
    expect(since('Decrypt', from)).toBe(1); // not retried

    fake.setKeyState(key.keyId, 'Enabled');
    expect((await probe(h)).state).toBe('enabled');
    expect(h.log.entries().some((x) => x.level === 'info' && String(x.msg).includes('enabled again'))).toBe(
      true,
    );
  });

  test('pending deletion: the deletion date is in the detail, logged as an error on change (the one key-state policy), version kept', async () => {
    const key = fake.createKey();
    const h = await harness({ keyId: key.arn });
    const before = await probe(h);
    const when = new Date('2026-12-24T00:00:00.000Z');
    fake.setKeyState(key.keyId, 'PendingDeletion', { deletionDate: when });
    const v = await probe(h);
    await probe(h);
    expect(v.state).toBe('pending_deletion');
    expect(v.detail).toContain('2026-12-24T00:00:00.000Z');
    expect(v.detail).toContain('cancel-key-deletion');
    expect(v.ref).toEqual(before.ref); // DescribeKey still names the same material
    const errors = h.log
      .entries()
      .filter((e) => e.level === 'error' && String(e.msg).includes('SCHEDULED FOR DELETION'));
    // One line per change, then at most every REPEAT_BAD_STATE_MS (was: every probe).
    expect(errors).toHaveLength(1);
    expect(await gaugeValue(h, 'kms_plugin_kek_state', { state: 'pending_deletion' })).toBe(1);
    expect((await rejection(h.provider.wrap(randomBytes(32), v, sig()))).kind).toBe('key_disabled');
  });

  test.each([
    ['PendingImport', 'pending_import'],
    ['Unavailable', 'unavailable'],
  ] as const)('%s maps to %s', async (awsState, state) => {
    const key = fake.createKey();
    fake.setKeyState(key.keyId, awsState);
    const h = await harness({ keyId: key.arn });
    const v = await h.provider.currentVersion(sig());
    expect(v.state).toBe(state);
    expect(v.detail).toBeTruthy();
  });

  test('a key that is not a symmetric encryption key is refused with a clear error', async () => {
    const key = fake.createKey({ keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
    const h = await harness({ keyId: key.arn });
    const e = await rejection(h.provider.currentVersion(sig()));
    expect(e.kind).toBe('invalid_input');
    expect(e.message).toContain('SYMMETRIC_DEFAULT');
  });

  test('an unknown key is unknown_key with a hint', async () => {
    const h = await harness({ keyId: 'alias/does-not-exist' });
    const e = await rejection(h.provider.currentVersion(sig()));
    expect(e.kind).toBe('unknown_key');
    expect(e.message).toContain('aws.keyId');
  });
});

describe('retries and deadlines', () => {
  async function ready(overrides: Record<string, unknown> = {}): Promise<{ h: Harness; v: KeyVersionInfo }> {
    const key = fake.createKey();
    const h = await harness({ keyId: key.arn, ...overrides });
    return { h, v: await h.provider.currentVersion(sig()) };
  }

  test('throttling within the deadline: retried, then success', async () => {
    const { h, v } = await ready();
    const from = fake.log.length;
    fake.faults.push(
      { op: 'Encrypt', type: 'ThrottlingException' },
      { op: 'Encrypt', type: 'ThrottlingException' },
    );
    const started = Date.now();
    await h.provider.wrap(randomBytes(32), v, sig(3000));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(fake.log.slice(from).map((r) => r.status)).toEqual([400, 400, 200]);
    const retries = await h.metrics.registry.getSingleMetric('kms_plugin_remote_retries_total')?.get();
    expect(retries?.values.find((x) => x.labels.operation === 'Encrypt')?.value).toBe(2);
  });

  test('a Retry-After that fits in the deadline is waited out (issue 14: RemoteCaller reads it for AWS too)', async () => {
    const { h, v } = await ready();
    const from = fake.log.length;
    fake.faults.push({ op: 'Encrypt', type: 'ThrottlingException', retryAfter: '1' });
    const started = Date.now();
    await h.provider.wrap(randomBytes(32), v, sig(3000));
    expect(Date.now() - started).toBeGreaterThanOrEqual(950); // the back-off alone would be ~50 ms
    expect(fake.log.slice(from).map((r) => r.status)).toEqual([400, 200]);
  });

  test('a Retry-After past the deadline fails at once, naming the wait, with no second request', async () => {
    const { h, v } = await ready();
    const from = fake.log.length;
    fake.faults.push({ op: 'Encrypt', status: 503, retryAfter: '5' });
    const started = Date.now();
    const e = await rejection(h.provider.wrap(randomBytes(32), v, sig(2000)));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(e.kind).toBe('unavailable');
    expect(e.message).toMatch(/^aws Encrypt arn:aws:kms:.*Retry-After 5 s does not fit/);
    expect(since('Encrypt', from)).toBe(1);
  });

  test('500 and 503 are retried; the SDK itself makes one attempt per send', async () => {
    const { h, v } = await ready();
    const from = fake.log.length;
    fake.faults.push({ op: 'Encrypt', status: 500 }, { op: 'Encrypt', status: 503 });
    await h.provider.wrap(randomBytes(32), v, sig(3000));
    expect(fake.log.slice(from).map((r) => r.status)).toEqual([500, 503, 200]);

    const single = await ready({ maxAttempts: 1 });
    const from2 = fake.log.length;
    fake.faults.push({ op: 'Encrypt', status: 500 });
    const e = await rejection(single.h.provider.wrap(randomBytes(32), single.v, sig(3000)));
    expect(e.kind).toBe('unavailable');
    expect(since('Encrypt', from2)).toBe(1);
  });

  test('throttling past the deadline: a clean throttled/deadline error, on time', async () => {
    const { h, v } = await ready({ maxAttempts: 10 });
    fake.faultRule = (op) => (op === 'Encrypt' ? { type: 'ThrottlingException' } : undefined);
    const started = Date.now();
    const e = await rejection(h.provider.wrap(randomBytes(32), v, sig(400)));
    const elapsed = Date.now() - started;
    expect(['throttled', 'deadline']).toContain(e.kind);
    expect(elapsed).toBeLessThan(550);
    expect(e.message).not.toMatch(/\bat \w+ \(/); // no stack dump in the message
  });

  test('a hung KMS: deadline error on time, and the request is really abandoned (no stuck call)', async () => {
    const { h, v } = await ready({ attemptTimeout: '5s' });
    const w = await h.provider.wrap(randomBytes(32), v, sig());
    fake.faults.push({ op: 'Decrypt', hang: true });
    const from = fake.log.length;
    const started = Date.now();
    const e = await rejection(h.provider.unwrap(w.wrapped, w.ref, sig(400)));
    expect(e.kind).toBe('deadline');
    expect(Date.now() - started).toBeLessThan(600);
    await new Promise((r) => setTimeout(r, 100));
    const hung = fake.log.slice(from).find((r) => r.op === 'Decrypt');
    expect(hung?.fault).toBe('hang');
    expect(hung?.aborted).toBe(true);
    expect(fake.pendingRequests()).toBe(0);
  });

  test('one hung attempt inside a longer deadline: the attempt is cut at attemptTimeout and retried', async () => {
    const { h, v } = await ready({ attemptTimeout: '200ms' });
    const w = await h.provider.wrap(randomBytes(32), v, sig());
    fake.faults.push({ op: 'Decrypt', hang: true });
    const from = fake.log.length;
    const started = Date.now();
    await h.provider.unwrap(w.wrapped, w.ref, sig(3000));
    expect(Date.now() - started).toBeLessThan(1200);
    const attempts = fake.log.slice(from).filter((r) => r.op === 'Decrypt');
    expect(attempts.map((r) => r.fault ?? r.status)).toEqual(['hang', 200]);
  });

  test('a reset connection is retried', async () => {
    const { h, v } = await ready();
    fake.faults.push({ op: 'Encrypt', reset: true });
    const from = fake.log.length;
    await h.provider.wrap(randomBytes(32), v, sig(3000));
    expect(since('Encrypt', from)).toBe(2);
  });

  test('AccessDenied is permission_denied and not retried', async () => {
    const { h, v } = await ready();
    fake.faults.push({
      op: 'Encrypt',
      type: 'AccessDeniedException',
      message: 'User: arn:aws:sts::111122223333:assumed-role/kms/x is not authorized to perform: kms:Encrypt',
    });
    const from = fake.log.length;
    const e = await rejection(h.provider.wrap(randomBytes(32), v, sig()));
    expect(e.kind).toBe('permission_denied');
    expect(e.message).toContain('kms:Encrypt');
    expect(e.retryable).toBe(false);
    expect(since('Encrypt', from)).toBe(1);
  });

  test('a KMS that is not there: unavailable, within the deadline', async () => {
    const dead = new FakeAwsKms();
    await dead.listen();
    const key = dead.createKey();
    const url = dead.url;
    await dead.close();
    const h = await makeAwsProvider(dead, { keyId: key.arn, endpoint: url });
    open.push(h);
    const started = Date.now();
    const e = await rejection(h.provider.currentVersion(sig(1000)));
    expect(['unavailable', 'deadline']).toContain(e.kind);
    expect(Date.now() - started).toBeLessThan(1200);
  });
});

describe('no secrets in errors or logs', () => {
  test('DEKs, wrapped DEKs and credentials never show up', async () => {
    const key = fake.createKey();
    const h = await harness({ keyId: key.arn });
    const v = await h.provider.currentVersion(sig());
    const dek = randomBytes(32);
    const w = await h.provider.wrap(dek, v, sig());
    const messages: string[] = [];
    const collect = async (p: Promise<unknown>): Promise<void> => {
      const e = await rejection(p);
      messages.push(e.message, String((e.cause as Error | undefined)?.message ?? ''));
    };
    fake.faults.push({ op: 'Decrypt', type: 'AccessDeniedException' });
    await collect(h.provider.unwrap(w.wrapped, w.ref, sig()));
    const tampered = Buffer.from(w.wrapped);
    tampered[20] ^= 0xff;
    await collect(h.provider.unwrap(tampered, w.ref, sig()));
    fake.faults.push({ op: 'Encrypt', hang: true });
    await collect(h.provider.wrap(dek, v, sig(200)));
    fake.setKeyState(key.keyId, 'PendingDeletion');
    await h.provider.currentVersion(sig());

    const haystack = [...messages, ...h.log.lines].join('\n');
    const needles = [
      dek.toString('base64'),
      dek.toString('hex'),
      w.wrapped.toString('base64'),
      w.wrapped.toString('hex'),
      tampered.toString('base64'),
      TEST_SECRET_ACCESS_KEY,
    ];
    for (const n of needles) expect(haystack).not.toContain(n);
    expect(h.log.lines.length).toBeGreaterThan(0);
  });
});
