/**
 * An emulation of what kube-apiserver does with a KMS v2 plugin (contract §3, §5, §9 check 34):
 *
 *   Status (validated, version pinned) → Encrypt a fresh 32-byte seed (validated, key_id == Status)
 *   → per-object key: HKDF-SHA256 expand-only from the seed with a random 32-byte info (type 1), or
 *     the seed itself with a counter nonce (type 0, 1.27) → AES-256-GCM with AAD = the etcd key
 *   → etcd value `k8s:enc:kms:v2:<name>:` + EncryptedObject
 *   → on read: decode, re-validate, Decrypt on a cache miss (new uid), decrypt the object.
 *
 * Used by test/conformance/*.test.ts for every provider (see defineApiserverConformance).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { KmsClient } from '../../src/server/client.js';
import {
  StatusValidator,
  annotationProblems,
  encryptResponseProblems,
  keyIdProblems,
  type Profile,
} from './apiserver-rules.js';
import {
  decodeEncryptedObject,
  encodeEncryptedObject,
  type EncryptedObject,
} from '../../src/cli/etcd/encrypted-object.js';
import { gcmOpen, gcmSeal, hkdfExpandSha256 } from '../../src/cli/etcd/hkdf.js';

export { hkdfExpandSha256 };

export class ViolationError extends Error {
  constructor(
    readonly step: string,
    readonly problems: string[],
  ) {
    super(`${step}: ${problems.join('; ')}`);
  }
}

interface WriteState {
  keyId: string;
  seed: Buffer;
  encryptedDEKSource: Buffer;
  annotations: Record<string, Buffer>;
  counter: bigint;
  noncePrefix: Buffer;
}

export interface EmulatorOptions {
  profile: Profile;
  /** EncryptionConfiguration kms.name (part of the etcd prefix). */
  providerName?: string;
  timeoutMs?: number;
}

export class ApiserverEmulator {
  readonly client: KmsClient;
  readonly status: StatusValidator;
  readonly prefix: string;
  private write: WriteState | undefined;
  /** The apiserver's decrypted-seed cache: cacheKey → seed. */
  private readonly seedCache = new Map<string, Buffer>();
  decryptCalls = 0;

  constructor(
    endpoint: string,
    private readonly options: EmulatorOptions,
  ) {
    this.client = new KmsClient(endpoint);
    this.status = new StatusValidator(options.profile);
    this.prefix = `k8s:enc:kms:v2:${options.providerName ?? 'k8s-kms-plugin'}:`;
  }

  get dekSourceType(): 0 | 1 {
    return this.options.profile === 'p127' ? 0 : 1;
  }

  get currentKeyId(): string | undefined {
    return this.write?.keyId;
  }

  close(): void {
    this.client.close();
  }

  /** One probe: Status; Encrypt a new seed when key_id changed or nothing is primed (§3.2). */
  async probe(): Promise<{ keyId: string; rotated: boolean }> {
    const s = await this.client.status(this.options.timeoutMs ?? 3000);
    const problems = this.status.check(s);
    if (problems.length) throw new ViolationError('status', problems);
    if (this.write && this.write.keyId === s.key_id) return { keyId: s.key_id, rotated: false };
    const seed = randomBytes(32);
    const uid = randomUUID();
    const resp = await this.client.encrypt({ plaintext: seed, uid }, this.options.timeoutMs ?? 3000);
    const encProblems = encryptResponseProblems(resp, s.key_id);
    if (Buffer.from(resp.ciphertext).includes(seed)) encProblems.push('ciphertext contains the seed');
    for (const v of Object.values(resp.annotations ?? {}))
      if (Buffer.from(v).includes(seed)) encProblems.push('an annotation contains the seed');
    if (encProblems.length) throw new ViolationError('encrypt', encProblems);
    this.write = {
      keyId: resp.key_id,
      seed,
      encryptedDEKSource: Buffer.from(resp.ciphertext),
      annotations: resp.annotations ?? {},
      counter: 1_000_000_001n,
      noncePrefix: randomBytes(4),
    };
    this.seedCache.set(
      this.cacheKey(this.dekSourceType, resp.ciphertext, resp.key_id, resp.annotations ?? {}),
      seed,
    );
    return { keyId: resp.key_id, rotated: true };
  }

  /** TransformToStorage: the etcd value for `plaintext` stored at `etcdKey`. No plugin call. */
  writeObject(etcdKey: string, plaintext: Buffer): Buffer {
    const w = this.write;
    if (!w) throw new Error('not primed');
    const aad = Buffer.from(etcdKey);
    let encryptedData: Buffer;
    if (this.dekSourceType === 1) {
      const info = randomBytes(32);
      const dek = hkdfExpandSha256(w.seed, info);
      encryptedData = Buffer.concat([info, gcmSeal(dek, randomBytes(12), plaintext, aad)]);
    } else {
      const nonce = Buffer.alloc(12);
      w.noncePrefix.copy(nonce, 0);
      nonce.writeBigUInt64LE(w.counter, 4);
      w.counter += 1n;
      encryptedData = gcmSeal(w.seed, nonce, plaintext, aad);
    }
    const obj: EncryptedObject = {
      encryptedData,
      keyID: w.keyId,
      encryptedDEKSource: w.encryptedDEKSource,
      annotations: w.annotations,
      encryptedDEKSourceType: this.dekSourceType,
    };
    return Buffer.concat([Buffer.from(this.prefix), encodeEncryptedObject(obj)]);
  }

  /** Drops the decrypted-seed cache (what an apiserver restart does). */
  dropCache(): void {
    this.seedCache.clear();
  }

  /** TransformFromStorage: validate, Decrypt on a cache miss, open the object. */
  async readObject(etcdKey: string, value: Buffer): Promise<{ plaintext: Buffer; stale: boolean }> {
    if (!value.subarray(0, this.prefix.length).equals(Buffer.from(this.prefix)))
      throw new ViolationError('read', ['wrong prefix']);
    const obj = decodeEncryptedObject(value.subarray(this.prefix.length));
    const problems = [...keyIdProblems(obj.keyID), ...annotationProblems(obj.annotations)];
    if (obj.encryptedDEKSource.length === 0 || obj.encryptedDEKSource.length > 1024)
      problems.push('bad encryptedDEKSource size');
    if (obj.encryptedData.length === 0) problems.push('encryptedData empty');
    if (problems.length) throw new ViolationError('read.validate', problems);
    const key = this.cacheKey(obj.encryptedDEKSourceType, obj.encryptedDEKSource, obj.keyID, obj.annotations);
    let seed = this.seedCache.get(key);
    if (!seed) {
      this.decryptCalls += 1;
      const resp = await this.client.decrypt(
        {
          ciphertext: obj.encryptedDEKSource,
          key_id: obj.keyID,
          annotations: obj.annotations,
          uid: randomUUID(),
        },
        this.options.timeoutMs ?? 3000,
      );
      seed = Buffer.from(resp.plaintext);
      this.seedCache.set(key, seed);
    }
    const aad = Buffer.from(etcdKey);
    let plaintext: Buffer;
    if (obj.encryptedDEKSourceType === 1) {
      if (seed.length < 32) throw new ViolationError('read', ['seed shorter than 32 bytes']);
      const info = obj.encryptedData.subarray(0, 32);
      plaintext = gcmOpen(hkdfExpandSha256(seed, info), obj.encryptedData.subarray(32), aad);
    } else {
      plaintext = gcmOpen(seed, obj.encryptedData, aad);
    }
    const stale = obj.keyID !== this.write?.keyId || obj.encryptedDEKSourceType !== this.dekSourceType;
    return { plaintext, stale };
  }

  /** The apiserver's cache key (§3.4), as a hex string. */
  private cacheKey(
    type: number,
    source: Uint8Array,
    keyId: string,
    annotations: Record<string, Uint8Array>,
  ): string {
    const parts: Buffer[] = [];
    const u32 = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const lp = (b: Uint8Array): Buffer => {
      const l = Buffer.alloc(2);
      l.writeUInt16BE(b.length);
      return Buffer.concat([l, Buffer.from(b)]);
    };
    parts.push(u32(type), lp(source), lp(Buffer.from(keyId)));
    const keys = Object.keys(annotations).sort();
    if (keys.length) {
      parts.push(u32(keys.length));
      for (const k of keys) parts.push(lp(Buffer.from(k)), lp(annotations[k]));
    }
    return Buffer.concat(parts).toString('hex');
  }
}
