/**
 * The Vault Transit provider against the wire-level fake: round trips, what goes on the wire,
 * rotation, key_id inputs, key states, namespaces and fail-closed unwraps.
 */
import { randomBytes } from 'node:crypto';
import { VaultHarness, deadlineIn, useVaultHarness } from '../fakes/vault-transit/harness.js';

const sig = (): AbortSignal => deadlineIn(3000);

describe('vault provider against the fake', () => {
  let h: VaultHarness;

  useVaultHarness((started) => (h = started));

  test('round trip: wrap with the current version, unwrap with the stored ref', async () => {
    const p = await h.provider({ associatedData: 'cluster-a' });
    const v = await p.currentVersion(sig());
    expect(v.state).toBe('enabled');
    expect(v.ordinal).toBe(1);
    const dek = randomBytes(32);
    const { wrapped, ref } = await p.wrap(dek, v, sig());
    expect(ref).toEqual(v.ref);
    expect(wrapped.toString()).toMatch(/^vault:v1:/);
    expect(wrapped.includes(dek)).toBe(false);
    expect(await p.unwrap(wrapped, ref, sig())).toEqual(dek);
  });

  test('sends token, explicit key_version and associated_data on the wire', async () => {
    const p = await h.provider({ associatedData: 'cluster-a' });
    const v = await p.currentVersion(sig());
    const { wrapped, ref } = await p.wrap(randomBytes(32), v, sig());
    await p.unwrap(wrapped, ref, sig());
    const enc = h.fake.requests.find((r) => r.path === 'transit/encrypt/kek');
    const dec = h.fake.requests.find((r) => r.path === 'transit/decrypt/kek');
    expect(enc?.token).toBe(h.fake.rootToken);
    expect(enc?.body.key_version).toBe(1);
    expect(enc?.body.associated_data).toBe(Buffer.from('cluster-a').toString('base64'));
    expect(dec?.body.associated_data).toBe(Buffer.from('cluster-a').toString('base64'));
    expect(dec?.body.ciphertext).toBe(wrapped.toString());
  });

  test('KekRef: canonical key, version N, unique = creation time; identical across instances', async () => {
    const a = await h.provider();
    const b = await h.provider();
    const va = await a.currentVersion(sig());
    const vb = await b.currentVersion(sig());
    expect(va.ref).toEqual(vb.ref);
    expect(va.ref).toEqual({
      provider: 'vault',
      key: `${h.url}/v1/transit/keys/kek`,
      version: '1',
      unique: String(h.fake.key('kek').versions.get(1)!.created),
    });
    expect(JSON.stringify(va.ref)).not.toContain(h.fake.rootToken);
  });

  test('rotation gives a new ref with a higher ordinal, and old DEKs still unwrap', async () => {
    const p = await h.provider();
    const v1 = await p.currentVersion(sig());
    const dek1 = randomBytes(32);
    const w1 = await p.wrap(dek1, v1, sig());
    h.fake.rotateKey('kek');
    const v2 = await p.currentVersion(sig());
    expect(v2.ref.version).toBe('2');
    expect(v2.ordinal).toBeGreaterThan(v1.ordinal);
    expect(v2.ref).not.toEqual(v1.ref);
    const dek2 = randomBytes(32);
    const w2 = await p.wrap(dek2, v2, sig());
    expect(w2.wrapped.toString()).toMatch(/^vault:v2:/);
    expect(await p.unwrap(w1.wrapped, w1.ref, sig())).toEqual(dek1);
    expect(await p.unwrap(w2.wrapped, w2.ref, sig())).toEqual(dek2);
    // Wrapping with the adopted v1 after the rotation still uses exactly v1.
    const again = await p.wrap(randomBytes(32), v1, sig());
    expect(again.wrapped.toString()).toMatch(/^vault:v1:/);
  });

  test('unwrap fails closed: wrong ref version, wrong key, tampered ciphertext, wrong associated data', async () => {
    const p = await h.provider({ associatedData: 'cluster-a' });
    const v = await p.currentVersion(sig());
    const { wrapped, ref } = await p.wrap(randomBytes(32), v, sig());
    await expect(p.unwrap(wrapped, { ...ref, version: '2' }, sig())).rejects.toMatchObject({
      kind: 'unauthenticated',
    });
    await expect(
      p.unwrap(wrapped, { ...ref, key: 'https://other/v1/transit/keys/kek' }, sig()),
    ).rejects.toMatchObject({
      kind: 'unknown_key',
    });
    const text = wrapped.toString();
    const blob = Buffer.from(text.slice('vault:v1:'.length), 'base64');
    blob[20] ^= 1;
    await expect(
      p.unwrap(Buffer.from(`vault:v1:${blob.toString('base64')}`), ref, sig()),
    ).rejects.toMatchObject({
      kind: 'unauthenticated',
    });
    await expect(p.unwrap(Buffer.from('not a ciphertext'), ref, sig())).rejects.toMatchObject({
      kind: 'unauthenticated',
    });
    const other = await h.provider({ associatedData: 'cluster-b' });
    await expect(other.unwrap(wrapped, ref, sig())).rejects.toMatchObject({ kind: 'unauthenticated' });
  });

  test('a re-created key never reuses a ref, and old DEKs are refused by creation time', async () => {
    let now = Date.now();
    await h.close();
    h = await new VaultHarness({ clock: () => now }).start();
    h.fake.createKey('kek');
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    const w = await p.wrap(randomBytes(32), v, sig());
    h.fake.deleteKey('kek');
    now += 5000;
    h.fake.createKey('kek');
    const again = await p.currentVersion(sig());
    expect(again.ref.version).toBe('1');
    expect(again.ref.unique).not.toBe(v.ref.unique);
    await expect(p.unwrap(w.wrapped, w.ref, sig())).rejects.toMatchObject({ kind: 'unknown_key' });
  });

  test('canUnwrap only accepts this key', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    expect(p.canUnwrap(v.ref)).toBe(true);
    expect(p.canUnwrap({ ...v.ref, provider: 'aws' })).toBe(false);
    expect(p.canUnwrap({ ...v.ref, key: `${h.url}/v1/transit/keys/other` })).toBe(false);
    expect(p.canUnwrap({ ...v.ref, version: 'x' })).toBe(false);
    // The foreign-reference check shared by every provider (src/kek/ownership.ts).
    const foreign = { ...v.ref, key: `${h.url}/v1/transit/keys/other` };
    await expect(p.wrap(Buffer.alloc(32), { ...v, ref: foreign }, sig())).rejects.toMatchObject({
      kind: 'invalid_input',
      name: 'ForeignWrapRefError',
    });
    await expect(p.unwrap(Buffer.alloc(32), foreign, sig())).rejects.toMatchObject({
      kind: 'unknown_key',
      name: 'ForeignUnwrapRefError',
    });
  });

  test('min_decryption_version: old DEKs are refused as key_disabled with a clear message', async () => {
    const p = await h.provider();
    const v1 = await p.currentVersion(sig());
    const w1 = await p.wrap(randomBytes(32), v1, sig());
    h.fake.rotateKey('kek');
    h.fake.configureKey('kek', { minDecryptionVersion: 2 });
    const v2 = await p.currentVersion(sig());
    expect(v2.state).toBe('enabled');
    const err = await p.unwrap(w1.wrapped, w1.ref, sig()).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'key_disabled' });
    expect(String((err as Error).message)).toMatch(/min_decryption_version/);
  });

  test('min_encryption_version: wrapping with an older adopted version is key_disabled', async () => {
    const p = await h.provider();
    const v1 = await p.currentVersion(sig());
    h.fake.rotateKey('kek');
    h.fake.configureKey('kek', { minEncryptionVersion: 2 });
    await expect(p.wrap(randomBytes(32), v1, sig())).rejects.toMatchObject({ kind: 'key_disabled' });
  });

  test('deletion: deletion_allowed → pending_deletion, deleted → destroyed; both loud and in the metric', async () => {
    const p = await h.provider();
    await p.currentVersion(sig());
    h.fake.configureKey('kek', { deletionAllowed: true });
    const pending = await h.probe(p, sig());
    expect(pending.state).toBe('pending_deletion');
    expect(pending.detail).toMatch(/deletion_allowed/);
    expect(await h.metric('kms_plugin_kek_state', { provider: 'vault', state: 'pending_deletion' })).toBe(1);
    expect(await h.metric('kms_plugin_kek_state', { provider: 'vault', state: 'enabled' })).toBe(0);
    h.fake.deleteKey('kek');
    const gone = await h.probe(p, sig());
    expect(gone.state).toBe('destroyed');
    expect(await h.metric('kms_plugin_kek_state', { provider: 'vault', state: 'destroyed' })).toBe(1);
    const errors = h.logs
      .records()
      .filter((r) => r.level === 'error' && String(r.msg).includes('SCHEDULED FOR DELETION OR DESTROYED'));
    expect(errors.map((r) => r.state)).toEqual(['pending_deletion', 'destroyed']);
    await expect(p.wrap(randomBytes(32), gone, sig())).rejects.toMatchObject({ kind: 'key_disabled' });
  });

  test('a missing key at start is unknown_key with advice; a wrong mount names the mount', async () => {
    const p = await h.provider({ keyName: 'nope' });
    await expect(p.currentVersion(sig())).rejects.toMatchObject({
      kind: 'unknown_key',
      message: expect.stringMatching(/keyName/),
    });
    const q = await h.provider({ transitMount: 'elsewhere' });
    await expect(q.currentVersion(sig())).rejects.toMatchObject({
      kind: 'unknown_key',
      message: expect.stringMatching(/transitMount/),
    });
  });

  test('namespace goes in X-Vault-Namespace and into the key string; a custom mount works', async () => {
    h.fake.mountTransit('kms/transit', 'team-a');
    h.fake.createKey('cluster-kek', { mount: 'kms/transit', namespace: 'team-a' });
    const token = h.fake.issueToken({ namespace: 'team-a', ttlSeconds: 0 });
    const p = await h.provider({
      namespace: 'team-a',
      transitMount: '/kms/transit/',
      keyName: 'cluster-kek',
      auth: { method: 'token', tokenFile: h.file('ns-token', token) },
    });
    const v = await p.currentVersion(sig());
    expect(v.ref.key).toBe(`${h.url}/v1/team-a/kms/transit/keys/cluster-kek`);
    const dek = randomBytes(32);
    const w = await p.wrap(dek, v, sig());
    expect(await p.unwrap(w.wrapped, w.ref, sig())).toEqual(dek);
    const seen = h.fake.requests.filter((r) => r.path.startsWith('kms/transit/'));
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.every((r) => r.namespace === 'team-a')).toBe(true);
    // The same key without the namespace is not found.
    const q = await h.provider({ transitMount: 'kms/transit', keyName: 'cluster-kek' });
    await expect(q.currentVersion(sig())).rejects.toMatchObject({ kind: 'unknown_key' });
  });

  test('remote calls are counted by operation and outcome', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    await p.wrap(randomBytes(32), v, sig());
    expect(
      await h.metric('kms_plugin_remote_calls_total', {
        provider: 'vault',
        operation: 'encrypt',
        outcome: 'ok',
      }),
    ).toBe(1);
    expect(
      await h.metric('kms_plugin_remote_calls_total', {
        provider: 'vault',
        operation: 'read_key',
        outcome: 'ok',
      }),
    ).toBe(1);
  });
});
