/**
 * The two AES-256-GCM implementations of src/envelope/aead.ts (the native addon and the node:crypto
 * fallback) against node:crypto used directly as the reference: byte-identical output, every
 * tampered input refused with the output wiped, and each one opens what the other sealed.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import {
  AEAD,
  AEAD_FALLBACK_REASON,
  loadNativeAead,
  nodeAead,
  type Aead,
} from '../../../src/envelope/aead.js';

const native = loadNativeAead().aead;

function reference(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): { body: Buffer; tag: Buffer } {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return { body, tag: c.getAuthTag() };
}

function sample(ptLen: number, aadLen: number): { key: Buffer; iv: Buffer; aad: Buffer; pt: Buffer } {
  return { key: randomBytes(32), iv: randomBytes(12), aad: randomBytes(aadLen), pt: randomBytes(ptLen) };
}

const SIZES: Array<[number, number]> = [
  [1, 0],
  [15, 1],
  [16, 16],
  [17, 120],
  [32, 163],
  [255, 4096],
  [1024, 33],
];

describe('the native addon', () => {
  it('is built and loads (npm run build compiles native/aead.c), and is the one in use', () => {
    expect(loadNativeAead().error).toBeUndefined();
    expect(native).toBeDefined();
    expect(AEAD.name).toBe('native');
    expect(AEAD_FALLBACK_REASON).toBeUndefined();
  });

  it('reports, without throwing, an addon that cannot be loaded', () => {
    const r = loadNativeAead('/nonexistent/aead.node');
    expect(r.aead).toBeUndefined();
    expect(r.error).toMatch(/aead\.node/);
  });

  it('refuses arguments of the wrong type or length instead of reading past them', () => {
    const { key, iv, aad, pt } = sample(32, 10);
    const out = Buffer.alloc(48);
    expect(() => native!.seal(key.subarray(0, 16), iv, aad, pt, out, 0)).toThrow(/key must be 32 bytes/);
    expect(() => native!.seal(key, iv.subarray(0, 8), aad, pt, out, 0)).toThrow(/iv must be 12 bytes/);
    expect(() => native!.seal(key, iv, aad, pt, Buffer.alloc(47), 0)).toThrow(/out is too small/);
    expect(() => native!.seal(key, iv, aad, pt, out, 1)).toThrow(/out is too small/);
    expect(() => native!.seal(key, iv, aad, pt, out, -1)).toThrow(/offset/);
    expect(() => native!.seal('k' as unknown as Buffer, iv, aad, pt, out, 0)).toThrow(
      /key must be a Uint8Array/,
    );
    const { body, tag } = reference(key, iv, aad, pt);
    expect(() => native!.open(key, iv, aad, body, tag.subarray(0, 12), Buffer.alloc(32))).toThrow(
      /tag must be 16/,
    );
    expect(() => native!.open(key, iv, aad, body, tag, Buffer.alloc(31))).toThrow(/out is too small/);
    expect(() => native!.open(key, iv, aad, body, tag, new Uint16Array(32) as unknown as Buffer)).toThrow(
      /out must be a Uint8Array/,
    );
  });
});

describe.each([
  ['native', () => native!],
  ['node:crypto', () => nodeAead],
])('%s AES-256-GCM', (name, impl: () => Aead) => {
  it('names itself', () => {
    expect(impl().name).toBe(name);
  });

  it.each(SIZES)(
    'seals %i bytes with %i bytes of AAD exactly as node:crypto does, at any offset',
    (ptLen, aadLen) => {
      const { key, iv, aad, pt } = sample(ptLen, aadLen);
      const ref = reference(key, iv, aad, pt);
      for (const offset of [0, 45]) {
        const out = Buffer.alloc(offset + ptLen + 16 + 3, 0xee);
        impl().seal(key, iv, aad, pt, out, offset);
        expect(out.subarray(offset, offset + ptLen)).toEqual(ref.body);
        expect(out.subarray(offset + ptLen, offset + ptLen + 16)).toEqual(ref.tag);
        // Nothing outside its range is touched.
        expect(out.subarray(0, offset).every((b) => b === 0xee)).toBe(true);
        expect(out.subarray(offset + ptLen + 16).every((b) => b === 0xee)).toBe(true);
      }
    },
  );

  it.each(SIZES)('opens %i bytes with %i bytes of AAD sealed by node:crypto', (ptLen, aadLen) => {
    const { key, iv, aad, pt } = sample(ptLen, aadLen);
    const { body, tag } = reference(key, iv, aad, pt);
    const out = Buffer.alloc(ptLen);
    expect(impl().open(key, iv, aad, body, tag, out)).toBe(true);
    expect(out).toEqual(pt);
  });

  it('refuses every single-bit change of key, iv, AAD, body or tag, and wipes the output', () => {
    const { key, iv, aad, pt } = sample(40, 24);
    const { body, tag } = reference(key, iv, aad, pt);
    const parts = { key, iv, aad, body, tag };
    let refused = 0;
    for (const field of Object.keys(parts) as Array<keyof typeof parts>) {
      for (let i = 0; i < parts[field].length; i++) {
        const changed = { ...parts, [field]: Buffer.from(parts[field]) };
        changed[field][i] ^= 1 << (i % 8);
        const out = Buffer.alloc(body.length, 0xaa);
        expect(impl().open(changed.key, changed.iv, changed.aad, changed.body, changed.tag, out)).toBe(false);
        expect(out.every((b) => b === 0)).toBe(true);
        refused += 1;
      }
    }
    expect(refused).toBe(32 + 12 + 24 + 40 + 16);
    // And the untouched inputs still open (the loop above did not alter them).
    const out = Buffer.alloc(body.length);
    expect(impl().open(key, iv, aad, body, tag, out)).toBe(true);
    expect(out).toEqual(pt);
  });

  it('refuses a truncated body and a body with a byte appended', () => {
    const { key, iv, aad, pt } = sample(33, 8);
    const { body, tag } = reference(key, iv, aad, pt);
    for (const b of [body.subarray(0, 32), Buffer.concat([body, Buffer.from([0])])]) {
      const out = Buffer.alloc(b.length, 0xaa);
      expect(impl().open(key, iv, aad, b, tag, out)).toBe(false);
      expect(out.every((x) => x === 0)).toBe(true);
    }
  });
});

describe('the two implementations together', () => {
  it('each opens what the other sealed, and node:crypto decrypts both', () => {
    for (const [sealer, opener] of [
      [native!, nodeAead],
      [nodeAead, native!],
    ]) {
      const { key, iv, aad, pt } = sample(77, 50);
      const out = Buffer.alloc(77 + 16);
      sealer.seal(key, iv, aad, pt, out, 0);
      const plain = Buffer.alloc(77);
      expect(opener.open(key, iv, aad, out.subarray(0, 77), out.subarray(77), plain)).toBe(true);
      expect(plain).toEqual(pt);
      const d = createDecipheriv('aes-256-gcm', key, iv);
      d.setAAD(aad);
      d.setAuthTag(out.subarray(77));
      expect(Buffer.concat([d.update(out.subarray(0, 77)), d.final()])).toEqual(pt);
    }
  });
});
