/**
 * What protects one etcd value, reduced to the fields a census counts by. Nothing secret comes
 * out: no plaintext, no wrapped key, no ciphertext byte; an unknown value gets a fixed reason.
 */
import { decodeAnnotations } from '../../envelope/annotations.js';
import { dekIdOf } from '../../envelope/envelope.js';
import { DEK_SOURCE_TYPE_NAMES, decodeEncryptedObject } from '../etcd/encrypted-object.js';
import { KMS_V2_PREFIX } from '../etcd/value.js';

export type Protection = 'identity' | 'aescbc' | 'aesgcm' | 'secretbox' | 'kms-v1' | 'kms-v2' | 'unknown';

export interface Classification {
  protection: Protection;
  /** aescbc/aesgcm/secretbox: the key name in the EncryptionConfiguration. */
  keyName?: string;
  /** kms-v1/kms-v2: the provider name in the EncryptionConfiguration. */
  providerName?: string;
  /** kms-v2 */
  keyId?: string;
  dekSourceType?: string;
  /** kms-v2 values this plugin wrote. */
  kekProvider?: string;
  kekKey?: string;
  kekVersion?: string;
  dekId?: string;
  /** unknown: why (fixed text, never value bytes). */
  reason?: string;
}

const AESCBC_LIKE = /^k8s:enc:(aescbc|aesgcm|secretbox):v1:([^:]{1,253}):/;
const KMS_V1 = /^k8s:enc:kms:v1:([^:]{1,253}):/;
const ENC_ANY = /^k8s:enc:([a-z0-9]{1,32}):(v[0-9a-z]{1,8}):/;

export function classifyValue(value: Buffer): Classification {
  const head = value.subarray(0, 300).toString('latin1');
  if (head.startsWith(KMS_V2_PREFIX)) return classifyKmsV2(value, head);
  let m = AESCBC_LIKE.exec(head);
  if (m) return { protection: m[1] as 'aescbc' | 'aesgcm' | 'secretbox', keyName: m[2] };
  m = KMS_V1.exec(head);
  if (m) return { protection: 'kms-v1', providerName: m[1] };
  m = ENC_ANY.exec(head);
  if (m) return { protection: 'unknown', reason: `unknown transformer ${m[1]} ${m[2]}` };
  if (head.startsWith('k8s:enc:')) return { protection: 'unknown', reason: 'malformed k8s:enc: prefix' };
  if (head.startsWith('k8s\0')) return { protection: 'identity' };
  if (/^\s*[{[]/.test(head)) return { protection: 'identity' };
  if (value.length === 0) return { protection: 'unknown', reason: 'empty value' };
  return { protection: 'unknown', reason: 'unknown prefix (neither k8s:enc: nor protobuf/JSON)' };
}

function classifyKmsV2(value: Buffer, head: string): Classification {
  const end = head.indexOf(':', KMS_V2_PREFIX.length);
  if (end < 0) return { protection: 'unknown', reason: 'kms v2 prefix without a provider name' };
  const providerName = head.slice(KMS_V2_PREFIX.length, end);
  let o;
  try {
    o = decodeEncryptedObject(value.subarray(end + 1));
  } catch {
    return { protection: 'unknown', providerName, reason: 'kms v2 value does not decode (truncated?)' };
  }
  if (!o.keyID || o.encryptedDEKSource.length === 0 || o.encryptedData.length === 0) {
    return {
      protection: 'unknown',
      providerName,
      reason: 'kms v2 value lacks keyID, encryptedDEKSource or encryptedData (truncated?)',
    };
  }
  const out: Classification = {
    protection: 'kms-v2',
    providerName,
    keyId: o.keyID,
    dekSourceType: DEK_SOURCE_TYPE_NAMES[o.encryptedDEKSourceType],
  };
  if (Object.keys(o.annotations).length > 0) {
    try {
      const env = decodeAnnotations(o.annotations);
      out.kekProvider = env.ref.provider;
      out.kekKey = env.ref.key;
      out.kekVersion = env.ref.version;
      out.dekId = dekIdOf(env.wrapped);
    } catch {
      // not written by this plugin: key_id, provider name and DEK-source type are all there is
    }
  }
  return out;
}
