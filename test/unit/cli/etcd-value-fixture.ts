/**
 * A real Envelope over a fresh local key file, and `etcdValue()`: what kube-apiserver stores in
 * etcd for an object (Encrypt a fresh seed, encrypt the object under it, prefix). Shared by
 * inspect.test.ts and decrypt-etcd-value.test.ts; registers its beforeAll/afterAll in the caller.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { encodeEncryptedObject, type EncryptedObject } from '../../../src/cli/etcd/encrypted-object.js';
import { gcmSeal, sealObjectType1 } from '../../../src/cli/etcd/hkdf.js';
import { keygen } from '../../../src/cli/keygen.js';
import { timeoutSignal } from '../../../src/deadline.js';
import { Envelope } from '../../../src/envelope/envelope.js';
import { LocalProvider } from '../../../src/kek/local/provider.js';
import { createLogger, type Logger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { tempDir } from '../../support/plugin-process.js';

export interface EtcdValueFixture {
  keyFile: string;
  logger: Logger;
  /** The object every etcdValue() encrypts. */
  OBJECT: Buffer;
  /** The etcd key bound into every value (type 1 and the GCM AAD of type 0). */
  ETCD_KEY: string;
  /** The envelope (set up in beforeAll). */
  envelope(): Envelope;
  etcdValue(type: 0 | 1, tweak?: (o: EncryptedObject) => void): Buffer;
}

export function etcdValueFixture(): EtcdValueFixture {
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

  return { keyFile, logger, OBJECT, ETCD_KEY, envelope: () => envelope, etcdValue };
}
