/**
 * Pure helpers for the Transit provider: the canonical key string, the `keys/<name>` metadata
 * → KeyVersionInfo mapping, and the `vault:v<N>:` ciphertext prefix.
 */
import type { KekRef, KeyState } from '../types.js';
import { CorruptError } from '../errors.js';

export interface TransitLocation {
  address: string;
  namespace?: string;
  transitMount: string;
  keyName: string;
}

/**
 * One canonical string for the key: `<address>/v1/[<namespace>/]<mount>/keys/<name>`, the same
 * path Vault itself accepts for it. Non-secret, and stable across replicas and restarts.
 */
export function canonicalKey(loc: TransitLocation): string {
  const ns = loc.namespace ? `${loc.namespace}/` : '';
  return `${loc.address}/v1/${ns}${loc.transitMount}/keys/${loc.keyName}`;
}

/** The subset of `GET <mount>/keys/<name>` the provider relies on. */
export interface TransitKeyMeta {
  type: string;
  latestVersion: number;
  minDecryptionVersion: number;
  minEncryptionVersion: number;
  deletionAllowed: boolean;
  supportsEncryption: boolean;
  /** Version → creation time as Vault reports it (unix seconds for symmetric keys). */
  created: Map<number, string>;
}

export function parseKeyMeta(raw: unknown, what: string): TransitKeyMeta {
  const data = (raw as { data?: unknown } | undefined)?.data;
  if (typeof data !== 'object' || data === null)
    throw new CorruptError(`${what}: the key read carries no data`);
  const d = data as Record<string, unknown>;
  const latest = d.latest_version;
  if (typeof latest !== 'number' || !Number.isInteger(latest) || latest < 1) {
    throw new CorruptError(`${what}: latest_version missing or invalid`);
  }
  const created = new Map<number, string>();
  if (typeof d.keys === 'object' && d.keys !== null) {
    for (const [v, t] of Object.entries(d.keys as Record<string, unknown>)) {
      if (!/^\d+$/.test(v)) continue;
      const time = creationTime(t);
      if (time !== undefined) created.set(Number(v), time);
    }
  }
  return {
    type: typeof d.type === 'string' ? d.type : 'unknown',
    latestVersion: latest,
    minDecryptionVersion: typeof d.min_decryption_version === 'number' ? d.min_decryption_version : 1,
    minEncryptionVersion: typeof d.min_encryption_version === 'number' ? d.min_encryption_version : 0,
    deletionAllowed: d.deletion_allowed === true,
    supportsEncryption: d.supports_encryption !== false,
    created,
  };
}

/** Symmetric keys map versions to unix seconds; asymmetric ones to objects with creation_time. */
function creationTime(t: unknown): string | undefined {
  if (typeof t === 'number' && Number.isFinite(t)) return String(t);
  if (typeof t === 'string' && t !== '') return t;
  if (typeof t === 'object' && t !== null) {
    const ct = (t as { creation_time?: unknown }).creation_time;
    if (typeof ct === 'string' && ct !== '') return ct;
  }
  return undefined;
}

/** The version new DEKs are wrapped with, its state and a non-secret explanation. */
export function currentState(meta: TransitKeyMeta): { version: number; state: KeyState; detail?: string } {
  const version = meta.latestVersion;
  if (!meta.supportsEncryption) {
    return {
      version,
      state: 'disabled',
      detail: `Transit key type ${meta.type} does not support encryption`,
    };
  }
  if (meta.minEncryptionVersion > version) {
    return {
      version,
      state: 'disabled',
      detail: `min_encryption_version ${meta.minEncryptionVersion} is above the latest version ${version}`,
    };
  }
  if (meta.minDecryptionVersion > version) {
    return {
      version,
      state: 'disabled',
      detail: `min_decryption_version ${meta.minDecryptionVersion} is above the latest version ${version}`,
    };
  }
  if (meta.deletionAllowed) {
    return {
      version,
      state: 'pending_deletion',
      detail:
        'deletion_allowed is true: the Transit key can be deleted at any moment, losing every DEK it wrapped; set deletion_allowed=false on the key',
    };
  }
  return { version, state: 'enabled' };
}

export function makeRef(key: string, version: number, meta: TransitKeyMeta, what: string): KekRef {
  const unique = meta.created.get(version);
  if (unique === undefined)
    throw new CorruptError(`${what}: Vault reports no creation time for version ${version}`);
  return { provider: 'vault', key, version: String(version), unique };
}

const CIPHERTEXT = /^vault:v(\d+):([A-Za-z0-9+/]+={0,2})$/;

/** The key version named in a `vault:v<N>:...` ciphertext, or undefined if it is not one. */
export function ciphertextVersion(ciphertext: string): number | undefined {
  const m = CIPHERTEXT.exec(ciphertext);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}
