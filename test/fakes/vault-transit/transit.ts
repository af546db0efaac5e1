/**
 * The Transit key store behind the fake: real AES-256-GCM (Vault's aes256-gcm96 layout
 * `vault:v<N>:base64(nonce12 ‖ ciphertext ‖ tag16)`) with associated data, versions, rotation,
 * min decryption/encryption versions and deletion.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface TransitKey {
  name: string;
  /** Version → key material (index 1 is v1). */
  versions: Map<number, { material: Buffer; created: number }>;
  latest: number;
  minDecryptionVersion: number;
  minEncryptionVersion: number;
  deletionAllowed: boolean;
  exportable: boolean;
}

/** A Transit request failure, answered as `status {"errors":[message]}`. */
export class TransitError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class TransitStore {
  readonly keys = new Map<string, TransitKey>();

  constructor(private readonly clock: () => number) {}

  create(name: string): TransitKey {
    const existing = this.keys.get(name);
    if (existing) return existing;
    const key: TransitKey = {
      name,
      versions: new Map([[1, { material: randomBytes(32), created: this.seconds() }]]),
      latest: 1,
      minDecryptionVersion: 1,
      minEncryptionVersion: 0,
      deletionAllowed: false,
      exportable: false,
    };
    this.keys.set(name, key);
    return key;
  }

  get(name: string): TransitKey {
    const key = this.keys.get(name);
    if (!key) throw new TransitError(404, '');
    return key;
  }

  rotate(name: string): TransitKey {
    const key = this.get(name);
    key.latest += 1;
    key.versions.set(key.latest, { material: randomBytes(32), created: this.seconds() });
    return key;
  }

  configure(
    name: string,
    cfg: { minDecryptionVersion?: number; minEncryptionVersion?: number; deletionAllowed?: boolean },
  ): TransitKey {
    const key = this.get(name);
    if (cfg.minDecryptionVersion !== undefined) {
      if (cfg.minDecryptionVersion > key.latest) {
        throw new TransitError(
          400,
          `cannot set min decryption version of ${cfg.minDecryptionVersion}, latest key version is ${key.latest}`,
        );
      }
      key.minDecryptionVersion = Math.max(1, cfg.minDecryptionVersion);
    }
    if (cfg.minEncryptionVersion !== undefined) {
      if (cfg.minEncryptionVersion > key.latest)
        throw new TransitError(400, 'cannot set min encryption version higher than the latest version');
      key.minEncryptionVersion = Math.max(0, cfg.minEncryptionVersion);
    }
    if (cfg.deletionAllowed !== undefined) key.deletionAllowed = cfg.deletionAllowed;
    return key;
  }

  delete(name: string): void {
    const key = this.get(name);
    if (!key.deletionAllowed) throw new TransitError(400, 'deletion is not allowed for this key');
    this.keys.delete(name);
  }

  /** The `GET keys/<name>` data object. */
  describe(name: string): Record<string, unknown> {
    const key = this.get(name);
    const keys: Record<string, number> = {};
    for (const [v, { created }] of key.versions) if (v >= key.minDecryptionVersion) keys[String(v)] = created;
    return {
      name: key.name,
      type: 'aes256-gcm96',
      latest_version: key.latest,
      min_available_version: 0,
      min_decryption_version: key.minDecryptionVersion,
      min_encryption_version: key.minEncryptionVersion,
      keys,
      deletion_allowed: key.deletionAllowed,
      derived: false,
      exportable: key.exportable,
      allow_plaintext_backup: false,
      auto_rotate_period: 0,
      imported_key: false,
      supports_encryption: true,
      supports_decryption: true,
      supports_derivation: true,
      supports_signing: false,
    };
  }

  encrypt(
    name: string,
    plaintextB64: unknown,
    aadB64: unknown,
    keyVersion: unknown,
  ): { ciphertext: string; key_version: number } {
    const key = this.keys.get(name);
    if (!key) throw new TransitError(400, 'encryption key not found');
    const plaintext = decodeB64(plaintextB64, 'failed to base64-decode plaintext');
    const aad =
      aadB64 === undefined || aadB64 === ''
        ? undefined
        : decodeB64(aadB64, 'failed to base64-decode associated_data');
    let version = key.latest;
    if (keyVersion !== undefined && keyVersion !== 0) {
      if (typeof keyVersion !== 'number' || !Number.isInteger(keyVersion) || keyVersion < 0) {
        throw new TransitError(400, 'invalid key_version');
      }
      if (keyVersion < key.minEncryptionVersion) {
        throw new TransitError(
          400,
          'cannot encrypt: requested version for encryption is less than the minimum encryption key version',
        );
      }
      if (keyVersion > key.latest)
        throw new TransitError(
          400,
          'cannot encrypt: requested version for encryption is higher than the latest key version',
        );
      version = keyVersion;
    }
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.versions.get(version)!.material, nonce);
    if (aad) cipher.setAAD(aad);
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const blob = Buffer.concat([nonce, ct, cipher.getAuthTag()]);
    return { ciphertext: `vault:v${version}:${blob.toString('base64')}`, key_version: version };
  }

  decrypt(name: string, ciphertext: unknown, aadB64: unknown): { plaintext: string } {
    const key = this.keys.get(name);
    if (!key) throw new TransitError(400, 'encryption key not found');
    if (typeof ciphertext !== 'string' || !ciphertext.startsWith('vault:'))
      throw new TransitError(400, 'invalid ciphertext: no prefix');
    const m = /^vault:v(\d+):(.*)$/s.exec(ciphertext);
    if (!m) throw new TransitError(400, 'invalid ciphertext: wrong number of fields');
    const version = Number(m[1]);
    if (version < key.minDecryptionVersion) {
      throw new TransitError(400, 'ciphertext or signature version is disallowed by policy (too old)');
    }
    const material = key.versions.get(version);
    if (!material) throw new TransitError(400, 'invalid key version');
    const blob = decodeB64(m[2], 'invalid ciphertext: could not decode base64');
    if (blob.length < 28) throw new TransitError(400, 'invalid ciphertext: too short');
    const aad =
      aadB64 === undefined || aadB64 === ''
        ? undefined
        : decodeB64(aadB64, 'failed to base64-decode associated_data');
    try {
      const decipher = createDecipheriv('aes-256-gcm', material.material, blob.subarray(0, 12));
      if (aad) decipher.setAAD(aad);
      decipher.setAuthTag(blob.subarray(blob.length - 16));
      const pt = Buffer.concat([decipher.update(blob.subarray(12, blob.length - 16)), decipher.final()]);
      return { plaintext: pt.toString('base64') };
    } catch {
      throw new TransitError(400, 'cipher: message authentication failed');
    }
  }

  private seconds(): number {
    return Math.floor(this.clock() / 1000);
  }
}

function decodeB64(value: unknown, message: string): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw new TransitError(400, message);
  }
  return Buffer.from(value, 'base64');
}
