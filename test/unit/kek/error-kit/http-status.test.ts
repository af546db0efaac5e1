/** The HTTP status baseline (src/kek/error-kit/http-status.ts). */
import { describe, expect, it } from '@jest/globals';

import { PluginError } from '../../../../src/errors.js';
import {
  httpStatusError,
  httpStatusHint,
  httpStatusKind,
} from '../../../../src/kek/error-kit/http-status.js';

describe('httpStatusKind / httpStatusError', () => {
  it.each<[number, string, boolean]>([
    [400, 'invalid_input', false],
    [401, 'permission_denied', false],
    [403, 'permission_denied', false],
    [404, 'unknown_key', false],
    [405, 'invalid_input', false],
    [408, 'unavailable', true],
    [409, 'invalid_input', false],
    [410, 'unknown_key', false],
    [412, 'invalid_input', false],
    [429, 'throttled', true],
    [500, 'unavailable', true],
    [502, 'unavailable', true],
    [503, 'unavailable', true],
    [504, 'unavailable', true],
    [302, 'internal', false],
    [200, 'internal', false],
  ])('%i → %s (retryable %s)', (status, kind, retryable) => {
    expect(httpStatusKind(status)).toBe(kind);
    const cause = new Error('c');
    const e = httpStatusError(status, `op: HTTP ${status}`, { cause });
    expect(e).toBeInstanceOf(PluginError);
    expect(e.kind).toBe(kind);
    expect(e.retryable).toBe(retryable);
    expect(e.message).toBe(`op: HTTP ${status}`);
    expect(e.cause).toBe(cause);
    expect(httpStatusHint(status).length).toBeGreaterThan(5);
  });

  it('hints differ for 401 and 403', () => {
    expect(httpStatusHint(401)).toMatch(/credentials were rejected/);
    expect(httpStatusHint(403)).toMatch(/lacks a permission/);
  });
});
