/**
 * Request validation before any work: malformed input gets INVALID_ARGUMENT, cheaply.
 */
import { InvalidInputError } from '../errors.js';
import type { DecryptRequest, EncryptRequest } from './proto.js';

export const MAX_CIPHERTEXT_BYTES = 1024;
export const MAX_KEY_ID_BYTES = 1024;
export const MAX_UID_BYTES = 256;

export function validateEncrypt(req: EncryptRequest, maxPlaintextBytes: number): void {
  const pt = req.plaintext;
  if (!pt || pt.length === 0)
    throw new InvalidInputError('plaintext is empty (kube-apiserver sends a 32-byte seed)');
  if (pt.length > maxPlaintextBytes) {
    throw new InvalidInputError(
      `plaintext is ${pt.length} bytes; the maximum is ${maxPlaintextBytes} (kube-apiserver sends 32)`,
    );
  }
  validateUid(req.uid);
}

export function validateDecrypt(req: DecryptRequest): void {
  const ct = req.ciphertext;
  if (!ct || ct.length === 0) throw new InvalidInputError('ciphertext is empty');
  if (ct.length > MAX_CIPHERTEXT_BYTES) {
    throw new InvalidInputError(
      `ciphertext is ${ct.length} bytes; kube-apiserver never stores more than ${MAX_CIPHERTEXT_BYTES}`,
    );
  }
  if (!req.key_id) throw new InvalidInputError('key_id is missing');
  if (Buffer.byteLength(req.key_id) > MAX_KEY_ID_BYTES)
    throw new InvalidInputError(`key_id is longer than ${MAX_KEY_ID_BYTES} bytes`);
  validateUid(req.uid);
}

function validateUid(uid: string | undefined): void {
  // The apiserver always sends a UUIDv4; an empty uid is accepted (it is only for correlation).
  if (uid !== undefined && Buffer.byteLength(uid) > MAX_UID_BYTES)
    throw new InvalidInputError(`uid is longer than ${MAX_UID_BYTES} bytes`);
}

/** A uid fit for a log line: printable ASCII, bounded. */
export function safeUid(uid: string | undefined): string | undefined {
  if (!uid) return undefined;
  return uid.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
