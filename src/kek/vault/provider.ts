/**
 * HashiCorp Vault / OpenBao Transit as a KEK provider.
 *
 * - currentVersion: `GET <mount>/keys/<name>` → the latest version, its creation time (KekRef
 *   `unique`) and its state; a sealed, standby or unreachable server turns the last known version
 *   `unavailable`, a deleted key `destroyed`, both loudly.
 * - wrap: `POST <mount>/encrypt/<name>` with an explicit `key_version` and `associated_data`;
 *   the answer's `vault:v<N>:` must name the version asked for.
 * - unwrap: `POST <mount>/decrypt/<name>` after checking the ciphertext's version against the ref.
 *
 * Every call goes through RemoteCaller (deadline, bounded retries, concurrency, breaker); a 403
 * gets one fresh token (login or token-file re-read) and one retry within the same attempt.
 */
import type { VaultConfig } from '../../config/providers/vault.js';
import type { Logger } from '../../observability/logger.js';
import type { ProviderMetrics } from '../../observability/metrics.js';
import {
  CorruptError,
  KeyDisabledError,
  PluginError,
  UnauthenticatedError,
  UnknownKeyError,
  asPluginError,
} from '../errors.js';
import { withKeyState } from '../key-state.js';
import { RemoteCaller, type BreakerPolicy, type RetryPolicy } from '../remote.js';
import { remoteRetry } from '../remote-config.js';
import { type KekProvider, type KekRef, type KeyVersionInfo, type WrapResult } from '../types.js';
import { assertUnwrapRef, assertWrapRef } from '../ownership.js';
import { VaultAuth, type VaultAuthOptions } from './auth.js';
import {
  VaultKeyNotFoundError,
  VaultUnavailableError,
  classifyVaultError,
  type VaultOperation,
} from './errors.js';
import { VaultHttp, VaultHttpError } from './http.js';
import {
  canonicalKey,
  ciphertextVersion,
  currentState,
  makeRef,
  parseKeyMeta,
  type TransitKeyMeta,
} from './keys.js';

export interface VaultProviderOptions {
  retry?: Partial<RetryPolicy>;
  breaker?: Partial<BreakerPolicy>;
  concurrency?: number;
  auth?: VaultAuthOptions;
}

const PROVIDER = 'vault';

export class VaultProvider implements KekProvider {
  readonly kind = 'vault' as const;
  readonly description: string;
  /** The canonical key string carried in every KekRef.key. */
  readonly key: string;

  private readonly caller: RemoteCaller<VaultOperation>;
  private readonly auth: VaultAuth;
  private readonly associatedData: string | undefined;
  private readonly logger: Logger;
  private readonly metrics: ProviderMetrics;
  private readonly role: string;
  private meta: TransitKeyMeta | undefined;
  private last: KeyVersionInfo | undefined;

  constructor(
    private readonly config: VaultConfig,
    private readonly http: VaultHttp,
    deps: { logger: Logger; metrics: ProviderMetrics; role: string },
    options: VaultProviderOptions = {},
  ) {
    this.logger = deps.logger;
    this.metrics = deps.metrics;
    this.role = deps.role;
    this.key = canonicalKey(config);
    this.description = `Vault Transit key ${this.key} (auth ${config.auth.method})`;
    this.associatedData =
      config.associatedData === undefined
        ? undefined
        : Buffer.from(config.associatedData, 'utf8').toString('base64');
    const common = {
      provider: PROVIDER,
      metrics: deps.metrics,
      logger: deps.logger,
      retry: { ...remoteRetry(config), ...options.retry },
      breaker: options.breaker,
    };
    this.caller = new RemoteCaller<VaultOperation>({
      ...common,
      concurrency: options.concurrency ?? config.concurrency,
      classify: (err, op) => classifyVaultError(err, op, `vault ${op.replace('_', ' ')} ${this.key}`),
    });
    // Logins and renewals get their own caller: a login inside a transit attempt must not wait for
    // a transit concurrency slot, and a failing login must not open the transit circuit.
    const authCaller = new RemoteCaller<VaultOperation>({
      ...common,
      concurrency: 4,
      classify: (err, op) => classifyVaultError(err, op, `vault ${op.replace('_', '-')}`),
    });
    this.auth = new VaultAuth(config.auth, http, authCaller, deps.logger, deps.metrics, options.auth);
  }

  async currentVersion(signal: AbortSignal): Promise<KeyVersionInfo> {
    const what = `vault read key ${this.key}`;
    let meta: TransitKeyMeta;
    try {
      meta = parseKeyMeta(
        await this.transit('read_key', 'GET', `${this.keysPath()}`, undefined, signal),
        what,
      );
    } catch (err) {
      const e = asPluginError(err);
      const last = this.last;
      if (e instanceof VaultKeyNotFoundError && last) {
        return {
          ...last,
          state: 'destroyed',
          detail: `the Transit key ${this.config.keyName} no longer exists in Vault (deleted?)`,
        };
      }
      if (e.kind === 'unavailable') {
        const detail = unavailableDetail(e);
        if (last) return { ...last, state: 'unavailable', detail };
        // No version known yet: the error carries the state to the key-state owner.
        throw withKeyState(e, 'unavailable');
      }
      throw e;
    }
    const cur = currentState(meta);
    const info: KeyVersionInfo = {
      ref: makeRef(this.key, cur.version, meta, what),
      state: cur.state,
      ordinal: cur.version,
    };
    if (cur.detail) info.detail = cur.detail;
    this.meta = meta;
    this.last = info;
    return info;
  }

  async wrap(dek: Buffer, version: KeyVersionInfo, signal: AbortSignal): Promise<WrapResult> {
    assertWrapRef(this, version.ref);
    if (version.state !== 'enabled') {
      throw new KeyDisabledError(
        `vault wrap: version ${version.ref.version} of ${this.key} is ${version.state}${version.detail ? `: ${version.detail}` : ''}`,
      );
    }
    const n = Number(version.ref.version);
    const body: Record<string, unknown> = { plaintext: dek.toString('base64'), key_version: n };
    if (this.associatedData !== undefined) body.associated_data = this.associatedData;
    const res = await this.transit<{ data?: { ciphertext?: unknown; key_version?: unknown } }>(
      'encrypt',
      'POST',
      `${this.config.transitMount}/encrypt/${this.config.keyName}`,
      body,
      signal,
    );
    const ct = res?.data?.ciphertext;
    if (typeof ct !== 'string')
      throw new CorruptError(`vault encrypt ${this.key}: the response carries no ciphertext`);
    const got = ciphertextVersion(ct);
    const kv = res?.data?.key_version;
    if (got !== n || (typeof kv === 'number' && kv !== n)) {
      throw new CorruptError(
        `vault encrypt ${this.key}: asked for version ${n}, Vault answered ${got === undefined ? 'an unrecognised ciphertext' : `version ${got}`}`,
      );
    }
    return { wrapped: Buffer.from(ct, 'utf8'), ref: version.ref };
  }

  async unwrap(wrapped: Buffer, ref: KekRef, signal: AbortSignal): Promise<Buffer> {
    assertUnwrapRef(this, ref);
    const ct = wrapped.toString('utf8');
    const v = ciphertextVersion(ct);
    if (v === undefined)
      throw new UnauthenticatedError('vault unwrap: the wrapped DEK is not a Vault Transit ciphertext');
    if (String(v) !== ref.version) {
      throw new UnauthenticatedError(
        `vault unwrap: the wrapped DEK names version ${v} but its KEK reference says ${ref.version}`,
      );
    }
    const created = this.meta?.created.get(v);
    if (created !== undefined && ref.unique !== undefined && created !== ref.unique) {
      throw new UnknownKeyError(
        `vault unwrap: version ${v} of ${this.key} was created at ${created}, not ${ref.unique}: the key was re-created and cannot unwrap this DEK`,
      );
    }
    const body: Record<string, unknown> = { ciphertext: ct };
    if (this.associatedData !== undefined) body.associated_data = this.associatedData;
    const res = await this.transit<{ data?: { plaintext?: unknown } }>(
      'decrypt',
      'POST',
      `${this.config.transitMount}/decrypt/${this.config.keyName}`,
      body,
      signal,
    );
    const pt = res?.data?.plaintext;
    if (typeof pt !== 'string' || pt === '')
      throw new CorruptError(`vault decrypt ${this.key}: the response carries no plaintext`);
    return Buffer.from(pt, 'base64');
  }

  canUnwrap(ref: KekRef): boolean {
    return ref.provider === 'vault' && ref.key === this.key && /^[1-9]\d*$/.test(ref.version);
  }

  async close(): Promise<void> {
    this.auth.close();
    await this.http.close();
  }

  // ---- internals ------------------------------------------------------------------------------

  private keysPath(): string {
    return `${this.config.transitMount}/keys/${this.config.keyName}`;
  }

  /** One Transit call through RemoteCaller, with one fresh token and retry after a 403. */
  private transit<T>(
    op: VaultOperation,
    method: 'GET' | 'POST',
    path: string,
    body: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<T | undefined> {
    return this.caller.call(op, signal, async (attempt) => {
      const token = await this.auth.token();
      try {
        return await this.http.request<T>(method, path, { token, body, signal: attempt });
      } catch (err) {
        if (attempt.aborted || !(err instanceof VaultHttpError) || err.status !== 403) throw err;
        if (!(await this.auth.recover(token))) throw err;
      }
      const fresh = await this.auth.token();
      return this.http.request<T>(method, path, { token: fresh, body, signal: attempt });
    });
  }
}

function unavailableDetail(e: PluginError): string {
  if (e instanceof VaultUnavailableError) {
    switch (e.reason) {
      case 'sealed':
        return 'Vault is sealed';
      case 'standby':
        return 'Vault answered from a standby node that cannot serve requests';
      case 'unreachable':
        return 'Vault is unreachable';
      case 'tls':
        return 'TLS handshake with Vault failed';
      default:
        return 'Vault is answering with server errors';
    }
  }
  return e.message;
}
