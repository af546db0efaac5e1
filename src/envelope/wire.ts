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

/**
 * The AAD depends only on the DEK (key_id, KEK bytes, wrapped DEK), so it is built once per DEK:
 * remembered against the kekBytes Buffer the envelope keeps for that DEK (and checked against the
 * other parts, so a caller passing different parts never gets another DEK's AAD).
 */
const aadMemo = new WeakMap<Buffer, { format: number; keyId: string; wrapped: Buffer; aad: Buffer }>();

export function buildAad(format: number, parts: AadParts): Buffer {
  const hit = aadMemo.get(parts.kekBytes);
  if (hit && hit.format === format && hit.keyId === parts.keyId && hit.wrapped === parts.wrapped)
    return hit.aad;
  const keyId = Buffer.from(parts.keyId, 'utf8');
  const head = Buffer.alloc(1 + 4);
  head.writeUInt8(format, 0);
  head.writeUInt32BE(keyId.length, 1);
  const kekLen = Buffer.alloc(4);
  kekLen.writeUInt32BE(parts.kekBytes.length, 0);
  const wrappedHash = parts.wrappedHash ?? createHash('sha256').update(parts.wrapped).digest();
  const aad = Buffer.concat([
    Buffer.from('k8s-kms-plugin/seal\0'),
    head,
    keyId,
    kekLen,
    parts.kekBytes,
    wrappedHash,
  ]);
  aadMemo.set(parts.kekBytes, { format, keyId: parts.keyId, wrapped: parts.wrapped, aad });
  return aad;
}

/** Random nonces are drawn from the CSPRNG a few hundred at a time (one call, not one per seal). */
const NONCE_POOL_BYTES = NONCE_BYTES * 340;
let noncePool = Buffer.alloc(0);
let noncePos = 0;

function nextNonce(): Buffer {
  if (noncePos + NONCE_BYTES > noncePool.length) {
    noncePool = randomBytes(NONCE_POOL_BYTES);
    noncePos = 0;
  }
  const nonce = noncePool.subarray(noncePos, noncePos + NONCE_BYTES);
  noncePos += NONCE_BYTES;
  return nonce;
}

export function seal(dek: Buffer, plaintext: Uint8Array, parts: AadParts): Buffer {
  const nonce = nextNonce();
  const cipher = createCipheriv('aes-256-gcm', dek, nonce);
  cipher.setAAD(buildAad(FORMAT_V1, parts));
  const out = Buffer.allocUnsafe(OVERHEAD_BYTES + plaintext.length);
  out[0] = FORMAT_V1;
  nonce.copy(out, 1);
  let pos = 1 + NONCE_BYTES;
  pos += cipher.update(plaintext).copy(out, pos);
  pos += cipher.final().copy(out, pos); // empty for GCM
  cipher.getAuthTag().copy(out, pos);
  return out;
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
    const plaintext = decipher.update(parsed.body);
    try {
      decipher.final(); // empty for GCM; throws unless the tag verifies
    } catch (err) {
      plaintext.fill(0);
      throw err;
    }
    return plaintext;
  } catch {
    throw new UnauthenticatedError(
      'ciphertext failed authentication: it, its key_id or its annotations were altered, or it was not produced by this plugin',
    );
  }
}
