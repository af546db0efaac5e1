/**
 * The apiserver's per-object keys (contract §5), for the emulation in tests and for
 * `decrypt-etcd-value`:
 *
 * - type 1 (HKDF_SHA256_XNONCE_AES_GCM_SEED): DEK = HKDF-Expand(SHA-256, PRK = seed, info), 32 bytes,
 *   no Extract step; encryptedData = info(32) ‖ nonce(12) ‖ ciphertext ‖ tag(16).
 * - type 0 (AES_GCM_KEY): the seed is the AES-256-GCM key; encryptedData = nonce(12) ‖ ciphertext ‖ tag.
 *
 * AAD is the etcd key (e.g. /registry/secrets/default/s1).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { InvalidInputError, UnauthenticatedError } from '../../errors.js';
import type { DekSourceType } from './encrypted-object.js';

export const HKDF_INFO_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** HKDF-Expand (RFC 5869) with SHA-256: what the apiserver's KDF does (no Extract, no salt). */
export function hkdfExpandSha256(prk: Buffer, info: Buffer, length = 32): Buffer {
  if (length > 255 * 32) throw new InvalidInputError('HKDF output too long');
  const blocks: Buffer[] = [];
  let total = 0;
  let prev = Buffer.alloc(0);
  for (let i = 1; total < length; i++) {
    prev = createHmac('sha256', prk)
      .update(Buffer.concat([prev, info, Buffer.from([i])]))
      .digest();
    blocks.push(prev);
    total += prev.length;
  }
  return Buffer.concat(blocks).subarray(0, length);
}

export function gcmSeal(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  return Buffer.concat([nonce, c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** Opens nonce(12) ‖ ciphertext ‖ tag(16). Throws UnauthenticatedError on any mismatch. */
export function gcmOpen(key: Buffer, data: Buffer, aad: Buffer): Buffer {
  if (data.length < NONCE_BYTES + TAG_BYTES) throw new InvalidInputError('encryptedData is too short');
  try {
    const d = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
    d.setAAD(aad);
    d.setAuthTag(data.subarray(data.length - TAG_BYTES));
    return Buffer.concat([d.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), d.final()]);
  } catch {
    throw new UnauthenticatedError(
      'the object failed authentication: check --etcd-key (it is the AAD and must be the exact etcd key) and that the value is complete',
    );
  }
}

/** Type 1 write: a fresh info, the derived DEK, a random nonce (what TransformToStorage does on 1.29+). */
export function sealObjectType1(seed: Buffer, plaintext: Buffer, etcdKey: string): Buffer {
  const info = randomBytes(HKDF_INFO_BYTES);
  const dek = hkdfExpandSha256(seed, info);
  try {
    return Buffer.concat([info, gcmSeal(dek, randomBytes(NONCE_BYTES), plaintext, Buffer.from(etcdKey))]);
  } finally {
    dek.fill(0);
  }
}

/** Decrypts an EncryptedObject's encryptedData with the seed Decrypt returned. */
export function openObject(
  seed: Buffer,
  type: DekSourceType,
  encryptedData: Buffer,
  etcdKey: string,
): Buffer {
  if (seed.length !== 32) throw new InvalidInputError(`the DEK seed is ${seed.length} bytes; expected 32`);
  const aad = Buffer.from(etcdKey);
  if (type === 0) return gcmOpen(seed, encryptedData, aad);
  if (encryptedData.length < HKDF_INFO_BYTES + NONCE_BYTES + TAG_BYTES) {
    throw new InvalidInputError('encryptedData is too short for HKDF_SHA256_XNONCE_AES_GCM_SEED');
  }
  const dek = hkdfExpandSha256(seed, encryptedData.subarray(0, HKDF_INFO_BYTES));
  try {
    return gcmOpen(dek, encryptedData.subarray(HKDF_INFO_BYTES), aad);
  } finally {
    dek.fill(0);
  }
}
