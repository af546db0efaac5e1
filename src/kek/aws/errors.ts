/**
 * Maps whatever the AWS SDK throws into the plugin's error classes.
 *
 * Messages name the operation and key (not secret) and say what to do. They never include request
 * or response bodies: only the AWS error name and AWS's own short message, run through the shared
 * scrubber (an echoed access key id, secret key or session token becomes [redacted]); the SDK
 * error kept as the cause gets the same scrubbed message, since logs print a cause's message.
 * Network and TLS codes and bare HTTP statuses are read by the shared kit (../error-kit/).
 */
import {
  InternalError,
  InvalidInputError,
  KeyDisabledError,
  PermissionDeniedError,
  PluginError,
  ThrottledError,
  UnauthenticatedError,
  UnavailableError,
  UnknownKeyError,
  httpStatusError,
  httpStatusKind,
  networkFailure,
  scrub,
} from '../errors.js';
import { stateFromText, withKeyState } from '../key-state.js';

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'SlowDown',
]);
const TRANSIENT = new Set([
  'KMSInternalException',
  'DependencyTimeoutException',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'RequestTimeout',
  'RequestTimeoutException',
  'KeyUnavailableException',
  'CustomKeyStoreInvalidStateException',
]);
const DENIED = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'InvalidClientTokenId',
  'ExpiredTokenException',
  'ExpiredToken',
  'SignatureDoesNotMatch',
]);
const BAD_CIPHERTEXT = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);
const KEY_STATE = new Set(['DisabledException', 'KMSInvalidStateException']);
const INVALID = new Set([
  'InvalidKeyUsageException',
  'UnsupportedOperationException',
  'ValidationException',
  'InvalidGrantTokenException',
  'InvalidArnException',
  'DryRunOperationException',
]);
interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** The AWS error name (ThrottlingException, ...) if `err` looks like an SDK service error. */
export function awsErrorName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const name = (err as SdkErrorShape).name;
  return typeof name === 'string' ? name.replace(/^.*#/, '') : undefined;
}

function httpStatus(err: unknown): number | undefined {
  const status = (err as SdkErrorShape | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * AWS's short message: scrubbed, one line, at most 300 characters; never a body dump. The error's
 * own message (and stack) are replaced by the scrubbed text too, since it stays the cause.
 */
function shortMessage(err: unknown): string {
  const e = err as SdkErrorShape | null;
  const m = e?.message;
  if (typeof m !== 'string' || m === '') return '';
  const clean = scrub(m, { max: 2000 });
  if (clean !== m.replace(/\s+/g, ' ').trim() && err instanceof Error) {
    err.message = clean;
    if (typeof err.stack === 'string') err.stack = err.stack.split(m).join(clean);
  }
  return scrub(m, { firstLine: true });
}

/**
 * Classifies an SDK failure. `what` is e.g. `aws Encrypt arn:aws:kms:...:key/...`.
 */
export function classifyAwsError(err: unknown, what: string): PluginError {
  if (err instanceof PluginError) return err;
  const name = awsErrorName(err) ?? 'Error';
  const status = httpStatus(err);
  const aws = shortMessage(err);
  const detail = aws ? `${name}: ${aws}` : name;
  const opts = { cause: err };
  const byStatus = status === undefined ? undefined : httpStatusKind(status);

  if (THROTTLING.has(name) || byStatus === 'throttled') {
    return new ThrottledError(`${what}: throttled by AWS KMS (${name}); request quota exceeded`, opts);
  }
  if (DENIED.has(name) || byStatus === 'permission_denied') {
    return new PermissionDeniedError(
      `${what}: AWS refused the request (${detail}); check the IAM policy (kms:Encrypt, kms:Decrypt, kms:DescribeKey, kms:ListKeyRotations), the key policy and the credentials the plugin runs with`,
      opts,
    );
  }
  if (BAD_CIPHERTEXT.has(name)) {
    return new UnauthenticatedError(
      `${what}: AWS KMS rejected the wrapped DEK (${name}): it was not made by this key with this EncryptionContext, or it was altered`,
      opts,
    );
  }
  if (KEY_STATE.has(name)) {
    return withKeyState(
      new KeyDisabledError(
        `${what}: the key cannot be used in its current state (${detail}); see the key's state in DescribeKey`,
        opts,
      ),
      name === 'DisabledException' ? 'disabled' : stateFromText(aws, 'disabled'),
    );
  }
  if (name === 'NotFoundException') {
    return withKeyState(
      new UnknownKeyError(
        `${what}: AWS KMS has no such key or alias (${detail}); check aws.keyId and aws.region`,
        opts,
      ),
      'not_found',
    );
  }
  if (INVALID.has(name)) {
    return new InvalidInputError(
      `${what}: AWS KMS rejected the request (${detail}); the key must be a symmetric encryption key (SYMMETRIC_DEFAULT)`,
      opts,
    );
  }
  if (name === 'CredentialsProviderError' || name === 'ProviderError') {
    return new UnavailableError(
      `${what}: no AWS credentials could be obtained (${aws || name}); the default chain tries env vars, web identity (IRSA), container credentials (EKS Pod Identity/ECS), shared config and the instance profile`,
      { cause: err, retryable: true },
    );
  }
  if (TRANSIENT.has(name) || byStatus === 'unavailable') {
    return new UnavailableError(
      `${what}: AWS KMS is temporarily failing (${name}${status ? `, HTTP ${status}` : ''})`,
      opts,
    );
  }
  // The SDK wraps transport failures that are not Error instances (e.g. from another realm) as
  // "AWS SDK error wrapper for <error>"; those are connection-level failures.
  const wrapped = /^AWS SDK error wrapper for (?:(\w+): )?/.exec(
    typeof (err as SdkErrorShape | null)?.message === 'string' ? String((err as SdkErrorShape).message) : '',
  );
  if (wrapped) {
    return new UnavailableError(
      `${what}: cannot reach AWS KMS (${wrapped[1] ?? 'connection failure'}); check the endpoint, network and proxy`,
      opts,
    );
  }
  const network = networkFailure(err, {
    what,
    service: 'AWS KMS',
    tlsFix:
      'check aws.endpoint and that its certificate chains to a CA the plugin trusts (NODE_EXTRA_CA_CERTS)',
    reachFix: 'check the endpoint, network and proxy',
    cause: err,
  });
  if (network) return network;
  if (name === 'TimeoutError') {
    return new UnavailableError(
      `${what}: cannot reach AWS KMS (${name}); check the endpoint, network and proxy`,
      opts,
    );
  }
  if (status !== undefined && status >= 400) {
    return httpStatusError(status, `${what}: AWS KMS rejected the request (${detail}, HTTP ${status})`, opts);
  }
  return new InternalError(`${what}: unexpected failure (${name})`, opts);
}
