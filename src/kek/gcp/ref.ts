/**
 * The `unique` part of this provider's KekRef: `created=<version createTime>;aad=<AAD fingerprint>`.
 *
 * - The CryptoKeyVersion's creation time (RFC 3339, nine fractional digits) keeps a re-created key
 *   from ever reusing a key_id.
 * - The AAD fingerprint (a hash of gcp.aad, not the AAD) makes a change of AAD a new key_id, and
 *   lets the envelope route old DEKs to a `decryptOnly` gcp entry that still has the old AAD:
 *   a wrapped DEK only unwraps with the AAD it was wrapped with.
 *
 * Nothing here is secret, and everything is derived from Cloud KMS answers and config, so every
 * replica and every restart computes the same ref for the same version.
 */
import { createHash } from 'node:crypto';

/** A short, stable, non-reversible fingerprint of the AAD. */
export function aadFingerprint(aad: Buffer): string {
  return createHash('sha256').update('k8s-kms-plugin/gcp-aad\0').update(aad).digest('hex').slice(0, 16);
}

export function encodeUnique(created: string, aadFp: string): string {
  return `created=${created};aad=${aadFp}`;
}

export function decodeUnique(unique: string | undefined): { created?: string; aad?: string } {
  const out: { created?: string; aad?: string } = {};
  for (const part of (unique ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i);
    if (k === 'created' || k === 'aad') out[k] = part.slice(i + 1);
  }
  return out;
}
