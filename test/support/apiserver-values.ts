/**
 * etcd values exactly as kube-apiserver writes them, for census and retirement tests:
 *
 *   identity   `k8s\0` + a runtime.Unknown protobuf (typeMeta, raw)
 *   aescbc     `k8s:enc:aescbc:v1:<key name>:` + 16-byte IV + AES-256-CBC (PKCS#7) of the object
 *   KMS v2     `k8s:enc:kms:v2:<provider name>:` + EncryptedObject: a fresh seed Encrypted by a real
 *              Envelope over a local key file (this plugin), the object sealed under it with the
 *              1.29+ HKDF scheme (DEK-source type 1) and the etcd key as AAD
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { encodeEncryptedObject } from '../../src/cli/etcd/encrypted-object.js';
import { sealObjectType1 } from '../../src/cli/etcd/hkdf.js';
import { timeoutSignal } from '../../src/deadline.js';
import { Envelope } from '../../src/envelope/envelope.js';
import { LocalProvider } from '../../src/kek/local/provider.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

function field(num: number, bytes: Buffer): Buffer {
  const len: number[] = [];
  let v = bytes.length;
  while (v > 0x7f) {
    len.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  len.push(v);
  return Buffer.concat([Buffer.from([(num << 3) | 2, ...len]), bytes]);
}

/** A Secret as kube-apiserver's protobuf serializer stores it (runtime.Unknown envelope). */
export function secretObject(name: string, kind = 'Secret'): Buffer {
  const typeMeta = Buffer.concat([field(1, Buffer.from('v1')), field(2, Buffer.from(kind))]);
  // raw: a stand-in for the Secret message with a name and some data
  const raw = Buffer.concat([field(1, field(1, Buffer.from(name))), field(2, randomBytes(24))]);
  return Buffer.concat([Buffer.from('k8s\0'), field(1, typeMeta), field(2, raw), field(4, Buffer.from(''))]);
}

export function identityValue(name: string): Buffer {
  return secretObject(name);
}

/** kube-apiserver's aescbc transformer output for `plaintext` under key `keyName`. */
export function aescbcValue(keyName: string, key: Buffer, plaintext: Buffer): Buffer {
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', key, iv);
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([Buffer.from(`k8s:enc:aescbc:v1:${keyName}:`), iv, body]);
}

/** Writes KMS v2 values through a real Envelope over a local key file. */
export class KmsV2Writer {
  private constructor(
    readonly provider: LocalProvider,
    readonly envelope: Envelope,
    readonly providerName: string,
  ) {}

  static async create(keyFile: string, providerName = 'kms-plugin'): Promise<KmsV2Writer> {
    const logger = createLogger({ level: 'silent' });
    const provider = new LocalProvider(
      { keyFile, allowInsecurePermissions: false, createIfMissing: false, watch: false },
      { logger, metrics: new Metrics({ processMetrics: false }), role: 'primary' },
    );
    const envelope = new Envelope({
      primary: provider,
      keyIdGeneration: 0,
      dekMaxAgeMs: 86_400_000,
      dekMaxUses: 1_000_000,
      cacheSize: 10,
      cacheTtlMs: 60_000,
      maxPlaintextBytes: 1024,
      logger,
    });
    const w = new KmsV2Writer(provider, envelope, providerName);
    await w.adoptPrimary();
    return w;
  }

  /** Re-reads the key file and wraps with its primary from now on (after `rotate`). */
  async adoptPrimary(): Promise<string> {
    return this.envelope.adopt(
      await this.provider.currentVersion(timeoutSignal(2000)),
      'kek_change',
      timeoutSignal(2000),
    );
  }

  get keyId(): string {
    return this.envelope.writeInfo()!.keyId;
  }

  private current:
    { seed: Buffer; keyId: string; ciphertext: Buffer; annotations: Record<string, Buffer> } | undefined;

  /**
   * As the apiserver does: one seed Encrypted at startup and again whenever the key_id changes,
   * reused for every object meanwhile (each object gets its own HKDF info).
   */
  value(etcdKey: string, object: Buffer): Buffer {
    if (this.current === undefined || this.current.keyId !== this.keyId) {
      const seed = randomBytes(32);
      this.current = { seed, ...this.envelope.encrypt(seed) };
    }
    const { seed, ...r } = this.current;
    const o = encodeEncryptedObject({
      encryptedData: sealObjectType1(seed, object, etcdKey),
      keyID: r.keyId,
      encryptedDEKSource: r.ciphertext,
      annotations: r.annotations,
      encryptedDEKSourceType: 1,
    });
    return Buffer.concat([Buffer.from(`k8s:enc:kms:v2:${this.providerName}:`), o]);
  }

  async close(): Promise<void> {
    this.envelope.close();
    await this.provider.close();
  }
}
