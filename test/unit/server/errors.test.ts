import { status } from '@grpc/grpc-js';
import { describe, expect, it } from '@jest/globals';
import {
  CancelledError,
  CorruptError,
  DeadlineError,
  InternalError,
  InvalidInputError,
  KeyDisabledError,
  PermissionDeniedError,
  PluginError,
  ThrottledError,
  UnauthenticatedError,
  UnavailableError,
  UnknownKeyError,
  type ErrorKind,
} from '../../../src/errors.js';
import { GRPC_CODE, codeName, mapError, toServiceError } from '../../../src/server/errors.js';

describe('mapError', () => {
  it.each<[ErrorKind, PluginError, status]>([
    ['invalid_input', new InvalidInputError('m'), status.INVALID_ARGUMENT],
    ['unauthenticated', new UnauthenticatedError('m'), status.INVALID_ARGUMENT],
    ['unknown_key', new UnknownKeyError('m'), status.NOT_FOUND],
    ['permission_denied', new PermissionDeniedError('m'), status.PERMISSION_DENIED],
    ['throttled', new ThrottledError('m'), status.RESOURCE_EXHAUSTED],
    ['unavailable', new UnavailableError('m'), status.UNAVAILABLE],
    ['key_disabled', new KeyDisabledError('m'), status.FAILED_PRECONDITION],
    ['deadline', new DeadlineError('m'), status.DEADLINE_EXCEEDED],
    ['cancelled', new CancelledError('m'), status.CANCELLED],
    ['corrupt', new CorruptError('m'), status.INTERNAL],
    ['internal', new InternalError('m'), status.INTERNAL],
  ])('%s → %s', (kind, err, code) => {
    expect(err.kind).toBe(kind);
    expect(mapError(err)).toEqual({ code, kind, details: 'm' });
  });

  it('the table covers every kind exactly once', () => {
    expect(Object.keys(GRPC_CODE).sort()).toEqual(
      [
        'cancelled',
        'corrupt',
        'deadline',
        'internal',
        'invalid_input',
        'key_disabled',
        'permission_denied',
        'throttled',
        'unauthenticated',
        'unavailable',
        'unknown_key',
      ].sort(),
    );
  });

  it('an unknown error gives INTERNAL with a generic message (no leak of the original message)', () => {
    for (const thrown of [
      new Error('password=hunter2 dek=abcdef'),
      new TypeError('secret thing'),
      'a string secret',
      { secret: 1 },
      undefined,
    ]) {
      const m = mapError(thrown);
      expect(m.code).toBe(status.INTERNAL);
      expect(m.kind).toBe('internal');
      expect(m.details).toBe('unexpected internal error');
      expect(m.details).not.toMatch(/secret|hunter2|abcdef/);
    }
  });

  it('an AbortError / TimeoutError becomes DEADLINE_EXCEEDED', () => {
    const abort = new Error('aborted by x');
    abort.name = 'AbortError';
    expect(mapError(abort).code).toBe(status.DEADLINE_EXCEEDED);
    const timeout = new Error('t');
    timeout.name = 'TimeoutError';
    expect(mapError(timeout).code).toBe(status.DEADLINE_EXCEEDED);
    expect(mapError(abort).details).not.toContain('aborted by x');
  });

  it('toServiceError carries code and details', () => {
    const se = toServiceError(mapError(new UnknownKeyError('no such key')));
    expect(se.code).toBe(status.NOT_FOUND);
    expect(se.details).toBe('no such key');
    expect(se.message).toBe('no such key');
    expect(se.metadata).toBeDefined();
  });
});

describe('codeName', () => {
  it.each<[status, string]>([
    [status.OK, 'OK'],
    [status.INVALID_ARGUMENT, 'InvalidArgument'],
    [status.DEADLINE_EXCEEDED, 'DeadlineExceeded'],
    [status.NOT_FOUND, 'NotFound'],
    [status.PERMISSION_DENIED, 'PermissionDenied'],
    [status.RESOURCE_EXHAUSTED, 'ResourceExhausted'],
    [status.FAILED_PRECONDITION, 'FailedPrecondition'],
    [status.UNAVAILABLE, 'Unavailable'],
    [status.INTERNAL, 'Internal'],
    [status.CANCELLED, 'Cancelled'],
    [status.UNAUTHENTICATED, 'Unauthenticated'],
  ])('%d → %s', (code, name) => {
    expect(codeName(code)).toBe(name);
  });

  it('an unknown number → Unknown', () => {
    expect(codeName(999 as status)).toBe('Unknown');
  });
});
