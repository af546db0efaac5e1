/** Vault provider: error classification by status and operation (src/kek/vault/errors.ts). */
import { classifyVaultError, VaultUnavailableError } from '../../../../src/kek/vault/errors.js';
import { VaultHttpError, VaultProtocolError } from '../../../../src/kek/vault/http.js';

import type { VaultOperation } from '../../../../src/kek/vault/errors.js';

const err = (status: number, ...errors: string[]): VaultHttpError =>
  new VaultHttpError(status, errors, 'POST', 'transit/x');
const kindOf = (e: unknown, op: VaultOperation = 'encrypt'): string =>
  classifyVaultError(e, op, 'vault op').kind;

describe('classifyVaultError', () => {
  test.each<[VaultHttpError, VaultOperation, string]>([
    [err(403, 'permission denied'), 'encrypt', 'permission_denied'],
    [err(403, 'permission denied'), 'login', 'permission_denied'],
    [err(429, 'rate limit quota exceeded'), 'decrypt', 'throttled'],
    [err(503, 'Vault is sealed'), 'decrypt', 'unavailable'],
    [err(500, 'internal error'), 'encrypt', 'unavailable'],
    [err(502), 'read_key', 'unavailable'],
    [err(412), 'read_key', 'unavailable'],
    [err(307), 'encrypt', 'unavailable'],
    [err(404), 'read_key', 'unknown_key'],
    [err(404, 'no handler for route "x"'), 'read_key', 'unknown_key'],
    [err(400, 'cipher: message authentication failed'), 'decrypt', 'unauthenticated'],
    [err(400, 'invalid ciphertext: no prefix'), 'decrypt', 'corrupt'],
    [
      err(400, 'ciphertext or signature version is disallowed by policy (too old)'),
      'decrypt',
      'key_disabled',
    ],
    [
      err(400, 'requested version for encryption is less than the minimum encryption key version'),
      'encrypt',
      'key_disabled',
    ],
    [err(400, 'encryption key not found'), 'encrypt', 'unknown_key'],
    [err(400, 'invalid role or secret ID'), 'login', 'permission_denied'],
    [err(400, 'lease is not renewable'), 'renew_self', 'permission_denied'],
    [err(400, 'something else'), 'encrypt', 'invalid_input'],
  ])('%s on %s → %s', (e, op, kind) => {
    expect(kindOf(e, op)).toBe(kind);
  });

  test('throttled and 5xx are retryable; permission, auth failures and TLS are not', () => {
    expect(classifyVaultError(err(429), 'encrypt', 'x').retryable).toBe(true);
    expect(classifyVaultError(err(503, 'Vault is sealed'), 'encrypt', 'x').retryable).toBe(true);
    expect(classifyVaultError(err(403), 'encrypt', 'x').retryable).toBe(false);
    expect(
      classifyVaultError(err(400, 'cipher: message authentication failed'), 'decrypt', 'x').retryable,
    ).toBe(false);
    const tls = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' }),
    });
    const c = classifyVaultError(tls, 'read_key', 'x');
    expect(c).toBeInstanceOf(VaultUnavailableError);
    expect(c.retryable).toBe(false);
  });

  test('sealed and standby carry a reason; network errors are unreachable', () => {
    expect(
      (classifyVaultError(err(503, 'Vault is sealed'), 'encrypt', 'x') as VaultUnavailableError).reason,
    ).toBe('sealed');
    expect(
      (
        classifyVaultError(
          err(500, 'local node not active but active cluster node not found'),
          'encrypt',
          'x',
        ) as VaultUnavailableError
      ).reason,
    ).toBe('standby');
    const refused = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    });
    const c = classifyVaultError(refused, 'encrypt', 'x') as VaultUnavailableError;
    expect(c.reason).toBe('unreachable');
    expect(c.message).toMatch(/ECONNREFUSED/);
    expect(classifyVaultError(new VaultProtocolError('bad json'), 'encrypt', 'x').kind).toBe('corrupt');
    expect(classifyVaultError(new RangeError('bug'), 'encrypt', 'x').kind).toBe('internal');
  });
});

describe('classifyVaultError with the shared error kit', () => {
  test('statuses without a Vault meaning follow the shared HTTP baseline', () => {
    expect(kindOf(err(401), 'encrypt')).toBe('permission_denied');
    expect(kindOf(err(408), 'encrypt')).toBe('unavailable');
    expect(kindOf(err(405), 'encrypt')).toBe('invalid_input');
  });

  test('TLS codes deep in the cause chain are tls, not retried; a TLS text without code too', () => {
    const deep = Object.assign(new TypeError('fetch failed'), {
      cause: { cause: Object.assign(new Error('x'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }) },
    });
    const c = classifyVaultError(deep, 'read_key', 'x') as VaultUnavailableError;
    expect(c.reason).toBe('tls');
    expect(c.retryable).toBe(false);
    expect(c.message).toMatch(
      /TLS handshake with Vault failed \(DEPTH_ZERO_SELF_SIGNED_CERT: .*vault\.caFile/,
    );
  });
});
