/**
 * The baseline reading of an HTTP status from a KMS, shared by the HTTP backends (Azure Key Vault,
 * Vault; AWS uses it as the last resort for SDK errors that only carry `$metadata.httpStatusCode`).
 * A provider checks first what its API means differently (Vault: 400 on decrypt is a ciphertext
 * that does not authenticate, 412/3xx a standby node; Azure: 403 KeyDisabled, 400 on unwrapKey),
 * and hands everything else to this table, so the same status means the same error kind under
 * every backend.
 *
 * 401 is `permission_denied`, not `unauthenticated`: in this plugin `unauthenticated` means "the
 * ciphertext failed authentication" (gRPC INVALID_ARGUMENT, tampered data); a 401 says the KMS
 * refused our credentials, which is what `permission_denied` (gRPC PERMISSION_DENIED) stands for.
 */
import {
  InternalError,
  InvalidInputError,
  PermissionDeniedError,
  ThrottledError,
  UnavailableError,
  UnknownKeyError,
  type ErrorKind,
  type PluginError,
  type PluginErrorOptions,
} from '../../errors.js';

/** The error kind an HTTP status stands for when the provider knows nothing more specific. */
export function httpStatusKind(status: number): ErrorKind {
  if (status === 401 || status === 403) return 'permission_denied';
  if (status === 404 || status === 410) return 'unknown_key';
  if (status === 429) return 'throttled';
  if (status === 408 || status >= 500) return 'unavailable';
  if (status >= 400) return 'invalid_input';
  return 'internal';
}

/** Short advice per status, for messages that have nothing better to say. */
export function httpStatusHint(status: number): string {
  switch (httpStatusKind(status)) {
    case 'permission_denied':
      return status === 401
        ? 'the credentials were rejected; check the identity the plugin runs as'
        : 'the identity lacks a permission on the key; check its policy';
    case 'unknown_key':
      return 'no such key or path; check the key name and address';
    case 'throttled':
      return 'rate limited; retried with back-off';
    case 'unavailable':
      return 'the service is temporarily failing; retried';
    case 'invalid_input':
      return 'the request was refused as malformed';
    default:
      return 'unexpected answer';
  }
}

/** A PluginError of the baseline kind for `status`, with the provider's message. */
export function httpStatusError(status: number, message: string, options?: PluginErrorOptions): PluginError {
  switch (httpStatusKind(status)) {
    case 'permission_denied':
      return new PermissionDeniedError(message, options);
    case 'unknown_key':
      return new UnknownKeyError(message, options);
    case 'throttled':
      return new ThrottledError(message, options);
    case 'unavailable':
      return new UnavailableError(message, options);
    case 'invalid_input':
      return new InvalidInputError(message, options);
    default:
      return new InternalError(message, options);
  }
}
