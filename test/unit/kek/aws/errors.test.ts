/** AWS provider: SDK error classification (src/kek/aws/errors.ts). */
import { classifyAwsError } from '../../../../src/kek/aws/errors.js';

import { PluginError } from '../../../../src/errors.js';

describe('classifyAwsError', () => {
  const meta = (status: number) => ({ httpStatusCode: status, attempts: 1, totalRetryDelay: 0 });
  // The shape of an SDK service exception (name, $fault, $metadata, message).
  const svc = (name: string, status: number, message = name): Error =>
    Object.assign(new Error(message), {
      name,
      $fault: status >= 500 ? 'server' : 'client',
      $metadata: meta(status),
    });

  test.each([
    [svc('ThrottlingException', 400, 'Rate exceeded'), 'throttled', true],
    [svc('SomethingNew', 429), 'throttled', true],
    [svc('AccessDeniedException', 400), 'permission_denied', false],
    [svc('UnrecognizedClientException', 400), 'permission_denied', false],
    [svc('InvalidCiphertextException', 400, ''), 'unauthenticated', false],
    [svc('com.amazonaws.kms#InvalidCiphertextException', 400, ''), 'unauthenticated', false],
    [svc('IncorrectKeyException', 400), 'unauthenticated', false],
    [svc('DisabledException', 400), 'key_disabled', false],
    [svc('KMSInvalidStateException', 400), 'key_disabled', false],
    [svc('NotFoundException', 400), 'unknown_key', false],
    [svc('InvalidKeyUsageException', 400), 'invalid_input', false],
    [svc('KMSInternalException', 500), 'unavailable', true],
    [svc('ServiceUnavailableException', 503), 'unavailable', true],
    [svc('KeyUnavailableException', 500), 'unavailable', true],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      'unavailable',
      true,
    ],
    [new Error('AWS SDK error wrapper for TimeoutError: socket hang up'), 'unavailable', true],
    [
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
      'unavailable',
      true,
    ],
    [new TypeError('x is not a function'), 'internal', false],
  ])('%s → %s', (err, kind, retryable) => {
    const e = classifyAwsError(err, 'aws Encrypt key');
    expect(e).toBeInstanceOf(PluginError);
    expect(e.kind).toBe(kind);
    expect(e.retryable).toBe(retryable);
    expect(e.message.startsWith('aws Encrypt key: ')).toBe(true);
    expect(e.cause).toBe(err);
  });

  test('long AWS messages are cut to one short line', () => {
    const e = classifyAwsError(
      svc('AccessDeniedException', 400, `${'x'.repeat(1000)}\nsecond line`),
      'aws Decrypt k',
    );
    expect(e.message.length).toBeLessThan(700);
    expect(e.message).not.toContain('second line');
  });
});
