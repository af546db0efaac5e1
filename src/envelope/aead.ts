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

export interface Aead {
  readonly name: 'native' | 'node:crypto';
  /**
   * Seals `plaintext` under `key`/`iv` with `aad`: the ciphertext goes to
   * out[offset, offset + plaintext.length) and the 16-byte tag right after it.
   */
  seal(
    key: Uint8Array,
    iv: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Buffer,
    offset: number,
  ): void;
  /**
   * Opens `body` into out[0, body.length): true only if `tag` verifies. On false, `out` has been
   * wiped (no unauthenticated byte is left in it).
   */
  open(
    key: Uint8Array,
    iv: Uint8Array,
    aad: Uint8Array,
    body: Uint8Array,
    tag: Uint8Array,
    out: Buffer,
  ): boolean;
}

/** node:crypto, five calls per operation. */
export const nodeAead: Aead = {
  name: 'node:crypto',
  seal(key, iv, aad, plaintext, out, offset) {
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(aad);
    const pos = offset + cipher.update(plaintext).copy(out, offset);
    cipher.final(); // empty for GCM
    cipher.getAuthTag().copy(out, pos);
  },
  open(key, iv, aad, body, tag, out) {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const plaintext = decipher.update(body);
    try {
      decipher.final(); // throws unless the tag verifies
    } catch {
      plaintext.fill(0);
      out.fill(0, 0, body.length);
      return false;
    }
    plaintext.copy(out);
    plaintext.fill(0);
    return true;
  },
};

/** Where `npm run build` puts the addon (same depth from src/envelope and dist/envelope). */
export const AEAD_ADDON_PATH = fileURLToPath(new URL('../../build/Release/aead.node', import.meta.url));

interface AeadAddon {
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
  return { aead: { name: 'native', seal: addon.seal, open: addon.open } };
}

const loaded = loadNativeAead();

/** The implementation in use: native when the addon loads, node:crypto otherwise. */
export const AEAD: Aead = loaded.aead ?? nodeAead;

/** Why the native implementation is not in use (undefined when it is). */
export const AEAD_FALLBACK_REASON: string | undefined = loaded.error;
