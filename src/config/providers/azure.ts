/**
 * The `azure:` section: an Azure Key Vault or Managed HSM key used as the KEK.
 *
 *   azure:
 *     vaultUrl: https://myvault.vault.azure.net      # or https://myhsm.managedhsm.azure.net, sovereign suffixes too
 *     keyName: kube-kek
 *     # keyVersion: 0123456789abcdef0123456789abcdef  # pin; default follows the key's current version
 *     # cloudConfigFile: /etc/kubernetes/azure.json   # static pods on self-managed clusters
 *
 * Every value may also come from a flag (`--azure-vault-url`) or env var (`KMS_PLUGIN_AZURE_VAULT_URL`).
 */
import { z } from 'zod';
import { bool, nonEmpty, remoteCallFields, type ProviderSection } from '../fields.js';

/** Key Vault / Managed HSM DNS suffixes of the public and sovereign clouds. */
export const KNOWN_VAULT_SUFFIXES = [
  'vault.azure.net',
  'vault.azure.cn',
  'vault.usgovcloudapi.net',
  'vault.microsoftazure.de',
  'managedhsm.azure.net',
  'managedhsm.azure.cn',
  'managedhsm.usgovcloudapi.net',
] as const;

const HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VAULT_NAME = /^[a-z][a-z0-9-]{1,22}[a-z0-9]$/;
const KEY_NAME = /^[0-9A-Za-z-]{1,127}$/;
const KEY_VERSION = /^[0-9A-Za-z]{1,64}$/;

/**
 * Validates and normalises a vault URL to `https://host[:port]` (lower case, no trailing slash).
 * Returns an error message naming the fix instead when it is malformed.
 */
export function normaliseVaultUrl(input: string): { url: string; managedHsm: boolean } | { error: string } {
  const text = input.trim();
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return {
      error: `expected the vault URL, e.g. https://myvault.vault.azure.net; got ${JSON.stringify(text)}`,
    };
  }
  if (u.protocol !== 'https:') {
    return { error: `must use https:// (Key Vault only speaks TLS); got ${JSON.stringify(text)}` };
  }
  if (u.username || u.password)
    return { error: 'must not contain user info (credentials never go in the URL)' };
  if (u.search || u.hash)
    return { error: `must not contain a query or fragment; got ${JSON.stringify(text)}` };
  if (u.pathname !== '/' && u.pathname !== '') {
    if (/^\/keys\//i.test(u.pathname)) {
      return {
        error:
          'is a key URL; set vaultUrl to the vault root (e.g. https://myvault.vault.azure.net), the key name in azure.keyName and, to pin, the version in azure.keyVersion',
      };
    }
    return {
      error: `must be the vault root without a path, e.g. https://myvault.vault.azure.net; got ${JSON.stringify(text)}`,
    };
  }
  const host = u.hostname.toLowerCase();
  const loopback = host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
  if (!loopback) {
    const labels = host.split('.');
    if (labels.length < 3 || !labels.every((l) => HOST_LABEL.test(l))) {
      return {
        error: `expected https://<vault-name>.<dns-suffix>, e.g. https://myvault.vault.azure.net; got ${JSON.stringify(text)}`,
      };
    }
    const suffix = KNOWN_VAULT_SUFFIXES.find((s) => host.endsWith(`.${s}`));
    if (suffix && (host.split('.').length !== suffix.split('.').length + 1 || !VAULT_NAME.test(labels[0]))) {
      return {
        error: `the vault name ${JSON.stringify(labels[0])} is not valid: 3-24 characters, letters, digits and hyphens, starting with a letter and ending with a letter or digit`,
      };
    }
  }
  return { url: `https://${host}${u.port ? `:${u.port}` : ''}`, managedHsm: host.includes('.managedhsm.') };
}

const vaultUrl = z
  .string({ error: 'expected azure.vaultUrl (e.g. https://myvault.vault.azure.net)' })
  .transform((v, ctx) => {
    const r = normaliseVaultUrl(v);
    if ('error' in r) {
      ctx.addIssue({ code: 'custom', message: r.error });
      return z.NEVER;
    }
    return r.url;
  });

export const AZURE_ALGORITHMS = ['auto', 'RSA-OAEP-256', 'A256KW'] as const;
export const AZURE_CREDENTIALS = [
  'auto',
  'default',
  'workload-identity',
  'managed-identity',
  'client-secret',
  'client-certificate',
  'azure-json',
] as const;

export const azureSchema = z
  .strictObject({
    /**
     * `https://<name>.<suffix>`: `vault.azure.net`, `vault.azure.cn`, `vault.usgovcloudapi.net`,
     * `managedhsm.azure.net`, … (any DNS suffix works). It must be the vault root, with no path; given a
     * key URL, the error tells you where the name and version go.
     */
    vaultUrl: vaultUrl.meta({
      flag: { arg: 'URL', help: 'vault or Managed HSM URL, https://<name>.vault.azure.net' },
    }),
    /** The key's name: 1–127 letters, digits and hyphens. */
    keyName: z
      .string({ error: 'expected azure.keyName (the Key Vault key name)' })
      .trim()
      .refine((s) => KEY_NAME.test(s), {
        message:
          'expected a key name of 1-127 letters, digits and hyphens (just the name, not a URL or name/version)',
      })
      .meta({ flag: { arg: 'NAME', help: 'key name' } }),
    /** Pin one key version. Omit it (recommended) and the plugin resolves the current version (`GET /keys/<name>`) on every probe, following rotation. */
    keyVersion: z
      .string()
      .trim()
      .refine((s) => KEY_VERSION.test(s), {
        message: 'expected a key version id (letters and digits, e.g. 32 hex characters)',
      })
      .optional()
      .meta({ flag: { arg: 'VERSION', help: 'pin a key version (default: follow the current one)' } }),
    /**
     * Wrap algorithm. `auto`: RSA-OAEP-256 for RSA / RSA-HSM keys, A256KW for Managed HSM oct-HSM keys.
     * Unwrap under `auto` picks by the wrapped length (40 bytes = A256KW). RSA-OAEP (SHA-1) and
     * RSA1_5 are not offered.
     */
    algorithm: z
      .enum(AZURE_ALGORITHMS, { error: `expected one of: ${AZURE_ALGORITHMS.join(', ')}` })
      .default('auto')
      .meta({ flag: { arg: 'ALG', help: 'auto|RSA-OAEP-256|A256KW' } }),
    /**
     * How to authenticate. `auto`: `azure-json` when cloudConfigFile is set, else `default`
     * (DefaultAzureCredential: env, workload identity, managed identity).
     */
    credential: z
      .enum(AZURE_CREDENTIALS, { error: `expected one of: ${AZURE_CREDENTIALS.join(', ')}` })
      .default('auto')
      .meta({ flag: { arg: 'KIND', help: AZURE_CREDENTIALS.join('|') } }),
    /** The cloud-provider `azure.json` (aadClientId/aadClientSecret/tenantId, useManagedIdentityExtension, ...). Under credential `auto`, setting it selects `azure-json`. */
    cloudConfigFile: nonEmpty('azure.cloudConfigFile (path of azure.json)')
      .optional()
      .meta({
        flag: {
          name: 'azure-cloud-config',
          arg: 'PATH',
          help: 'cloud-provider config (azure.json) with the identity',
        },
      }),
    /** Entra ID tenant (workload identity, client secret, client certificate). */
    tenantId: nonEmpty('azure.tenantId')
      .optional()
      .meta({ flag: { arg: 'ID', help: 'Entra ID tenant' } }),
    /** Application (client) id for the explicit credentials, or the client id of a user-assigned managed identity. */
    clientId: nonEmpty('azure.clientId')
      .optional()
      .meta({ flag: { arg: 'ID', help: 'application or user-assigned identity client id' } }),
    /** A file that holds the client secret. The secret itself never goes in config, flags or env. */
    clientSecretFile: nonEmpty('azure.clientSecretFile (path)')
      .optional()
      .meta({ flag: { arg: 'PATH', help: 'file holding the client secret' } }),
    /** A PEM file with the client certificate and an unencrypted private key. */
    clientCertificateFile: nonEmpty('azure.clientCertificateFile (path)')
      .optional()
      .meta({ flag: { arg: 'PATH', help: 'PEM client certificate and key' } }),
    /** Workload identity's projected service-account token (default: $AZURE_FEDERATED_TOKEN_FILE). */
    federatedTokenFile: nonEmpty('azure.federatedTokenFile (path)')
      .optional()
      .meta({ flag: { arg: 'PATH', help: 'workload identity token file' } }),
    /** The Entra ID host for sovereign clouds, e.g. `https://login.microsoftonline.us`; default from `cloud` in azure.json, or the public cloud. `AZURE_AUTHORITY_HOST` in the environment works the same (instance discovery off for a custom authority). */
    authorityHost: z
      .string()
      .trim()
      .refine((s) => /^https:\/\/[^/?#\s]+\/?$/.test(s), {
        message: 'expected https://<host>, e.g. https://login.microsoftonline.com',
      })
      .optional()
      .meta({ flag: { arg: 'URL', help: 'Entra ID authority, e.g. https://login.microsoftonline.us' } }),
    ...remoteCallFields('azure', {
      service: 'Key Vault',
      concurrency: { default: 16, max: 1024 },
      oldAttemptTimeoutFlags: ['azure-request-timeout'],
    }),
    /** **Tests only.** A PEM CA bundle that *replaces* the trust store for Key Vault and Entra ID connections. */
    caFile: nonEmpty('azure.caFile (path)')
      .optional()
      .meta({ flag: { arg: 'PATH', help: 'TEST ONLY: CA bundle replacing the trust store' } }),
    /** **Tests only.** Accept a bearer challenge whose resource does not match the vault host (a fake on `https://localhost`). */
    disableChallengeResourceVerification: bool
      .default(false)
      .meta({ flag: { help: 'TEST ONLY: accept a bearer challenge for another host' } }),
  })
  .superRefine((v, ctx) => {
    const need = (
      field: 'tenantId' | 'clientId' | 'clientSecretFile' | 'clientCertificateFile',
      why: string,
    ): void => {
      if (v[field] === undefined)
        ctx.addIssue({ code: 'custom', path: [field], message: `is required ${why}` });
    };
    if (v.credential === 'client-secret') {
      need('tenantId', 'for credential "client-secret"');
      need('clientId', 'for credential "client-secret"');
      need('clientSecretFile', 'for credential "client-secret"');
    }
    if (v.credential === 'client-certificate') {
      need('tenantId', 'for credential "client-certificate"');
      need('clientId', 'for credential "client-certificate"');
      need('clientCertificateFile', 'for credential "client-certificate"');
    }
    if (v.credential === 'azure-json' && v.cloudConfigFile === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['cloudConfigFile'],
        message: 'is required for credential "azure-json" (e.g. /etc/kubernetes/azure.json)',
      });
    }
    if (v.algorithm === 'A256KW' && !normaliseVaultUrlIsHsm(v.vaultUrl)) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithm'],
        message:
          'A256KW needs a Managed HSM symmetric key (https://<hsm>.managedhsm.azure.net); use RSA-OAEP-256 or auto for Key Vault',
      });
    }
  });

function normaliseVaultUrlIsHsm(url: string): boolean {
  const r = normaliseVaultUrl(url);
  return 'url' in r && (r.managedHsm || /^https:\/\/(localhost|127\.0\.0\.1|\[::1\])(:|$)/.test(r.url));
}

export type AzureConfig = z.output<typeof azureSchema>;
export type AzureConfigInput = z.input<typeof azureSchema>;

export const azureSection = {
  schema: azureSchema,
  aliases: { requestTimeout: 'attemptTimeout', callTimeout: 'attemptTimeout' },
} satisfies ProviderSection;
