/**
 * The plugin's error taxonomy. Every layer throws one of these classes; the server maps them to
 * gRPC codes in exactly one place (src/server/errors.ts), and metrics label them by `kind` only.
 *
 * Messages must never contain secrets: no plaintext, DEK, wrapped key bytes, tokens or
 * credentials. Provider messages may name a key resource (ARN, resource name, URL), which is not
 * secret, and should say what to do.
 */

export type ErrorKind =
  | 'invalid_input' // the request or configuration is malformed
  | 'unauthenticated' // ciphertext or annotations failed authentication (tampered, wrong key)
  | 'unknown_key' // key_id / KEK reference we do not know
  | 'permission_denied' // the KMS refused our identity
  | 'throttled' // the KMS rate-limited us
  | 'unavailable' // the KMS (or our first probe) is not reachable / not ready
  | 'key_disabled' // the KEK exists but cannot be used (disabled, pending deletion, destroyed, expired)
  | 'deadline' // the caller's deadline (or our own remote deadline) passed
  | 'cancelled' // the caller went away
  | 'corrupt' // the KMS returned something that fails integrity checks
  | 'internal'; // a bug or an unexpected failure

export interface PluginErrorOptions {
  cause?: unknown;
  /** Whether retrying the same remote call may succeed (throttling, transient outages). */
  retryable?: boolean;
  /** The server asked us to wait this long before retrying (Retry-After); honoured only if it fits the deadline. */
  retryAfterMs?: number;
}

export class PluginError extends Error {
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(kind: ErrorKind, message: string, options: PluginErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.name = new.target.name;
  }
}

export class InvalidInputError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('invalid_input', message, options);
  }
}

export class UnauthenticatedError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('unauthenticated', message, options);
  }
}

export class UnknownKeyError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('unknown_key', message, options);
  }
}

export class PermissionDeniedError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('permission_denied', message, options);
  }
}

export class ThrottledError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('throttled', message, { retryable: true, ...options });
  }
}

export class UnavailableError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('unavailable', message, { retryable: true, ...options });
  }
}

/**
 * RemoteCaller's circuit breaker refusing a call without trying it (open, or half-open with its
 * probe call in flight). An UnavailableError (gRPC UNAVAILABLE), not retried: the breaker itself
 * decides when to try again, and its own refusals never count as further failures.
 */
export class CircuitOpenError extends UnavailableError {
  constructor(
    message: string,
    readonly circuit: 'open' | 'half_open',
  ) {
    super(message, { retryable: false });
  }
}

export class KeyDisabledError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('key_disabled', message, options);
  }
}

export class DeadlineError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('deadline', message, options);
  }
}

export class CancelledError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('cancelled', message, options);
  }
}

export class CorruptError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('corrupt', message, options);
  }
}

export class InternalError extends PluginError {
  constructor(message: string, options?: PluginErrorOptions) {
    super('internal', message, options);
  }
}

/** Raised for configuration problems: names the field and the fix. */
export class ConfigError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`config: ${field}: ${message}`);
    this.field = field;
    this.name = 'ConfigError';
  }
}

/** Normalises anything thrown into a PluginError (unknown errors become `internal`). */
export function asPluginError(err: unknown): PluginError {
  if (err instanceof PluginError) return err;
  if (isAbortError(err))
    return new DeadlineError('operation aborted: deadline exceeded or caller cancelled', { cause: err });
  return new InternalError('unexpected internal error', { cause: err });
}

export function isAbortError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'AbortError' ||
    err.name === 'TimeoutError' ||
    (err as { code?: string }).code === 'ABORT_ERR'
  );
}

/**
 * Turns an aborted signal's reason into the matching PluginError: a deadline if the signal timed
 * out, a cancellation otherwise.
 */
export function abortReasonToError(signal: AbortSignal, what: string): PluginError {
  const reason: unknown = signal.reason;
  if (reason instanceof PluginError) return reason;
  // By name, not instanceof: a DOMException from another realm (jest's vm) is not `instanceof Error`.
  if ((reason as { name?: unknown } | null | undefined)?.name === 'TimeoutError') {
    return new DeadlineError(`${what}: deadline exceeded`, { cause: reason });
  }
  return new CancelledError(`${what}: cancelled by the caller`, { cause: reason });
}
