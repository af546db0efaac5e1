/**
 * kube-apiserver's EncryptedObject (k8s.io/apiserver/.../kmsv2/v2), the value stored in etcd after
 * the prefix `k8s:enc:kms:v2:<provider name>:`. A minimal protobuf codec for its five fields
 * (contract §5). Used by `inspect`, `decrypt-etcd-value` and the apiserver emulation in tests.
 */
import { InvalidInputError } from '../../errors.js';

/** EncryptedDEKSourceType: AES_GCM_KEY = 0 (1.27, 1.28 default), HKDF_SHA256_XNONCE_AES_GCM_SEED = 1 (1.29+). */
export type DekSourceType = 0 | 1;

export const DEK_SOURCE_TYPE_NAMES: Record<DekSourceType, string> = {
  0: 'AES_GCM_KEY',
  1: 'HKDF_SHA256_XNONCE_AES_GCM_SEED',
};

export interface EncryptedObject {
  encryptedData: Buffer; // 1
  keyID: string; // 2
  encryptedDEKSource: Buffer; // 3 (named encryptedDEK in 1.25–1.27)
  annotations: Record<string, Buffer>; // 4 (map<string, bytes>)
  encryptedDEKSourceType: DekSourceType; // 5 (absent = 0)
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function field(num: number, bytes: Buffer): Buffer {
  return Buffer.concat([varint((num << 3) | 2), varint(bytes.length), bytes]);
}

export function encodeEncryptedObject(o: EncryptedObject): Buffer {
  const parts: Buffer[] = [
    field(1, o.encryptedData),
    field(2, Buffer.from(o.keyID, 'utf8')),
    field(3, o.encryptedDEKSource),
  ];
  for (const k of Object.keys(o.annotations).sort()) {
    parts.push(field(4, Buffer.concat([field(1, Buffer.from(k, 'utf8')), field(2, o.annotations[k])])));
  }
  if (o.encryptedDEKSourceType !== 0) {
    parts.push(Buffer.concat([varint((5 << 3) | 0), varint(o.encryptedDEKSourceType)]));
  }
  return Buffer.concat(parts);
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw bad('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw bad('varint too long');
  }
  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw bad('truncated field');
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.fixed(8);
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.fixed(4);
    else throw bad(`unexpected wire type ${wire}`);
  }
  private fixed(n: number): void {
    if (this.pos + n > this.buf.length) throw bad('truncated field');
    this.pos += n;
  }
}

function bad(why: string): InvalidInputError {
  return new InvalidInputError(`not a valid EncryptedObject: ${why}`);
}

export function decodeEncryptedObject(buf: Buffer): EncryptedObject {
  const r = new Reader(buf);
  const o: EncryptedObject = {
    encryptedData: Buffer.alloc(0),
    keyID: '',
    encryptedDEKSource: Buffer.alloc(0),
    annotations: {},
    encryptedDEKSourceType: 0,
  };
  while (!r.done()) {
    const tag = r.varint();
    const num = Math.floor(tag / 8);
    const wire = tag & 7;
    if (num === 5 && wire === 0) {
      const v = r.varint();
      if (v !== 0 && v !== 1) throw bad(`unknown encryptedDEKSourceType ${v}`);
      o.encryptedDEKSourceType = v;
      continue;
    }
    if (wire !== 2 || num < 1 || num > 4) {
      r.skip(wire);
      continue;
    }
    const b = r.bytes();
    if (num === 1) o.encryptedData = Buffer.from(b);
    else if (num === 2) o.keyID = b.toString('utf8');
    else if (num === 3) o.encryptedDEKSource = Buffer.from(b);
    else {
      const e = new Reader(b);
      let k = '';
      let v = Buffer.alloc(0);
      while (!e.done()) {
        const t = e.varint();
        if ((t & 7) !== 2) {
          e.skip(t & 7);
          continue;
        }
        const val = e.bytes();
        if (t >>> 3 === 1) k = val.toString('utf8');
        else if (t >>> 3 === 2) v = Buffer.from(val);
      }
      // defineProperty: a key named __proto__ stays an ordinary entry
      Object.defineProperty(o.annotations, k, {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return o;
}
