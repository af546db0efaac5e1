/**
 * PKCS#11 return values (CKR_*) onto the plugin's error classes. Messages carry the CKR name and
 * the operation, never a PIN, key bytes or wrapped DEKs.
 */
import {
  CorruptError,
  InternalError,
  InvalidInputError,
  KeyDisabledError,
  PermissionDeniedError,
  PluginError,
  UnauthenticatedError,
  UnavailableError,
} from '../errors.js';

export const CKR = {
  GENERAL_ERROR: 0x05,
  FUNCTION_FAILED: 0x06,
  ARGUMENTS_BAD: 0x07,
  DATA_INVALID: 0x20,
  DATA_LEN_RANGE: 0x21,
  DEVICE_ERROR: 0x30,
  DEVICE_MEMORY: 0x31,
  DEVICE_REMOVED: 0x32,
  ENCRYPTED_DATA_INVALID: 0x40,
  ENCRYPTED_DATA_LEN_RANGE: 0x41,
  KEY_HANDLE_INVALID: 0x60,
  KEY_TYPE_INCONSISTENT: 0x63,
  KEY_FUNCTION_NOT_PERMITTED: 0x68,
  MECHANISM_INVALID: 0x70,
  MECHANISM_PARAM_INVALID: 0x71,
  OBJECT_HANDLE_INVALID: 0x82,
  OPERATION_ACTIVE: 0x90,
  PIN_INCORRECT: 0xa0,
  PIN_INVALID: 0xa1,
  PIN_LEN_RANGE: 0xa2,
  PIN_EXPIRED: 0xa3,
  PIN_LOCKED: 0xa4,
  SESSION_CLOSED: 0xb0,
  SESSION_COUNT: 0xb1,
  SESSION_HANDLE_INVALID: 0xb3,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  WRAPPED_KEY_INVALID: 0x110,
  WRAPPED_KEY_LEN_RANGE: 0x112,
  CRYPTOKI_NOT_INITIALIZED: 0x190,
} as const;

/** After these the sessions (and with them the login) are gone: close everything and reopen. */
const REOPEN = new Set<number>([
  CKR.SESSION_HANDLE_INVALID,
  CKR.SESSION_CLOSED,
  CKR.DEVICE_REMOVED,
  CKR.TOKEN_NOT_PRESENT,
  CKR.TOKEN_NOT_RECOGNIZED,
  CKR.DEVICE_ERROR,
  CKR.USER_NOT_LOGGED_IN,
  CKR.CRYPTOKI_NOT_INITIALIZED,
]);

/** After these only the cached object handles are void (key object deleted or token re-read). */
const STALE_HANDLE = new Set<number>([CKR.OBJECT_HANDLE_INVALID, CKR.KEY_HANDLE_INVALID]);

/** The CKR code of an error thrown by pkcs11js, if it is one. */
export function ckrCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown };
  if (typeof e.message === 'string' && /^CKR_/.test(e.message) && typeof e.code === 'number') return e.code;
  // a PluginError made from a CKR error (classifyPkcs11Error keeps it as the cause)
  return err instanceof PluginError && err.cause !== err ? ckrCode(err.cause) : undefined;
}

export function ckrName(err: unknown): string {
  const code = ckrCode(err);
  if (code === undefined) return String((err as Error)?.message ?? err).split('\n')[0];
  return String((err as Error).message);
}

export function needsReopen(err: unknown): boolean {
  const c = ckrCode(err);
  return c !== undefined && REOPEN.has(c);
}

export function staleHandle(err: unknown): boolean {
  const c = ckrCode(err);
  return c !== undefined && STALE_HANDLE.has(c);
}

export type Pkcs11Operation = 'read_key' | 'encrypt' | 'decrypt' | 'generate_key' | 'login';

/** Maps a pkcs11js error; `what` names the operation and object (no secrets). */
export function classifyPkcs11Error(err: unknown, op: Pkcs11Operation, what: string): PluginError {
  if (err instanceof PluginError) return err;
  const code = ckrCode(err);
  const msg = `${what}: ${ckrName(err)}`;
  if (code === undefined) return new InternalError(`${what}: ${ckrName(err)}`, { cause: err });
  if (REOPEN.has(code) || STALE_HANDLE.has(code))
    return new UnavailableError(`${msg}; reopening the session`, { cause: err, retryable: true });
  switch (code) {
    case CKR.DEVICE_MEMORY:
    case CKR.SESSION_COUNT:
    case CKR.OPERATION_ACTIVE:
      return new UnavailableError(msg, { cause: err, retryable: true });
    case CKR.KEY_FUNCTION_NOT_PERMITTED:
      return new KeyDisabledError(`${msg} (the key object's CKA_ENCRYPT/DECRYPT/WRAP/UNWRAP forbids it)`, {
        cause: err,
      });
    case CKR.PIN_INCORRECT:
    case CKR.PIN_INVALID:
    case CKR.PIN_LEN_RANGE:
    case CKR.PIN_EXPIRED:
    case CKR.PIN_LOCKED:
      return new PermissionDeniedError(msg, { cause: err });
    case CKR.MECHANISM_INVALID:
    case CKR.MECHANISM_PARAM_INVALID:
    case CKR.KEY_TYPE_INCONSISTENT:
      return new InvalidInputError(msg, { cause: err });
  }
  if (op === 'decrypt') {
    // A ciphertext that does not authenticate: tag mismatch, bad padding, wrong length. Some
    // modules (SoftHSM) answer a GCM tag mismatch with CKR_GENERAL_ERROR; failing closed is right.
    return new UnauthenticatedError(`${what}: the wrapped DEK failed authentication (${ckrName(err)})`, {
      cause: err,
    });
  }
  if (code === CKR.GENERAL_ERROR || code === CKR.FUNCTION_FAILED)
    return new UnavailableError(msg, { cause: err, retryable: true });
  if (op === 'encrypt') return new CorruptError(msg, { cause: err });
  return new InternalError(msg, { cause: err });
}
