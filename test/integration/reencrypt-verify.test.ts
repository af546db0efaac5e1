/**
 * `reencrypt --verify`: after the rewrite, the census over a real etcd reports what is still under
 * the old key, and the exit code says so (3), or 0 when nothing is. The fake kube-apiserver does
 * not write etcd, so the test arranges etcd's content itself: KMS v2 values as kube-apiserver
 * stores them (the EncryptedObject codec), some under the old key_id.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEncryptedObject } from '../../src/cli/etcd/encrypted-object.js';
import { FakeKubeApiserver } from '../fakes/kube-apiserver/server.js';
import { describeEtcd } from '../support/describe-etcd.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { requireBuild, runCli } from '../support/plugin-process.js';

function kmsV2Value(keyId: string): Buffer {
  const obj = encodeEncryptedObject({
    encryptedData: Buffer.alloc(40, 7),
    keyID: keyId,
    encryptedDEKSource: Buffer.alloc(32, 9),
    annotations: {},
    encryptedDEKSourceType: 1,
  });
  return Buffer.concat([Buffer.from('k8s:enc:kms:v2:kms-plugin:'), obj]);
}

describeEtcd('reencrypt --verify (real etcd)', () => {
  let etcd: TestEtcd;
  let api: FakeKubeApiserver;
  let dir: string;
  let kubeconfig: string;

  beforeAll(async () => {
    requireBuild();
    etcd = await startEtcd();
    dir = mkdtempSync(join(tmpdir(), 'kkp-reenc-verify-'));
    api = new FakeKubeApiserver();
    await api.listen();
    api.seed('secrets', 10, ['a']);
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, api.kubeconfig());
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const args = (): string[] => [
    'reencrypt',
    '--kubeconfig',
    kubeconfig,
    '--resource',
    'secrets',
    '--verify',
    '--old-version',
    'key-old',
    '--etcd-endpoints',
    etcd.endpoint,
  ];

  test('objects still under the old key_id: reported per resource, exit 3', async () => {
    const c = etcd.client();
    for (let i = 0; i < 10; i++)
      await c
        .put(`/registry/secrets/a/obj-${String(i).padStart(5, '0')}`)
        .value(kmsV2Value(i < 3 ? 'key-old' : 'key-new'));
    const r = await runCli(args(), {}, 60_000);
    expect(r.stdout).toMatch(/total: 10 rewritten/);
    expect(r.stdout).toMatch(/verify: 3 objects are still under key-old: secrets 3/);
    expect(r.code).toBe(3);
    c.close();
  }, 90_000);

  test('nothing left under the old key_id: exit 0', async () => {
    const c = etcd.client();
    for (let i = 0; i < 10; i++)
      await c.put(`/registry/secrets/a/obj-${String(i).padStart(5, '0')}`).value(kmsV2Value('key-new'));
    const r = await runCli(args(), {}, 60_000);
    expect(r.stdout).toMatch(/verify: no object is under key-old/);
    expect(r.code).toBe(0);
    c.close();
  }, 90_000);
});
