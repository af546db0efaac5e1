/**
 * Azure provider: error classification (src/kek/azure/errors.ts). Retry-After is read by
 * RemoteCaller for every backend (test/unit/kek/retry-after.test.ts); the scrubber is the shared
 * one (test/unit/kek/error-kit/scrub.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { RestError } from '@azure/core-rest-pipeline';

import { classifyAzureError } from '../../../../src/kek/azure/errors.js';

function rest(
  status: number | undefined,
  code?: string,
  message = 'svc message',
  headers: Record<string, string> = {},
  details?: unknown,
): RestError {
  const e = new RestError(message, {
    statusCode: status,
    code,
    response:
      status === undefined
        ? undefined
        : ({ status, headers: { get: (n: string) => headers[n.toLowerCase()] }, request: {} } as never),
  });
  if (details) e.details = details;
  return e;
}

describe('classifyAzureError', () => {
  const ctx = { operation: 'wrapKey' as const, what: 'https://v.vault.azure.net/keys/k/abc' };
  it.each<[RestError, string, boolean]>([
    [rest(401, 'Unauthorized'), 'permission_denied', false],
    [rest(403, 'Forbidden', 'The user does not have keys wrap key permission'), 'permission_denied', false],
    [
      rest(
        403,
        'Forbidden',
        'Operation wrapKey is not allowed on a disabled key.',
        {},
        { error: { innerError: { code: 'KeyDisabled' } } },
      ),
      'key_disabled',
      false,
    ],
    [rest(404, 'KeyNotFound'), 'unknown_key', false],
    [rest(429, 'Throttled'), 'throttled', true],
    [rest(500), 'unavailable', true],
    [rest(503, 'ServiceUnavailable'), 'unavailable', true],
    [rest(408), 'unavailable', true],
    [rest(400, 'BadParameter'), 'invalid_input', false],
    [rest(undefined, 'ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), 'unavailable', true],
    [
      rest(undefined, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'),
      'unavailable',
      false,
    ],
  ])('%s → %s', (err, kind, retryable) => {
    const e = classifyAzureError(err, ctx);
    expect(e.kind).toBe(kind);
    expect(e.retryable).toBe(retryable);
    expect(e.message).toContain(ctx.what);
  });

  it('400 on unwrap means the wrapped DEK does not authenticate', () => {
    expect(classifyAzureError(rest(400, 'BadParameter'), { ...ctx, operation: 'unwrapKey' }).kind).toBe(
      'unauthenticated',
    );
  });

  it('never keeps the RestError (it holds the request body) as the cause', () => {
    const err = rest(500);
    (err as unknown as { request: unknown }).request = { body: '{"alg":"RSA-OAEP-256","value":"SECRETDEK"}' };
    const e = classifyAzureError(err, ctx);
    expect(e.cause).not.toBe(err);
    expect(JSON.stringify({ m: e.message, c: (e.cause as Error).message })).not.toContain('SECRETDEK');
  });

  it('identity errors', () => {
    const unavailable = Object.assign(new Error('EnvironmentCredential is unavailable'), {
      name: 'CredentialUnavailableError',
    });
    expect(classifyAzureError(unavailable, ctx).kind).toBe('permission_denied');
    const refused = Object.assign(new Error('invalid_client: AADSTS7000215 for secret hunter2hunter2'), {
      name: 'AuthenticationError',
      statusCode: 401,
    });
    const e = classifyAzureError(refused, { ...ctx, secrets: ['hunter2hunter2'] });
    expect(e.kind).toBe('permission_denied');
    expect(e.message).not.toContain('hunter2hunter2');
    const down = Object.assign(new Error('x'), { name: 'AuthenticationError', statusCode: 503 });
    expect(classifyAzureError(down, ctx)).toMatchObject({ kind: 'unavailable', retryable: true });
  });
  it('statuses without a Key Vault meaning follow the shared HTTP baseline', () => {
    expect(classifyAzureError(rest(409, 'Conflict'), ctx).kind).toBe('invalid_input');
    expect(classifyAzureError(rest(410), ctx).kind).toBe('unknown_key');
  });

  it('a TLS failure says what to fix and is not retried; a reset is', () => {
    const tls = classifyAzureError(rest(undefined, 'CERT_HAS_EXPIRED', 'certificate has expired'), ctx);
    expect(tls).toMatchObject({ kind: 'unavailable', retryable: false });
    expect(tls.message).toMatch(/TLS handshake with Key Vault failed \(CERT_HAS_EXPIRED.*azure\.caFile/);
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(classifyAzureError(reset, ctx)).toMatchObject({ kind: 'unavailable', retryable: true });
  });

  it('scrubs known secrets and token-shaped text out of service messages', () => {
    const e = classifyAzureError(
      rest(400, 'BadParameter', 'bad token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig'),
      ctx,
    );
    expect(e.message).not.toContain('eyJ');
  });
  // The scrub assertions moved to test/unit/kek/error-kit/scrub.test.ts with the scrubber.
});
