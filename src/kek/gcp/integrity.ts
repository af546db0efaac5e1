/**
 * End-to-end CRC32C integrity, as Google documents for Cloud KMS Encrypt/Decrypt:
 * send plaintext_crc32c / additional_authenticated_data_crc32c (Encrypt) and ciphertext_crc32c /
 * additional_authenticated_data_crc32c (Decrypt); then check that the server verified what we sent
 * (verified_*_crc32c) and that the returned data matches the returned checksum. The SDK checks
 * none of this itself. Any mismatch fails closed with CorruptError, marked retryable because
 * Google's procedure is to retry a bounded number of times (damage in transit).
 */
import { crc32c } from '@node-rs/crc32';
import { CorruptError } from '../errors.js';
import type { DecryptResponse, EncryptResponse } from './api.js';

/** The google.protobuf.Int64Value wrapper as an SDK message ({ value } as number, string or Long). */
export function checksum(data: Uint8Array): { value: number } {
  return { value: crc32c(data) };
}

function wrapperValue(v: unknown): number | undefined {
  if (v === null || v === undefined) return undefined;
  const raw = (v as { value?: unknown }).value;
  if (raw === null || raw === undefined) return undefined;
  const n = Number(typeof raw === 'object' ? String(raw) : raw);
  return Number.isFinite(n) ? n : undefined;
}

function bytes(v: unknown): Buffer | undefined {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return undefined;
}

/** Verifies an Encrypt response for `versionName`; returns the ciphertext. */
export function verifyEncryptResponse(res: EncryptResponse, versionName: string): Buffer {
  if (res.name !== versionName) {
    // Not transit damage: the KMS used (or claims to have used) another version than key_id names.
    throw new CorruptError(
      `gcp encrypt: the response names CryptoKeyVersion ${JSON.stringify(res.name ?? '')}, not the requested ${versionName}; refusing the result`,
    );
  }
  if (res.verifiedPlaintextCrc32c !== true) {
    throw new CorruptError(
      'gcp encrypt: Cloud KMS did not confirm the plaintext checksum (verifiedPlaintextCrc32c is false)',
      {
        retryable: true,
      },
    );
  }
  if (res.verifiedAdditionalAuthenticatedDataCrc32c !== true) {
    throw new CorruptError(
      'gcp encrypt: Cloud KMS did not confirm the AAD checksum (verifiedAdditionalAuthenticatedDataCrc32c is false)',
      { retryable: true },
    );
  }
  const ciphertext = bytes(res.ciphertext);
  if (!ciphertext || ciphertext.length === 0) {
    throw new CorruptError('gcp encrypt: the response carries no ciphertext', { retryable: true });
  }
  const sent = wrapperValue(res.ciphertextCrc32c);
  if (sent === undefined)
    throw new CorruptError('gcp encrypt: the response carries no ciphertextCrc32c', { retryable: true });
  if (sent !== crc32c(ciphertext)) {
    throw new CorruptError('gcp encrypt: ciphertext does not match ciphertextCrc32c (damaged in transit)', {
      retryable: true,
    });
  }
  return Buffer.from(ciphertext);
}

/** Verifies a Decrypt response; returns the plaintext. */
export function verifyDecryptResponse(res: DecryptResponse): Buffer {
  const plaintext = bytes(res.plaintext);
  if (!plaintext || plaintext.length === 0) {
    throw new CorruptError('gcp decrypt: the response carries no plaintext', { retryable: true });
  }
  const sent = wrapperValue(res.plaintextCrc32c);
  if (sent === undefined)
    throw new CorruptError('gcp decrypt: the response carries no plaintextCrc32c', { retryable: true });
  if (sent !== crc32c(plaintext)) {
    plaintext.fill(0);
    throw new CorruptError('gcp decrypt: plaintext does not match plaintextCrc32c (damaged in transit)', {
      retryable: true,
    });
  }
  const out = Buffer.from(plaintext);
  plaintext.fill(0); // do not leave the DEK in the SDK's response buffer
  return out;
}
