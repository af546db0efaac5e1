/**
 * The break-glass `decryptEtcdValue` in process, on values built from a real Envelope over a local
 * key file (the CLI-process version is in test/integration/rotation-breakglass.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { decryptEtcdValue } from '../../../src/cli/decrypt-etcd-value.js';
import { encodeEncryptedObject, type EncryptedObject } from '../../../src/cli/etcd/encrypted-object.js';
import { gcmSeal, sealObjectType1 } from '../../../src/cli/etcd/hkdf.js';

import { keygen } from '../../../src/cli/keygen.js';
import { timeoutSignal } from '../../../src/deadline.js';
import { Envelope } from '../../../src/envelope/envelope.js';
import { LocalProvider } from '../../../src/kek/local/provider.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { tempDir } from '../../support/plugin-process.js';

const dir = tempDir('kkp-uins-');
const keyFile = join(dir.path, 'kek.json');
const logger = createLogger({ level: 'silent' });
const OBJECT = Buffer.concat([Buffer.from('k8s\0'), randomBytes(40)]);
const ETCD_KEY = '/registry/secrets/prod/db';
let provider: LocalProvider;
let envelope: Envelope;

beforeAll(async () => {
  keygen(keyFile);
  provider = new LocalProvider(
    { keyFile, allowInsecurePermissions: false, createIfMissing: false, watch: false },
    { logger, metrics: new Metrics({ processMetrics: false }), role: 'primary' },
  );
  envelope = new Envelope({
    primary: provider,
    keyIdGeneration: 3,
    dekMaxAgeMs: 86_400_000,
    dekMaxUses: 1000,
    cacheSize: 10,
    cacheTtlMs: 60_000,
    maxPlaintextBytes: 995,
    logger,
  });
  await envelope.adopt(await provider.currentVersion(timeoutSignal(1000)), 'startup', timeoutSignal(1000));
});

afterAll(async () => {
  envelope.close();
  await provider.close();
  dir.cleanup();
});

/** What kube-apiserver stores: Encrypt a fresh seed, encrypt the object under it, prefix. */
function etcdValue(type: 0 | 1, tweak: (o: EncryptedObject) => void = () => undefined): Buffer {
  const seed = randomBytes(32);
  const r = envelope.encrypt(seed);
  const encryptedData =
    type === 1
      ? sealObjectType1(seed, OBJECT, ETCD_KEY)
      : gcmSeal(seed, randomBytes(12), OBJECT, Buffer.from(ETCD_KEY));
  const o: EncryptedObject = {
    encryptedData,
    keyID: r.keyId,
    encryptedDEKSource: r.ciphertext,
    annotations: r.annotations,
    encryptedDEKSourceType: type,
  };
  tweak(o);
  return Buffer.concat([Buffer.from('k8s:enc:kms:v2:main:'), encodeEncryptedObject(o)]);
}

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
