/**
 * The two AES-256-GCM implementations of src/envelope/aead.ts (the native addon and the node:crypto
 * fallback) against node:crypto used directly as the reference: byte-identical output, every
 * tampered input refused with the output wiped, and each one opens what the other sealed. Both
 * work on the layout nonce ‖ ciphertext ‖ tag found at an offset inside a larger Buffer.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  AEAD,
  AEAD_ADDON_PATH,
  AEAD_FALLBACK_REASON,
  loadNativeAead,
  nodeAead,
  type Aead,
} from '../../../src/envelope/aead.js';

const native = loadNativeAead().aead;

/** nonce ‖ ciphertext ‖ tag by node:crypto, after `head` bytes of 0xee. */
function reference(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer, head = 0): Buffer {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([Buffer.alloc(head, 0xee), iv, body, c.getAuthTag()]);
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

  it('reports, without throwing, an addon that cannot be loaded or is a stale build', () => {
    const r = loadNativeAead('/nonexistent/aead.node');
    expect(r.aead).toBeUndefined();
    expect(r.error).toMatch(/aead\.node/);
    // Another N-API addon of ours stands in for a build without the expected ABI.
    const stale = loadNativeAead(AEAD_ADDON_PATH.replace('aead.node', 'abstract_socket.node'));
    expect(stale.aead).toBeUndefined();
    expect(stale.error).toMatch(/does not export seal\/open/);
    // A build whose seal/open take other arguments (an older ABI) is refused too.
    const dir = mkdtempSync(join(tmpdir(), 'kkp-aead-'));
    try {
      const old = join(dir, 'aead.cjs');
      writeFileSync(old, 'module.exports = { abi: 1, seal() {}, open() { return true; } };');
      const r1 = loadNativeAead(old);
      expect(r1.aead).toBeUndefined();
      expect(r1.error).toMatch(/ABI 1, not 2: run npm run build/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses arguments of the wrong type, length or offset instead of reading or writing past them', () => {
    const { key, iv, aad, pt } = sample(32, 10);
    const out = Buffer.concat([iv, Buffer.alloc(48)]);
    const a = native!;
    expect(() => a.seal(key.subarray(0, 16), aad, pt, out, 0)).toThrow(/key must be 32 bytes/);
    expect(() => a.seal(key, aad, pt, out.subarray(0, 59), 0)).toThrow(/out is too small/);
    expect(() => a.seal(key, aad, pt, out, 1)).toThrow(/out is too small/);
    expect(() => a.seal(key, aad, pt, out, 61)).toThrow(/out is too small/);
    expect(() => a.seal(key, aad, pt, out, -1)).toThrow(/nonceAt/);
    expect(() => a.seal('k' as unknown as Buffer, aad, pt, out, 0)).toThrow(/key must be a Uint8Array/);
    const sealed = reference(key, iv, aad, pt);
    expect(() => a.open(key, aad, sealed, 0, Buffer.alloc(31))).toThrow(/out is too small/);
    expect(() => a.open(key, aad, sealed, 33, Buffer.alloc(32))).toThrow(/sealed is too short/);
    expect(() => a.open(key, aad, sealed, -1, Buffer.alloc(32))).toThrow(/nonceAt/);
    expect(() => a.open(key, aad, sealed.subarray(0, 27), 0, Buffer.alloc(32))).toThrow(
      /sealed is too short/,
    );
    expect(() => a.open(key, aad, sealed, 0, new Uint16Array(32) as unknown as Buffer)).toThrow(
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
      for (const head of [0, 33]) {
        const expected = reference(key, iv, aad, pt, head);
        // The nonce in place, then room for the rest, then 3 bytes that must stay untouched.
        const out = Buffer.concat([Buffer.alloc(head, 0xee), iv, Buffer.alloc(ptLen + 16 + 3, 0xee)]);
        impl().seal(key, aad, pt, out, head);
        expect(out.subarray(0, expected.length)).toEqual(expected);
        expect(out.subarray(expected.length).every((b) => b === 0xee)).toBe(true);
      }
    },
  );

  it.each(SIZES)(
    'opens %i bytes with %i bytes of AAD sealed by node:crypto, at any offset',
    (ptLen, aadLen) => {
      const { key, iv, aad, pt } = sample(ptLen, aadLen);
      for (const head of [0, 1, 33]) {
        const out = Buffer.alloc(ptLen + 2, 0xee);
        expect(impl().open(key, aad, reference(key, iv, aad, pt, head), head, out)).toBe(true);
        expect(out.subarray(0, ptLen)).toEqual(pt);
        expect(out.subarray(ptLen).every((b) => b === 0xee)).toBe(true); // nothing past n written
      }
    },
  );

  it('refuses every single-bit change of key, AAD, nonce, ciphertext or tag, and wipes the output', () => {
    const { key, iv, aad, pt } = sample(40, 24);
    const sealed = reference(key, iv, aad, pt, 33);
    let refused = 0;
    const check = (k: Buffer, a: Buffer, s: Buffer): void => {
      const out = Buffer.alloc(40, 0xaa);
      expect(impl().open(k, a, s, 33, out)).toBe(false);
      expect(out.every((b) => b === 0)).toBe(true);
      refused += 1;
    };
    for (let i = 0; i < key.length; i++) {
      const k = Buffer.from(key);
      k[i] ^= 1 << (i % 8);
      check(k, aad, sealed);
    }
    for (let i = 0; i < aad.length; i++) {
      const a = Buffer.from(aad);
      a[i] ^= 1 << (i % 8);
      check(key, a, sealed);
    }
    // Every byte after the offset: nonce, ciphertext, tag.
    for (let i = 33; i < sealed.length; i++) {
      const s = Buffer.from(sealed);
      s[i] ^= 1 << (i % 8);
      check(key, aad, s);
    }
    expect(refused).toBe(32 + 24 + 12 + 40 + 16);
    // The bytes before the offset are not ours to check (the format byte and commitment are
    // bound through the AAD), and the untouched inputs still open.
    const s = Buffer.from(sealed);
    s[0] ^= 1;
    const out = Buffer.alloc(40);
    expect(impl().open(key, aad, s, 33, out)).toBe(true);
    expect(out).toEqual(pt);
  });

  it('refuses a truncated and an extended ciphertext', () => {
    const { key, iv, aad, pt } = sample(33, 8);
    const sealed = reference(key, iv, aad, pt);
    const body = sealed.subarray(12, 12 + 33);
    const tag = sealed.subarray(12 + 33);
    for (const b of [body.subarray(0, 32), Buffer.concat([body, Buffer.from([0])])]) {
      const out = Buffer.alloc(b.length, 0xaa);
      expect(impl().open(key, aad, Buffer.concat([iv, b, tag]), 0, out)).toBe(false);
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
      const out = Buffer.concat([Buffer.from([2]), iv, Buffer.alloc(77 + 16)]);
      sealer.seal(key, aad, pt, out, 1);
      const plain = Buffer.alloc(77);
      expect(opener.open(key, aad, out, 1, plain)).toBe(true);
      expect(plain).toEqual(pt);
      const d = createDecipheriv('aes-256-gcm', key, iv);
      d.setAAD(aad);
      d.setAuthTag(out.subarray(1 + 12 + 77));
      expect(Buffer.concat([d.update(out.subarray(13, 13 + 77)), d.final()])).toEqual(pt);
    }
  });
});
