/**
 * The KEK provider interface: the one small surface every backend of the provider catalog
 * implements. The envelope layer talks only to this; providers never import the envelope, the
 * server or the CLI.
 *
 * Every remote operation takes an AbortSignal that carries the caller's deadline (see
 * src/deadline.ts). A provider must stop work and reject when it aborts, and must never retry past
 * it (use RemoteCaller in ./remote.ts).
 *
 * Errors: throw the classes in ../errors.ts (re-exported from ./errors.ts), classified:
 * invalid input, permission denied, throttled, unavailable, key disabled, corrupt, unknown key.
 */
import type { Logger } from '../observability/logger.js';
import type { ProviderMetrics } from '../observability/metrics.js';
import type { OptionalCallIssue } from './optional.js';
import { PROVIDERS, type ProviderName } from '../config/providers/index.js';

/** Provider names, from the provider catalog (src/config/providers/index.ts). */
export const PROVIDER_KINDS: readonly ProviderName[] = PROVIDERS;
export type ProviderKind = ProviderName;

/**
 * Usability of a key version. Only `enabled` may wrap new DEKs. Anything else stops new DEKs
 * (and, for states that mean the key is going away, makes Status fail so the apiserver stops
 * writing) and is surfaced loudly in Status, /healthz, logs and the kek_state metric.
 */
export type KeyState =
  | 'enabled'
  | 'disabled'
  | 'pending_deletion' // AWS PendingDeletion, GCP DESTROY_SCHEDULED, Azure soft-deleted, Vault deletion scheduled
  | 'destroyed'
  | 'not_found' // the key (or pinned version) does not exist any more: AWS NotFoundException, GCP/Azure/Vault 404
  | 'pending_import'
  | 'expired' // Azure `expires` passed
  | 'not_yet_valid' // Azure `notBefore` in the future
  | 'unavailable'; // the KMS reports the key unusable for a transient or external reason (e.g. AWS Unavailable, Vault sealed)

export const KEY_STATES: readonly KeyState[] = [
  'enabled',
  'disabled',
  'pending_deletion',
  'destroyed',
  'not_found',
  'pending_import',
  'expired',
  'not_yet_valid',
  'unavailable',
];

/**
 * Names exactly which KEK version wrapped a DEK. It travels in plaintext in the EncryptResponse
 * annotations and in etcd, and key_id is derived from it, so it must contain nothing secret and
 * must be identical on every replica and after every restart for the same remote version.
 */
export interface KekRef {
  provider: ProviderKind;
  /** The key resource, stable across versions: key ARN, CryptoKey name, `<vault>/keys/<name>`, transit address+mount+key, local key-file id. */
  key: string;
  /** The exact version that wraps/wrapped: local "3", GCP CryptoKeyVersion id, Azure version, Vault "3", AWS material marker. */
  version: string;
  /**
   * What else makes this version unique, so a re-created key never reuses a key_id
   * (e.g. the version's creation time). Optional; part of key_id when present.
   */
  unique?: string;
}

/** What a provider knows about the version it would wrap new DEKs with right now. */
export interface KeyVersionInfo {
  ref: KekRef;
  state: KeyState;
  /** Short, non-secret explanation, shown when state is not `enabled` (e.g. "scheduled for deletion on 2026-12-01"). */
  detail?: string;
  /**
   * Monotonic position of this version among the key's versions (higher = newer): a version
   * number, or a creation time in ms. Used by the rotation watcher to detect a primary that moved
   * back to an older version.
   */
  ordinal: number;
}

export interface WrapResult {
  wrapped: Buffer;
  /** The version that actually wrapped (read back from the KMS response where it says so). */
  ref: KekRef;
}

export interface KekProvider {
  readonly kind: ProviderKind;
  /** Non-secret description of the configured key, for logs and `probe`, e.g. the key ARN or resource name. */
  readonly description: string;

  /** Resolve the current primary version and its state (one or a few remote calls). */
  currentVersion(signal: AbortSignal): Promise<KeyVersionInfo>;

  /** Wrap a 32-byte DEK with exactly `version` (never "whatever is primary now"). */
  wrap(dek: Buffer, version: KeyVersionInfo, signal: AbortSignal): Promise<WrapResult>;

  /** Unwrap with the explicit version reference stored next to the wrapped DEK. Fails closed. */
  unwrap(wrapped: Buffer, ref: KekRef, signal: AbortSignal): Promise<Buffer>;

  /** True if this provider is configured for `ref`'s key and can be asked to unwrap it. */
  canUnwrap(ref: KekRef): boolean;

  /**
   * Optional: the NEWEST `enabled` version of the configured key (highest `ordinal`), whether or
   * not it is the primary; `undefined` if the provider cannot tell. Same `ref` shape and `ordinal`
   * scale as `currentVersion()`, and only for the same key.
   *
   * Why: the rotation watcher refuses a primary that moved back to an older version (a key_id must
   * never be reused), but memory does not survive a restart. With this method the watcher wraps
   * with the newer of (primary, newest) at start-up and on every probe, and treats a primary older
   * than the newest as a rollback (warn + metric), so every replica and every restart converges on
   * the same version without writing anything to disk.
   *
   * Implement it where the KMS lets the primary point back at an older version and versions can be
   * listed cheaply: `local` (highest version in the key file), GCP (list CryptoKeyVersions with
   * filter `state=ENABLED`, highest numeric version id; the ordinal must match currentVersion's)
   * and PKCS#11. Azure does not implement it (yet): listing the key's versions (newest enabled by
   * `createdOn`) would fit. Leave it out where new versions are always the primary (AWS, Vault
   * transit: latest_version). The listing is an
   * OPTIONAL call (./optional.ts): when it is refused the provider returns undefined, warns once,
   * and the plugin serves with the primary.
   */
  newestVersion?(signal: AbortSignal): Promise<KeyVersionInfo | undefined>;

  /**
   * Optional: the optional remote calls this provider is skipping because they were refused
   * (see ./optional.ts), for /healthz?verbose. Empty or absent when everything works.
   */
  optionalIssues?(): OptionalCallIssue[];

  /**
   * Optional: register a callback for out-of-band hints that the current version may have changed
   * (e.g. the local key file was rewritten). The rotation watcher probes soon after a hint.
   */
  onChangeHint?(listener: () => void): void;

  /**
   * Optional: the key versions this process holds in memory (no I/O), for /healthz?verbose, the
   * kms_plugin_kek_versions_loaded metric and `probe`. Implemented where versions are local
   * (the key file); cloud KMSs hold no versions in the plugin.
   */
  loadedVersions?(): LoadedVersion[];

  /** Release clients, timers and watchers. */
  close(): Promise<void>;
}

/** One loaded key version: `write` wraps new DEKs, `decrypt` only unwraps, `staged` awaits promotion. */
export interface LoadedVersion {
  version: string;
  use: 'write' | 'decrypt' | 'staged';
}

/** What the registry hands a provider factory. */
export interface ProviderDeps {
  logger: Logger;
  metrics: ProviderMetrics;
  /** Role of this instance: 'primary' for the provider that wraps new DEKs, 'decrypt-only-<i>' otherwise. */
  role: string;
}
