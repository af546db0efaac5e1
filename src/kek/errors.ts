// Providers throw the shared error classes; re-exported here, with the error kit, so a provider imports only from kek/.
export {
  PluginError,
  InvalidInputError,
  UnauthenticatedError,
  UnknownKeyError,
  PermissionDeniedError,
  ThrottledError,
  UnavailableError,
  CircuitOpenError,
  KeyDisabledError,
  DeadlineError,
  CancelledError,
  CorruptError,
  InternalError,
  asPluginError,
  isAbortError,
  abortReasonToError,
} from '../errors.js';
export type { ErrorKind } from '../errors.js';

// The error kit every provider shares (see each module's header).
export { scrub, REDACTED, type ScrubOptions } from './error-kit/scrub.js';
export {
  networkFailure,
  errorCodeOf,
  networkClassOf,
  networkCodeInText,
  TRANSIENT_NETWORK_CODES,
  TLS_CONFIG_CODES,
  type NetworkContext,
} from './error-kit/network.js';
export { httpStatusKind, httpStatusError, httpStatusHint } from './error-kit/http-status.js';
export { readConfigFile, readConfigText, unreadableFile } from './error-kit/config-file.js';
