/**
 * The break-glass `decryptEtcdValue` in process, on values built from a real Envelope over a local
 * key file (the CLI-process version is in test/integration/rotation-breakglass.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { decryptEtcdValue } from '../../../src/cli/decrypt-etcd-value.js';

import { etcdValueFixture } from './etcd-value-fixture.js';

const { keyFile, logger, OBJECT, ETCD_KEY, etcdValue } = etcdValueFixture();

describe('decryptEtcdValue', () => {
  const flags = { 'local-key-file': keyFile, 'key-id-generation': 3 };

  it.each([0, 1] as const)('type %i: returns the stored object', async (type) => {
    expect(await decryptEtcdValue({ etcdKey: ETCD_KEY, value: etcdValue(type), flags, logger })).toEqual(
      OBJECT,
    );
  });

  it('fails closed on tampering, a wrong etcd key, and values that are not KMS v2', async () => {
    await expect(
      decryptEtcdValue({
        etcdKey: ETCD_KEY,
        value: etcdValue(1, (o) => (o.encryptedDEKSource[20] ^= 1)),
        flags,
        logger,
      }),
    ).rejects.toThrow(/failed authentication/);
    await expect(
      decryptEtcdValue({ etcdKey: '/registry/secrets/prod/other', value: etcdValue(1), flags, logger }),
    ).rejects.toThrow(/failed authentication/);
    await expect(
      decryptEtcdValue({ etcdKey: 'prod/db', value: etcdValue(1), flags, logger }),
    ).rejects.toThrow(/full etcd key/);
    await expect(
      decryptEtcdValue({ etcdKey: ETCD_KEY, value: Buffer.from('k8s:enc:aescbc:v1:k:xx'), flags, logger }),
    ).rejects.toThrow(/aescbc v1/);
  });
});
