/**
 * The fake's key store: symmetric keys with versioned AES-256 material, aliases and key states.
 * Ciphertexts are real AES-256-GCM with the key id and the canonical EncryptionContext as AAD, so
 * a wrong key, a wrong context or a flipped byte fails the way AWS KMS fails.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';

export type FakeKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport' | 'Unavailable';

export interface FakeKeyMaterial {
  id: string;
  bytes: Buffer;
  /** ms since epoch; the creation time for the original material, the rotation time otherwise. */
  at: number;
  rotationType?: 'AUTOMATIC' | 'ON_DEMAND';
}

export interface FakeKey {
  keyId: string;
  arn: string;
  description: string;
  creationDate: number;
  state: FakeKeyState;
  deletionDate?: number;
  keySpec: string;
  keyUsage: string;
  keyManager: 'CUSTOMER' | 'AWS';
  rotationEnabled: boolean;
  materials: FakeKeyMaterial[];
}

export class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const MAGIC = Buffer.from('FKMS1');

/** Canonical AAD form of an EncryptionContext (sorted pairs). */
export function canonicalContext(ctx: Record<string, string> | undefined): string {
  const c = ctx ?? {};
  return JSON.stringify(
    Object.keys(c)
      .sort()
      .map((k) => [k, c[k]]),
  );
}

export class KeyStore {
  readonly keys = new Map<string, FakeKey>();
  readonly aliases = new Map<string, string>();

  constructor(
    readonly region: string,
    readonly accountId: string,
    private readonly now: () => number,
  ) {}

  arnFor(keyId: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:key/${keyId}`;
  }

  aliasArn(name: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:${name}`;
  }

  create(
    opts: {
      description?: string;
      keyId?: string;
      keySpec?: string;
      keyUsage?: string;
      keyManager?: 'CUSTOMER' | 'AWS';
      state?: FakeKeyState;
      creationDate?: number;
    } = {},
  ): FakeKey {
    const keyId = opts.keyId ?? randomUUID();
    if (this.keys.has(keyId)) throw new KmsError('AlreadyExistsException', `key ${keyId} exists`);
    const at = opts.creationDate ?? this.now();
    const key: FakeKey = {
      keyId,
      arn: this.arnFor(keyId),
      description: opts.description ?? '',
      creationDate: at,
      state: opts.state ?? 'Enabled',
      keySpec: opts.keySpec ?? 'SYMMETRIC_DEFAULT',
      keyUsage: opts.keyUsage ?? 'ENCRYPT_DECRYPT',
      keyManager: opts.keyManager ?? 'CUSTOMER',
      rotationEnabled: false,
      materials: [{ id: randomBytes(32).toString('hex'), bytes: randomBytes(32), at }],
    };
    this.keys.set(keyId, key);
    return key;
  }

  /** Resolves a key id, key ARN, alias name or alias ARN; throws NotFoundException. */
  resolve(id: unknown): FakeKey {
    if (typeof id !== 'string' || id === '') throw new KmsError('ValidationException', 'KeyId is required');
    let keyId: string | undefined;
    const arn = /^arn:aws[a-z-]*:kms:([^:]+):(\d{12}):(key|alias)\/(.+)$/.exec(id);
    if (arn) {
      if (arn[1] !== this.region || arn[2] !== this.accountId) {
        throw new KmsError('NotFoundException', `Invalid arn ${id}: not in ${this.region}/${this.accountId}`);
      }
      keyId = arn[3] === 'key' ? arn[4] : this.aliases.get(`alias/${arn[4]}`);
    } else if (id.startsWith('alias/')) {
      keyId = this.aliases.get(id);
    } else {
      keyId = id;
    }
    const key = keyId === undefined ? undefined : this.keys.get(keyId);
    if (!key) throw new KmsError('NotFoundException', `Key '${id}' does not exist`);
    return key;
  }

  setAlias(name: string, target: string, mustExist: boolean | undefined): void {
    if (!/^alias\/[A-Za-z0-9/_-]+$/.test(name) || name.startsWith('alias/aws/')) {
      throw new KmsError('ValidationException', `invalid alias name ${name}`);
    }
    if (mustExist === true && !this.aliases.has(name))
      throw new KmsError('NotFoundException', `Alias ${name} does not exist`);
    if (mustExist === false && this.aliases.has(name))
      throw new KmsError('AlreadyExistsException', `Alias ${name} already exists`);
    const key = this.resolve(target);
    this.aliases.set(name, key.keyId);
  }

  rotate(key: FakeKey, type: 'AUTOMATIC' | 'ON_DEMAND' = 'ON_DEMAND'): FakeKeyMaterial {
    const last = key.materials[key.materials.length - 1];
    const at = Math.max(this.now(), last.at + 1);
    const m: FakeKeyMaterial = {
      id: randomBytes(32).toString('hex'),
      bytes: randomBytes(32),
      at,
      rotationType: type,
    };
    key.materials.push(m);
    return m;
  }

  /** Throws what AWS throws for a cryptographic operation on a key in a non-usable state. */
  checkUsable(key: FakeKey): void {
    switch (key.state) {
      case 'Enabled':
        return;
      case 'Disabled':
        throw new KmsError('DisabledException', `${key.arn} is disabled.`);
      case 'Unavailable':
        throw new KmsError('KeyUnavailableException', `${key.arn} is unavailable.`, 500);
      default:
        throw new KmsError(
          'KMSInvalidStateException',
          `${key.arn} is pending ${key.state === 'PendingImport' ? 'import' : 'deletion'}.`,
        );
    }
  }

  seal(key: FakeKey, plaintext: Buffer, ctx: Record<string, string> | undefined): Buffer {
    const index = key.materials.length - 1;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.materials[index].bytes, iv);
    cipher.setAAD(Buffer.from(`${key.keyId}|${canonicalContext(ctx)}`));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const idBytes = Buffer.from(key.keyId);
    const header = Buffer.alloc(3);
    header.writeUInt8(idBytes.length, 0);
    header.writeUInt16BE(index, 1);
    return Buffer.concat([MAGIC, header, idBytes, iv, cipher.getAuthTag(), ct]);
  }

  /** Which key a ciphertext names (KeyId is optional on Decrypt). */
  keyOf(blob: Buffer): FakeKey {
    const invalid = new KmsError('InvalidCiphertextException', '');
    if (blob.length < MAGIC.length + 3 || !blob.subarray(0, MAGIC.length).equals(MAGIC)) throw invalid;
    const idLen = blob.readUInt8(MAGIC.length);
    const keyId = blob.subarray(MAGIC.length + 3, MAGIC.length + 3 + idLen).toString();
    const key = this.keys.get(keyId);
    if (!key) throw invalid;
    return key;
  }

  open(key: FakeKey, blob: Buffer, ctx: Record<string, string> | undefined): Buffer {
    const invalid = new KmsError('InvalidCiphertextException', '');
    const idLen = blob.readUInt8(MAGIC.length);
    const index = blob.readUInt16BE(MAGIC.length + 1);
    let off = MAGIC.length + 3 + idLen;
    const iv = blob.subarray(off, (off += 12));
    const tag = blob.subarray(off, (off += 16));
    const ct = blob.subarray(off);
    const material = key.materials[index];
    if (!material || iv.length !== 12 || tag.length !== 16) throw invalid;
    try {
      const decipher = createDecipheriv('aes-256-gcm', material.bytes, iv);
      decipher.setAAD(Buffer.from(`${key.keyId}|${canonicalContext(ctx)}`));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ct), decipher.final()]);
    } catch {
      throw invalid;
    }
  }
}
