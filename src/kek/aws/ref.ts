/**
 * The KekRef this provider hands out, and its `unique` field.
 *
 * - `key`: the resolved key ARN (never an alias: aliases move).
 * - `version`: the current key material: `material:<CurrentKeyMaterialId>` from DescribeKey when AWS
 *   returns it; otherwise (fallback) the RotationDate (ISO 8601) of the newest ListKeyRotations
 *   entry, or "original" when the key was never rotated. Both are stable across restarts and
 *   replicas for the same material; a switch between the two sources changes key_id once.
 * - `unique`: `created=<key CreationDate>[;alias=<alias/NAME>];ctx=<EncryptionContext fingerprint>`.
 *   The creation time keeps a re-created key from ever reusing a key_id; the alias records that
 *   the key was reached through an alias; the context fingerprint (a hash, not the pairs) makes a
 *   change of EncryptionContext a new key_id and routes old DEKs to a provider with the old context.
 *
 * Nothing here is secret. Everything is derived from KMS answers and config, so every replica and
 * every restart computes the same ref for the same key material.
 */
import { createHash } from 'node:crypto';

export const ORIGINAL_MATERIAL = 'original';

/** Canonical form of an EncryptionContext: pairs sorted by key, JSON-encoded. */
export function canonicalContext(context: Record<string, string>): string {
  return JSON.stringify(
    Object.keys(context)
      .sort()
      .map((k) => [k, context[k]]),
  );
}

/** A short, stable, non-reversible fingerprint of the EncryptionContext. */
export function contextFingerprint(context: Record<string, string>): string {
  return createHash('sha256').update(canonicalContext(context)).digest('hex').slice(0, 16);
}

export interface UniqueParts {
  created: string;
  alias?: string;
  ctx: string;
}

export function encodeUnique(parts: UniqueParts): string {
  return [
    `created=${parts.created}`,
    ...(parts.alias ? [`alias=${parts.alias}`] : []),
    `ctx=${parts.ctx}`,
  ].join(';');
}

export function decodeUnique(unique: string | undefined): Partial<UniqueParts> {
  const out: Partial<UniqueParts> = {};
  if (!unique) return out;
  for (const part of unique.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i);
    const v = part.slice(i + 1);
    if (k === 'created' || k === 'alias' || k === 'ctx') out[k] = v;
  }
  return out;
}

export function materialVersion(latestRotation: Date | undefined): string {
  return latestRotation ? latestRotation.toISOString() : ORIGINAL_MATERIAL;
}

/** The version label for a material named by DescribeKey's CurrentKeyMaterialId. */
export function materialIdVersion(materialId: string): string {
  return `material:${materialId}`;
}
