import { describe, expect, it } from '@jest/globals';
import { crc32c } from '@node-rs/crc32';
import { gcpSchema } from '../../../src/config/providers/gcp.js';
import type { CryptoKeyVersion } from '../../../src/kek/gcp/api.js';
import { classifyGcpError, scrub, type GcpOperation } from '../../../src/kek/gcp/classify.js';
import { checksum, verifyDecryptResponse, verifyEncryptResponse } from '../../../src/kek/gcp/integrity.js';
import { lazySdkApi } from '../../../src/kek/gcp/lazy.js';
import { clientOptions, splitEndpoint } from '../../../src/kek/gcp/sdk.js';
import { aadFingerprint, decodeUnique, encodeUnique } from '../../../src/kek/gcp/ref.js';
import { formatTimestamp, mapVersionState, primaryVersionInfo } from '../../../src/kek/gcp/version.js';
import { PluginError } from '../../../src/errors.js';

const KEY = 'projects/p-1/locations/global/keyRings/r/cryptoKeys/k';
const V1 = `${KEY}/cryptoKeyVersions/1`;
const FP = aadFingerprint(Buffer.from('k8s-kms-plugin/dek/v1'));

function thrown(fn: () => unknown): PluginError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PluginError);
    return err as PluginError;
  }
  throw new Error('expected a throw');
}

describe('gcp version states and references', () => {
  it.each([
    ['ENABLED', 'enabled'],
    ['DISABLED', 'disabled'],
    ['DESTROY_SCHEDULED', 'pending_deletion'],
    ['DESTROYED', 'destroyed'],
    ['PENDING_EXTERNAL_DESTRUCTION', 'destroyed'],
    ['EXTERNAL_DESTRUCTION_FAILED', 'destroyed'],
    ['PENDING_IMPORT', 'pending_import'],
    ['IMPORT_FAILED', 'disabled'],
    ['GENERATION_FAILED', 'disabled'],
    ['PENDING_GENERATION', 'unavailable'],
    ['CRYPTO_KEY_VERSION_STATE_UNSPECIFIED', 'unavailable'],
    ['SOMETHING_NEW', 'unavailable'],
    [undefined, 'unavailable'],
  ])('%s -> %s', (state, expected) => {
    expect(mapVersionState(state)).toBe(expected);
  });

  it('formats Timestamps deterministically with nine fractional digits, whatever type seconds has', () => {
    expect(formatTimestamp({ seconds: '1795629686', nanos: 5 })).toBe('2026-11-25T18:01:26.000000005Z');
    expect(formatTimestamp({ seconds: 1795629686, nanos: 123456789 })).toBe('2026-11-25T18:01:26.123456789Z');
    expect(formatTimestamp({ seconds: 1795629686 })).toBe('2026-11-25T18:01:26.000000000Z');
    expect(formatTimestamp(undefined)).toBeUndefined();
    expect(formatTimestamp({ seconds: 'x' })).toBeUndefined();
    expect(formatTimestamp({ seconds: 1, nanos: 1e9 })).toBeUndefined();
  });

  const primary: CryptoKeyVersion = {
    name: V1,
    state: 'ENABLED',
    createTime: { seconds: '1795629686', nanos: 42 },
    protectionLevel: 'HSM',
  };

  it('builds the reference from the primary version id and its createTime', () => {
    const info = primaryVersionInfo(KEY, { name: KEY, purpose: 'ENCRYPT_DECRYPT', primary }, FP);
    expect(info.ref).toEqual({
      provider: 'gcp',
      key: KEY,
      version: '1',
      unique: `created=2026-11-25T18:01:26.000000042Z;aad=${FP}`,
    });
    expect(info.ordinal).toBe(1);
    expect(info.state).toBe('enabled');
    expect(info.detail).toBeUndefined();
    const v12 = primaryVersionInfo(
      KEY,
      {
        name: KEY,
        primary: { ...primary, name: `${KEY}/cryptoKeyVersions/12` },
      },
      FP,
    );
    expect(v12.ordinal).toBe(12);
  });

  it('refuses inconsistent GetCryptoKey answers', () => {
    expect(thrown(() => primaryVersionInfo(KEY, { name: `${KEY}2`, primary }, FP)).kind).toBe('corrupt');
    expect(
      thrown(() => primaryVersionInfo(KEY, { name: KEY, purpose: 'ASYMMETRIC_SIGN', primary }, FP)).kind,
    ).toBe('invalid_input');
    expect(thrown(() => primaryVersionInfo(KEY, { name: KEY, primary: null }, FP)).kind).toBe('key_disabled');
    expect(
      thrown(() =>
        primaryVersionInfo(
          KEY,
          {
            name: KEY,
            primary: {
              ...primary,
              name: 'projects/x/locations/y/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1',
            },
          },
          FP,
        ),
      ).kind,
    ).toBe('corrupt');
    expect(
      thrown(() =>
        primaryVersionInfo(
          KEY,
          { name: KEY, primary: { ...primary, name: `${KEY}/cryptoKeyVersions/01` } },
          FP,
        ),
      ).kind,
    ).toBe('corrupt');
    expect(
      thrown(() => primaryVersionInfo(KEY, { name: KEY, primary: { ...primary, createTime: null } }, FP))
        .kind,
    ).toBe('corrupt');
  });

  it('explains non-enabled states', () => {
    const info = primaryVersionInfo(
      KEY,
      {
        name: KEY,
        primary: {
          ...primary,
          state: 'DESTROY_SCHEDULED',
          destroyTime: { seconds: 1798221686 },
        } as CryptoKeyVersion,
      },
      FP,
    );
    expect(info.state).toBe('pending_deletion');
    expect(info.detail).toBe(
      'CryptoKeyVersion 1 is scheduled for destruction at 2026-12-25T18:01:26Z; restore it (gcloud kms keys versions restore) or make another version primary',
    );
  });
});

describe('gcp ref unique part', () => {
  it('encodes the creation time and an AAD fingerprint, and decodes them back', () => {
    const a = aadFingerprint(Buffer.from('cluster-a'));
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(aadFingerprint(Buffer.from('cluster-a'))).toBe(a);
    expect(aadFingerprint(Buffer.from('cluster-b'))).not.toBe(a);
    const u = encodeUnique('2026-11-25T18:01:26.000000042Z', a);
    expect(u).toBe(`created=2026-11-25T18:01:26.000000042Z;aad=${a}`);
    expect(decodeUnique(u)).toEqual({ created: '2026-11-25T18:01:26.000000042Z', aad: a });
    expect(decodeUnique(undefined)).toEqual({});
    expect(decodeUnique('garbage;=x;other=1')).toEqual({});
  });
});

describe('gcp CRC32C integrity checks', () => {
  const ciphertext = Buffer.from('opaque-ciphertext');
  const good = {
    name: V1,
    ciphertext,
    ciphertextCrc32c: { value: String(crc32c(ciphertext)) }, // the SDK gives int64 as strings
    verifiedPlaintextCrc32c: true,
    verifiedAdditionalAuthenticatedDataCrc32c: true,
  };

  it('uses CRC32C (Castagnoli)', () => {
    expect(checksum(Buffer.from('123456789')).value).toBe(0xe3069283);
  });

  it('accepts a consistent Encrypt response and rejects every inconsistency', () => {
    expect(verifyEncryptResponse(good, V1).equals(ciphertext)).toBe(true);
    const bad = [
      { ...good, ciphertextCrc32c: { value: String(crc32c(ciphertext) ^ 1) } },
      { ...good, ciphertextCrc32c: null },
      { ...good, verifiedPlaintextCrc32c: false },
      { ...good, verifiedAdditionalAuthenticatedDataCrc32c: false },
      { ...good, ciphertext: Buffer.alloc(0) },
    ];
    for (const res of bad) {
      const err = thrown(() => verifyEncryptResponse(res, V1));
      expect(err.kind).toBe('corrupt');
      expect(err.retryable).toBe(true);
    }
    const wrongVersion = thrown(() =>
      verifyEncryptResponse({ ...good, name: `${KEY}/cryptoKeyVersions/2` }, V1),
    );
    expect(wrongVersion.kind).toBe('corrupt');
    expect(wrongVersion.retryable).toBe(false);
  });

  it('accepts a consistent Decrypt response, zeroes the SDK buffer, and rejects a checksum mismatch', () => {
    const dek = Buffer.alloc(32, 9);
    const sdkBuffer = Buffer.from(dek);
    const out = verifyDecryptResponse({ plaintext: sdkBuffer, plaintextCrc32c: { value: crc32c(dek) } });
    expect(out.equals(dek)).toBe(true);
    expect(sdkBuffer.every((b) => b === 0)).toBe(true);
    expect(
      thrown(() =>
        verifyDecryptResponse({ plaintext: Buffer.from(dek), plaintextCrc32c: { value: crc32c(dek) + 1 } }),
      ).kind,
    ).toBe('corrupt');
    expect(thrown(() => verifyDecryptResponse({ plaintext: Buffer.from(dek) })).kind).toBe('corrupt');
  });
});

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

  it('scrubs bearer tokens, JWTs, PEM blocks and token fields, and bounds the length', () => {
    const text = scrub(
      'Bearer abc.def ya29.token eyJhbGciOi.eyJzdWIiOi.sig "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----" access_token=zzz',
    );
    for (const s of ['abc.def', 'ya29.token', 'eyJhbGciOi', 'MIIE', 'zzz']) expect(text).not.toContain(s);
    expect(scrub('x'.repeat(1000)).length).toBeLessThanOrEqual(301);
  });
});

describe('gcp SDK client options', () => {
  it('splits endpoints', () => {
    expect(splitEndpoint('cloudkms.googleapis.com')).toEqual({ host: 'cloudkms.googleapis.com', port: 443 });
    expect(splitEndpoint('127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(splitEndpoint('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
  });

  it('uses ADC by default, the credentials file when set, and a static auth client in insecure mode', () => {
    expect(clientOptions(gcpSchema.parse({ keyName: KEY }))).toEqual({});
    const insecure = clientOptions(
      gcpSchema.parse({ keyName: KEY, endpoint: '127.0.0.1:1234', insecure: true }),
    );
    expect(insecure.apiEndpoint).toBe('127.0.0.1');
    expect(insecure.port).toBe(1234);
    expect(insecure.sslCreds).toBeDefined();
    expect(insecure.authClient).toBeDefined();
    expect(insecure.keyFilename).toBeUndefined();
    const missing = thrown(() =>
      clientOptions(gcpSchema.parse({ keyName: KEY, credentialsFile: '/nonexistent/sa.json' })),
    );
    expect(missing.kind).toBe('invalid_input');
    expect(missing.message).toMatch(/gcp.credentialsFile: cannot read \/nonexistent\/sa.json \(ENOENT\)/);
  });

  it('checks configured files at provider creation even though the SDK loads on first use', () => {
    expect(() =>
      lazySdkApi(gcpSchema.parse({ keyName: KEY, credentialsFile: '/nonexistent/wif.json' })),
    ).toThrow(/gcp.credentialsFile: cannot read \/nonexistent\/wif.json \(ENOENT\)/);
    expect(() => lazySdkApi(gcpSchema.parse({ keyName: KEY, caFile: '/nonexistent/ca.pem' }))).toThrow(
      /gcp.caFile: cannot read/,
    );
    expect(typeof lazySdkApi(gcpSchema.parse({ keyName: KEY })).encrypt).toBe('function');
  });
});
