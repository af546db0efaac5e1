/**
 * kube-apiserver's checks on plugin responses, re-implemented here independently of src/ (so the
 * plugin is never checked with its own code). Source: ../shared/docs/kmsv2-contract.md §2.
 */

export type Profile = 'p127' | 'p129';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** k8s.io/apimachinery validation.IsFullyQualifiedDomainName. */
export function isFqdn(name: string): boolean {
  if (name.length === 0) return false;
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n.length > 253 || !SUBDOMAIN.test(n)) return false;
  const labels = n.split('.');
  if (labels.length < 2) return false;
  return labels.every((l) => l.length <= 63 && LABEL.test(l));
}

export function keyIdProblems(keyId: string | undefined): string[] {
  if (!keyId) return ['key_id is empty'];
  const out: string[] = [];
  if (Buffer.byteLength(keyId) > 1024) out.push('key_id longer than 1024 bytes');
  if (Buffer.from(keyId, 'utf8').toString('utf8') !== keyId) out.push('key_id is not valid UTF-8');
  return out;
}

/** §2.1: Status checks, with the 1.29+ pinning of the first accepted version. */
export class StatusValidator {
  private pinned: string | undefined;
  constructor(readonly profile: Profile) {}

  check(resp: { version: string; healthz: string; key_id: string }): string[] {
    const out: string[] = [];
    if (this.profile === 'p127') {
      if (resp.version !== 'v2beta1') out.push(`expected KMSv2 API version v2beta1, got ${resp.version}`);
    } else if (resp.version !== 'v2' && resp.version !== 'v2beta1') {
      out.push(`expected KMSv2 API version v2 or v2beta1, got ${resp.version}`);
    } else if (this.pinned !== undefined && this.pinned !== resp.version) {
      out.push(
        `KMSv2 API version should not change after the initial status response (was ${this.pinned}, now ${resp.version})`,
      );
    } else {
      this.pinned ??= resp.version;
    }
    if (resp.healthz !== 'ok') out.push(`got unexpected healthz status: ${resp.healthz}`);
    out.push(...keyIdProblems(resp.key_id));
    return out;
  }
}

/** §2.2: ValidateEncryptedObject on the Encrypt response, plus key_id == Status key_id. */
export function encryptResponseProblems(
  resp: { ciphertext: Buffer; key_id: string; annotations: Record<string, Buffer> },
  statusKeyId: string,
): string[] {
  const out: string[] = [];
  if (!resp.ciphertext || resp.ciphertext.length === 0) out.push('encrypted DEK source is empty');
  else if (resp.ciphertext.length > 1024)
    out.push(`encrypted DEK source is ${resp.ciphertext.length} bytes, over 1024`);
  out.push(...keyIdProblems(resp.key_id));
  if (resp.key_id !== statusKeyId) out.push(`Encrypt key_id ${resp.key_id} != Status key_id ${statusKeyId}`);
  out.push(...annotationProblems(resp.annotations ?? {}));
  return out;
}

export function annotationProblems(annotations: Record<string, Uint8Array>): string[] {
  const out: string[] = [];
  let total = 0;
  for (const [k, v] of Object.entries(annotations)) {
    if (!isFqdn(k)) out.push(`annotation key ${k} is not a fully qualified domain name`);
    total += Buffer.byteLength(k) + v.length;
  }
  if (total > 32 * 1024) out.push(`annotations total ${total} bytes, over 32768`);
  return out;
}
