/**
 * Hand-written protobuf codecs for the six KMS v2 messages (proto/v2/api.proto), used as the
 * serialize/deserialize functions of the grpc-js service definition instead of proto-loader's
 * (protobufjs decode + toObject, fromObject + encode).
 *
 * They are written to give exactly what proto-loader gives (keepCase, defaults: true), byte for
 * byte when encoding and value for value when decoding, including unknown fields (skipped, groups
 * too), duplicate fields (last one wins; map entries merge), malformed input (the same inputs
 * throw) and protobufjs's limits (group nesting depth 100, varints of up to 10 bytes).
 * test/unit/server/codec.test.ts proves it against proto-loader field by field and on random
 * input. Two deliberate differences, both safer:
 *   - a map entry without a value decodes to an empty Buffer (protobufjs gives an empty Array);
 *   - a string with a lone UTF-16 surrogate encodes as U+FFFD (EF BF BD), as Buffer and Go do;
 *     protobufjs writes the raw surrogate (ED xx xx), which is not UTF-8.
 *
 * Decoding keeps no state between calls and allocates only the result: the object, its strings
 * and Buffer views into the received message (as protobufjs does). Encoding allocates one Buffer
 * of the exact size; Status answers are encoded once per distinct answer.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import type {
  DecryptRequest,
  DecryptResponse,
  EncryptRequest,
  EncryptResponse,
  StatusRequest,
  StatusResponse,
} from './proto.js';

/** protobufjs's recursion limit (protoc's CodedInputStream default), applied to group nesting. */
export const RECURSION_LIMIT = 100;

type Bytes = Uint8Array & { utf8Slice?: (start: number, end: number) => string };

// ---------------------------------------------------------------------------------------------
// Reading (a port of protobufjs's Reader/BufferReader semantics, without a reader object)
// ---------------------------------------------------------------------------------------------

let rBuf: Bytes = Buffer.alloc(0);
let rPos = 0;
let rLen = 0;

function outOfRange(writeLength?: number): RangeError {
  return new RangeError(`index out of range: ${rPos} + ${writeLength ?? 1} > ${rLen}`);
}

function varintNearEnd(): number {
  let value = 0;
  for (let i = 0; i < 4; ++i) {
    if (rPos >= rLen) throw outOfRange();
    const b = rBuf[rPos++];
    value = (value | ((b & 127) << (i * 7))) >>> 0;
    if (b < 128) return value;
  }
  throw outOfRange();
}

/** A varint as an unsigned 32-bit value (bits above 32 dropped, bytes 6–10 skipped unread). */
function uint32(): number {
  const buf = rBuf;
  if (rLen - rPos < 5) {
    if (rPos >= rLen) throw outOfRange();
    if (buf[rPos] >= 128) return varintNearEnd();
  }
  let value = (buf[rPos] & 127) >>> 0;
  if (buf[rPos++] < 128) return value;
  value = (value | ((buf[rPos] & 127) << 7)) >>> 0;
  if (buf[rPos++] < 128) return value;
  value = (value | ((buf[rPos] & 127) << 14)) >>> 0;
  if (buf[rPos++] < 128) return value;
  value = (value | ((buf[rPos] & 127) << 21)) >>> 0;
  if (buf[rPos++] < 128) return value;
  value = (value | ((buf[rPos] & 15) << 28)) >>> 0;
  if (buf[rPos++] < 128) return value;
  if ((rPos += 5) > rLen) {
    rPos = rLen;
    throw outOfRange(10);
  }
  return value;
}

const EMPTY = Buffer.alloc(0);

/** A length-delimited field as a view into the message (never a copy). */
function bytes(): Buffer {
  const length = uint32();
  const start = rPos;
  const end = rPos + length;
  if (end > rLen) throw outOfRange(length);
  rPos = end;
  if (start === end) return Buffer.alloc(0);
  const b = rBuf;
  return Buffer.from(b.buffer, b.byteOffset + start, length);
}

/** A string field; like protobufjs, a length past the end is clamped, not an error. */
function string(): string {
  const len = uint32();
  const start = rPos;
  rPos = Math.min(rPos + len, rLen);
  const b = rBuf;
  return b.utf8Slice
    ? b.utf8Slice(start, rPos)
    : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8', start, rPos);
}

function skip(length: number): void {
  if (rPos + length > rLen) throw outOfRange(length);
  rPos += length;
}

function skipVarint(): void {
  do {
    if (rPos >= rLen) throw outOfRange();
  } while (rBuf[rPos++] & 128);
}

function skipType(wireType: number, depth: number): void {
  if (depth > RECURSION_LIMIT) throw new Error('maximum nesting depth exceeded');
  switch (wireType) {
    case 0:
      skipVarint();
      break;
    case 1:
      skip(8);
      break;
    case 2:
      skip(uint32());
      break;
    case 3:
      while ((wireType = uint32() & 7) !== 4) skipType(wireType, depth + 1);
      break;
    case 5:
      skip(4);
      break;
    default:
      throw new Error(`invalid wire type ${wireType} at offset ${rPos}`);
  }
}

function begin(buf: Uint8Array): void {
  if (!(buf instanceof Uint8Array)) throw new Error('illegal buffer');
  rBuf = buf;
  rPos = 0;
  rLen = buf.length;
}

function end(): void {
  rBuf = EMPTY; // do not keep the last message alive
}

/** One map<string, bytes> entry into `map` (a missing key is "", a missing value empty). */
function mapEntry(map: Record<string, Buffer>): void {
  const entryEnd = uint32() + rPos;
  if (entryEnd > rLen) throw outOfRange();
  const outerLen = rLen;
  rLen = entryEnd;
  let k = '';
  let value: Buffer = EMPTY;
  while (rPos < entryEnd) {
    const tag = uint32();
    switch (tag >>> 3) {
      case 1:
        k = string();
        break;
      case 2:
        value = bytes();
        break;
      default:
        skipType(tag & 7, 0);
        break;
    }
  }
  if (rPos !== entryEnd) throw outOfRange();
  rLen = outerLen;
  if (k === '__proto__') {
    Object.defineProperty(map, k, { enumerable: true, configurable: true, writable: true, value });
  } else {
    map[k] = value === EMPTY ? Buffer.alloc(0) : value;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoders (defaults filled in, as proto-loader's toObject({ defaults: true }) does)
// ---------------------------------------------------------------------------------------------

export function decodeStatusRequest(buf: Uint8Array): StatusRequest {
  begin(buf);
  try {
    while (rPos < rLen) skipType(uint32() & 7, 0);
    return {};
  } finally {
    end();
  }
}

export function decodeStatusResponse(buf: Uint8Array): StatusResponse {
  begin(buf);
  try {
    let version = '';
    let healthz = '';
    let keyId = '';
    while (rPos < rLen) {
      const tag = uint32();
      switch (tag >>> 3) {
        case 1:
          version = string();
          break;
        case 2:
          healthz = string();
          break;
        case 3:
          keyId = string();
          break;
        default:
          skipType(tag & 7, 0);
      }
    }
    return { version, healthz, key_id: keyId };
  } finally {
    end();
  }
}

export function decodeEncryptRequest(buf: Uint8Array): EncryptRequest {
  begin(buf);
  try {
    let plaintext: Buffer | undefined;
    let uid = '';
    while (rPos < rLen) {
      const tag = uint32();
      switch (tag >>> 3) {
        case 1:
          plaintext = bytes();
          break;
        case 2:
          uid = string();
          break;
        default:
          skipType(tag & 7, 0);
      }
    }
    return { plaintext: plaintext ?? Buffer.alloc(0), uid };
  } finally {
    end();
  }
}

export function decodeEncryptResponse(buf: Uint8Array): EncryptResponse {
  begin(buf);
  try {
    let ciphertext: Buffer | undefined;
    let keyId = '';
    const annotations: Record<string, Buffer> = {};
    while (rPos < rLen) {
      const tag = uint32();
      switch (tag >>> 3) {
        case 1:
          ciphertext = bytes();
          break;
        case 2:
          keyId = string();
          break;
        case 3:
          mapEntry(annotations);
          break;
        default:
          skipType(tag & 7, 0);
      }
    }
    return { ciphertext: ciphertext ?? Buffer.alloc(0), key_id: keyId, annotations };
  } finally {
    end();
  }
}

export function decodeDecryptRequest(buf: Uint8Array): DecryptRequest {
  begin(buf);
  try {
    let ciphertext: Buffer | undefined;
    let uid = '';
    let keyId = '';
    const annotations: Record<string, Buffer> = {};
    while (rPos < rLen) {
      const tag = uint32();
      switch (tag >>> 3) {
        case 1:
          ciphertext = bytes();
          break;
        case 2:
          uid = string();
          break;
        case 3:
          keyId = string();
          break;
        case 4:
          mapEntry(annotations);
          break;
        default:
          skipType(tag & 7, 0);
      }
    }
    return { ciphertext: ciphertext ?? Buffer.alloc(0), uid, key_id: keyId, annotations };
  } finally {
    end();
  }
}

export function decodeDecryptResponse(buf: Uint8Array): DecryptResponse {
  begin(buf);
  try {
    let plaintext: Buffer | undefined;
    while (rPos < rLen) {
      const tag = uint32();
      if (tag >>> 3 === 1) plaintext = bytes();
      else skipType(tag & 7, 0);
    }
    return { plaintext: plaintext ?? Buffer.alloc(0) };
  } finally {
    end();
  }
}

// ---------------------------------------------------------------------------------------------
// Encoders (proto-loader's fromObject + encode: a field is written whenever it is set, even
// when empty; strings are String(value); bytes are a Uint8Array, an array of numbers or base64)
// ---------------------------------------------------------------------------------------------

type ByteSource = ArrayLike<number>;
/** Node's Buffer#utf8Write (undeclared in @types/node): Buffer#write without the argument parsing. */
type WritableBytes = Buffer & { utf8Write(s: string, offset: number, length: number): number };

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function writeVarint(buf: Buffer, pos: number, v: number): number {
  while (v > 127) {
    buf[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

function asObject(value: unknown, type: string): Record<string, unknown> {
  if (Array.isArray(value))
    throw new Error(`Failed to serialize message: expected object with ${type} structure, got array instead`);
  if (!value || typeof value !== 'object') throw new TypeError(`.v2.${type}: object expected`);
  return value as Record<string, unknown>;
}

/** A string field as protobufjs's fromObject sees it: undefined when unset (null/undefined). */
function str(value: unknown): string | undefined {
  return value == null ? undefined : String(value);
}

/** A bytes field as fromObject sees it: undefined when unset or not array-like. */
function byteSource(value: unknown): ByteSource | undefined {
  if (value == null) return undefined;
  if (typeof value === 'string') return Buffer.from(value, 'base64');
  return (value as { length?: number }).length! >= 0 ? (value as ByteSource) : undefined;
}

function byteLen(b: ByteSource): number {
  return b.length >>> 0;
}

function writeBytes(buf: Buffer, pos: number, b: ByteSource): number {
  const len = byteLen(b);
  pos = writeVarint(buf, pos, len);
  if (b instanceof Uint8Array) buf.set(b, pos);
  else for (let i = 0; i < len; i++) buf[pos + i] = b[i];
  return pos + len;
}

function writeString(buf: Buffer, pos: number, s: string, len: number): number {
  pos = writeVarint(buf, pos, len);
  return pos + (len === 0 ? 0 : (buf as WritableBytes).utf8Write(s, pos, len));
}

interface MapPlan {
  keys: string[];
  keyLens: number[];
  values: ByteSource[];
  entryLens: number[];
  size: number;
}

/** fromObject's map handling: a truthy non-object throws, null values throw (as `.length` does). */
function planMap(value: unknown, path: string): MapPlan | undefined {
  if (!value) return undefined;
  if (typeof value !== 'object') throw new TypeError(`${path}: object expected`);
  const src = value as Record<string, unknown>;
  const keys: string[] = [];
  const keyLens: number[] = [];
  const values: ByteSource[] = [];
  const entryLens: number[] = [];
  let size = 0;
  for (const k of Object.keys(src)) {
    const v = src[k];
    let b: ByteSource | undefined;
    if (typeof v === 'string') b = Buffer.from(v, 'base64');
    else if ((v as { length: number }).length >= 0) b = v as ByteSource;
    if (b === undefined) continue;
    const keyLen = Buffer.byteLength(k);
    const valLen = byteLen(b);
    const entryLen = 1 + varintSize(keyLen) + keyLen + 1 + varintSize(valLen) + valLen;
    keys.push(k);
    keyLens.push(keyLen);
    values.push(b);
    entryLens.push(entryLen);
    size += 1 + varintSize(entryLen) + entryLen;
  }
  return { keys, keyLens, values, entryLens, size };
}

function writeMap(buf: Buffer, pos: number, tag: number, plan: MapPlan): number {
  for (let i = 0; i < plan.keys.length; i++) {
    buf[pos++] = tag;
    pos = writeVarint(buf, pos, plan.entryLens[i]);
    buf[pos++] = 0x0a;
    pos = writeString(buf, pos, plan.keys[i], plan.keyLens[i]);
    buf[pos++] = 0x12;
    pos = writeBytes(buf, pos, plan.values[i]);
  }
  return pos;
}

const sizeOfString = (len: number): number => 1 + varintSize(len) + len;

export function encodeStatusRequest(value: StatusRequest): Buffer {
  // fromObject of a message without fields accepts anything but an array.
  if (Array.isArray(value))
    throw new Error(
      'Failed to serialize message: expected object with StatusRequest structure, got array instead',
    );
  return Buffer.alloc(0);
}

let lastStatus: { version: string; healthz: string; keyId: string; bytes: Buffer } | undefined;

export function encodeStatusResponse(value: StatusResponse): Buffer {
  const o = asObject(value, 'StatusResponse');
  const version = str(o.version);
  const healthz = str(o.healthz);
  const keyId = str(o.key_id);
  const last = lastStatus;
  if (last && last.version === version && last.healthz === healthz && last.keyId === keyId) return last.bytes;
  const vLen = version === undefined ? -1 : Buffer.byteLength(version);
  const hLen = healthz === undefined ? -1 : Buffer.byteLength(healthz);
  const kLen = keyId === undefined ? -1 : Buffer.byteLength(keyId);
  const size =
    (vLen < 0 ? 0 : sizeOfString(vLen)) +
    (hLen < 0 ? 0 : sizeOfString(hLen)) +
    (kLen < 0 ? 0 : sizeOfString(kLen));
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  if (version !== undefined) {
    buf[pos++] = 0x0a;
    pos = writeString(buf, pos, version, vLen);
  }
  if (healthz !== undefined) {
    buf[pos++] = 0x12;
    pos = writeString(buf, pos, healthz, hLen);
  }
  if (keyId !== undefined) {
    buf[pos++] = 0x1a;
    pos = writeString(buf, pos, keyId, kLen);
  }
  if (version !== undefined && healthz !== undefined && keyId !== undefined) {
    // Status answers repeat: keep the last one encoded (grpc-js copies it into the frame).
    lastStatus = { version, healthz, keyId, bytes: buf };
  }
  return buf;
}

export function encodeEncryptRequest(value: EncryptRequest): Buffer {
  const o = asObject(value, 'EncryptRequest');
  const plaintext = byteSource(o.plaintext);
  const uid = str(o.uid);
  const pLen = plaintext === undefined ? -1 : byteLen(plaintext);
  const uLen = uid === undefined ? -1 : Buffer.byteLength(uid);
  const buf = Buffer.allocUnsafe((pLen < 0 ? 0 : sizeOfString(pLen)) + (uLen < 0 ? 0 : sizeOfString(uLen)));
  let pos = 0;
  if (plaintext !== undefined) {
    buf[pos++] = 0x0a;
    pos = writeBytes(buf, pos, plaintext);
  }
  if (uid !== undefined) {
    buf[pos++] = 0x12;
    pos = writeString(buf, pos, uid, uLen);
  }
  return buf;
}

/**
 * key_id and annotations repeat for every Encrypt under one DEK: the bytes after the ciphertext
 * are kept from the last answer and reused while key_id and every annotation are byte-equal.
 */
let lastEncryptTail: { keyId: string; keys: string[]; values: Buffer[]; tail: Buffer } | undefined;

function sameTail(keyId: string, annotations: unknown): Buffer | undefined {
  const last = lastEncryptTail;
  if (!last || last.keyId !== keyId || !annotations || typeof annotations !== 'object') return undefined;
  const src = annotations as Record<string, unknown>;
  const keys = Object.keys(src);
  if (keys.length !== last.keys.length) return undefined;
  for (let i = 0; i < keys.length; i++) {
    const v = src[keys[i]];
    if (keys[i] !== last.keys[i] || !(v instanceof Uint8Array) || !last.values[i].equals(v)) return undefined;
  }
  return last.tail;
}

export function encodeEncryptResponse(value: EncryptResponse): Buffer {
  const o = asObject(value, 'EncryptResponse');
  const ciphertext = byteSource(o.ciphertext);
  const keyId = str(o.key_id);
  const cLen = ciphertext === undefined ? -1 : byteLen(ciphertext);
  const tail = keyId === undefined ? undefined : sameTail(keyId, o.annotations);
  if (tail) {
    const buf = Buffer.allocUnsafe((cLen < 0 ? 0 : sizeOfString(cLen)) + tail.length);
    let pos = 0;
    if (ciphertext !== undefined) {
      buf[pos++] = 0x0a;
      pos = writeBytes(buf, pos, ciphertext);
    }
    tail.copy(buf, pos);
    return buf;
  }
  const map = planMap(o.annotations, '.v2.EncryptResponse.annotations');
  const kLen = keyId === undefined ? -1 : Buffer.byteLength(keyId);
  const buf = Buffer.allocUnsafe(
    (cLen < 0 ? 0 : sizeOfString(cLen)) + (kLen < 0 ? 0 : sizeOfString(kLen)) + (map ? map.size : 0),
  );
  let pos = 0;
  if (ciphertext !== undefined) {
    buf[pos++] = 0x0a;
    pos = writeBytes(buf, pos, ciphertext);
  }
  const tailStart = pos;
  if (keyId !== undefined) {
    buf[pos++] = 0x12;
    pos = writeString(buf, pos, keyId, kLen);
  }
  if (map) pos = writeMap(buf, pos, 0x1a, map);
  if (keyId !== undefined && map && map.values.every((v) => v instanceof Uint8Array)) {
    lastEncryptTail = {
      keyId,
      keys: map.keys,
      values: map.values.map((v) => Buffer.from(v as Uint8Array)),
      tail: Buffer.from(buf.subarray(tailStart, pos)),
    };
  }
  return buf;
}

export function encodeDecryptRequest(value: DecryptRequest): Buffer {
  const o = asObject(value, 'DecryptRequest');
  const ciphertext = byteSource(o.ciphertext);
  const uid = str(o.uid);
  const keyId = str(o.key_id);
  const map = planMap(o.annotations, '.v2.DecryptRequest.annotations');
  const cLen = ciphertext === undefined ? -1 : byteLen(ciphertext);
  const uLen = uid === undefined ? -1 : Buffer.byteLength(uid);
  const kLen = keyId === undefined ? -1 : Buffer.byteLength(keyId);
  const buf = Buffer.allocUnsafe(
    (cLen < 0 ? 0 : sizeOfString(cLen)) +
      (uLen < 0 ? 0 : sizeOfString(uLen)) +
      (kLen < 0 ? 0 : sizeOfString(kLen)) +
      (map ? map.size : 0),
  );
  let pos = 0;
  if (ciphertext !== undefined) {
    buf[pos++] = 0x0a;
    pos = writeBytes(buf, pos, ciphertext);
  }
  if (uid !== undefined) {
    buf[pos++] = 0x12;
    pos = writeString(buf, pos, uid, uLen);
  }
  if (keyId !== undefined) {
    buf[pos++] = 0x1a;
    pos = writeString(buf, pos, keyId, kLen);
  }
  if (map) writeMap(buf, pos, 0x22, map);
  return buf;
}

export function encodeDecryptResponse(value: DecryptResponse): Buffer {
  const o = asObject(value, 'DecryptResponse');
  const plaintext = byteSource(o.plaintext);
  if (plaintext === undefined) return Buffer.alloc(0);
  const buf = Buffer.allocUnsafe(sizeOfString(byteLen(plaintext)));
  buf[0] = 0x0a;
  writeBytes(buf, 1, plaintext);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The grpc-js service definition
// ---------------------------------------------------------------------------------------------

function method<Req, Res>(
  name: string,
  requestSerialize: (v: Req) => Buffer,
  requestDeserialize: (b: Buffer) => Req,
  responseSerialize: (v: Res) => Buffer,
  responseDeserialize: (b: Buffer) => Res,
) {
  return {
    path: `/v2.KeyManagementService/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize,
    requestDeserialize,
    responseSerialize,
    responseDeserialize,
    originalName: name.charAt(0).toLowerCase() + name.slice(1),
  };
}

/** v2.KeyManagementService with the codecs above (what the server and client register). */
export const KMS_SERVICE: ServiceDefinition = {
  Status: method(
    'Status',
    encodeStatusRequest,
    decodeStatusRequest,
    encodeStatusResponse,
    decodeStatusResponse,
  ),
  Decrypt: method(
    'Decrypt',
    encodeDecryptRequest,
    decodeDecryptRequest,
    encodeDecryptResponse,
    decodeDecryptResponse,
  ),
  Encrypt: method(
    'Encrypt',
    encodeEncryptRequest,
    decodeEncryptRequest,
    encodeEncryptResponse,
    decodeEncryptResponse,
  ),
};
