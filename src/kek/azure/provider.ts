/**
 * Azure Key Vault / Managed HSM KEK provider.
 *
 * Design notes (see docs/providers/azure.md and backend-testing.md §3):
 * - Versionless by default: `currentVersion()` resolves the key's current version with
 *   `KeyClient.getKey(name)` and follows it as it rotates; or a pinned `keyVersion`.
 * - Every wrap and unwrap goes through a CryptographyClient for one exact version. It is built from
 *   a minimal KeyVaultKey (no key material, no attributes), so the SDK neither GETs the key first nor
 *   does crypto locally nor refuses locally to unwrap with an expired version (Key Vault allows
 *   unwrap outside the nbf/exp window; only new wraps must stop). Expiry for wraps is enforced here.
 * - The version that actually wrapped is read from the response `kid` (the SDK's `keyID` only echoes
 *   the id the client was built with) and must equal the version asked for.
 * - The SDK's own retries are off; RemoteCaller retries within the caller's deadline. Each attempt
 *   is capped by `attemptTimeout` (default: the time left). A 429/503 Retry-After is honoured by
 *   RemoteCaller when it fits in the deadline, otherwise the call fails at once rather than late.
 */
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import type { CryptographyClientOptions, KeyVaultKey, KeyWrapAlgorithm } from '@azure/keyvault-keys';
import type { TokenCredential } from '@azure/identity';
import type { AzureConfig } from '../../config/providers/azure.js';
import type { Logger } from '../../observability/logger.js';
import {
  CorruptError,
  InvalidInputError,
  KeyDisabledError,
  UnknownKeyError,
  readConfigText,
  type PluginError,
} from '../errors.js';
import { RemoteCaller, type BreakerPolicy, type RetryPolicy } from '../remote.js';
import { remoteRetry } from '../remote-config.js';
import {
  type KekProvider,
  type KekRef,
  type KeyState,
  type KeyVersionInfo,
  type ProviderDeps,
  type WrapResult,
} from '../types.js';
import { assertUnwrapRef, assertWrapRef } from '../ownership.js';
import { buildCredential, ReloadingCredential, TrackedCredential } from './credentials.js';
import { classifyAzureError, type AzureOperation } from './errors.js';
import { keyResource, parseKid, sameKey, versionedKid } from './ids.js';
import { isPurgeable, lacksPurgeProtection, stateOf, type VersionFacts } from './state.js';

const RSA_TYPES = new Set(['RSA', 'RSA-HSM']);
const OCT_TYPES = new Set(['oct', 'oct-HSM']);
const VERSION_RE = /^[0-9A-Za-z]{1,64}$/;
/** Versioned CryptographyClients kept (one per KEK version still being unwrapped). */
const MAX_CRYPTO_CLIENTS = 32;
/** Warn this long before a version expires. */
const EXPIRY_WARNING_MS = 7 * 86_400_000;

export interface AzureProviderOptions {
  /** Use this credential instead of building one from config (tests, embedding). */
  credential?: TokenCredential;
  retry?: Partial<RetryPolicy>;
  breaker?: Partial<BreakerPolicy>;
  /** Clock, injectable for expiry tests. */
  now?: () => Date;
}

export class AzureKekProvider implements KekProvider {
  readonly kind = 'azure' as const;
  readonly description: string;
  /** `<vaultUrl>/keys/<name>`: KekRef.key. */
  readonly resource: string;

  private keysClient: KeyClient;
  /** The credential rebuilt from changed files, if any (see ReloadingCredential). */
  private reloading?: ReloadingCredential;
  private credentialGeneration = 0;
  private readonly clientOptions: CryptographyClientOptions;
  private readonly credential: TokenCredential;
  private readonly tracked?: TrackedCredential;
  private readonly secrets: string[];
  private readonly caller: RemoteCaller<AzureOperation>;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly crypto = new Map<string, CryptographyClient>();
  private readonly known = new Map<string, VersionFacts>();
  private lastVersion?: string;
  private readonly warned = new Set<string>();

  constructor(
    private readonly cfg: AzureConfig,
    private readonly deps: ProviderDeps,
    options: AzureProviderOptions = {},
  ) {
    this.logger = deps.logger.child({ provider: 'azure', role: deps.role });
    this.now = options.now ?? (() => new Date());
    this.resource = keyResource(cfg.vaultUrl, cfg.keyName);
    const ca = cfg.caFile === undefined ? undefined : readConfigText(cfg.caFile, 'azure.caFile');
    let identity = 'injected credential';
    if (options.credential) {
      this.credential = options.credential;
      this.secrets = [];
    } else {
      const built = buildCredential(cfg, ca, { logger: this.logger, metrics: deps.metrics });
      identity = built.description;
      this.secrets = built.secrets;
      if (built.credential instanceof ReloadingCredential) this.reloading = built.credential;
      this.tracked = new TrackedCredential(built.credential, deps.metrics);
      this.credential = this.tracked;
    }
    this.clientOptions = {
      // RemoteCaller owns retries; the SDK's default (3 retries from a 1 s base) would blow the deadline.
      retryOptions: { maxRetries: 0 },
      disableChallengeResourceVerification: cfg.disableChallengeResourceVerification,
      userAgentOptions: { userAgentPrefix: 'k8s-kms-plugin' },
      ...(ca ? { tlsOptions: { ca } } : {}),
    };
    this.keysClient = new KeyClient(cfg.vaultUrl, this.credential, this.clientOptions);
    this.caller = new RemoteCaller({
      provider: 'azure',
      classify: (err, operation, what) =>
        classifyAzureError(err, { operation, what: what ?? this.resource, secrets: this.secrets }),
      metrics: deps.metrics,
      logger: this.logger,
      // RemoteCaller caps each attempt (attemptTimeout, default the time left) and waits out a
      // Retry-After only when it fits before the deadline.
      retry: { ...remoteRetry(cfg), ...options.retry },
      breaker: options.breaker,
      concurrency: cfg.concurrency,
    });
    const pin = cfg.keyVersion ? ` pinned to version ${cfg.keyVersion}` : ' (following the current version)';
    this.description = `${this.resource}${pin}`;
    this.logger.info(
      { resource: this.resource, pinned: cfg.keyVersion ?? null, identity },
      'azure key vault provider configured',
    );
  }

  // ---- KekProvider --------------------------------------------------------------------------

  async currentVersion(signal: AbortSignal): Promise<KeyVersionInfo> {
    this.tracked?.refreshTtl();
    let facts: VersionFacts;
    try {
      facts = await this.fetchFacts(this.cfg.keyVersion, signal);
    } catch (err) {
      const kind = (err as PluginError).kind;
      const last = this.lastVersion === undefined ? undefined : this.known.get(this.lastVersion);
      if (kind === 'key_disabled' && last) {
        // Some vaults refuse even a GET of a disabled key: report the version we know as disabled.
        facts = { ...last, enabled: false };
        this.notice(facts, 'disabled');
        return {
          ref: this.refOf(facts),
          state: 'disabled',
          detail: `key version ${facts.version} is disabled in Key Vault`,
          ordinal: facts.createdOn.getTime(),
        };
      }
      if (kind !== 'unknown_key') throw err;
      const deleted = await this.fetchDeleted(signal);
      if (!deleted) {
        this.logger.error(
          { resource: this.resource, version: this.cfg.keyVersion ?? null },
          'azure key (or pinned version) not found',
        );
        throw err;
      }
      facts = deleted;
    }
    this.checkKeyType(facts);
    const verdict = stateOf(facts, this.now());
    this.notice(facts, verdict.state);
    return {
      ref: this.refOf(facts),
      state: verdict.state,
      ...(verdict.detail ? { detail: verdict.detail } : {}),
      ordinal: facts.createdOn.getTime(),
    };
  }

  async wrap(dek: Buffer, version: KeyVersionInfo, signal: AbortSignal): Promise<WrapResult> {
    const ref = version.ref;
    assertWrapRef(this, ref, { owns: this.canUnwrap(ref) && VERSION_RE.test(ref.version) });
    if (version.state !== 'enabled') {
      throw new KeyDisabledError(
        `azure: refusing to wrap with ${this.resource} version ${ref.version}: ${version.state}${version.detail ? ` (${version.detail})` : ''}`,
      );
    }
    const facts = this.known.get(ref.version) ?? (await this.fetchFacts(ref.version, signal));
    const verdict = stateOf(facts, this.now());
    if (verdict.state !== 'enabled') {
      this.notice(facts, verdict.state);
      throw new KeyDisabledError(
        `azure: refusing to wrap with ${this.resource} version ${ref.version}: ${verdict.state} (${verdict.detail ?? ''})`,
      );
    }
    const algorithm = this.wrapAlgorithm(facts);
    let kid: string | undefined;
    const what = versionedKid(this.cfg.vaultUrl, this.cfg.keyName, ref.version);
    const result = await this.caller.call(
      'wrapKey',
      signal,
      (s) =>
        this.cryptoFor(ref.version).wrapKey(algorithm, dek, {
          abortSignal: s,
          onResponse: (raw: { status: number; parsedBody?: unknown }) => {
            const body = raw.parsedBody as { kid?: unknown } | undefined;
            if (raw.status === 200 && typeof body?.kid === 'string') kid = body.kid;
          },
        }),
      what,
    );
    const used = kid === undefined ? undefined : parseKid(kid);
    if (!used || !sameKey(used, this.cfg.vaultUrl, this.cfg.keyName) || used.version !== ref.version) {
      throw new CorruptError(
        `azure: wrapKey on ${what} answered for ${used ? `${used.name} version ${used.version ?? '(none)'}` : 'no key id'}; the wrapped DEK was discarded`,
      );
    }
    const wrapped = Buffer.from(result.result);
    const expected = algorithm === 'A256KW' ? dek.length + 8 : 0;
    if ((expected && wrapped.length !== expected) || (!expected && wrapped.length < 128)) {
      throw new CorruptError(
        `azure: wrapKey on ${what} returned ${wrapped.length} bytes, not a ${algorithm} wrapped key`,
      );
    }
    return { wrapped, ref: { ...ref } };
  }

  async unwrap(wrapped: Buffer, ref: KekRef, signal: AbortSignal): Promise<Buffer> {
    assertUnwrapRef(this, ref);
    if (!VERSION_RE.test(ref.version)) {
      throw new UnknownKeyError(
        `azure: the stored KEK reference for ${this.resource} has no valid key version`,
      );
    }
    const algorithm = this.unwrapAlgorithm(wrapped);
    const what = versionedKid(this.cfg.vaultUrl, this.cfg.keyName, ref.version);
    const result = await this.caller.call(
      'unwrapKey',
      signal,
      (s) => this.cryptoFor(ref.version).unwrapKey(algorithm, wrapped, { abortSignal: s }),
      what,
    );
    return Buffer.from(result.result);
  }

  canUnwrap(ref: KekRef): boolean {
    if (ref.provider !== 'azure') return false;
    const parsed = parseKid(ref.key);
    return (
      parsed !== undefined &&
      parsed.version === undefined &&
      sameKey(parsed, this.cfg.vaultUrl, this.cfg.keyName)
    );
  }

  async close(): Promise<void> {
    this.crypto.clear();
    this.known.clear();
  }

  // ---- internals ---------------------------------------------------------------------------

  private async fetchFacts(version: string | undefined, signal: AbortSignal): Promise<VersionFacts> {
    const what = version ? versionedKid(this.cfg.vaultUrl, this.cfg.keyName, version) : this.resource;
    const key = await this.caller.call(
      'getKey',
      signal,
      (s) => this.keys.getKey(this.cfg.keyName, { ...(version ? { version } : {}), abortSignal: s }),
      what,
    );
    const facts = this.factsOf(key, what);
    if (version !== undefined && facts.version !== version) {
      throw new CorruptError(`azure: asked Key Vault for ${what} and got version ${facts.version}`);
    }
    this.remember(facts);
    return facts;
  }

  private async fetchDeleted(signal: AbortSignal): Promise<VersionFacts | undefined> {
    try {
      const d = await this.caller.call(
        'getDeletedKey',
        signal,
        (s) => this.keys.getDeletedKey(this.cfg.keyName, { abortSignal: s }),
        this.resource,
      );
      const facts = this.factsOf(d, this.resource);
      facts.deletedOn = d.properties.deletedOn ?? this.now();
      facts.scheduledPurgeDate = d.properties.scheduledPurgeDate;
      return facts;
    } catch (err) {
      // Not soft-deleted, or no permission to list deleted keys: report the original not-found.
      this.logger.debug({ kind: (err as PluginError).kind }, 'azure deleted-key lookup failed');
      return undefined;
    }
  }

  private factsOf(key: KeyVaultKey, what: string): VersionFacts {
    const p = key.properties;
    const version = p.version ?? (key.id ? parseKid(key.id)?.version : undefined);
    if (!version || !VERSION_RE.test(version) || !key.id)
      throw new CorruptError(`azure: Key Vault returned ${what} without a key version`);
    if (!(p.createdOn instanceof Date) || Number.isNaN(p.createdOn.getTime())) {
      throw new CorruptError(`azure: Key Vault returned ${what} version ${version} without a creation time`);
    }
    return {
      version,
      kid: key.id,
      keyType: key.keyType ?? 'unknown',
      keyOps: key.keyOperations,
      enabled: p.enabled !== false,
      notBefore: p.notBefore,
      expiresOn: p.expiresOn,
      createdOn: p.createdOn,
      recoveryLevel: p.recoveryLevel,
    };
  }

  private remember(f: VersionFacts): void {
    this.known.delete(f.version);
    this.known.set(f.version, f);
    while (this.known.size > MAX_CRYPTO_CLIENTS) this.known.delete(this.known.keys().next().value as string);
  }

  private refOf(f: VersionFacts): KekRef {
    return { provider: 'azure', key: this.resource, version: f.version, unique: f.createdOn.toISOString() };
  }

  private checkKeyType(f: VersionFacts): void {
    if (!RSA_TYPES.has(f.keyType) && !OCT_TYPES.has(f.keyType)) {
      throw new InvalidInputError(
        `azure: ${this.resource} version ${f.version} is a ${f.keyType} key, which cannot wrap keys; use an RSA / RSA-HSM key (Key Vault) or an oct-HSM key (Managed HSM)`,
      );
    }
    if (this.cfg.algorithm === 'A256KW' && !OCT_TYPES.has(f.keyType)) {
      throw new InvalidInputError(
        `azure: algorithm A256KW needs an oct-HSM key, but ${this.resource} is ${f.keyType}`,
      );
    }
    if (this.cfg.algorithm === 'RSA-OAEP-256' && !RSA_TYPES.has(f.keyType)) {
      throw new InvalidInputError(
        `azure: algorithm RSA-OAEP-256 needs an RSA key, but ${this.resource} is ${f.keyType}`,
      );
    }
    const ops = f.keyOps;
    if (ops && (!ops.includes('wrapKey') || !ops.includes('unwrapKey'))) {
      this.warnOnce(
        `ops:${f.version}`,
        { version: f.version, keyOps: ops },
        'azure key version does not allow both wrapKey and unwrapKey; add them to the key operations',
      );
    }
  }

  private wrapAlgorithm(f: VersionFacts): KeyWrapAlgorithm {
    if (this.cfg.algorithm !== 'auto') return this.cfg.algorithm;
    return OCT_TYPES.has(f.keyType) ? 'A256KW' : 'RSA-OAEP-256';
  }

  /** Under `auto`, an A256KW-wrapped 32-byte DEK is 40 bytes; RSA-OAEP output is the modulus size (≥ 256). */
  private unwrapAlgorithm(wrapped: Buffer): KeyWrapAlgorithm {
    if (this.cfg.algorithm !== 'auto') return this.cfg.algorithm;
    return wrapped.length === 40 ? 'A256KW' : 'RSA-OAEP-256';
  }

  /**
   * The SDK clients cache their access token: when a credential file changed (and the credential
   * was rebuilt), new clients make the next call fetch a token with the new credential.
   */
  private get keys(): KeyClient {
    this.followCredentialFiles();
    return this.keysClient;
  }

  private followCredentialFiles(): void {
    const generation = this.reloading?.refresh() ?? 0;
    if (generation === this.credentialGeneration) return;
    this.credentialGeneration = generation;
    this.keysClient = new KeyClient(this.cfg.vaultUrl, this.credential, this.clientOptions);
    this.crypto.clear();
  }

  /** A CryptographyClient for exactly `version`, without the SDK's key prefetch or local checks. */
  private cryptoFor(version: string): CryptographyClient {
    this.followCredentialFiles();
    let client = this.crypto.get(version);
    if (client) {
      this.crypto.delete(version);
      this.crypto.set(version, client);
      return client;
    }
    const key = {
      name: this.cfg.keyName,
      id: versionedKid(this.cfg.vaultUrl, this.cfg.keyName, version),
      properties: { name: this.cfg.keyName, vaultUrl: this.cfg.vaultUrl, version },
    } as KeyVaultKey;
    client = new CryptographyClient(key, this.credential, this.clientOptions);
    this.crypto.set(version, client);
    while (this.crypto.size > MAX_CRYPTO_CLIENTS)
      this.crypto.delete(this.crypto.keys().next().value as string);
    return client;
  }

  /**
   * Version and vault advice only: the key state itself goes to the one key-state owner
   * (src/health/kek-state.ts) through the KeyVersionInfo this provider returns.
   */
  private notice(f: VersionFacts, state: KeyState): void {
    const ctx = { resource: this.resource, version: f.version, state };
    if (this.lastVersion !== undefined && this.lastVersion !== f.version) {
      this.logger.info({ ...ctx, previous: this.lastVersion }, 'azure key has a new current version');
    }
    this.lastVersion = f.version;
    const now = this.now().getTime();
    if (state === 'enabled' && f.expiresOn && f.expiresOn.getTime() - now < EXPIRY_WARNING_MS) {
      this.warnOnce(
        `expiry:${f.version}:${Math.floor(now / 86_400_000)}`, // once a day per version
        { ...ctx, expiresOn: f.expiresOn.toISOString() },
        'azure KEK version expires soon; rotate the key before then',
      );
    }
    if (isPurgeable(f.recoveryLevel)) {
      this.warnOnce(
        'purgeable',
        { ...ctx, recoveryLevel: f.recoveryLevel },
        'azure vault has no soft delete: deleting the key destroys every secret it protects; enable soft delete and purge protection',
      );
    } else if (lacksPurgeProtection(f.recoveryLevel)) {
      this.warnOnce(
        'purge',
        { ...ctx, recoveryLevel: f.recoveryLevel },
        'azure vault has no purge protection: a purge of the deleted key would destroy every secret it protects',
      );
    }
  }

  private warnOnce(id: string, ctx: Record<string, unknown>, msg: string): void {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.logger.warn(ctx, msg);
  }
}
