/**
 * Our ciphertext inside the apiserver's envelope (EncryptResponse.ciphertext, ≤ 1024 bytes):
 *
 *   format (1 byte, 0x01) ‖ nonce (12) ‖ AES-256-GCM(seed) ‖ tag (16)
 *
 * AAD binds the format byte, the key_id, the exact KEK annotation bytes and a SHA-256 of the
 * wrapped DEK, so changing any byte of ciphertext, key_id or annotations fails authentication.
 * A new format gets a new first byte; every older format stays readable.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { InvalidInputError, UnauthenticatedError } from '../errors.js';

export const FORMAT_V1 = 0x01;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const OVERHEAD_BYTES = 1 + NONCE_BYTES + TAG_BYTES;
/** kube-apiserver rejects EncryptResponse.ciphertext longer than this. */
export const MAX_CIPHERTEXT_BYTES = 1024;

export interface AadParts {
  keyId: string;
  kekBytes: Buffer;
  wrapped: Buffer;
  /** SHA-256 of `wrapped`, when the caller already has it. */
  wrappedHash?: Buffer;
}

export function buildAad(format: number, parts: AadParts): Buffer {
  const keyId = Buffer.from(parts.keyId, 'utf8');
  const head = Buffer.alloc(1 + 4);
  head.writeUInt8(format, 0);
  head.writeUInt32BE(keyId.length, 1);
  const kekLen = Buffer.alloc(4);
  kekLen.writeUInt32BE(parts.kekBytes.length, 0);
  const wrappedHash = parts.wrappedHash ?? createHash('sha256').update(parts.wrapped).digest();
  return Buffer.concat([
    Buffer.from('k8s-kms-plugin/seal\0'),
    head,
    keyId,
    kekLen,
    parts.kekBytes,
    wrappedHash,
  ]);
}

export function seal(dek: Buffer, plaintext: Uint8Array, parts: AadParts): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', dek, nonce);
  cipher.setAAD(buildAad(FORMAT_V1, parts));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([FORMAT_V1]), nonce, body, cipher.getAuthTag()]);
}

export interface ParsedCiphertext {
  format: number;
  nonce: Buffer;
  body: Buffer;
  tag: Buffer;
}

export function parseCiphertext(ciphertext: Uint8Array): ParsedCiphertext {
  const buf = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  if (buf.length === 0) throw new InvalidInputError('ciphertext is empty');
  const format = buf[0];
  if (format !== FORMAT_V1)
    throw new InvalidInputError(
      `unknown ciphertext format 0x${format.toString(16).padStart(2, '0')}: not produced by this plugin`,
    );
  if (buf.length < OVERHEAD_BYTES + 1)
    throw new InvalidInputError(`ciphertext too short (${buf.length} bytes) for format 1`);
  return {
    format,
    nonce: buf.subarray(1, 1 + NONCE_BYTES),
    body: buf.subarray(1 + NONCE_BYTES, buf.length - TAG_BYTES),
    tag: buf.subarray(buf.length - TAG_BYTES),
  };
}

/** Opens a parsed ciphertext; throws UnauthenticatedError on any mismatch (never returns wrong bytes). */
export function open(dek: Buffer, parsed: ParsedCiphertext, parts: AadParts): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', dek, parsed.nonce);
    decipher.setAAD(buildAad(parsed.format, parts));
    decipher.setAuthTag(parsed.tag);
    return Buffer.concat([decipher.update(parsed.body), decipher.final()]);
  } catch {
    throw new UnauthenticatedError(
      'ciphertext failed authentication: it, its key_id or its annotations were altered, or it was not produced by this plugin',
    );
  }
}
