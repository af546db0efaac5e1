/**
 * AES-256-GCM for the ciphertexts of Encrypt and Decrypt (./wire.ts), in one call per seal or open.
 *
 * Two implementations with the same contract:
 * - `native`: native/aead.c (build/Release/aead.node, built by `npm run build`), the same OpenSSL
 *   EVP calls node:crypto makes, against the OpenSSL inside the running node binary, in one call
 *   that writes into a Buffer we supply. About 0.7 µs per seal or open against 3–4 µs through
 *   node:crypto's five calls, and none of node:crypto's per-call objects for the garbage collector
 *   (docs/benchmarks.md).
 * - `node:crypto`: the fallback when the addon is missing or cannot be loaded (a build without the
 *   C compiler, another platform). Same results, byte for byte (test/unit/envelope/aead.test.ts).
 *
 * Which one runs is decided once, when this module loads; `AEAD.name` says which (the plugin logs
 * it at start-up).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const AEAD_KEY_BYTES = 32;
export const AEAD_IV_BYTES = 12;
export const AEAD_TAG_BYTES = 16;

/**
 * Both operations work on the sealed layout nonce (12) ‖ ciphertext ‖ tag (16), found at
 * `nonceAt` inside a larger Buffer (ours has the format byte and the commitment before it), so the
 * hot path makes no view of its parts.
 */
export interface Aead {
  readonly name: 'native' | 'node:crypto';
  /**
   * Seals `plaintext` under `key` with `aad`, with the nonce already at out[nonceAt, +12): the
   * ciphertext goes right after the nonce and the 16-byte tag right after the ciphertext.
   */
  seal(key: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Buffer, nonceAt: number): void;
  /**
   * Opens sealed[nonceAt + 12, length - 16) into out[0, n) (n = sealed.length - nonceAt - 28):
   * true only if the tag (the last 16 bytes) verifies. On false, out[0, n) has been wiped (no
   * unauthenticated byte is left in it).
   */
  open(key: Uint8Array, aad: Uint8Array, sealed: Uint8Array, nonceAt: number, out: Buffer): boolean;
}

function view(b: Uint8Array, start: number, end: number): Buffer {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start);
}

/** node:crypto, five calls per operation. */
export const nodeAead: Aead = {
  name: 'node:crypto',
  seal(key, aad, plaintext, out, nonceAt) {
    if (out.length - nonceAt < AEAD_IV_BYTES + plaintext.length + AEAD_TAG_BYTES)
      throw new RangeError('aead: out is too small');
    const cipher = createCipheriv('aes-256-gcm', key, view(out, nonceAt, nonceAt + AEAD_IV_BYTES));
    cipher.setAAD(aad);
    const pos = nonceAt + AEAD_IV_BYTES + cipher.update(plaintext).copy(out, nonceAt + AEAD_IV_BYTES);
    cipher.final(); // empty for GCM
    cipher.getAuthTag().copy(out, pos);
  },
  open(key, aad, sealed, nonceAt, out) {
    const n = sealed.length - nonceAt - AEAD_IV_BYTES - AEAD_TAG_BYTES;
    if (nonceAt < 0 || n < 0) throw new RangeError('aead: sealed is too short');
    if (out.length < n) throw new RangeError('aead: out is too small');
    const decipher = createDecipheriv('aes-256-gcm', key, view(sealed, nonceAt, nonceAt + AEAD_IV_BYTES));
    decipher.setAAD(aad);
    decipher.setAuthTag(view(sealed, sealed.length - AEAD_TAG_BYTES, sealed.length));
    const plaintext = decipher.update(view(sealed, nonceAt + AEAD_IV_BYTES, nonceAt + AEAD_IV_BYTES + n));
    try {
      decipher.final(); // throws unless the tag verifies
    } catch {
      plaintext.fill(0);
      out.fill(0, 0, n);
      return false;
    }
    plaintext.copy(out);
    plaintext.fill(0);
    return true;
  },
};

/** Where `npm run build` puts the addon (same depth from src/envelope and dist/envelope). */
export const AEAD_ADDON_PATH = fileURLToPath(new URL('../../build/Release/aead.node', import.meta.url));

/** native/aead.c's AEAD_ABI: the argument layout this module calls seal/open with. */
export const AEAD_ADDON_ABI = 2;

interface AeadAddon {
  abi?: number;
  seal: Aead['seal'];
  open: Aead['open'];
}

/** The native implementation, or undefined (with the reason) when it cannot be loaded. */
export function loadNativeAead(path = AEAD_ADDON_PATH): { aead?: Aead; error?: string } {
  let addon: AeadAddon;
  try {
    addon = createRequire(import.meta.url)(path) as AeadAddon;
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] };
  }
  if (typeof addon.seal !== 'function' || typeof addon.open !== 'function')
    return { error: `${path} does not export seal/open` };
  if (addon.abi !== AEAD_ADDON_ABI)
    return {
      error: `${path} is a build for ABI ${String(addon.abi)}, not ${AEAD_ADDON_ABI}: run npm run build`,
    };
  return { aead: { name: 'native', seal: addon.seal, open: addon.open } };
}

const loaded = loadNativeAead();

/** The implementation in use: native when the addon loads, node:crypto otherwise. */
export const AEAD: Aead = loaded.aead ?? nodeAead;

/** Why the native implementation is not in use (undefined when it is). */
export const AEAD_FALLBACK_REASON: string | undefined = loaded.error;
