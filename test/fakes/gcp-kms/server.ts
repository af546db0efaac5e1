/**
 * A local Cloud KMS (KeyManagementService v1) over gRPC, built from the protos shipped with
 * @google-cloud/kms, so tests drive the real SDK against it.
 *
 * It does real AES-256-GCM (the caller's AAD is authenticated, bound to the CryptoKey name) and
 * real CRC32C, and behaves like Cloud KMS where the plugin depends on it:
 * - Encrypt with a CryptoKey name uses the primary; with a CryptoKeyVersion name, that version.
 *   The response names the version used. Request checksums are verified (INVALID_ARGUMENT on a
 *   mismatch) and reported back as verified_*_crc32c.
 * - Decrypt takes the CryptoKey name; the ciphertext names its version, so old data still
 *   decrypts after a primary change. Non-enabled versions give FAILED_PRECONDITION.
 * - GetCryptoKey returns the primary version with its state, protection level and create time.
 *
 * Keys and versions can be managed programmatically (createKey, addVersion, setPrimary,
 * setVersionState, scheduleDestroy) or through the RPCs (CreateCryptoKey, CreateCryptoKeyVersion,
 * UpdateCryptoKeyPrimaryVersion, UpdateCryptoKeyVersion, DestroyCryptoKeyVersion,
 * RestoreCryptoKeyVersion, GetCryptoKeyVersion, ListCryptoKeyVersions).
 *
 * Faults are injected per method (injectFault): gRPC errors, hangs, delays and corrupted or
 * inconsistent responses. Every call is recorded (method, resource name, authorization header,
 * deadline) for assertions.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { crc32c } from '@node-rs/crc32';
import { kmsServiceDefinition } from './protos.js';

export type VersionState =
  | 'PENDING_GENERATION'
  | 'ENABLED'
  | 'DISABLED'
  | 'DESTROYED'
  | 'DESTROY_SCHEDULED'
  | 'PENDING_IMPORT'
  | 'IMPORT_FAILED'
  | 'GENERATION_FAILED'
  | 'PENDING_EXTERNAL_DESTRUCTION'
  | 'EXTERNAL_DESTRUCTION_FAILED';

export type ProtectionLevel = 'SOFTWARE' | 'HSM' | 'EXTERNAL' | 'EXTERNAL_VPC';

export type KmsMethod =
  'getCryptoKey' | 'encrypt' | 'decrypt' | 'getCryptoKeyVersion' | 'listCryptoKeyVersions';

export type FaultKind =
  | 'unavailable'
  | 'resource_exhausted'
  | 'permission_denied'
  | 'unimplemented'
  | 'unauthenticated'
  | 'not_found'
  | 'internal'
  | 'deadline_exceeded'
  /** Never answer (the client's deadline or cancellation ends the call). */
  | 'hang'
  /** Answer normally after `delayMs`. */
  | 'delay'
  /** Encrypt: wrong ciphertext_crc32c; Decrypt: wrong plaintext_crc32c. */
  | 'corrupt_checksum'
  /** Encrypt: verified_*_crc32c false, as if the server never saw the request checksums. */
  | 'unverified_checksum'
  /** Encrypt: the response names a different CryptoKeyVersion than the one used. */
  | 'wrong_version'
  /** Encrypt: a bit of the ciphertext flipped after its checksum was computed (in-transit damage). */
  | 'corrupt_ciphertext'
  /** Decrypt: a wrong plaintext with a MATCHING plaintext_crc32c (a buggy proxy or HSM, not the wire). */
  | 'corrupt_plaintext';

export interface FaultSpec {
  kind: FaultKind;
  /** Which RPC; default every KMS data/metadata RPC above. */
  method?: KmsMethod | 'any';
  /** How many calls it hits; default every call until cleared. */
  times?: number;
  delayMs?: number;
  /** Status details to send with an error fault. */
  details?: string;
}

export interface RecordedCall {
  method: string;
  /** The resource name in the request (name or parent). */
  name?: string;
  /** The `authorization` metadata as sent (tests assert on it; never printed by the fake). */
  authorization?: string;
  /** Absolute deadline the client set, epoch ms (undefined = none). */
  deadlineMs?: number;
  at: number;
  /** The status code answered (0 = OK); undefined while hanging. */
  code?: number;
}

interface Timestamp {
  seconds: number;
  nanos: number;
}

interface FakeVersion {
  id: number;
  state: VersionState;
  protectionLevel: ProtectionLevel;
  key: Buffer;
  createTime: Timestamp;
  destroyTime?: Timestamp;
}

interface FakeKey {
  name: string;
  purpose: string;
  primaryId?: number;
  versions: Map<number, FakeVersion>;
  createTime: Timestamp;
  protectionLevel: ProtectionLevel;
}

export interface FakeGcpKmsOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Serve TLS with this certificate (PEM) instead of plaintext. */
  tls?: { certPem: Buffer | string; keyPem: Buffer | string };
  /** How long DESTROY_SCHEDULED lasts before destroyTime (reported only). Default 30 days. */
  destroyScheduledMs?: number;
}

export interface CryptoKeyVersionView {
  name: string;
  id: string;
  state: VersionState;
  protectionLevel: ProtectionLevel;
  createTime: Timestamp;
}

const MAGIC = 0x47; // 'G'
const HEADER = 1 + 4 + 12;
const KEY_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)$/;
const VERSION_NAME =
  /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)\/cryptoKeyVersions\/(\d+)$/;
const MAX_DATA = 65_536;

class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    details: string,
  ) {
    super(details);
  }
}

type Handler = (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>) => Promise<unknown> | unknown;

export class FakeGcpKms {
  readonly calls: RecordedCall[] = [];
  private readonly keys = new Map<string, FakeKey>();
  private faults: Array<FaultSpec & { left: number }> = [];
  private readonly hanging = new Set<() => void>();
  private lastStamp = 0n;

  private constructor(
    private readonly server: grpc.Server,
    readonly host: string,
    readonly port: number,
    readonly tls: boolean,
    private readonly destroyScheduledMs: number,
  ) {}

  /** Starts the fake and resolves once it listens. */
  static async start(options: FakeGcpKmsOptions = {}): Promise<FakeGcpKms> {
    const host = options.host ?? '127.0.0.1';
    const server = new grpc.Server();
    const creds = options.tls
      ? grpc.ServerCredentials.createSsl(
          null,
          [{ cert_chain: Buffer.from(options.tls.certPem), private_key: Buffer.from(options.tls.keyPem) }],
          false,
        )
      : grpc.ServerCredentials.createInsecure();
    const bindHost = host.includes(':') ? `[${host}]` : host;
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${bindHost}:${options.port ?? 0}`, creds, (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const fake = new FakeGcpKms(
      server,
      host,
      port,
      !!options.tls,
      options.destroyScheduledMs ?? 30 * 86_400_000,
    );
    server.addService(kmsServiceDefinition(), fake.handlers());
    return fake;
  }

  /** host:port to give the client (`gcp.endpoint`). */
  get endpoint(): string {
    return `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Stops the server; hanging calls are released with UNAVAILABLE. */
  async close(): Promise<void> {
    for (const release of [...this.hanging]) release();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 500);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---- key management (programmatic) ----

  /** Creates a CryptoKey (ENCRYPT_DECRYPT) with version 1 enabled and primary. Returns version 1. */
  createKey(
    name: string,
    opts: { protectionLevel?: ProtectionLevel; purpose?: string; withVersion?: boolean } = {},
  ): CryptoKeyVersionView | undefined {
    if (!KEY_NAME.test(name)) throw new Error(`not a CryptoKey name: ${name}`);
    if (this.keys.has(name)) throw new Error(`CryptoKey exists: ${name}`);
    const key: FakeKey = {
      name,
      purpose: opts.purpose ?? 'ENCRYPT_DECRYPT',
      versions: new Map(),
      createTime: this.stamp(),
      protectionLevel: opts.protectionLevel ?? 'SOFTWARE',
    };
    this.keys.set(name, key);
    if (opts.withVersion === false) return undefined;
    return this.addVersion(name, { primary: true });
  }

  /** Adds a version (ENABLED unless `state` says otherwise); `primary` also makes it the primary. */
  addVersion(keyName: string, opts: { primary?: boolean; state?: VersionState } = {}): CryptoKeyVersionView {
    const key = this.mustKey(keyName);
    const id = Math.max(0, ...key.versions.keys()) + 1;
    const version: FakeVersion = {
      id,
      state: opts.state ?? 'ENABLED',
      protectionLevel: key.protectionLevel,
      key: randomBytes(32),
      createTime: this.stamp(),
    };
    key.versions.set(id, version);
    if (opts.primary) this.setPrimary(keyName, id);
    return this.view(key, version);
  }

  /** Makes `versionId` the primary (it must be ENABLED, as in Cloud KMS). */
  setPrimary(keyName: string, versionId: number | string): void {
    const key = this.mustKey(keyName);
    const v = this.mustVersion(key, Number(versionId));
    if (v.state !== 'ENABLED')
      throw new Error(`version ${v.id} is ${v.state}; only an ENABLED version can be primary`);
    key.primaryId = v.id;
  }

  /** Leaves the key without a primary version (as Cloud KMS does once the primary is destroyed). */
  clearPrimary(keyName: string): void {
    this.mustKey(keyName).primaryId = undefined;
  }

  /** Forces any state (tests): ENABLED, DISABLED, DESTROY_SCHEDULED, DESTROYED, ... */
  setVersionState(keyName: string, versionId: number | string, state: VersionState): void {
    const v = this.mustVersion(this.mustKey(keyName), Number(versionId));
    v.state = state;
    if (state === 'DESTROY_SCHEDULED') v.destroyTime = this.future(this.destroyScheduledMs);
    if (state !== 'DESTROY_SCHEDULED' && state !== 'DESTROYED') v.destroyTime = undefined;
    if (state === 'DESTROYED') v.key = Buffer.alloc(0);
  }

  disableVersion(keyName: string, versionId: number | string): void {
    this.setVersionState(keyName, versionId, 'DISABLED');
  }

  enableVersion(keyName: string, versionId: number | string): void {
    this.setVersionState(keyName, versionId, 'ENABLED');
  }

  scheduleDestroy(keyName: string, versionId: number | string): void {
    this.setVersionState(keyName, versionId, 'DESTROY_SCHEDULED');
  }

  /** Snapshot of a key's primary (undefined if none). */
  primary(keyName: string): CryptoKeyVersionView | undefined {
    const key = this.mustKey(keyName);
    const v = key.primaryId === undefined ? undefined : key.versions.get(key.primaryId);
    return v ? this.view(key, v) : undefined;
  }

  versions(keyName: string): CryptoKeyVersionView[] {
    const key = this.mustKey(keyName);
    return [...key.versions.values()].map((v) => this.view(key, v));
  }

  /**
   * The fake's own key material for `keyName`, hex and base64, so tests can assert it never shows
   * up in what the plugin emits (key_id, annotations, logs).
   */
  keyMaterial(keyName: string): string[] {
    const key = this.mustKey(keyName);
    return [...key.versions.values()].flatMap((v) =>
      v.key.length ? [v.key.toString('hex'), v.key.toString('base64')] : [],
    );
  }

  // ---- fault injection and call log ----

  injectFault(fault: FaultSpec): void {
    this.faults.push({ ...fault, left: fault.times ?? Number.POSITIVE_INFINITY });
  }

  clearFaults(): void {
    this.faults = [];
  }

  callsTo(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  resetCalls(): void {
    this.calls.length = 0;
  }

  // ---- gRPC ----

  private handlers(): grpc.UntypedServiceImplementation {
    const h: Record<string, Handler> = {
      getCryptoKey: (call) => this.getCryptoKey(call.request),
      getCryptoKeyVersion: (call) => this.getCryptoKeyVersion(call.request),
      listCryptoKeyVersions: (call) => this.listCryptoKeyVersions(call.request),
      encrypt: (call) => this.encrypt(call.request),
      decrypt: (call) => this.decrypt(call.request),
      createCryptoKey: (call) => this.createCryptoKeyRpc(call.request),
      createCryptoKeyVersion: (call) => this.createCryptoKeyVersionRpc(call.request),
      updateCryptoKeyPrimaryVersion: (call) => this.updatePrimaryRpc(call.request),
      updateCryptoKeyVersion: (call) => this.updateCryptoKeyVersionRpc(call.request),
      destroyCryptoKeyVersion: (call) => this.destroyRpc(call.request),
      restoreCryptoKeyVersion: (call) => this.restoreRpc(call.request),
    };
    const out: grpc.UntypedServiceImplementation = {};
    for (const [method, fn] of Object.entries(h)) {
      out[method] = (
        call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        void this.dispatch(method, fn, call, cb);
      };
    }
    return out;
  }

  private async dispatch(
    method: string,
    fn: Handler,
    call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
    cb: grpc.sendUnaryData<unknown>,
  ): Promise<void> {
    const req = call.request;
    const auth = call.metadata.get('authorization')[0];
    const deadline = call.getDeadline();
    const record: RecordedCall = {
      method,
      name: (req.name ?? req.parent ?? (req.cryptoKeyVersion as { name?: string } | undefined)?.name) as
        string | undefined,
      authorization: typeof auth === 'string' ? auth : undefined,
      deadlineMs:
        deadline instanceof Date
          ? deadline.getTime()
          : Number.isFinite(deadline)
            ? Number(deadline)
            : undefined,
      at: Date.now(),
    };
    this.calls.push(record);
    const answer = (err: RpcError | null, value?: unknown): void => {
      record.code = err ? err.code : grpc.status.OK;
      if (err) cb({ code: err.code, details: err.message });
      else cb(null, value);
    };
    const fault = this.takeFault(method);
    try {
      if (fault) {
        const early = await this.applyPreFault(fault, call);
        if (early) return answer(early);
      }
      let value = await fn(call);
      if (fault) value = this.applyPostFault(fault, method, value);
      answer(null, value);
    } catch (err) {
      if (err instanceof RpcError) answer(err);
      else answer(new RpcError(grpc.status.INTERNAL, `fake: ${(err as Error).message}`));
    }
  }

  private takeFault(method: string): FaultSpec | undefined {
    const i = this.faults.findIndex(
      (f) => f.left > 0 && (f.method === undefined || f.method === 'any' || f.method === method),
    );
    if (i < 0) return undefined;
    const f = this.faults[i];
    f.left -= 1;
    return f;
  }

  /** Error, hang and delay faults. Returns an error to send, or undefined to go on. */
  private async applyPreFault(
    fault: FaultSpec,
    call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
  ): Promise<RpcError | undefined> {
    const errorCodes: Partial<Record<FaultKind, [grpc.status, string]>> = {
      unavailable: [grpc.status.UNAVAILABLE, 'The service is currently unavailable.'],
      resource_exhausted: [
        grpc.status.RESOURCE_EXHAUSTED,
        'Quota exceeded for quota metric cryptographic requests.',
      ],
      permission_denied: [
        grpc.status.PERMISSION_DENIED,
        "Permission 'cloudkms.cryptoKeyVersions.useToEncrypt' denied on resource (or it may not exist).",
      ],
      unauthenticated: [grpc.status.UNAUTHENTICATED, 'Request had invalid authentication credentials.'],
      not_found: [grpc.status.NOT_FOUND, 'CryptoKey not found.'],
      internal: [grpc.status.INTERNAL, 'Internal error encountered.'],
      unimplemented: [grpc.status.UNIMPLEMENTED, 'Method not implemented.'],
      deadline_exceeded: [grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded.'],
    };
    const e = errorCodes[fault.kind];
    if (e) return new RpcError(e[0], fault.details ?? e[1]);
    if (fault.kind === 'hang') {
      await new Promise<void>((resolve) => {
        const release = (): void => {
          this.hanging.delete(release);
          resolve();
        };
        this.hanging.add(release);
        call.on('cancelled', release);
      });
      return new RpcError(grpc.status.UNAVAILABLE, 'fake: released hanging call');
    }
    if (fault.kind === 'delay') await new Promise((r) => setTimeout(r, fault.delayMs ?? 100));
    return undefined;
  }

  private applyPostFault(fault: FaultSpec, method: string, value: unknown): unknown {
    const v = value as Record<string, unknown>;
    if (method === 'encrypt') {
      if (fault.kind === 'corrupt_checksum') {
        return {
          ...v,
          ciphertextCrc32c: { value: (Number((v.ciphertextCrc32c as { value: number }).value) ^ 1) >>> 0 },
        };
      }
      if (fault.kind === 'unverified_checksum') {
        return { ...v, verifiedPlaintextCrc32c: false, verifiedAdditionalAuthenticatedDataCrc32c: false };
      }
      if (fault.kind === 'wrong_version') {
        return { ...v, name: String(v.name).replace(/\/(\d+)$/, (_m, n: string) => `/${Number(n) + 100}`) };
      }
      if (fault.kind === 'corrupt_ciphertext') {
        const ct = Buffer.from(v.ciphertext as Buffer);
        ct[ct.length - 1] ^= 0x01;
        return { ...v, ciphertext: ct };
      }
    }
    if (method === 'decrypt' && fault.kind === 'corrupt_plaintext') {
      const plain = Buffer.from(v.plaintext as Buffer);
      plain[0] ^= 0x20;
      return { ...v, plaintext: plain, plaintextCrc32c: { value: crc32c(plain) } };
    }
    if (method === 'decrypt' && fault.kind === 'corrupt_checksum') {
      return {
        ...v,
        plaintextCrc32c: { value: (Number((v.plaintextCrc32c as { value: number }).value) ^ 1) >>> 0 },
      };
    }
    return value;
  }

  // ---- RPC implementations ----

  private getCryptoKey(req: Record<string, unknown>): unknown {
    const key = this.rpcKey(String(req.name ?? ''));
    return this.keyMessage(key);
  }

  private getCryptoKeyVersion(req: Record<string, unknown>): unknown {
    const { key, version } = this.rpcVersion(String(req.name ?? ''));
    return this.versionMessage(key, version);
  }

  /** Supports filter "state=X" (or empty), page_size and page_token, like Cloud KMS (ordered by version). */
  private listCryptoKeyVersions(req: Record<string, unknown>): unknown {
    const key = this.rpcKey(String(req.parent ?? ''));
    const filter = String(req.filter ?? '').trim();
    let wanted: string | undefined;
    if (filter !== '') {
      const m = /^state\s*[=:]\s*"?([A-Z_]+)"?$/.exec(filter);
      if (!m)
        throw new RpcError(
          grpc.status.INVALID_ARGUMENT,
          `fake: unsupported filter ${JSON.stringify(filter)}`,
        );
      wanted = m[1];
    }
    const all = [...key.versions.values()]
      .filter((v) => wanted === undefined || v.state === wanted)
      .sort((a, b) => a.id - b.id)
      .map((v) => this.versionMessage(key, v));
    const pageSize = Math.min(1000, Number(req.pageSize) > 0 ? Number(req.pageSize) : 25);
    const start = req.pageToken ? Number(String(req.pageToken).replace(/^p/, '')) : 0;
    if (!Number.isInteger(start) || start < 0)
      throw new RpcError(grpc.status.INVALID_ARGUMENT, 'Invalid page_token.');
    const page = all.slice(start, start + pageSize);
    const next = start + pageSize < all.length ? `p${start + pageSize}` : '';
    return { cryptoKeyVersions: page, totalSize: all.length, nextPageToken: next };
  }

  private encrypt(req: Record<string, unknown>): unknown {
    const name = String(req.name ?? '');
    const plaintext = asBuffer(req.plaintext);
    const aad = asBuffer(req.additionalAuthenticatedData);
    if (plaintext.length === 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'plaintext is required.');
    if (plaintext.length > MAX_DATA || aad.length > MAX_DATA) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, 'The request payload is too large.');
    }
    checkCrc('plaintext_crc32c', plaintext, req.plaintextCrc32c);
    checkCrc('additional_authenticated_data_crc32c', aad, req.additionalAuthenticatedDataCrc32c);
    let key: FakeKey;
    let version: FakeVersion;
    const vm = VERSION_NAME.exec(name);
    if (vm) {
      ({ key, version } = this.rpcVersion(name));
    } else {
      key = this.rpcKey(name);
      if (key.primaryId === undefined) {
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `${name} has no primary version.`);
      }
      version = this.mustVersion(key, key.primaryId);
    }
    if (key.purpose !== 'ENCRYPT_DECRYPT') {
      throw new RpcError(
        grpc.status.FAILED_PRECONDITION,
        `${key.name} does not have purpose ENCRYPT_DECRYPT.`,
      );
    }
    this.requireEnabled(key, version);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', version.key, nonce);
    cipher.setAAD(gcmAad(key.name, aad));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    const header = Buffer.alloc(5);
    header[0] = MAGIC;
    header.writeUInt32BE(version.id, 1);
    const ciphertext = Buffer.concat([header, nonce, body]);
    return {
      name: `${key.name}/cryptoKeyVersions/${version.id}`,
      ciphertext,
      ciphertextCrc32c: { value: crc32c(ciphertext) },
      verifiedPlaintextCrc32c: req.plaintextCrc32c !== undefined && req.plaintextCrc32c !== null,
      verifiedAdditionalAuthenticatedDataCrc32c:
        req.additionalAuthenticatedDataCrc32c !== undefined && req.additionalAuthenticatedDataCrc32c !== null,
      protectionLevel: version.protectionLevel,
    };
  }

  private decrypt(req: Record<string, unknown>): unknown {
    const name = String(req.name ?? '');
    if (VERSION_NAME.test(name)) {
      throw new RpcError(
        grpc.status.INVALID_ARGUMENT,
        'Decrypt takes a CryptoKey name, not a CryptoKeyVersion.',
      );
    }
    const key = this.rpcKey(name);
    const ciphertext = asBuffer(req.ciphertext);
    const aad = asBuffer(req.additionalAuthenticatedData);
    checkCrc('ciphertext_crc32c', ciphertext, req.ciphertextCrc32c);
    checkCrc('additional_authenticated_data_crc32c', aad, req.additionalAuthenticatedDataCrc32c);
    if (ciphertext.length < HEADER + 16 || ciphertext[0] !== MAGIC) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, 'Decryption failed: the ciphertext is invalid.');
    }
    const version = key.versions.get(ciphertext.readUInt32BE(1));
    if (!version)
      throw new RpcError(grpc.status.INVALID_ARGUMENT, 'Decryption failed: the ciphertext is invalid.');
    this.requireEnabled(key, version);
    const nonce = ciphertext.subarray(5, HEADER);
    const tag = ciphertext.subarray(ciphertext.length - 16);
    const decipher = createDecipheriv('aes-256-gcm', version.key, nonce);
    decipher.setAAD(gcmAad(key.name, aad));
    decipher.setAuthTag(tag);
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([
        decipher.update(ciphertext.subarray(HEADER, ciphertext.length - 16)),
        decipher.final(),
      ]);
    } catch {
      throw new RpcError(
        grpc.status.INVALID_ARGUMENT,
        "Decryption failed: verify that 'name' refers to the correct CryptoKey and that additional_authenticated_data matches.",
      );
    }
    return {
      plaintext,
      plaintextCrc32c: { value: crc32c(plaintext) },
      usedPrimary: key.primaryId === version.id,
      protectionLevel: version.protectionLevel,
    };
  }

  private createCryptoKeyRpc(req: Record<string, unknown>): unknown {
    const name = `${String(req.parent ?? '')}/cryptoKeys/${String(req.cryptoKeyId ?? '')}`;
    if (!KEY_NAME.test(name)) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'Invalid CryptoKey name.');
    if (this.keys.has(name)) throw new RpcError(grpc.status.ALREADY_EXISTS, `${name} already exists.`);
    const ck = (req.cryptoKey ?? {}) as {
      purpose?: string;
      versionTemplate?: { protectionLevel?: ProtectionLevel };
    };
    this.createKey(name, {
      purpose: ck.purpose ?? 'ENCRYPT_DECRYPT',
      protectionLevel: ck.versionTemplate?.protectionLevel ?? 'SOFTWARE',
      withVersion: req.skipInitialVersionCreation !== true,
    });
    return this.keyMessage(this.mustKey(name));
  }

  private createCryptoKeyVersionRpc(req: Record<string, unknown>): unknown {
    const key = this.rpcKey(String(req.parent ?? ''));
    const view = this.addVersion(key.name);
    return this.versionMessage(key, this.mustVersion(key, Number(view.id)));
  }

  private updatePrimaryRpc(req: Record<string, unknown>): unknown {
    const key = this.rpcKey(String(req.name ?? ''));
    const version = key.versions.get(Number(req.cryptoKeyVersionId));
    if (!version) throw new RpcError(grpc.status.NOT_FOUND, 'CryptoKeyVersion not found.');
    if (version.state !== 'ENABLED') {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `CryptoKeyVersion ${version.id} is not ENABLED.`);
    }
    key.primaryId = version.id;
    return this.keyMessage(key);
  }

  private updateCryptoKeyVersionRpc(req: Record<string, unknown>): unknown {
    const body = (req.cryptoKeyVersion ?? {}) as { name?: string; state?: VersionState };
    const paths = ((req.updateMask as { paths?: string[] } | undefined)?.paths ?? []).map((p) =>
      p.toLowerCase(),
    );
    const { key, version } = this.rpcVersion(String(body.name ?? ''));
    if (paths.includes('state')) {
      if (body.state !== 'ENABLED' && body.state !== 'DISABLED') {
        throw new RpcError(grpc.status.INVALID_ARGUMENT, 'state can only be updated to ENABLED or DISABLED.');
      }
      if (version.state !== 'ENABLED' && version.state !== 'DISABLED') {
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `CryptoKeyVersion is ${version.state}.`);
      }
      version.state = body.state;
    }
    return this.versionMessage(key, version);
  }

  private destroyRpc(req: Record<string, unknown>): unknown {
    const { key, version } = this.rpcVersion(String(req.name ?? ''));
    if (version.state !== 'ENABLED' && version.state !== 'DISABLED') {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `CryptoKeyVersion is ${version.state}.`);
    }
    this.setVersionState(key.name, version.id, 'DESTROY_SCHEDULED');
    return this.versionMessage(key, version);
  }

  private restoreRpc(req: Record<string, unknown>): unknown {
    const { key, version } = this.rpcVersion(String(req.name ?? ''));
    if (version.state !== 'DESTROY_SCHEDULED') {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `CryptoKeyVersion is ${version.state}.`);
    }
    this.setVersionState(key.name, version.id, 'DISABLED');
    return this.versionMessage(key, version);
  }

  // ---- helpers ----

  private requireEnabled(key: FakeKey, version: FakeVersion): void {
    if (version.state !== 'ENABLED') {
      throw new RpcError(
        grpc.status.FAILED_PRECONDITION,
        `The request cannot be fulfilled. Resource ${key.name}/cryptoKeyVersions/${version.id} is not in state ENABLED.`,
      );
    }
  }

  private keyMessage(key: FakeKey): Record<string, unknown> {
    const primary = key.primaryId === undefined ? undefined : key.versions.get(key.primaryId);
    return {
      name: key.name,
      purpose: key.purpose,
      createTime: key.createTime,
      versionTemplate: { protectionLevel: key.protectionLevel, algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' },
      ...(primary ? { primary: this.versionMessage(key, primary) } : {}),
    };
  }

  private versionMessage(key: FakeKey, v: FakeVersion): Record<string, unknown> {
    return {
      name: `${key.name}/cryptoKeyVersions/${v.id}`,
      state: v.state,
      protectionLevel: v.protectionLevel,
      algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
      createTime: v.createTime,
      ...(v.state === 'ENABLED' ? { generateTime: v.createTime } : {}),
      ...(v.destroyTime ? { destroyTime: v.destroyTime } : {}),
    };
  }

  private view(key: FakeKey, v: FakeVersion): CryptoKeyVersionView {
    return {
      name: `${key.name}/cryptoKeyVersions/${v.id}`,
      id: String(v.id),
      state: v.state,
      protectionLevel: v.protectionLevel,
      createTime: v.createTime,
    };
  }

  private rpcKey(name: string): FakeKey {
    if (!KEY_NAME.test(name))
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid resource name: ${name}`);
    const key = this.keys.get(name);
    if (!key) throw new RpcError(grpc.status.NOT_FOUND, `CryptoKey ${name} not found.`);
    return key;
  }

  private rpcVersion(name: string): { key: FakeKey; version: FakeVersion } {
    const m = VERSION_NAME.exec(name);
    if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Invalid CryptoKeyVersion name: ${name}`);
    const key = this.rpcKey(m[1]);
    const version = key.versions.get(Number(m[2]));
    if (!version) throw new RpcError(grpc.status.NOT_FOUND, `CryptoKeyVersion ${name} not found.`);
    return { key, version };
  }

  private mustKey(name: string): FakeKey {
    const key = this.keys.get(name);
    if (!key) throw new Error(`no such CryptoKey in the fake: ${name}`);
    return key;
  }

  private mustVersion(key: FakeKey, id: number): FakeVersion {
    const v = key.versions.get(id);
    if (!v) throw new Error(`no version ${id} of ${key.name}`);
    return v;
  }

  /** Strictly increasing timestamps with nanosecond digits, like Cloud KMS's. */
  private stamp(): Timestamp {
    const nowNs = BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1000));
    const ns = nowNs > this.lastStamp ? nowNs : this.lastStamp + 1n;
    this.lastStamp = ns;
    return { seconds: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) };
  }

  private future(ms: number): Timestamp {
    const t = Date.now() + ms;
    return { seconds: Math.floor(t / 1000), nanos: (t % 1000) * 1e6 };
  }
}

function asBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  return Buffer.alloc(0);
}

function gcmAad(keyName: string, aad: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${keyName}\0`), aad]);
}

function checkCrc(field: string, data: Buffer, sent: unknown): void {
  if (sent === undefined || sent === null) return;
  const value = Number((sent as { value?: unknown }).value ?? 0);
  if (value !== crc32c(data)) {
    throw new RpcError(
      grpc.status.INVALID_ARGUMENT,
      `The checksum in field ${field} did not match the data in field ${field.replace(/_crc32c$/, '')}.`,
    );
  }
}
