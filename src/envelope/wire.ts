/**
 * Our ciphertext inside the apiserver's envelope (EncryptResponse.ciphertext, ≤ 1024 bytes):
 *
 *   format 1:  0x01 ‖ nonce (12) ‖ AES-256-GCM(seed) ‖ tag (16)
 *   format 2:  0x02 ‖ commitment (32) ‖ nonce (12) ‖ AES-256-GCM(seed) ‖ tag (16)
 *
 * AAD binds the format byte, the key_id, the exact KEK annotation bytes and a SHA-256 of the
 * wrapped DEK (and, in format 2, the commitment), so changing any byte of ciphertext, key_id or
 * annotations fails authentication. A new format gets a new first byte; every older format stays
 * readable.
 *
 * The commitment (format 2) is HMAC-SHA256(DEK, label ‖ SHA-256(wrapped DEK)): it lets the plugin
 * check a DEK the KMS unwrapped *before* caching it, independently of the object being read, so a
 * wrong DEK from a faulty KMS is recognised as a KMS fault and never cached. Format 1 objects
 * (written before) have none; their DEK is verified by opening the requesting object.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidInputError, UnauthenticatedError } from '../errors.js';
import { AEAD } from './aead.js';

export const FORMAT_V1 = 0x01;
export const FORMAT_V2 = 0x02;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const COMMIT_BYTES = 32;
/** The smallest overhead of any format (format 1). */
export const OVERHEAD_BYTES = 1 + NONCE_BYTES + TAG_BYTES;
export const OVERHEAD_V2_BYTES = OVERHEAD_BYTES + COMMIT_BYTES;
const COMMIT_LABEL = Buffer.from('k8s-kms-plugin/dek-commit\0');
/** kube-apiserver rejects EncryptResponse.ciphertext longer than this. */
export const MAX_CIPHERTEXT_BYTES = 1024;

export interface AadParts {
  keyId: string;
  kekBytes: Buffer;
  wrapped: Buffer;
  /** SHA-256 of `wrapped`, when the caller already has it. */
  wrappedHash?: Buffer;
  /** The DEK commitment (format 2). seal() writes format 2 when it is given, format 1 otherwise. */
  commit?: Buffer;
}

/** The key commitment of `dek` for the wrapped DEK whose SHA-256 is `wrappedHash`. */
export function dekCommitment(dek: Buffer, wrappedHash: Buffer): Buffer {
  return createHmac('sha256', dek).update(COMMIT_LABEL).update(wrappedHash).digest();
}

/** True when `dek` matches `commit` (constant time). */
export function verifyCommitment(dek: Buffer, wrappedHash: Buffer, commit: Buffer): boolean {
  const actual = dekCommitment(dek, wrappedHash);
  return actual.length === commit.length && timingSafeEqual(actual, commit);
}

/**
 * The AAD depends only on the DEK (key_id, KEK bytes, wrapped DEK, commitment), so it is built once
 * per DEK: remembered against the kekBytes Buffer the envelope keeps for that DEK, and checked
 * against the other parts (the commitment by value: it comes from the object being read), so a
 * caller passing different parts never gets another DEK's AAD.
 */
const aadMemo = new WeakMap<
  Buffer,
  { format: number; keyId: string; wrapped: Buffer; commit: Buffer | undefined; aad: Buffer }
>();

/**
 * The remembered AAD if it was built from exactly these parts. The commitment (format 2) is
 * compared by value where it lies, src[start, end), so a caller holding it inside a larger buffer
 * makes no view of it.
 */
function memoAad(
  format: number,
  parts: AadParts,
  src: Buffer | undefined,
  start: number,
  end: number,
): Buffer | undefined {
  const hit = aadMemo.get(parts.kekBytes);
  if (!hit || hit.format !== format || hit.keyId !== parts.keyId || hit.wrapped !== parts.wrapped)
    return undefined;
  if (format < FORMAT_V2) return hit.commit === undefined ? hit.aad : undefined;
  const same =
    hit.commit !== undefined &&
    src !== undefined &&
    end - start === COMMIT_BYTES &&
    src.compare(hit.commit, 0, COMMIT_BYTES, start, end) === 0;
  return same ? hit.aad : undefined;
}

export function buildAad(format: number, parts: AadParts, commit = parts.commit): Buffer {
  const remembered = memoAad(format, parts, commit, 0, commit?.length ?? 0);
  if (remembered) return remembered;
  const keyId = Buffer.from(parts.keyId, 'utf8');
  const head = Buffer.alloc(1 + 4);
  head.writeUInt8(format, 0);
  head.writeUInt32BE(keyId.length, 1);
  const kekLen = Buffer.alloc(4);
  kekLen.writeUInt32BE(parts.kekBytes.length, 0);
  const wrappedHash = parts.wrappedHash ?? createHash('sha256').update(parts.wrapped).digest();
  const pieces = [Buffer.from('k8s-kms-plugin/seal\0'), head, keyId, kekLen, parts.kekBytes, wrappedHash];
  if (format >= FORMAT_V2) {
    if (!commit || commit.length !== COMMIT_BYTES)
      throw new InvalidInputError(`format ${format} needs a ${COMMIT_BYTES}-byte DEK commitment`);
    pieces.push(commit);
  }
  const aad = Buffer.concat(pieces);
  aadMemo.set(parts.kekBytes, {
    format,
    keyId: parts.keyId,
    wrapped: parts.wrapped,
    // A copy: `commit` may be a view into a request buffer that is reused.
    commit: format >= FORMAT_V2 && commit ? Buffer.from(commit) : undefined,
    aad,
  });
  return aad;
}

/** buildAad() for a parsed ciphertext; on a memo hit the commitment is compared in place. */
function buildAadFor(parsed: ParsedCiphertext, parts: AadParts): Buffer {
  return (
    memoAad(parsed.format, parts, parsed.buf, 1, 1 + COMMIT_BYTES) ??
    buildAad(parsed.format, parts, parsed.commit)
  );
}

/** Random nonces are drawn from the CSPRNG a few hundred at a time (one call, not one per seal). */
const NONCE_POOL_BYTES = NONCE_BYTES * 340;
let noncePool = Buffer.alloc(0);
let noncePos = 0;

/** Copies a fresh random nonce to out[at, at + 12). */
function writeNonce(out: Buffer, at: number): void {
  if (noncePos + NONCE_BYTES > noncePool.length) {
    noncePool = randomBytes(NONCE_POOL_BYTES);
    noncePos = 0;
  }
  noncePool.copy(out, at, noncePos, noncePos + NONCE_BYTES);
  noncePos += NONCE_BYTES;
}

/** Seals under `dek`: format 2 when `parts.commit` is given (always, for new data), else format 1. */
export function seal(dek: Buffer, plaintext: Uint8Array, parts: AadParts): Buffer {
  const commit = parts.commit;
  const format = commit ? FORMAT_V2 : FORMAT_V1;
  const headBytes = commit ? 1 + COMMIT_BYTES : 1;
  const out = Buffer.allocUnsafe(headBytes + NONCE_BYTES + plaintext.length + TAG_BYTES);
  out[0] = format;
  if (commit) commit.copy(out, 1);
  writeNonce(out, headBytes);
  AEAD.seal(dek, buildAad(format, parts), plaintext, out, headBytes);
  return out;
}

/**
 * A ciphertext checked for its format and length. The parts are views made only when asked for
 * (open() reads them in place).
 */
export class ParsedCiphertext {
  constructor(
    /** The whole ciphertext. */
    readonly buf: Buffer,
    readonly format: number,
    /** Where the nonce starts (after the format byte and, in format 2, the commitment). */
    readonly nonceAt: number,
  ) {}

  /** Format 2: the DEK commitment stored with the object. */
  get commit(): Buffer | undefined {
    return this.format === FORMAT_V2 ? this.buf.subarray(1, 1 + COMMIT_BYTES) : undefined;
  }

  get nonce(): Buffer {
    return this.buf.subarray(this.nonceAt, this.nonceAt + NONCE_BYTES);
  }

  get body(): Buffer {
    return this.buf.subarray(this.nonceAt + NONCE_BYTES, this.buf.length - TAG_BYTES);
  }

  get tag(): Buffer {
    return this.buf.subarray(this.buf.length - TAG_BYTES);
  }
}

export function parseCiphertext(ciphertext: Uint8Array): ParsedCiphertext {
  const buf = Buffer.isBuffer(ciphertext)
    ? ciphertext
    : Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  if (buf.length === 0) throw new InvalidInputError('ciphertext is empty');
  const format = buf[0];
  if (format !== FORMAT_V1 && format !== FORMAT_V2)
    throw new InvalidInputError(
      `unknown ciphertext format 0x${format.toString(16).padStart(2, '0')}: not produced by this plugin`,
    );
  const start = format === FORMAT_V2 ? 1 + COMMIT_BYTES : 1;
  if (buf.length < start + NONCE_BYTES + TAG_BYTES + 1)
    throw new InvalidInputError(`ciphertext too short (${buf.length} bytes) for format ${format}`);
  return new ParsedCiphertext(buf, format, start);
}

/** Opens a parsed ciphertext; throws UnauthenticatedError on any mismatch (never returns wrong bytes). */
export function open(dek: Buffer, parsed: ParsedCiphertext, parts: AadParts): Buffer {
  const { buf, nonceAt } = parsed;
  const plaintext = Buffer.allocUnsafe(buf.length - nonceAt - NONCE_BYTES - TAG_BYTES);
  let ok = false;
  try {
    ok = AEAD.open(dek, buildAadFor(parsed, parts), buf, nonceAt, plaintext);
  } catch {
    ok = false;
  }
  if (!ok) {
    plaintext.fill(0);
    throw new UnauthenticatedError(
      'ciphertext failed authentication: it, its key_id or its annotations were altered, or it was not produced by this plugin',
    );
  }
  return plaintext;
}
