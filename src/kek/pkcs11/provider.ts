/**
 * A PKCS#11 token (HSM, TPM through tpm2-pkcs11, SoftHSM) as a KEK provider.
 *
 * - currentVersion / newestVersion: lists the key objects with the configured CKA_LABEL; the
 *   highest CKA_ID version is the primary (keys.ts); state from CKA_DECRYPT/CKA_UNWRAP, a vanished
 *   object is `destroyed`, a vanished token `unavailable`.
 * - wrap / unwrap: inside the token with the scheme chosen by mechanism.ts; the KEK never leaves.
 * - Every call goes through RemoteCaller (deadline, bounded retries, concurrency, breaker) and a
 *   SessionPool (bounded sessions, login once, reopen after the session or token went away).
 */
import type { Pkcs11Config } from '../../config/providers/pkcs11.js';
import type { Logger } from '../../observability/logger.js';
import type { ProviderMetrics } from '../../observability/metrics.js';
import { KeyDisabledError, UnknownKeyError, asPluginError } from '../errors.js';
import { withKeyState } from '../key-state.js';
import { RemoteCaller, type BreakerPolicy, type RetryPolicy } from '../remote.js';
import { remoteRetry } from '../remote-config.js';
import { type KekProvider, type KekRef, type KeyVersionInfo, type WrapResult } from '../types.js';
import { assertUnwrapRef, assertWrapRef } from '../ownership.js';
import { classifyPkcs11Error, staleHandle, type Pkcs11Operation } from './errors.js';
import { disabledReason, findVersion, listVersions, type KeyObject } from './keys.js';
import { chooseScheme, schemeOf, unwrapDek, wrapDek, type Scheme } from './mechanism.js';
import type { Pkcs11Module } from './module.js';
import { SessionPool } from './session.js';

export interface Pkcs11ProviderOptions {
  retry?: Partial<RetryPolicy>;
  breaker?: Partial<BreakerPolicy>;
}

const PROVIDER = 'pkcs11';
const AAD_PREFIX = 'k8s-kms-plugin/pkcs11/v1\0';

/** RFC 7512-style name of the key: stable across versions and identical on every node. */
export function canonicalKey(config: Pkcs11Config): string {
  const enc = (s: string): string => encodeURIComponent(s);
  const where =
    config.tokenLabel !== undefined ? `token=${enc(config.tokenLabel)}` : `slot-id=${String(config.slot)}`;
  return `pkcs11:${where};object=${enc(config.keyLabel)}`;
}

export class Pkcs11Provider implements KekProvider {
  readonly kind = 'pkcs11' as const;
  readonly description: string;
  readonly key: string;
  readonly pool: SessionPool;
  private readonly caller: RemoteCaller<Pkcs11Operation>;
  private readonly logger: Logger;
  private readonly metrics: ProviderMetrics;
  private readonly role: string;
  /** Key objects by version, valid while the sessions that found them live (pool epoch). */
  private cache = new Map<number, KeyObject>();
  private cacheGeneration = -1;
  private scheme: Scheme | undefined;
  private last: KeyVersionInfo | undefined;
  private warned = new Set<string>();

  constructor(
    private readonly config: Pkcs11Config,
    private readonly module: Pkcs11Module,
    deps: { logger: Logger; metrics: ProviderMetrics; role: string },
    options: Pkcs11ProviderOptions = {},
  ) {
    this.logger = deps.logger;
    this.metrics = deps.metrics;
    this.role = deps.role;
    this.key = canonicalKey(config);
    this.pool = new SessionPool({
      module,
      tokenLabel: config.tokenLabel,
      slot: config.slot,
      pinFile: config.pinFile,
      size: config.concurrency,
      logger: deps.logger,
      metrics: deps.metrics,
    });
    this.description = `PKCS#11 key "${config.keyLabel}" on ${this.pool.token} (${config.modulePath})`;
    this.caller = new RemoteCaller({
      provider: PROVIDER,
      metrics: deps.metrics,
      logger: deps.logger,
      retry: { ...remoteRetry(config), ...options.retry },
      breaker: options.breaker,
      concurrency: config.concurrency,
      classify: (err, operation) => classifyPkcs11Error(err, operation, this.what(operation)),
    });
  }

  async currentVersion(signal: AbortSignal): Promise<KeyVersionInfo> {
    const all = await this.versions(signal);
    return all.current;
  }

  async newestVersion(signal: AbortSignal): Promise<KeyVersionInfo | undefined> {
    const all = await this.versions(signal);
    return all.newestEnabled;
  }

  async wrap(dek: Buffer, version: KeyVersionInfo, signal: AbortSignal): Promise<WrapResult> {
    assertWrapRef(this, version.ref);
    if (version.state !== 'enabled') {
      throw new KeyDisabledError(
        `pkcs11 wrap: version ${version.ref.version} of ${this.key} is ${version.state}${version.detail ? `: ${version.detail}` : ''}`,
      );
    }
    const v = Number(version.ref.version);
    const wrapped = await this.op('encrypt', signal, async (session, slot) => {
      const key = this.object(session, v);
      if (!key)
        throw new KeyDisabledError(`pkcs11 wrap: version ${v} of ${this.key} no longer exists on the token`);
      const why = disabledReason(this.module.api, key);
      if (why) throw new KeyDisabledError(`pkcs11 wrap: ${why} (${this.key})`);
      if (version.ref.unique !== undefined && key.checkValue !== version.ref.unique)
        throw new UnknownKeyError(
          `pkcs11 wrap: version ${v} of ${this.key} was replaced by another key object`,
        );
      this.scheme ??= chooseScheme(this.module.api, this.module.lib, slot, key.family, this.config.mechanism);
      return wrapDek(this.module.api, this.module.lib, session, key, this.scheme, dek, aad(version.ref));
    });
    return { wrapped, ref: version.ref };
  }

  async unwrap(wrapped: Buffer, ref: KekRef, signal: AbortSignal): Promise<Buffer> {
    assertUnwrapRef(this, ref);
    const v = Number(ref.version);
    return this.op('decrypt', signal, async (session, slot) => {
      const key = this.object(session, v);
      if (!key) this.pool.assertToken(slot);
      if (!key)
        throw new UnknownKeyError(
          `pkcs11 unwrap: version ${v} of ${this.key} is not on the token (destroyed?); DEKs wrapped by it cannot be unwrapped`,
        );
      if (!key.canDecrypt && !key.canUnwrap)
        throw new KeyDisabledError(
          `pkcs11 unwrap: version ${v} of ${this.key} is disabled (CKA_DECRYPT and CKA_UNWRAP false)`,
        );
      if (ref.unique !== undefined && key.checkValue !== undefined && key.checkValue !== ref.unique)
        throw new UnknownKeyError(
          `pkcs11 unwrap: version ${v} of ${this.key} is a different key object than the one that wrapped this DEK (re-created?)`,
        );
      const scheme = schemeOf(wrapped, key.family);
      return unwrapDek(this.module.api, this.module.lib, session, key, scheme, wrapped, aad(ref));
    });
  }

  canUnwrap(ref: KekRef): boolean {
    return ref.provider === 'pkcs11' && ref.key === this.key && /^[1-9]\d{0,9}$/.test(ref.version);
  }

  async close(): Promise<void> {
    await this.pool.close();
    await this.module.release();
  }

  // ---- internals ------------------------------------------------------------------------------

  private async versions(
    signal: AbortSignal,
  ): Promise<{ current: KeyVersionInfo; newestEnabled: KeyVersionInfo | undefined }> {
    let listing;
    try {
      listing = await this.op('read_key', signal, async (session, slot) => {
        const l = listVersions(this.module.api, this.module.lib, session, this.config.keyLabel);
        if (l.keys.length === 0) this.pool.assertToken(slot);
        this.cache = new Map(l.keys.map((k) => [k.version, k]));
        this.cacheGeneration = this.pool.epoch;
        return l;
      });
    } catch (err) {
      const e = asPluginError(err);
      if (e.kind === 'unavailable' || e.kind === 'deadline') {
        const detail = `the token is not answering: ${e.message}`;
        if (this.last)
          return { current: { ...this.last, state: 'unavailable', detail }, newestEnabled: undefined };
        // No version known yet: the error carries the state to the key-state owner.
        throw withKeyState(e, 'unavailable');
      }
      throw e;
    }
    if (listing.ignored > 0)
      this.warnOnce(
        'ignored',
        `${listing.ignored} object(s) labelled "${this.config.keyLabel}" have a CKA_ID that is not a 4-byte version number; ignored`,
      );
    if (listing.keys.length === 0) {
      if (this.last) {
        const current = {
          ...this.last,
          state: 'destroyed' as const,
          detail: `no key object labelled "${this.config.keyLabel}" on ${this.pool.token} any more (deleted?)`,
        };
        return { current, newestEnabled: undefined };
      }
      throw new UnknownKeyError(
        `pkcs11: no key labelled "${this.config.keyLabel}" on ${this.pool.token}; create the first version with ` +
          '`k8s-kms-plugin rotate --provider pkcs11 ...` (docs/providers/pkcs11.md)',
      );
    }
    const infos = listing.keys.map((k) => this.info(k));
    const current = infos[infos.length - 1];
    const newestEnabled = [...infos].reverse().find((i) => i.state === 'enabled');
    this.last = current;
    return { current, newestEnabled };
  }

  private info(k: KeyObject): KeyVersionInfo {
    const ref: KekRef = { provider: 'pkcs11', key: this.key, version: String(k.version) };
    if (k.checkValue !== undefined) ref.unique = k.checkValue;
    if (k.extractable || !k.sensitive)
      this.warnOnce(
        `extractable-${k.version}`,
        `version ${k.version} is ${k.extractable ? 'extractable' : 'not sensitive'}: its key material can leave the token. Create KEKs with CKA_SENSITIVE=true, CKA_EXTRACTABLE=false`,
      );
    const why = disabledReason(this.module.api, k);
    const info: KeyVersionInfo = { ref, state: why ? 'disabled' : 'enabled', ordinal: k.version };
    if (why) info.detail = why;
    return info;
  }

  /** A version's key object: from the listing cache (same module generation) or looked up. */
  private object(session: Buffer, version: number): KeyObject | undefined {
    if (this.cacheGeneration !== this.pool.epoch) {
      this.cache.clear();
      this.cacheGeneration = this.pool.epoch;
    }
    const hit = this.cache.get(version);
    if (hit) return hit;
    const found = findVersion(this.module.api, this.module.lib, session, this.config.keyLabel, version);
    if (found) this.cache.set(version, found);
    return found;
  }

  private op<T>(
    operation: Pkcs11Operation,
    signal: AbortSignal,
    fn: (session: Buffer, slot: Buffer) => Promise<T>,
  ): Promise<T> {
    return this.caller.call(operation, signal, (attempt) =>
      this.pool.use(attempt, this.what(operation), async (session, slot) => {
        try {
          return await fn(session, slot);
        } catch (err) {
          if (staleHandle(err)) this.cache.clear(); // key object deleted or token re-read: look up again
          throw err; // RemoteCaller classifies it
        }
      }),
    );
  }

  private what(operation: Pkcs11Operation): string {
    return `pkcs11 ${operation.replace('_', ' ')} ${this.key}`;
  }

  private warnOnce(id: string, msg: string): void {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.logger.warn({ provider: PROVIDER, role: this.role, kekName: this.key }, `pkcs11: ${msg}`);
  }
}

function aad(ref: KekRef): Buffer {
  return Buffer.from(`${AAD_PREFIX}${ref.key}\0${ref.version}`, 'utf8');
}
