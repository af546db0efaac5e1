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

describe('classifyAwsError with the shared error kit', () => {
  const svc = (name: string, status: number, message = name): Error =>
    Object.assign(new Error(message), {
      name,
      $fault: status >= 500 ? 'server' : 'client',
      $metadata: { httpStatusCode: status, attempts: 1, totalRetryDelay: 0 },
    });

  test('AWS messages are scrubbed: access key id, secret key and session token, in the message and the cause', () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const token = `IQoJb3JpZ2luX2VjE${'AbC1+/'.repeat(20)}`;
    const err = svc(
      'InvalidSignatureException',
      400,
      `The request signature we calculated does not match: key AKIAIOSFODNN7EXAMPLE secret ${secret} token ${token}`,
    );
    const e = classifyAwsError(err, 'aws Decrypt k');
    expect(e.kind).toBe('permission_denied');
    expect(e.cause).toBe(err);
    for (const text of [e.message, (e.cause as Error).message, String((e.cause as Error).stack)]) {
      expect(text).not.toContain('AKIAIOSFODNN7EXAMPLE');
      expect(text).not.toContain(secret);
      expect(text).not.toContain(token.slice(0, 30));
    }
    expect(e.message).toContain('[redacted]');
  });

  test.each<[string, string, boolean]>([
    ['CERT_HAS_EXPIRED', 'unavailable', false],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unavailable', false],
    ['ETIMEDOUT', 'unavailable', true],
    ['UND_ERR_SOCKET', 'unavailable', true],
  ])('network code %s (also under a cause) → %s, retryable %s', (code, kind, retryable) => {
    const err = Object.assign(new Error('request failed'), {
      cause: Object.assign(new Error(code), { code }),
    });
    const e = classifyAwsError(err, 'aws Encrypt key');
    expect(e.kind).toBe(kind);
    expect(e.retryable).toBe(retryable);
    expect(e.message).toContain(code);
  });

  test.each<[number, string]>([
    [401, 'permission_denied'],
    [404, 'unknown_key'],
    [408, 'unavailable'],
    [409, 'invalid_input'],
  ])('an unnamed error with HTTP %i reads as the shared baseline: %s', (status, kind) => {
    expect(classifyAwsError(svc('SomethingNew', status), 'aws Encrypt key').kind).toBe(kind);
  });
});
