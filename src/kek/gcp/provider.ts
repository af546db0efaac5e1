/**
 * Google Cloud KMS as a KEK provider.
 *
 * - currentVersion: GetCryptoKey; the primary CryptoKeyVersion is the version to wrap with.
 *   KekRef = { key: CryptoKey name, version: version id, unique: createTime + AAD fingerprint
 *   (./ref.ts) },
 *   ordinal = the version number. Its state is reported in the kek_state metric and logged loudly
 *   while it is anything but ENABLED.
 * - wrap: Encrypt with the explicit CryptoKeyVersion name (so the version used is the one key_id
 *   names) and check the version the response names.
 * - unwrap: Decrypt with the CryptoKey name (the ciphertext names its version).
 * - Every Encrypt/Decrypt carries the configured AAD and CRC32C checksums (./integrity.ts).
 * - Every call goes through RemoteCaller (deadline, bounded retries, concurrency, breaker); the
 *   SDK's own retries are off (./sdk.ts).
 */
import type { GcpConfig } from '../../config/providers/gcp.js';
import { KeyDisabledError, abortReasonToError } from '../errors.js';
import { RemoteCaller, type RemoteCallerOptions } from '../remote.js';
import { remoteRetry } from '../remote-config.js';
import { raceAbort } from '../../deadline.js';
import {
  type KekProvider,
  type KekRef,
  type KeyVersionInfo,
  type ProviderDeps,
  type WrapResult,
} from '../types.js';
import { assertUnwrapRef, assertWrapRef } from '../ownership.js';
import type { CallOptions, CryptoKeyVersion, KmsApi } from './api.js';

const LIST_PAGE_SIZE = 1000;
const MAX_LIST_PAGES = 50;
import { classifyGcpError, type GcpOperation } from './classify.js';
import { OptionalCalls, type OptionalCallIssue } from '../optional.js';
import { checksum, verifyDecryptResponse, verifyEncryptResponse } from './integrity.js';
import { aadFingerprint, decodeUnique } from './ref.js';
import { primaryVersionInfo, versionId, versionInfo } from './version.js';

export interface GcpProviderOptions {
  /** Overrides for RemoteCaller (tests: back-off, breaker, random). */
  caller?: Partial<Pick<RemoteCallerOptions, 'retry' | 'breaker' | 'random'>>;
}

export class GcpKekProvider implements KekProvider {
  readonly kind = 'gcp' as const;
  readonly description: string;
  private readonly keyName: string;
  private readonly aad: Buffer;
  private readonly aadFp: string;
  private readonly caller: RemoteCaller<GcpOperation>;
  private readonly optional: OptionalCalls;

  constructor(
    private readonly config: GcpConfig,
    private readonly api: KmsApi,
    private readonly deps: ProviderDeps,
    options: GcpProviderOptions = {},
  ) {
    this.keyName = config.keyName;
    this.description = `Cloud KMS CryptoKey ${config.keyName}`;
    this.aad = Buffer.from(config.aad, 'utf8');
    this.aadFp = aadFingerprint(this.aad);
    this.optional = new OptionalCalls({ provider: 'gcp', logger: deps.logger, metrics: deps.metrics });
    this.caller = new RemoteCaller({
      provider: 'gcp',
      metrics: deps.metrics,
      logger: deps.logger,
      concurrency: config.concurrency,
      ...options.caller,
      retry: { ...remoteRetry(config), ...options.caller?.retry },
      classify: (err, operation) => classifyGcpError(err, operation, this.keyName),
    });
  }

  async currentVersion(signal: AbortSignal): Promise<KeyVersionInfo> {
    const key = await this.call('getCryptoKey', signal, (opts) => this.api.getCryptoKey(this.keyName, opts));
    const { primary: _primary, ...info } = primaryVersionInfo(this.keyName, key, this.aadFp);
    return info;
  }

  /**
   * The newest ENABLED version (highest version number), primary or not, so the rotation watcher
   * never goes back to an older version after a restart. Lists with filter state=ENABLED, paging
   * inside one attempt.
   */
  async newestVersion(signal: AbortSignal): Promise<KeyVersionInfo | undefined> {
    // Optional: without cloudkms.cryptoKeyVersions.list the plugin serves with the primary.
    const newest = await this.optional.run('listCryptoKeyVersions', 'cloudkms.cryptoKeyVersions.list', () =>
      this.listNewest(signal),
    );
    return newest ? versionInfo(this.keyName, newest, this.aadFp) : undefined;
  }

  optionalIssues(): OptionalCallIssue[] {
    return this.optional.issues();
  }

  private async listNewest(signal: AbortSignal): Promise<CryptoKeyVersion | undefined> {
    return this.call('listCryptoKeyVersions', signal, async (opts) => {
      let best: CryptoKeyVersion | undefined;
      let bestId = 0;
      let pageToken: string | undefined;
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const res = await this.api.listCryptoKeyVersions(
          {
            parent: this.keyName,
            filter: 'state=ENABLED',
            pageSize: LIST_PAGE_SIZE,
            ...(pageToken ? { pageToken } : {}),
          },
          opts,
        );
        for (const v of res.versions) {
          const id = Number(versionId(this.keyName, v.name) ?? 0);
          if (String(v.state) === 'ENABLED' && id > bestId) {
            best = v;
            bestId = id;
          }
        }
        if (!res.nextPageToken) return best;
        pageToken = res.nextPageToken;
      }
      this.deps.logger.warn(
        { provider: 'gcp', cryptoKey: this.keyName, pages: MAX_LIST_PAGES },
        'gcp: stopped listing CryptoKeyVersions after the page limit; using the newest seen',
      );
      return best;
    });
  }

  async wrap(dek: Buffer, version: KeyVersionInfo, signal: AbortSignal): Promise<WrapResult> {
    assertWrapRef(this, version.ref, { why: `this provider binds AAD fingerprint ${this.aadFp}` });
    if (version.state !== 'enabled') {
      throw new KeyDisabledError(
        `gcp: CryptoKeyVersion ${version.ref.version} of ${this.keyName} is ${version.state}; not wrapping new DEKs with it`,
      );
    }
    const versionName = `${this.keyName}/cryptoKeyVersions/${version.ref.version}`;
    const wrapped = await this.call('encrypt', signal, async (opts) => {
      const response = await this.api.encrypt(
        {
          name: versionName,
          plaintext: dek,
          plaintextCrc32c: checksum(dek),
          additionalAuthenticatedData: this.aad,
          additionalAuthenticatedDataCrc32c: checksum(this.aad),
        },
        opts,
      );
      return verifyEncryptResponse(response, versionName);
    });
    return { wrapped, ref: { ...version.ref } };
  }

  async unwrap(wrapped: Buffer, ref: KekRef, signal: AbortSignal): Promise<Buffer> {
    assertUnwrapRef(this, ref);
    return this.call('decrypt', signal, async (opts) => {
      const response = await this.api.decrypt(
        {
          name: this.keyName,
          ciphertext: wrapped,
          ciphertextCrc32c: checksum(wrapped),
          additionalAuthenticatedData: this.aad,
          additionalAuthenticatedDataCrc32c: checksum(this.aad),
        },
        opts,
      );
      return verifyDecryptResponse(response);
    });
  }

  /** Same CryptoKey and same AAD (fingerprint in `unique`): only then can Decrypt succeed. */
  canUnwrap(ref: KekRef): boolean {
    return ref.provider === 'gcp' && ref.key === this.keyName && decodeUnique(ref.unique).aad === this.aadFp;
  }

  async close(): Promise<void> {
    await this.api.close();
  }

  /**
   * One remote operation through RemoteCaller; each attempt's signal carries its gRPC deadline
   * (./sdk.ts derives it with attemptTimeLeftMs).
   */
  private async call<T>(
    operation: GcpOperation,
    signal: AbortSignal,
    fn: (opts: CallOptions) => Promise<T>,
  ): Promise<T> {
    // Loading the SDK (first call only) is not a remote call: not charged to the attempt timeout,
    // but bounded by the caller's deadline.
    if (this.api.ready) {
      await raceAbort(this.api.ready(), signal, () =>
        abortReasonToError(signal, `gcp ${operation} (loading the Cloud KMS client)`),
      );
    }
    return this.caller.call(operation, signal, (attemptSignal) => fn({ signal: attemptSignal }));
  }
}
