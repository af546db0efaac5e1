/** The etcd value codec (EncryptedObject), the apiserver's per-object key derivation and value classification. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import {
  decodeEncryptedObject,
  encodeEncryptedObject,
  type EncryptedObject,
} from '../../../src/cli/etcd/encrypted-object.js';
import { gcmSeal, hkdfExpandSha256, openObject, sealObjectType1 } from '../../../src/cli/etcd/hkdf.js';
import { parseEtcdValue } from '../../../src/cli/etcd/value.js';

const sample = (type: 0 | 1): EncryptedObject => ({
  encryptedData: randomBytes(80),
  keyID: 'local-0123456789abcdef0123456789abcdef01234567',
  encryptedDEKSource: randomBytes(61),
  annotations: { 'kek.k8s-kms-plugin.io': Buffer.from('{"g":0}'), 'dek.k8s-kms-plugin.io': randomBytes(60) },
  encryptedDEKSourceType: type,
});

describe('EncryptedObject codec', () => {
  it('round-trips both DEK-source types, and omits field 5 for type 0 (as proto3 does)', () => {
    const t1 = sample(1);
    const t0 = { ...t1, encryptedDEKSourceType: 0 as const };
    expect(decodeEncryptedObject(encodeEncryptedObject(t1))).toEqual(t1);
    expect(decodeEncryptedObject(encodeEncryptedObject(t0))).toEqual(t0);
    // type 1 = the type-0 bytes plus field 5 (tag 0x28, varint 1)
    expect(encodeEncryptedObject(t1)).toEqual(
      Buffer.concat([encodeEncryptedObject(t0), Buffer.from([0x28, 0x01])]),
    );
  });

  it('round-trips arbitrary contents (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.string({ minLength: 1, maxLength: 60 }),
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.uint8Array({ maxLength: 40 })),
        fc.constantFrom(0 as const, 1 as const),
        (data, keyID, source, ann, type) => {
          const annotations = Object.fromEntries(Object.entries(ann).map(([k, v]) => [k, Buffer.from(v)]));
          const o = {
            encryptedData: Buffer.from(data),
            keyID,
            encryptedDEKSource: Buffer.from(source),
            annotations,
            encryptedDEKSourceType: type,
          };
          expect(decodeEncryptedObject(encodeEncryptedObject(o))).toEqual(o);
        },
      ),
    );
  });

  it('skips unknown fields, rejects truncation and unknown DEK-source types', () => {
    const o = sample(1);
    const withUnknown = Buffer.concat([
      encodeEncryptedObject(o),
      Buffer.from([0x30, 0x05, 0x3d, 1, 2, 3, 4]),
    ]);
    expect(decodeEncryptedObject(withUnknown)).toEqual(o);
    const bytes = encodeEncryptedObject(o);
    expect(() => decodeEncryptedObject(bytes.subarray(0, bytes.length - 70))).toThrow(/truncated/);
    expect(() => decodeEncryptedObject(Buffer.concat([bytes, Buffer.from([0x28, 0x07])]))).toThrow(
      /encryptedDEKSourceType 7/,
    );
  });
});

describe('per-object keys', () => {
  it('HKDF-Expand matches RFC 5869 test case 1 (expand step)', () => {
    const prk = Buffer.from('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5', 'hex');
    const info = Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex');
    expect(hkdfExpandSha256(prk, info, 42).toString('hex')).toBe(
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
  });

  it('opens type 1 (HKDF seed) and type 0 (seed is the key) objects, and only under their etcd key', () => {
    const seed = randomBytes(32);
    const plaintext = Buffer.from('{"kind":"Secret"}');
    const t1 = sealObjectType1(seed, plaintext, '/registry/secrets/a/b');
    expect(openObject(seed, 1, t1, '/registry/secrets/a/b')).toEqual(plaintext);
    const t0 = gcmSeal(seed, randomBytes(12), plaintext, Buffer.from('/registry/secrets/a/b'));
    expect(openObject(seed, 0, t0, '/registry/secrets/a/b')).toEqual(plaintext);
    expect(() => openObject(seed, 1, t1, '/registry/secrets/a/c')).toThrow(/failed authentication/);
    expect(() => openObject(seed, 0, t1, '/registry/secrets/a/b')).toThrow(/failed authentication/);
    expect(() => openObject(randomBytes(32), 0, t0, '/registry/secrets/a/b')).toThrow(
      /failed authentication/,
    );
  });
});

describe('parseEtcdValue', () => {
  const kms = (o: EncryptedObject): Buffer =>
    Buffer.concat([Buffer.from('k8s:enc:kms:v2:prod:'), encodeEncryptedObject(o)]);

  it('decodes KMS v2 values with and without the newline etcdctl prints', () => {
    const o = sample(1);
    for (const raw of [kms(o), Buffer.concat([kms(o), Buffer.from('\n')])]) {
      expect(parseEtcdValue(raw)).toEqual({ kind: 'kms-v2', providerName: 'prod', object: o });
    }
  });

  it('keeps a real trailing 0x0a byte of the last field', () => {
    const o = { ...sample(0), annotations: { 'dek.k8s-kms-plugin.io': Buffer.from([1, 2, 0x0a]) } };
    const parsed = parseEtcdValue(Buffer.concat([kms(o), Buffer.from('\n')]));
    expect(parsed.kind === 'kms-v2' && parsed.object.annotations['dek.k8s-kms-plugin.io']).toEqual(
      Buffer.from([1, 2, 0x0a]),
    );
  });

  it('classifies other transformers and unencrypted values', () => {
    expect(parseEtcdValue(Buffer.from('k8s:enc:kms:v1:old-plugin:xxxx'))).toEqual({
      kind: 'encrypted-other',
      transformer: 'kms v1',
      providerName: 'old-plugin',
    });
    expect(parseEtcdValue(Buffer.from('k8s:enc:secretbox:v1:k:zz'))).toMatchObject({
      transformer: 'secretbox v1',
    });
    expect(parseEtcdValue(Buffer.from('k8s\0\n\x02v1'))).toEqual({ kind: 'identity', encoding: 'protobuf' });
    expect(parseEtcdValue(Buffer.from('{"kind":"Secret"}'))).toEqual({ kind: 'identity', encoding: 'json' });
    expect(() => parseEtcdValue(Buffer.from('k8s:enc:kms:v2:prod:'))).toThrow(/missing keyID/);
  });
});
