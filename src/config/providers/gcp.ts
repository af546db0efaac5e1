/**
 * The `gcp:` section: a Google Cloud KMS CryptoKey used as the KEK. The plugin always wraps with
 * the CryptoKey's current primary CryptoKeyVersion and unwraps with the CryptoKey name (the
 * ciphertext names its own version). See docs/providers/gcp.md.
 */
import { z } from 'zod';
import { bool, remoteCallFields, type ProviderSection } from '../fields.js';

/** projects/P/locations/L/keyRings/R/cryptoKeys/K, with the segment rules Cloud KMS enforces. */
const PROJECT = String.raw`(?:[a-z][a-z0-9.:-]{0,98}[a-z0-9]|[0-9]{1,19})`;
const LOCATION = String.raw`[a-z][a-z0-9-]{0,62}`;
const RESOURCE_ID = String.raw`[a-zA-Z0-9_-]{1,63}`;
export const CRYPTO_KEY_NAME = new RegExp(
  `^projects/${PROJECT}/locations/${LOCATION}/keyRings/${RESOURCE_ID}/cryptoKeys/${RESOURCE_ID}$`,
);
const EXAMPLE = 'projects/my-project/locations/europe-west1/keyRings/k8s/cryptoKeys/etcd';

/**
 * Explains what is wrong with a CryptoKey resource name, or returns undefined when it is fine.
 * Exported so `probe` and the provider can give the same message.
 */
export function cryptoKeyNameProblem(name: string): string | undefined {
  if (CRYPTO_KEY_NAME.test(name)) return undefined;
  const hint = `expected projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY, e.g. ${EXAMPLE}`;
  if (/^\/\/cloudkms\.googleapis\.com\//.test(name)) {
    return `remove the "//cloudkms.googleapis.com/" prefix (${hint})`;
  }
  if (/^https?:\/\//.test(name)) return `give the resource name, not a URL (${hint})`;
  if (/\/cryptoKeyVersions(\/|$)/.test(name)) {
    return `name the CryptoKey, not a CryptoKeyVersion: drop "/cryptoKeyVersions/..."; the plugin follows the key's primary version (${hint})`;
  }
  if (/\s/.test(name)) return `must not contain spaces (${hint})`;
  if (/\/$/.test(name)) return `must not end with "/" (${hint})`;
  const parts = name.split('/');
  const labels = ['projects', 'locations', 'keyRings', 'cryptoKeys'];
  for (let i = 0; i < labels.length; i++) {
    if (parts[i * 2] !== labels[i]) {
      return `segment ${i * 2 + 1} should be "${labels[i]}", got ${JSON.stringify(parts[i * 2] ?? '')} (${hint})`;
    }
    if (!parts[i * 2 + 1]) return `the ${labels[i]} id is missing (${hint})`;
  }
  if (parts.length > 8) return `has extra segments after the CryptoKey id (${hint})`;
  return `one of the ids has characters Cloud KMS does not allow (ids are 1-63 of [a-zA-Z0-9_-]) (${hint})`;
}

const keyName = z
  .string({ error: `expected gcp.keyName, the CryptoKey resource name, e.g. ${EXAMPLE}` })
  .trim()
  .superRefine((v, ctx) => {
    const problem = cryptoKeyNameProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const endpoint = z
  .string()
  .trim()
  .refine((s) => /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(s), {
    message:
      'expected host or host:port, e.g. cloudkms.googleapis.com:443, europe-west1-cloudkms.googleapis.com or 127.0.0.1:9443 (no scheme, no path)',
  });

/** AAD bound to every wrapped DEK. Changing it makes DEKs wrapped before unreadable: see the docs. */
export const DEFAULT_GCP_AAD = 'k8s-kms-plugin/dek/v1';

export const gcpSchema = z
  .strictObject({
    /**
     * The CryptoKey (purpose ENCRYPT_DECRYPT): `projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY`.
     * Name the key, not a version: the plugin follows the key's primary version.
     */
    keyName: keyName.meta({
      flag: { arg: 'NAME', help: 'CryptoKey, projects/P/locations/L/keyRings/R/cryptoKeys/K' },
    }),
    /**
     * A service-account key or a workload identity federation (`external_account`) JSON file. Unset:
     * Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC, the GKE/GCE metadata server).
     */
    credentialsFile: z
      .string()
      .trim()
      .min(1, { message: 'must not be empty: give a path or leave it out for ADC' })
      .optional()
      .meta({
        flag: { arg: 'PATH', help: 'service account or workload identity federation JSON (default: ADC)' },
      }),
    /** API endpoint `host[:port]`, no scheme: a regional endpoint, a Private Service Connect endpoint, or a local test fake. Default `cloudkms.googleapis.com:443`. */
    endpoint: endpoint.optional().meta({
      flag: { arg: 'HOST[:PORT]', help: 'Cloud KMS API endpoint (default cloudkms.googleapis.com:443)' },
    }),
    /** PEM CA bundle to trust for `endpoint` instead of the system roots (TLS-inspecting egress proxy, test fake). Credentials are still sent. */
    caFile: z
      .string()
      .trim()
      .min(1)
      .optional()
      .meta({ flag: { arg: 'PATH', help: 'PEM CA bundle for the endpoint instead of system roots' } }),
    /**
     * Plaintext gRPC with **no credentials**, for local fakes and tests only. Requires `endpoint` on
     * 127.0.0.1, `[::1]` or localhost; refused otherwise.
     */
    insecure: bool.default(false).meta({
      flag: { help: 'plaintext gRPC without credentials to a loopback endpoint (tests only)' },
    }),
    /** Additional authenticated data on every Encrypt and Decrypt (UTF-8, at most 64 KiB). Not secret; a cluster name is a good choice. Changing it makes DEKs wrapped before unreadable: see the AAD section. */
    aad: z
      .string()
      .min(1, { message: 'must not be empty: leave it out to use the default' })
      .refine((s) => Buffer.byteLength(s, 'utf8') <= 65_536, {
        message: 'must be at most 64 KiB (Cloud KMS limit)',
      })
      .default(DEFAULT_GCP_AAD)
      .meta({
        flag: {
          arg: 'TEXT',
          help: `additional authenticated data on every call (default "${DEFAULT_GCP_AAD}")`,
        },
      }),
    ...remoteCallFields('gcp', {
      service: 'Cloud KMS',
      concurrency: { default: 16, max: 256 },
      oldAttemptTimeoutFlags: ['gcp-call-timeout'],
    }),
  })
  .superRefine((v, ctx) => {
    if (v.insecure && v.endpoint === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['insecure'],
        message: 'insecure needs gcp.endpoint (a loopback test server); it is never used against Google',
      });
    }
    if (v.insecure && v.endpoint !== undefined && !isLoopback(v.endpoint)) {
      ctx.addIssue({
        code: 'custom',
        path: ['insecure'],
        message: `insecure is allowed only with a loopback endpoint (127.0.0.1, [::1], localhost); got ${v.endpoint}`,
      });
    }
    if (v.insecure && v.caFile !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['caFile'],
        message: 'caFile and insecure exclude each other: choose TLS or plaintext',
      });
    }
  });
export type GcpConfig = z.infer<typeof gcpSchema>;

export const gcpSection = {
  schema: gcpSchema,
  aliases: { callTimeout: 'attemptTimeout', requestTimeout: 'attemptTimeout' },
} satisfies ProviderSection;

export function isLoopback(endpointText: string): boolean {
  const host = endpointText.replace(/:\d{1,5}$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
