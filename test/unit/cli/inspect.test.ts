/**
 * `inspect` in process, on values built from a real Envelope over a local key file (the
 * CLI-process version is in test/integration/rotation-breakglass.test.ts; decryptEtcdValue in
 * decrypt-etcd-value.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { encodeEncryptedObject, type EncryptedObject } from '../../../src/cli/etcd/encrypted-object.js';
import { gcmSeal, sealObjectType1 } from '../../../src/cli/etcd/hkdf.js';
import { formatInspection, inspectValue } from '../../../src/cli/inspect.js';
import { keygen } from '../../../src/cli/keygen.js';
import { timeoutSignal } from '../../../src/deadline.js';
import { Envelope, dekIdOf } from '../../../src/envelope/envelope.js';
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

describe('inspectValue', () => {
  it('reports what protects the value, and nothing secret', () => {
    const i = inspectValue(etcdValue(1));
    const w = envelope.writeInfo()!;
    expect(i).toMatchObject({
      storage: 'kms-v2',
      providerName: 'main',
      keyId: w.keyId,
      dekSourceType: 1,
      ours: true,
      kek: w.ref,
      keyIdGeneration: 3,
      keyIdConsistent: true,
      dekId: w.dekId,
      formatVersion: 2,
      formatKnown: true,
    });
    const text = formatInspection(i);
    expect(text).toContain(`dek id:`);
    expect(text).toContain(w.dekId);
    expect(text).toMatch(/key-id generation:\s+3/);
    const wrapped = envelope.encrypt(randomBytes(32)).annotations['dek.k8s-kms-plugin.io'];
    expect(dekIdOf(wrapped)).toBe(w.dekId);
    expect(text).not.toContain(wrapped.toString('base64'));
  });

  it('flags a key_id that does not match the KEK reference, and annotations that are not ours', () => {
    const altered = inspectValue(etcdValue(1, (o) => (o.keyID = 'local-' + '0'.repeat(40))));
    expect(altered.keyIdConsistent).toBe(false);
    expect(formatInspection(altered)).toContain('DOES NOT MATCH');
    const foreign = inspectValue(
      etcdValue(0, (o) => (o.annotations = { 'version.other-plugin.example.com': Buffer.from('2') })),
    );
    expect(foreign).toMatchObject({
      storage: 'kms-v2',
      ours: false,
      dekSourceType: 0,
      annotationKeys: ['version.other-plugin.example.com'],
    });
    expect(formatInspection(foreign)).toContain('not k8s-kms-plugin');
  });
});
