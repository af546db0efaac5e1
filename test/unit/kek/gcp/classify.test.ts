/** GCP provider: error classification (src/kek/gcp/classify.ts); scrubbing: ../error-kit/scrub.test.ts. */
import { describe, expect, it } from '@jest/globals';

import { classifyGcpError, type GcpOperation } from '../../../../src/kek/gcp/classify.js';
import { KEY } from './support.js';

describe('gcp error classification', () => {
  const grpcError = (code: number, details: string) =>
    Object.assign(new Error(`${code} X: ${details}`), { code, details });

  it.each<[number, GcpOperation, string, boolean]>([
    [14, 'encrypt', 'unavailable', true],
    [4, 'encrypt', 'unavailable', true],
    [13, 'decrypt', 'unavailable', true],
    [8, 'encrypt', 'throttled', true],
    [7, 'encrypt', 'permission_denied', false],
    [16, 'getCryptoKey', 'permission_denied', false],
    [5, 'getCryptoKey', 'unknown_key', false],
    [9, 'decrypt', 'key_disabled', false],
    [3, 'decrypt', 'unauthenticated', false],
    [3, 'encrypt', 'invalid_input', false],
    [12, 'encrypt', 'internal', false],
  ])('gRPC %i on %s -> %s', (code, op, kind, retryable) => {
    const err = classifyGcpError(grpcError(code, 'something'), op, KEY);
    expect(err.kind).toBe(kind);
    expect(err.retryable).toBe(retryable);
    expect(err.message).toContain(KEY);
  });

  it('treats a request checksum mismatch reported by Cloud KMS as retryable corruption', () => {
    const err = classifyGcpError(
      grpcError(3, 'The checksum in field plaintext_crc32c did not match'),
      'encrypt',
      KEY,
    );
    expect(err.kind).toBe('corrupt');
    expect(err.retryable).toBe(true);
  });

  it('classifies credential failures outside gRPC and scrubs token-like text', () => {
    const err = classifyGcpError(
      new Error('Could not load the default credentials. token ya29.abcdefSECRET'),
      'encrypt',
      KEY,
    );
    expect(err.kind).toBe('permission_denied');
    expect(err.message).not.toContain('ya29.abcdefSECRET');
    expect(classifyGcpError('weird', 'encrypt', KEY).kind).toBe('internal');
  });
  // The scrub assertions moved to test/unit/kek/error-kit/scrub.test.ts with the scrubber.
});

describe('gcp network and TLS failures (shared table)', () => {
  const grpcError = (code: number, details: string) =>
    Object.assign(new Error(`${code} X: ${details}`), { code, details });

  it('UNAVAILABLE caused by a refused certificate is not retried and names gcp.caFile', () => {
    const err = classifyGcpError(
      grpcError(14, 'No connection established. Last error: Error: self-signed certificate'),
      'encrypt',
      KEY,
    );
    expect(err.kind).toBe('unavailable');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/TLS handshake with Cloud KMS failed .*gcp\.caFile/);
  });

  it('plain UNAVAILABLE stays retryable; a network code outside gRPC is unavailable', () => {
    expect(classifyGcpError(grpcError(14, 'Connection dropped'), 'encrypt', KEY).retryable).toBe(true);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(classifyGcpError(refused, 'encrypt', KEY)).toMatchObject({ kind: 'unavailable', retryable: true });
  });
});
