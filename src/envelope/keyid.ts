/**
 * key_id: what Status and Encrypt report, and what the apiserver stores with each object.
 *
 * Deterministic from the KEK reference alone (provider, key resource, version, what makes the
 * version unique) plus the operator's key-id generation: the same on every replica and after every
 * restart, different for every remote version, never derived from a local DEK. It is a hash, so it
 * carries no secrets and no resource names; ASCII; 46–50 bytes (limit 1024).
 */
import { createHash } from 'node:crypto';
import { PROVIDER_KINDS, type KekRef } from '../kek/types.js';
import { canonicalKek } from './annotations.js';

const DOMAIN = 'k8s-kms-plugin/key-id/v1\0';

export function deriveKeyId(ref: KekRef, generation: number): string {
  const digest = createHash('sha256').update(DOMAIN).update(canonicalKek(ref, generation)).digest('hex');
  return `${ref.provider}-${digest.slice(0, 40)}`;
}

const KEY_ID_SHAPE = new RegExp(`^(${PROVIDER_KINDS.join('|')})-[0-9a-f]{40}$`);

/** True if `s` has the shape of a key_id this plugin makes (cheap pre-check, not authentication). */
export function looksLikeKeyId(s: string): boolean {
  return KEY_ID_SHAPE.test(s);
}
