/**
 * The server's retry hint, read by RemoteCaller for every backend (src/kek/retry-after.ts): HTTP
 * `Retry-After` (seconds or date), `retry-after-ms`, `x-ms-retry-after-ms` on Azure's RestError,
 * Vault's VaultHttpError and the AWS SDK's `$response`, and gRPC RetryInfo.
 */
import { describe, expect, it } from '@jest/globals';
import { RestError } from '@azure/core-rest-pipeline';
import { KMSInternalException } from '@aws-sdk/client-kms';

import { retryAfterMs } from '../../../src/kek/retry-after.js';
import { VaultHttpError } from '../../../src/kek/vault/http.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');

/** Every header form, with the wait it must yield at NOW. */
const FORMS: Array<[Record<string, string>, number | undefined]> = [
  [{ 'retry-after': '2' }, 2000],
  [{ 'retry-after': '0.5' }, 500],
  [{ 'retry-after': ' 3 ' }, 3000],
  [{ 'retry-after-ms': '250' }, 250],
  [{ 'x-ms-retry-after-ms': '75' }, 75],
  [{ 'retry-after': new Date(Date.parse('2026-01-01T00:00:03Z')).toUTCString() }, 3000],
  [{ 'retry-after': new Date(Date.parse('2025-12-31T23:59:00Z')).toUTCString() }, 0], // past date
  [{ 'retry-after-ms': '100', 'retry-after': '9' }, 100], // the millisecond form wins
  [{ 'retry-after': 'soon' }, undefined],
  [{ 'retry-after': '-1' }, undefined],
  [{}, undefined],
];

function azureRest(status: number, headers: Record<string, string>): RestError {
  return new RestError('throttled', {
    statusCode: status,
    code: 'Throttled',
    response: { status, headers: { get: (n: string) => headers[n.toLowerCase()] }, request: {} } as never,
  });
}

function awsError(headers: Record<string, string>): Error {
  const e = new KMSInternalException({ message: 'busy', $metadata: { httpStatusCode: 500 } });
  // As the SDK's deserializer attaches it: hidden, with the response's (lower-cased) headers.
  Object.defineProperty(e, '$response', { value: { statusCode: 500, headers }, enumerable: false });
  return e;
}

describe('retryAfterMs', () => {
  it.each(FORMS)('Azure RestError %j → %s', (headers, ms) => {
    expect(retryAfterMs(azureRest(429, headers), NOW)).toBe(ms);
  });

  it.each(FORMS)('Vault HTTP error %j → %s', (headers, ms) => {
    expect(
      retryAfterMs(new VaultHttpError(429, ['rate limited'], 'POST', 'transit/encrypt/k', headers), NOW),
    ).toBe(ms);
  });

  it.each(FORMS)('AWS SDK error ($response) %j → %s', (headers, ms) => {
    expect(retryAfterMs(awsError(headers), NOW)).toBe(ms);
  });

  it('reads a fetch Headers object and record keys in any case', () => {
    expect(retryAfterMs({ headers: new Headers({ 'Retry-After': '4' }) }, NOW)).toBe(4000);
    expect(retryAfterMs({ $response: { headers: { 'Retry-After': '1' } } }, NOW)).toBe(1000);
    expect(retryAfterMs({ headers: { 'retry-after': ['2', '7'] } }, NOW)).toBe(2000);
  });

  it('reads gRPC RetryInfo (seconds as number, string or protobufjs Long, plus nanos)', () => {
    const long = { toNumber: () => 2 };
    expect(retryAfterMs({ statusDetails: [{ retryDelay: { seconds: 1, nanos: 500_000_000 } }] })).toBe(1500);
    expect(retryAfterMs({ statusDetails: [{ reason: 'x' }, { retryDelay: { seconds: '3' } }] })).toBe(3000);
    expect(retryAfterMs({ statusDetails: [{ retryDelay: { seconds: long, nanos: 1 } }] })).toBe(2001);
    expect(retryAfterMs({ statusDetails: [{ reason: 'RATE_LIMIT_EXCEEDED' }] })).toBeUndefined();
  });

  it('is undefined for errors without a hint', () => {
    for (const err of [
      undefined,
      null,
      'text',
      42,
      new Error('plain'),
      { headers: 'x' },
      { statusDetails: 'x' },
    ]) {
      expect(retryAfterMs(err, NOW)).toBeUndefined();
    }
  });

  it('VaultHttpError keeps only retry hints from a response, no other header', async () => {
    // The real client: a response from a local server, read through VaultHttp.
    const { createServer } = await import('node:http');
    const { VaultHttp } = await import('../../../src/kek/vault/http.js');
    const server = createServer((_req, res) => {
      res.writeHead(429, {
        'content-type': 'application/json',
        'retry-after': '2',
        'set-cookie': 'session=secret-cookie-value',
      });
      res.end(JSON.stringify({ errors: ['request path "transit/encrypt/k": rate limit quota exceeded'] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const http = new VaultHttp({ address: `http://127.0.0.1:${port}` });
    try {
      const err = await http
        .request('POST', 'transit/encrypt/k', {
          token: 'hvs.aaaaaaaaaaaa',
          body: {},
          signal: AbortSignal.timeout(5000),
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(VaultHttpError);
      expect((err as VaultHttpError).headers).toEqual({ 'retry-after': '2' });
      expect(retryAfterMs(err)).toBe(2000);
    } finally {
      await http.close();
      await new Promise((r) => server.close(r));
    }
  });
});
