/**
 * kube-apiserver's EncryptedObject (k8s.io/apiserver/.../kmsv2/v2), the value stored in etcd after
 * the prefix `k8s:enc:kms:v2:<provider name>:`. A minimal protobuf codec for its five fields.
 */

export interface EncryptedObject {
  encryptedData: Buffer; // 1
  keyID: string; // 2
  encryptedDEKSource: Buffer; // 3
  annotations: Record<string, Buffer>; // 4 (map<string, bytes>)
  encryptedDEKSourceType: 0 | 1; // 5: AES_GCM_KEY = 0, HKDF_SHA256_XNONCE_AES_GCM_SEED = 1
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
  const parts: Buffer[] = [field(1, o.encryptedData), field(2, Buffer.from(o.keyID, 'utf8')), field(3, o.encryptedDEKSource)];
  for (const k of Object.keys(o.annotations).sort()) {
    parts.push(field(4, Buffer.concat([field(1, Buffer.from(k, 'utf8')), field(2, o.annotations[k])])));
  }
  if (o.encryptedDEKSourceType !== 0) parts.push(Buffer.concat([varint((5 << 3) | 0), varint(o.encryptedDEKSourceType)]));
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
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
  }
  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error('truncated field');
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
}

export function decodeEncryptedObject(buf: Buffer): EncryptedObject {
  const r = new Reader(buf);
  const o: EncryptedObject = { encryptedData: Buffer.alloc(0), keyID: '', encryptedDEKSource: Buffer.alloc(0), annotations: {}, encryptedDEKSourceType: 0 };
  while (!r.done()) {
    const tag = r.varint();
    const num = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      const v = r.varint();
      if (num === 5) {
        if (v !== 0 && v !== 1) throw new Error(`unknown encryptedDEKSourceType ${v}`);
        o.encryptedDEKSourceType = v;
      }
      continue;
    }
    if (wire !== 2) throw new Error(`unexpected wire type ${wire}`);
    const b = r.bytes();
    if (num === 1) o.encryptedData = Buffer.from(b);
    else if (num === 2) o.keyID = b.toString('utf8');
    else if (num === 3) o.encryptedDEKSource = Buffer.from(b);
    else if (num === 4) {
      const e = new Reader(b);
      let k = '';
      let v = Buffer.alloc(0);
      while (!e.done()) {
        const t = e.varint();
        const val = e.bytes();
        if (t >>> 3 === 1) k = val.toString('utf8');
        else if (t >>> 3 === 2) v = Buffer.from(val);
      }
      o.annotations[k] = v;
    }
  }
  return o;
}
