/** GCP provider: CRC32C integrity checks of Encrypt/Decrypt responses (src/kek/gcp/integrity.ts). */
import { describe, expect, it } from '@jest/globals';
import { crc32c } from '@node-rs/crc32';

import { checksum, verifyDecryptResponse, verifyEncryptResponse } from '../../../../src/kek/gcp/integrity.js';

import { KEY, V1, thrown } from './support.js';

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
