/**
 * The `local` KEK provider: KEKs from a key file on disk, wrapping with AES-256-GCM.
 *
 * For development, tests, and air-gapped clusters that accept a key on the control-plane disk.
 * The file is re-read when it changes (`k8s-kms-plugin rotate` rewrites it atomically), so a
 * rotation needs no restart.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { LocalConfig } from '../../config/providers/local.js';
import {
  CorruptError,
  InvalidInputError,
  UnauthenticatedError,
  UnknownKeyError,
  abortReasonToError,
} from '../errors.js';
import type {
  KekProvider,
  KekRef,
  KeyVersionInfo,
  LoadedVersion,
  ProviderDeps,
  WrapResult,
} from '../types.js';
import { assertUnwrapRef, assertWrapRef } from '../ownership.js';
import { newestWritable, readKeyFile, zeroKeyFile, type KeyFile, type LocalKey } from './keyfile.js';

const AAD_PREFIX = 'k8s-kms-plugin/local-kek/v1\0';
const NONCE = 12;
const TAG = 16;

export class LocalProvider implements KekProvider {
  readonly kind = 'local' as const;
  private file: KeyFile;
  private mtimeMs: number;
  private ino: number;
  private watcher: FSWatcher | undefined;
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly config: LocalConfig,
    private readonly deps: ProviderDeps,
  ) {
    const loaded = readKeyFile(config.keyFile, { allowInsecurePermissions: config.allowInsecurePermissions });
    this.file = loaded.file;
    this.mtimeMs = loaded.mtimeMs;
    this.ino = loaded.ino;
    this.reportLoaded();
    if (config.watch) this.startWatch();
  }

  get description(): string {
    return `local key file ${this.config.keyFile} (id ${this.file.id})`;
  }

  /** The key file's id (the `key` of every KekRef this provider makes). */
  get keyFileId(): string {
    return this.file.id;
  }

  async currentVersion(signal: AbortSignal): Promise<KeyVersionInfo> {
    if (signal.aborted) throw abortReasonToError(signal, 'local currentVersion');
    this.reloadIfChanged();
    const key = this.keyFor(this.file.primary);
    return { ref: this.refFor(key), state: 'enabled', ordinal: key.version };
  }

  /**
   * The highest version in the key file that is not staged. The watcher wraps with it even if
   * "primary" was edited back to an older version, so no restart ever reuses an older version's
   * key_id; a staged version (`rotate --stage`) is never adopted for writes until promoted.
   */
  async newestVersion(signal: AbortSignal): Promise<KeyVersionInfo> {
    if (signal.aborted) throw abortReasonToError(signal, 'local newestVersion');
    this.reloadIfChanged();
    const key = newestWritable(this.file);
    return { ref: this.refFor(key), state: 'enabled', ordinal: key.version };
  }

  /** The versions this process holds (in memory, no I/O): what /healthz?verbose and the metric show. */
  loadedVersions(): LoadedVersion[] {
    const write = newestWritable(this.file).version;
    return [...this.file.keys]
      .sort((a, b) => a.version - b.version)
      .map((k) => ({
        version: String(k.version),
        use: k.staged ? 'staged' : k.version === write ? 'write' : 'decrypt',
      }));
  }

  private reportLoaded(): void {
    this.deps.metrics.reportLoadedVersions?.('local', this.deps.role, this.loadedVersions());
  }

  async wrap(dek: Buffer, version: KeyVersionInfo, signal: AbortSignal): Promise<WrapResult> {
    if (signal.aborted) throw abortReasonToError(signal, 'local wrap');
    const ref = version.ref;
    assertWrapRef(this, ref);
    const key = this.resolve(ref);
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', key.key, nonce);
    cipher.setAAD(aad(ref));
    const body = Buffer.concat([cipher.update(dek), cipher.final()]);
    return { wrapped: Buffer.concat([nonce, body, cipher.getAuthTag()]), ref: this.refFor(key) };
  }

  async unwrap(wrapped: Buffer, ref: KekRef, signal: AbortSignal): Promise<Buffer> {
    if (signal.aborted) throw abortReasonToError(signal, 'local unwrap');
    let key: LocalKey;
    try {
      key = this.resolve(ref);
    } catch (err) {
      // A version we lack might have been added by `rotate` a moment ago on another replica's file copy.
      this.reloadIfChanged();
      if (!(err instanceof UnknownKeyError)) throw err;
      key = this.resolve(ref);
    }
    if (wrapped.length < NONCE + TAG + 1)
      throw new UnauthenticatedError('local: wrapped DEK is too short to be one this key file made');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, wrapped.subarray(0, NONCE));
      decipher.setAAD(aad(ref));
      decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG));
      return Buffer.concat([
        decipher.update(wrapped.subarray(NONCE, wrapped.length - TAG)),
        decipher.final(),
      ]);
    } catch {
      throw new UnauthenticatedError(
        `local: wrapped DEK failed authentication under key version ${key.version}`,
      );
    }
  }

  canUnwrap(ref: KekRef): boolean {
    return ref.provider === 'local' && ref.key === this.file.id;
  }

  onChangeHint(listener: () => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.watcher?.close();
    this.watcher = undefined;
    zeroKeyFile(this.file);
  }

  private resolve(ref: KekRef): LocalKey {
    assertUnwrapRef(
      this,
      ref,
      `it was wrapped by key file ${ref.key}, but the configured key file is ${this.file.id}`,
    );
    const version = Number(ref.version);
    if (!Number.isSafeInteger(version))
      throw new InvalidInputError('local: malformed key version in KEK reference');
    const key = this.file.keys.find((k) => k.version === version);
    if (!key) {
      throw new UnknownKeyError(
        `local: key version ${version} is not in ${this.config.keyFile} (versions present: ${this.file.keys.map((k) => k.version).join(', ')}); was it retired?`,
      );
    }
    if (ref.unique !== undefined && ref.unique !== key.created) {
      throw new UnknownKeyError(
        `local: key version ${version} in ${this.config.keyFile} is not the one this DEK was wrapped with (re-created key file?)`,
      );
    }
    return key;
  }

  private keyFor(version: number): LocalKey {
    const key = this.file.keys.find((k) => k.version === version);
    if (!key) throw new CorruptError(`local: primary version ${version} missing from key file`);
    return key;
  }

  private refFor(key: LocalKey): KekRef {
    return { provider: 'local', key: this.file.id, version: String(key.version), unique: key.created };
  }

  /** Re-reads the key file if it was replaced or modified. A bad new file keeps the old keys (and logs). */
  private reloadIfChanged(): boolean {
    let loaded;
    try {
      loaded = readKeyFile(this.config.keyFile, {
        allowInsecurePermissions: this.config.allowInsecurePermissions,
      });
    } catch (err) {
      this.deps.logger.error(
        { err, keyFile: this.config.keyFile },
        'local key file unreadable; keeping the keys loaded earlier',
      );
      return false;
    }
    if (loaded.mtimeMs === this.mtimeMs && loaded.ino === this.ino) {
      zeroKeyFile(loaded.file);
      return false;
    }
    if (loaded.file.id !== this.file.id) {
      zeroKeyFile(loaded.file);
      this.deps.logger.error(
        { keyFile: this.config.keyFile },
        'local key file was replaced by a different key file (new id); refusing it: data wrapped by the old file would be lost. Restore the old file, or configure the new one deliberately and keep the old one under decryptOnly',
      );
      return false;
    }
    const old = this.file;
    this.file = loaded.file;
    this.mtimeMs = loaded.mtimeMs;
    this.ino = loaded.ino;
    zeroKeyFile(old);
    this.reportLoaded();
    this.deps.logger.info(
      {
        keyFile: this.config.keyFile,
        primary: this.file.primary,
        versions: this.file.keys.map((k) => k.version),
        staged: this.file.keys.filter((k) => k.staged).map((k) => k.version),
      },
      'local key file reloaded',
    );
    return true;
  }

  private startWatch(): void {
    const dir = dirname(this.config.keyFile);
    const name = basename(this.config.keyFile);
    try {
      this.watcher = watch(dir, { persistent: false }, (_event, filename) => {
        if (filename !== null && filename !== name) return;
        for (const l of this.listeners) l();
      });
      this.watcher.on('error', (err) =>
        this.deps.logger.warn({ err }, 'local key file watch failed; relying on the periodic probe'),
      );
    } catch (err) {
      this.deps.logger.warn({ err }, 'cannot watch the local key file; relying on the periodic probe');
    }
  }
}

function aad(ref: KekRef): Buffer {
  return Buffer.from(`${AAD_PREFIX}${ref.key}\0${ref.version}`, 'utf8');
}
