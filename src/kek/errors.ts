// Providers throw the shared error classes; re-exported here so a provider imports only from kek/.
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
