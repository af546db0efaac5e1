/**
 * Maps what the SDK throws (google-gax GoogleError with a gRPC status code, or an auth-library
 * error) into the shared error classes. Messages keep the operation, the gRPC code and Cloud KMS's
 * own short explanation (run through the shared scrubber), never request or response data. A TLS
 * failure under UNAVAILABLE, or a network code outside gRPC, is read by the shared network table.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import {
  CorruptError,
  InternalError,
  InvalidInputError,
  KeyDisabledError,
  PermissionDeniedError,
  ThrottledError,
  UnauthenticatedError,
  UnavailableError,
  UnknownKeyError,
  networkFailure,
  scrub,
  type PluginError,
} from '../errors.js';
import { stateFromText, withKeyState } from '../key-state.js';

export type GcpOperation = 'getCryptoKey' | 'listCryptoKeyVersions' | 'encrypt' | 'decrypt';

export function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 16 ? code : undefined;
}

function detailOf(err: unknown): string {
  if (err === null || err === undefined) return 'no detail';
  if (typeof err === 'string') return scrub(err);
  const details = (err as { details?: unknown }).details;
  if (typeof details === 'string' && details !== '') return scrub(details);
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' && message !== '' ? scrub(message) : 'no detail';
}

export function classifyGcpError(err: unknown, operation: GcpOperation, keyName: string): PluginError {
  const code = grpcCode(err);
  const detail = detailOf(err);
  const what = `gcp ${operation}`;
  if (code === undefined) {
    // Not a gRPC status: the client library failed before or around the call (credentials, stub).
    if (/credential|auth|token|metadata|key file|keyfile|ENOENT|EACCES/i.test(detail)) {
      return new PermissionDeniedError(
        `${what}: could not obtain Google credentials (${detail}); check ADC / gcp.credentialsFile / Workload Identity`,
      );
    }
    return (
      networkFailure(err, { ...network(what), text: detail }) ??
      new InternalError(`${what}: unexpected client error (${detail})`)
    );
  }
  const name = grpcStatus[code] ?? `code ${code}`;
  const msg = `${what} on ${keyName}: ${name}: ${detail}`;
  if (
    /Getting metadata from plugin failed|Could not load the default credentials|could not refresh access token/i.test(
      detail,
    )
  ) {
    // The call never left: gRPC reports the credential plugin's failure with whatever code
    // (UNKNOWN, INTERNAL, UNAVAILABLE). It is a credentials problem: permission_denied, as documented.
    return new PermissionDeniedError(
      `${what} on ${keyName}: could not obtain Google credentials (${detail}); check ADC / gcp.credentialsFile / Workload Identity`,
    );
  }
  switch (code) {
    case 3: // INVALID_ARGUMENT
      if (/crc32c|checksum/i.test(detail)) {
        // Google's integrity procedure: the request was damaged in transit; retry a bounded number of times.
        return new CorruptError(`${msg} (request checksum mismatch: damaged in transit)`, {
          retryable: true,
        });
      }
      if (operation === 'decrypt') {
        return new UnauthenticatedError(
          `${msg} (the wrapped DEK does not decrypt under this CryptoKey with the configured AAD: damaged data, another key, or gcp.aad changed)`,
        );
      }
      return new InvalidInputError(msg);
    case 5: // NOT_FOUND
      return withKeyState(
        new UnknownKeyError(`${msg} (check gcp.keyName and that the key exists)`),
        'not_found',
      );
    case 7: // PERMISSION_DENIED
      return new PermissionDeniedError(
        `${msg} (grant roles/cloudkms.cryptoKeyEncrypterDecrypter and roles/cloudkms.viewer on the key, see docs/providers/gcp.md)`,
      );
    case 16: // UNAUTHENTICATED
      return new PermissionDeniedError(
        `${msg} (credentials rejected: check ADC / gcp.credentialsFile / Workload Identity)`,
      );
    case 8: // RESOURCE_EXHAUSTED
      return new ThrottledError(`${msg} (quota; retried with back-off)`);
    case 9: // FAILED_PRECONDITION
      return withKeyState(
        new KeyDisabledError(`${msg} (the CryptoKeyVersion is not enabled)`),
        stateFromText(detail, 'disabled'),
      );
    case 14: // UNAVAILABLE: a certificate the channel refused is not fixed by retrying
      return networkTls(detail, `${what} on ${keyName}`) ?? new UnavailableError(msg);
    case 1: // CANCELLED (not by us: RemoteCaller maps our own aborts first)
    case 4: // DEADLINE_EXCEEDED
    case 10: // ABORTED
    case 13: // INTERNAL
      return new UnavailableError(msg);
    default:
      return new InternalError(msg);
  }
}

function network(what: string): { what: string; service: string; tlsFix: string } {
  return {
    what,
    service: 'Cloud KMS',
    tlsFix: 'check gcp.caFile and gcp.endpoint (the certificate must name the endpoint host)',
  };
}

/** The TLS half of the network table for gRPC's UNAVAILABLE, whose details keep only the text. */
function networkTls(detail: string, what: string): PluginError | undefined {
  const e = networkFailure(undefined, { ...network(what), text: detail });
  return e && !e.retryable ? e : undefined;
}
