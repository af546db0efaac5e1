/**
 * The annotations we return from Encrypt (stored in plaintext in etcd and echoed back on Decrypt):
 *
 *   kek.k8s-kms-plugin.io  canonical JSON naming the KEK version that wrapped the DEK
 *                          {"g":<key-id generation>,"k":<key resource>,"p":<provider>,"u":<unique>,"v":<version>}
 *   dek.k8s-kms-plugin.io  the wrapped DEK, as the KMS returned it (opaque bytes, not secret)
 *
 * Keys pass kube-apiserver's FQDN rule (validateAnnotations in kmsv2/envelope.go), implemented
 * here exactly so tests can check every response against it.
 */
import { InvalidInputError } from '../errors.js';
import { PROVIDER_KINDS, type KekRef, type ProviderKind } from '../kek/types.js';

export const ANNOTATION_KEK = 'kek.k8s-kms-plugin.io';
export const ANNOTATION_DEK = 'dek.k8s-kms-plugin.io';
/** kube-apiserver: total bytes of all annotation keys plus values. */
export const MAX_ANNOTATIONS_BYTES = 32 * 1024;
const MAX_KEK_JSON_BYTES = 4096;
const MAX_WRAPPED_BYTES = 8192;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** k8s.io/apimachinery IsFullyQualifiedDomainName, as applied to annotation keys. */
export function fqdnErrors(name: string): string[] {
  const errors: string[] = [];
  if (name.length === 0) return ['must not be empty'];
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n.length > 253) errors.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(n)) errors.push('must be a lowercase RFC 1123 subdomain');
  const labels = n.split('.');
  if (labels.length < 2) errors.push('should be a domain with at least two segments separated by dots');
  for (const label of labels) {
    if (label.length > 63 || !DNS1123_LABEL.test(label)) {
      errors.push(
        `label ${JSON.stringify(label.slice(0, 70))} must be a lowercase RFC 1123 label of at most 63 characters`,
      );
      break;
    }
  }
  return errors;
}

/** kube-apiserver's validateAnnotations: every key an FQDN, Σ(key+value) ≤ 32 KiB. */
export function annotationErrors(annotations: Record<string, Uint8Array>): string[] {
  const errors: string[] = [];
  let total = 0;
  for (const [k, v] of Object.entries(annotations)) {
    for (const e of fqdnErrors(k)) errors.push(`annotation key ${JSON.stringify(k)}: ${e}`);
    total += Buffer.byteLength(k) + v.length;
  }
  if (total > MAX_ANNOTATIONS_BYTES)
    errors.push(`annotations total ${total} bytes, more than ${MAX_ANNOTATIONS_BYTES}`);
  return errors;
}

export interface EnvelopeAnnotations {
  ref: KekRef;
  generation: number;
  wrapped: Buffer;
  /** The exact bytes of the kek annotation (bound into the AAD). */
  kekBytes: Buffer;
}

/** Canonical JSON for a KEK reference plus generation: sorted keys, no whitespace, `u` omitted when empty. */
export function canonicalKek(ref: KekRef, generation: number): Buffer {
  const obj: Record<string, string | number> = { g: generation, k: ref.key, p: ref.provider };
  if (ref.unique !== undefined && ref.unique !== '') obj.u = ref.unique;
  obj.v = ref.version;
  return Buffer.from(JSON.stringify(obj), 'utf8');
}

export function encodeAnnotations(ref: KekRef, generation: number, wrapped: Buffer): Record<string, Buffer> {
  return { [ANNOTATION_KEK]: canonicalKek(ref, generation), [ANNOTATION_DEK]: Buffer.from(wrapped) };
}

/**
 * Parses and strictly checks the annotations of a Decrypt request: exactly our two keys, a
 * canonical KEK reference, a plausible wrapped DEK. Anything else is not ours and is refused
 * before any remote call.
 */
export function decodeAnnotations(annotations: Record<string, Uint8Array> | undefined): EnvelopeAnnotations {
  const a = annotations ?? {};
  const keys = Object.keys(a);
  const unexpected = keys.filter((k) => k !== ANNOTATION_KEK && k !== ANNOTATION_DEK);
  if (unexpected.length > 0) {
    throw new InvalidInputError(
      `unexpected annotation(s) ${unexpected
        .slice(0, 3)
        .map((k) => JSON.stringify(k.slice(0, 80)))
        .join(', ')}: not produced by this plugin`,
    );
  }
  const kek = a[ANNOTATION_KEK];
  const dek = a[ANNOTATION_DEK];
  if (!kek || !dek) {
    throw new InvalidInputError(
      `annotations ${ANNOTATION_KEK} and ${ANNOTATION_DEK} are required: the ciphertext was not produced by this plugin or its annotations were lost`,
    );
  }
  if (kek.length === 0 || kek.length > MAX_KEK_JSON_BYTES)
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK} has an invalid size`);
  if (dek.length === 0 || dek.length > MAX_WRAPPED_BYTES)
    throw new InvalidInputError(`annotation ${ANNOTATION_DEK} has an invalid size`);
  const kekBytes = Buffer.from(kek);
  const { ref, generation } = parseKek(kekBytes);
  if (!canonicalKek(ref, generation).equals(kekBytes)) {
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK} is not in canonical form`);
  }
  return { ref, generation, wrapped: Buffer.from(dek), kekBytes };
}

function parseKek(bytes: Buffer): { ref: KekRef; generation: number } {
  let obj: unknown;
  try {
    obj = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK} is not valid JSON`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK} is not a JSON object`);
  }
  const o = obj as Record<string, unknown>;
  const allowed = new Set(['g', 'k', 'p', 'u', 'v']);
  if (Object.keys(o).some((k) => !allowed.has(k)))
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK} has unknown fields`);
  const { g, k, p, u, v } = o;
  if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 0)
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK}: bad generation`);
  if (typeof p !== 'string' || !(PROVIDER_KINDS as readonly string[]).includes(p)) {
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK}: unknown provider`);
  }
  if (typeof k !== 'string' || k.length === 0)
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK}: bad key`);
  if (typeof v !== 'string' || v.length === 0)
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK}: bad version`);
  if (u !== undefined && (typeof u !== 'string' || u.length === 0))
    throw new InvalidInputError(`annotation ${ANNOTATION_KEK}: bad unique`);
  const ref: KekRef = { provider: p as ProviderKind, key: k, version: v };
  if (u !== undefined) ref.unique = u as string;
  return { ref, generation: g };
}
