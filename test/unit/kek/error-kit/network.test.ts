/** Network and TLS failures, one table for every backend (src/kek/error-kit/network.ts). */
import { describe, expect, it } from '@jest/globals';

import { UnavailableError } from '../../../../src/errors.js';
import {
  TLS_CONFIG_CODES,
  TRANSIENT_NETWORK_CODES,
  errorCodeOf,
  networkClassOf,
  networkCodeInText,
  networkFailure,
} from '../../../../src/kek/error-kit/network.js';

const coded = (code: string, message = code): Error => Object.assign(new Error(message), { code });
const ctx = { what: 'x encrypt k', service: 'The KMS', tlsFix: 'check x.caFile' };

describe('network codes', () => {
  it.each([
    'ECONNREFUSED',
    'ECONNRESET',
    'ETIMEDOUT',
    'EAI_AGAIN',
    'ENOTFOUND',
    'EPIPE',
    'EHOSTUNREACH',
    'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT',
    'UND_ERR_HEADERS_TIMEOUT',
  ])('%s is transient: UNAVAILABLE, retried', (code) => {
    expect(networkClassOf(code)).toBe('transient');
    const e = networkFailure(coded(code), ctx);
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e?.retryable).toBe(true);
    expect(e?.message).toBe(
      `x encrypt k: cannot reach The KMS (${code}); check the address, the network and any proxy`,
    );
  });

  it.each([
    'CERT_HAS_EXPIRED',
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'DEPTH_ZERO_SELF_SIGNED_CERT',
    'SELF_SIGNED_CERT_IN_CHAIN',
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    'ERR_TLS_CERT_ALTNAME_INVALID',
    'ERR_SSL_WRONG_VERSION_NUMBER',
    'EPROTO',
  ])('%s is a TLS setup problem: UNAVAILABLE, not retried, says what to fix', (code) => {
    expect(networkClassOf(code)).toBe('tls');
    const e = networkFailure(coded(code), ctx);
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e?.retryable).toBe(false);
    expect(e?.message).toContain(
      `TLS handshake with The KMS failed (${code}: ${TLS_CONFIG_CODES.get(code)})`,
    );
    expect(e?.message).toContain('check x.caFile');
  });

  it('the two sets do not overlap, and other codes are neither', () => {
    for (const c of TRANSIENT_NETWORK_CODES) expect(TLS_CONFIG_CODES.has(c)).toBe(false);
    expect(networkClassOf('ENOENT')).toBeUndefined();
    expect(networkClassOf(undefined)).toBeUndefined();
    expect(networkFailure(coded('ENOENT'), ctx)).toBeUndefined();
    expect(networkFailure(new Error('boom'), ctx)).toBeUndefined();
    expect(networkFailure(undefined, ctx)).toBeUndefined();
  });
});

describe('errorCodeOf walks the cause chain the same way for every backend', () => {
  it('finds the code under undici fetch failed, SDK wrappers and AggregateError', () => {
    const fetchFailed = Object.assign(new TypeError('fetch failed'), { cause: coded('ECONNREFUSED') });
    expect(errorCodeOf(fetchFailed)).toBe('ECONNREFUSED');
    const deep = { cause: { cause: { cause: coded('CERT_HAS_EXPIRED') } } };
    expect(errorCodeOf(deep)).toBe('CERT_HAS_EXPIRED');
    const aggregate = Object.assign(
      new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], ''),
      {},
    );
    expect(errorCodeOf(aggregate)).toBe('ECONNREFUSED');
  });

  it('prefers a known code deeper down over an unknown one on top, skips undici generic and abort codes', () => {
    const wrapped = Object.assign(coded('ERR_WRAPPED'), { cause: coded('ETIMEDOUT') });
    expect(errorCodeOf(wrapped)).toBe('ETIMEDOUT');
    expect(errorCodeOf(coded('ERR_SOMETHING'))).toBe('ERR_SOMETHING');
    expect(errorCodeOf(coded('UND_ERR'))).toBeUndefined();
    expect(errorCodeOf(coded('UND_ERR_ABORTED'))).toBeUndefined();
    expect(errorCodeOf(Object.assign(coded('UND_ERR'), { cause: coded('ECONNRESET') }))).toBe('ECONNRESET');
    expect(errorCodeOf('text')).toBeUndefined();
  });

  it('stops on a cause cycle', () => {
    const a: { code?: string; cause?: unknown } = {};
    a.cause = a;
    expect(errorCodeOf(a)).toBeUndefined();
  });
});

describe('text-only errors', () => {
  it.each<[string, string | undefined]>([
    ['connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'],
    ['socket hang up', 'ECONNRESET'],
    ['getaddrinfo EAI_AGAIN login.example', 'EAI_AGAIN'],
    [
      'No connection established. Last error: unable to verify the first certificate',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    ],
    ['self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['self signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'],
    ['certificate has expired', 'CERT_HAS_EXPIRED'],
    ["Hostname/IP does not match certificate's altnames: Host: x", 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['CERT_NOT_YET_VALID', 'CERT_NOT_YET_VALID'],
    ['some other certificate trouble', 'TLS_CERTIFICATE_ERROR'],
    ['permission denied', undefined],
  ])('%s → %s', (text, code) => {
    expect(networkCodeInText(text)).toBe(code);
  });

  it('networkFailure reads the text when the error has no code', () => {
    const e = networkFailure(new Error('x'), { ...ctx, text: 'request failed: certificate has expired' });
    expect(e?.retryable).toBe(false);
    expect(e?.message).toContain('CERT_HAS_EXPIRED');
  });

  it('a provider can make its own subclass', () => {
    const made: string[] = [];
    const e = networkFailure(coded('ECONNRESET'), ctx, (cls, message, retryable) => {
      made.push(cls);
      return new UnavailableError(message, { retryable });
    });
    expect(made).toEqual(['transient']);
    expect(e?.retryable).toBe(true);
  });
});
