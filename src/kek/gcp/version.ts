/**
 * Turns GetCryptoKey's answer into the provider's KeyVersionInfo: the exact primary
 * CryptoKeyVersion (id, creation time and the AAD fingerprint, see ./ref.ts), its state mapped to
 * KeyState, and a short detail.
 */
import type { KeyState, KeyVersionInfo } from '../types.js';
import { CorruptError, InvalidInputError, KeyDisabledError } from '../errors.js';
import type { CryptoKey, CryptoKeyVersion } from './api.js';
import { encodeUnique } from './ref.js';
import { withKeyState } from '../key-state.js';

/** Cloud KMS CryptoKeyVersionState → KeyState. Unknown or future states are treated as unusable. */
export function mapVersionState(state: unknown): KeyState {
  switch (String(state ?? '')) {
    case 'ENABLED':
      return 'enabled';
    case 'DISABLED':
    case 'IMPORT_FAILED':
    case 'GENERATION_FAILED':
      return 'disabled';
    case 'DESTROY_SCHEDULED':
      return 'pending_deletion';
    case 'DESTROYED':
    case 'PENDING_EXTERNAL_DESTRUCTION':
    case 'EXTERNAL_DESTRUCTION_FAILED':
      return 'destroyed';
    case 'PENDING_IMPORT':
      return 'pending_import';
    default: // PENDING_GENERATION, CRYPTO_KEY_VERSION_STATE_UNSPECIFIED, anything newer
      return 'unavailable';
  }
}

interface TimestampLike {
  seconds?: unknown;
  nanos?: unknown;
}

/**
 * RFC 3339 with all nine fractional digits, from a protobuf Timestamp whose seconds may arrive as
 * a string, number or Long. Deterministic: the same Timestamp always gives the same text.
 */
export function formatTimestamp(ts: TimestampLike | null | undefined): string | undefined {
  if (!ts || ts.seconds === null || ts.seconds === undefined) return undefined;
  const seconds = Number(String(ts.seconds));
  const nanos = ts.nanos === null || ts.nanos === undefined ? 0 : Number(ts.nanos);
  if (!Number.isSafeInteger(seconds) || !Number.isInteger(nanos) || nanos < 0 || nanos >= 1e9)
    return undefined;
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  return `${base}.${String(nanos).padStart(9, '0')}Z`;
}

const VERSION_ID = /^[1-9]\d{0,15}$/;

/** Builds KeyVersionInfo for the configured CryptoKey's primary version. */
export function primaryVersionInfo(
  keyName: string,
  key: CryptoKey,
  aadFp: string,
): KeyVersionInfo & { primary: CryptoKeyVersion } {
  if (key.name && key.name !== keyName) {
    throw new CorruptError(
      `gcp getCryptoKey: asked for ${keyName}, the response describes ${JSON.stringify(key.name)}`,
    );
  }
  if (key.purpose && String(key.purpose) !== 'ENCRYPT_DECRYPT') {
    throw new InvalidInputError(
      `gcp: ${keyName} has purpose ${String(key.purpose)}; the plugin needs a symmetric ENCRYPT_DECRYPT key (fix gcp.keyName)`,
    );
  }
  const primary = key.primary;
  if (!primary || !primary.name) {
    throw withKeyState(
      new KeyDisabledError(
        `gcp: ${keyName} has no primary version (it was destroyed or never set); create or restore a version and make it primary`,
      ),
      'disabled',
    );
  }
  return { ...versionInfo(keyName, primary, aadFp), primary };
}

/** KeyVersionInfo for any CryptoKeyVersion of the configured key (the primary, or the newest enabled). */
export function versionInfo(keyName: string, version: CryptoKeyVersion, aadFp: string): KeyVersionInfo {
  const id = versionId(keyName, version.name);
  if (id === undefined) {
    throw new CorruptError(`gcp: version name ${JSON.stringify(version.name ?? '')} is not under ${keyName}`);
  }
  const unique = formatTimestamp(version.createTime as TimestampLike | null | undefined);
  if (!unique) {
    throw new CorruptError(`gcp: CryptoKeyVersion ${version.name} has no valid createTime`);
  }
  const state = mapVersionState(version.state);
  return {
    ref: { provider: 'gcp', key: keyName, version: id, unique: encodeUnique(unique, aadFp) },
    state,
    ordinal: Number(id),
    ...(state === 'enabled' ? {} : { detail: describeState(version) }),
  };
}

/** The numeric version id if `name` is `<keyName>/cryptoKeyVersions/<n>`. */
export function versionId(keyName: string, name: string | null | undefined): string | undefined {
  const prefix = `${keyName}/cryptoKeyVersions/`;
  const id = name && name.startsWith(prefix) ? name.slice(prefix.length) : '';
  return VERSION_ID.test(id) ? id : undefined;
}

/** A short, non-secret explanation of a non-enabled version, e.g. for Status and /healthz. */
export function describeState(v: CryptoKeyVersion): string {
  const state = String(v.state ?? 'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED');
  const id = (v.name ?? '').split('/').pop() ?? '?';
  const when = formatTimestamp(v.destroyTime as TimestampLike | null | undefined);
  switch (state) {
    case 'DISABLED':
      return `CryptoKeyVersion ${id} is DISABLED; enable it or make an enabled version primary`;
    case 'DESTROY_SCHEDULED':
      return `CryptoKeyVersion ${id} is scheduled for destruction${when ? ` at ${when.slice(0, 19)}Z` : ''}; restore it (gcloud kms keys versions restore) or make another version primary`;
    case 'DESTROYED':
      return `CryptoKeyVersion ${id} is DESTROYED; data wrapped by it is lost unless cached`;
    default:
      return `CryptoKeyVersion ${id} is ${state}`;
  }
}
