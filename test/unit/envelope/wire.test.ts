import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import {
  COMMIT_BYTES,
  FORMAT_V1,
  FORMAT_V2,
  OVERHEAD_V2_BYTES,
  dekCommitment,
  verifyCommitment,
  NONCE_BYTES,
  OVERHEAD_BYTES,
  TAG_BYTES,
  buildAad,
  open,
  parseCiphertext,
  seal,
  type AadParts,
} from '../../../src/envelope/wire.js';
import { InvalidInputError, UnauthenticatedError } from '../../../src/errors.js';

const dek = randomBytes(32);
const parts: AadParts = {
  keyId: 'local-0123456789abcdef0123456789abcdef01234567',
  kekBytes: Buffer.from('{"g":0,"k":"id","p":"local","v":"1"}'),
  wrapped: randomBytes(60),
};
const seed = randomBytes(32);

/** Opens, returning the error thrown (or the bytes). */
function tryOpen(ct: Buffer, p: AadParts = parts, key: Buffer = dek): Buffer | Error {
  try {
    return open(key, parseCiphertext(ct), p);
  } catch (err) {
    return err as Error;
  }
}

describe('wire format', () => {
  it('seal/open round trip, with the documented layout', () => {
    const ct = seal(dek, seed, parts);
    expect(ct.length).toBe(OVERHEAD_BYTES + seed.length);
    expect(ct[0]).toBe(FORMAT_V1);
    const parsed = parseCiphertext(ct);
    expect(parsed.format).toBe(1);
    expect(parsed.nonce).toHaveLength(NONCE_BYTES);
    expect(parsed.tag).toHaveLength(TAG_BYTES);
    expect(parsed.body).toHaveLength(seed.length);
    expect(parsed.body.equals(seed)).toBe(false); // actually encrypted
    expect(open(dek, parsed, parts).equals(seed)).toBe(true);
  });

  it('round trips a 1-byte plaintext and parses a Uint8Array view at an offset', () => {
    const ct = seal(dek, Buffer.from([42]), parts);
    const backing = new Uint8Array(ct.length + 10);
    backing.set(ct, 5);
    const view = new Uint8Array(backing.buffer, 5, ct.length);
    expect(open(dek, parseCiphertext(view), parts)).toEqual(Buffer.from([42]));
  });

  it('uses a fresh nonce each time', () => {
    const a = seal(dek, seed, parts);
    const b = seal(dek, seed, parts);
    expect(a.subarray(1, 1 + NONCE_BYTES).equals(b.subarray(1, 1 + NONCE_BYTES))).toBe(false);
    expect(a.equals(b)).toBe(false);
  });

  it('every single-byte flip of the ciphertext fails (never wrong bytes)', () => {
    const ct = seal(dek, seed, parts);
    for (let i = 0; i < ct.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const t = Buffer.from(ct);
        t[i] ^= mask;
        const r = tryOpen(t);
        expect(r).toBeInstanceOf(Error);
        expect(r instanceof UnauthenticatedError || r instanceof InvalidInputError).toBe(true);
        if (i === 0) expect(r).toBeInstanceOf(InvalidInputError);
        else expect(r).toBeInstanceOf(UnauthenticatedError);
      }
    }
  });

  it('truncating or extending the ciphertext fails', () => {
    const ct = seal(dek, seed, parts);
    for (let len = 0; len < ct.length; len++) {
      const r = tryOpen(ct.subarray(0, len));
      expect(r instanceof UnauthenticatedError || r instanceof InvalidInputError).toBe(true);
    }
    expect(tryOpen(Buffer.concat([ct, Buffer.from([0])]))).toBeInstanceOf(UnauthenticatedError);
  });

  it('a changed key_id fails', () => {
    const ct = seal(dek, seed, parts);
    expect(tryOpen(ct, { ...parts, keyId: `${parts.keyId.slice(0, -1)}8` })).toBeInstanceOf(
      UnauthenticatedError,
    );
    expect(tryOpen(ct, { ...parts, keyId: `${parts.keyId}x` })).toBeInstanceOf(UnauthenticatedError);
    expect(tryOpen(ct, { ...parts, keyId: '' })).toBeInstanceOf(UnauthenticatedError);
  });

  it('changed KEK annotation bytes fail (every byte)', () => {
    const ct = seal(dek, seed, parts);
    for (let i = 0; i < parts.kekBytes.length; i++) {
      const k = Buffer.from(parts.kekBytes);
      k[i] ^= 0x01;
      expect(tryOpen(ct, { ...parts, kekBytes: k })).toBeInstanceOf(UnauthenticatedError);
    }
    expect(
      tryOpen(ct, { ...parts, kekBytes: Buffer.concat([parts.kekBytes, Buffer.from(' ')]) }),
    ).toBeInstanceOf(UnauthenticatedError);
  });

  it('a changed wrapped DEK fails (every byte, and length)', () => {
    const ct = seal(dek, seed, parts);
    for (let i = 0; i < parts.wrapped.length; i++) {
      const w = Buffer.from(parts.wrapped);
      w[i] ^= 0x01;
      expect(tryOpen(ct, { ...parts, wrapped: w })).toBeInstanceOf(UnauthenticatedError);
    }
    expect(tryOpen(ct, { ...parts, wrapped: parts.wrapped.subarray(1) })).toBeInstanceOf(
      UnauthenticatedError,
    );
  });

  it('the wrong DEK fails', () => {
    const ct = seal(dek, seed, parts);
    expect(tryOpen(ct, parts, randomBytes(32))).toBeInstanceOf(UnauthenticatedError);
  });

  it('AAD fields are length-prefixed (moving a byte between key_id and kek bytes changes the AAD)', () => {
    const a = buildAad(1, { keyId: 'ab', kekBytes: Buffer.from('c'), wrapped: parts.wrapped });
    const b = buildAad(1, { keyId: 'a', kekBytes: Buffer.from('bc'), wrapped: parts.wrapped });
    expect(a.equals(b)).toBe(false);
    const commit = randomBytes(COMMIT_BYTES);
    expect(buildAad(1, parts).equals(buildAad(2, { ...parts, commit }))).toBe(false);
    expect(() => buildAad(2, parts)).toThrow(/commitment/);
  });

  it('the AAD layout is pinned (stored ciphertexts must stay readable after an upgrade)', () => {
    const u32 = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n, 0);
      return b;
    };
    const keyId = Buffer.from(parts.keyId);
    const expected = Buffer.concat([
      Buffer.from('k8s-kms-plugin/seal\0'),
      Buffer.from([FORMAT_V1]),
      u32(keyId.length),
      keyId,
      u32(parts.kekBytes.length),
      parts.kekBytes,
      createHash('sha256').update(parts.wrapped).digest(),
    ]);
    expect(buildAad(FORMAT_V1, parts).equals(expected)).toBe(true);
  });

  describe('format 2 (DEK commitment)', () => {
    const wrappedHash = createHash('sha256').update(parts.wrapped).digest();
    const commit = dekCommitment(dek, wrappedHash);

    it('seals format 2 when a commitment is given, and it opens', () => {
      const ct = seal(dek, seed, { ...parts, commit });
      expect(ct[0]).toBe(FORMAT_V2);
      expect(ct.length).toBe(OVERHEAD_V2_BYTES + seed.length);
      const parsed = parseCiphertext(ct);
      expect(parsed.commit?.equals(commit)).toBe(true);
      expect(open(dek, parsed, parts)).toEqual(seed);
    });

    it('the commitment verifies only the right DEK for the right wrapped DEK', () => {
      expect(verifyCommitment(dek, wrappedHash, commit)).toBe(true);
      expect(verifyCommitment(randomBytes(32), wrappedHash, commit)).toBe(false);
      expect(verifyCommitment(dek, createHash('sha256').update('other').digest(), commit)).toBe(false);
    });

    it('the commitment is bound into the AAD: changing it fails authentication', () => {
      const ct = seal(dek, seed, { ...parts, commit });
      for (const i of [1, 16, COMMIT_BYTES]) {
        const t = Buffer.from(ct);
        t[i] ^= 0x01;
        expect(tryOpen(t)).toBeInstanceOf(UnauthenticatedError);
      }
    });

    it('the remembered AAD is only reused for the same commitment, of the right length', () => {
      const withCommit = { ...parts, commit };
      const aad = buildAad(FORMAT_V2, withCommit);
      expect(buildAad(FORMAT_V2, withCommit)).toBe(aad); // remembered
      expect(buildAad(FORMAT_V2, parts, Buffer.from(commit))).toBe(aad); // same bytes, other buffer
      // A longer buffer that starts with the remembered commitment is not it.
      expect(() => buildAad(FORMAT_V2, parts, Buffer.concat([commit, Buffer.from([0])]))).toThrow(
        /commitment/,
      );
      const other = Buffer.from(commit);
      other[31] ^= 1;
      expect(buildAad(FORMAT_V2, parts, other).equals(aad)).toBe(false);
    });

    it('format 1 ciphertexts (written before format 2) still open', () => {
      const v1 = seal(dek, seed, parts);
      expect(v1[0]).toBe(FORMAT_V1);
      expect(open(dek, parseCiphertext(v1), parts)).toEqual(seed);
    });
  });

  it('unknown format byte → InvalidInputError naming the format', () => {
    const ct = seal(dek, seed, parts);
    for (const f of [0x00, 0x03, 0xff]) {
      const t = Buffer.from(ct);
      t[0] = f;
      const r = tryOpen(t);
      expect(r).toBeInstanceOf(InvalidInputError);
      expect((r as Error).message).toContain(`0x${f.toString(16).padStart(2, '0')}`);
    }
  });

  it('empty and too-short ciphertexts → InvalidInputError', () => {
    expect(() => parseCiphertext(Buffer.alloc(0))).toThrow(InvalidInputError);
    expect(() => parseCiphertext(Buffer.from([FORMAT_V1]))).toThrow(/too short/);
    expect(() =>
      parseCiphertext(Buffer.concat([Buffer.from([FORMAT_V1]), Buffer.alloc(OVERHEAD_BYTES - 1)])),
    ).toThrow(/too short/);
    // The minimum accepted length is overhead + 1 byte of body.
    expect(() =>
      parseCiphertext(Buffer.concat([Buffer.from([FORMAT_V1]), Buffer.alloc(OVERHEAD_BYTES)])),
    ).not.toThrow();
  });

  it('the error message says nothing secret', () => {
    const ct = seal(dek, seed, parts);
    ct[20] ^= 1;
    const r = tryOpen(ct) as Error;
    expect(r.message).not.toContain(dek.toString('hex'));
    expect(r.message).not.toContain(seed.toString('hex'));
    expect(r.message).not.toContain(parts.keyId);
  });
});
