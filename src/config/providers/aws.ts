/**
 * The `aws:` config section (provider: aws) and its flags. See docs/providers/aws.md.
 */
import { z } from 'zod';
import { bool, duration, nonEmpty, remoteCallFields, type ProviderSection } from '../fields.js';
import { KEY_ID_FORMS, isRegion, isRoleArn, parseKeyArn, parseKeyIdentifier } from './aws-identifiers.js';

/** The EncryptionContext used when none is configured. It is bound into every wrapped DEK. */
export const DEFAULT_AWS_ENCRYPTION_CONTEXT: Readonly<Record<string, string>> = Object.freeze({
  'k8s-kms-plugin': 'dek-wrap',
});

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** An http(s) endpoint; plain http only to loopback (the Encrypt body carries the DEK). */
function endpointField(field: string) {
  return z
    .string()
    .trim()
    .superRefine((v, ctx) => {
      let url: URL;
      try {
        url = new URL(v);
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: `expected a URL like https://vpce-0abc.kms.us-east-1.vpce.amazonaws.com; got ${JSON.stringify(v)}`,
        });
        return;
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        ctx.addIssue({
          code: 'custom',
          message: `${field} must be an https:// URL; got ${JSON.stringify(v)}`,
        });
      } else if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) {
        ctx.addIssue({
          code: 'custom',
          message: `plain http is allowed only to loopback (127.0.0.1, localhost), because requests carry DEKs; use https:// for ${url.host}`,
        });
      }
      if (url.pathname !== '/' && url.pathname !== '') {
        ctx.addIssue({
          code: 'custom',
          message: `${field} must not have a path (got "${url.pathname}"); give only scheme://host[:port]`,
        });
      }
    });
}

const CONTEXT_HELP = 'a mapping (YAML) or "key=value,key2=value2" (flag/env)';

/** EncryptionContext: a YAML mapping, or a list of "key=value" strings from a flag/env var. */
const encryptionContextField = z
  .union([z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])), z.array(z.string())], {
    error: `expected ${CONTEXT_HELP}`,
  })
  .transform((v, ctx) => {
    const out: Record<string, string> = {};
    const entries: Array<[string, string]> = Array.isArray(v)
      ? v.map((item) => {
          const i = item.indexOf('=');
          if (i <= 0) {
            ctx.addIssue({
              code: 'custom',
              message: `entry ${JSON.stringify(item)} is not key=value; expected ${CONTEXT_HELP}`,
            });
            return ['', ''];
          }
          return [item.slice(0, i).trim(), item.slice(i + 1).trim()];
        })
      : Object.entries(v).map(([k, val]) => [k.trim(), String(val)]);
    for (const [k, val] of entries) {
      if (k === '' && val === '') continue; // already reported
      if (k === '' || val === '') {
        ctx.addIssue({
          code: 'custom',
          message: `keys and values must not be empty (got ${JSON.stringify(k)}=${JSON.stringify(val)})`,
        });
      } else if (k.toLowerCase().startsWith('aws')) {
        ctx.addIssue({
          code: 'custom',
          message: `key ${JSON.stringify(k)}: keys starting with "aws" are reserved by AWS; rename it`,
        });
      } else if (k in out && out[k] !== val) {
        ctx.addIssue({
          code: 'custom',
          message: `key ${JSON.stringify(k)} is given twice with different values`,
        });
      }
      out[k] = val;
    }
    if (Object.keys(out).length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: `must contain at least one key=value pair (it binds every wrapped DEK to this purpose); remove the field to use the default k8s-kms-plugin=dek-wrap`,
      });
    }
    return out;
  });

export const awsSchema = z
  .strictObject({
    /**
     * The key: key ARN, key id (UUID or `mrk-…`), alias (`alias/NAME`) or alias ARN. A key ARN is the
     * most robust choice. `alias/aws/*` (AWS managed keys) is refused: only AWS services can use those.
     */
    keyId: nonEmpty(`aws.keyId (${KEY_ID_FORMS})`).meta({
      flag: { arg: 'KEY', help: 'key ARN, key id, alias/NAME or alias ARN' },
    }),
    /** Region of the key. Default: the ARN's region. Required when `keyId` is not an ARN; must match the ARN's region when both are given. */
    region: z
      .string()
      .trim()
      .optional()
      .meta({ flag: { arg: 'REGION', help: 'region (optional when the key is an ARN)' } }),
    /**
     * Endpoint override (default: the regional endpoint), e.g. a VPC interface endpoint
     * `https://vpce-0abc….kms.eu-west-1.vpce.amazonaws.com`. Must be `https://` (plain `http://` only
     * to 127.0.0.1/localhost, for tests), without a path.
     */
    endpoint: endpointField('aws.endpoint')
      .optional()
      .meta({ flag: { arg: 'URL', help: 'KMS endpoint override (VPC endpoint)' } }),
    /** Use the region's FIPS 140 endpoint (`kms-fips.REGION.amazonaws.com`). Cannot be combined with `endpoint` (put the FIPS URL there instead). */
    fips: bool.default(false).meta({ flag: { help: 'use the FIPS endpoint' } }),
    /** Shared-config profile for the default credential chain (default: `AWS_PROFILE` or `default`). */
    profile: z
      .string()
      .trim()
      .min(1)
      .optional()
      .meta({ flag: { arg: 'NAME', help: 'shared-config profile' } }),
    /**
     * IAM role to assume (`sts:AssumeRole`) with the default-chain credentials, e.g. a role in the
     * key's account. Credentials are refreshed 5 minutes before they expire.
     */
    roleArn: z
      .string()
      .trim()
      .optional()
      .meta({ flag: { arg: 'ARN', help: 'IAM role to assume' } }),
    /** Session name for `roleArn` (visible in CloudTrail). */
    roleSessionName: z
      .string()
      .trim()
      .regex(/^[\w+=,.@-]{2,64}$/, { message: 'expected 2-64 characters from letters, digits and +=,.@_-' })
      .default('k8s-kms-plugin')
      .meta({ flag: { arg: 'NAME', help: 'session name for --aws-role-arn' } }),
    /** External id the role's trust policy requires. Only with `roleArn`. */
    externalId: z
      .string()
      .trim()
      .min(2)
      .max(1224)
      .optional()
      .meta({ flag: { arg: 'ID', help: 'external id for --aws-role-arn' } }),
    /**
     * STS endpoint for `roleArn` (default: the regional STS endpoint), e.g. an STS VPC endpoint. Only
     * with `roleArn`. For IRSA use the SDK's `AWS_ENDPOINT_URL_STS`.
     */
    stsEndpoint: endpointField('aws.stsEndpoint')
      .optional()
      .meta({ flag: { arg: 'URL', help: 'STS endpoint override for --aws-role-arn' } }),
    /** Cluster name, added to the EncryptionContext as `cluster=<name>` (shows up in CloudTrail). */
    cluster: z
      .string()
      .trim()
      .min(1, { message: 'must not be empty; remove the field instead' })
      .max(256, { message: 'must be at most 256 characters' })
      .optional()
      .meta({ flag: { arg: 'NAME', help: 'cluster name added to the EncryptionContext' } }),
    /**
     * EncryptionContext sent with every Encrypt and Decrypt (KMS binds it into the ciphertext). Keys
     * starting with `aws` are reserved.
     * Default {"k8s-kms-plugin": "dek-wrap"}. Changing it gives a new key_id; older DEKs keep needing
     * the old context (configure it in a decryptOnly entry).
     */
    encryptionContext: encryptionContextField.optional().meta({
      flag: { arg: 'K=V,...', help: 'EncryptionContext pairs (default k8s-kms-plugin=dek-wrap)' },
    }),
    /**
     * More key ARNs this provider may unwrap (e.g. the key an alias pointed to before, or the key a
     * fixed `keyId` used before you changed it). Aliases are not allowed here.
     */
    decryptKeyArns: z
      .array(z.string().trim())
      .default([])
      .meta({ flag: { arg: 'ARN,...', help: 'further key ARNs accepted for unwrap' } }),
    /**
     * PEM CA bundle to trust for the KMS and STS endpoints instead of the system roots (a
     * TLS-inspecting egress proxy, a test fake). The SDK's `AWS_CA_BUNDLE` env var does the same.
     */
    caFile: nonEmpty('aws.caFile (a PEM CA bundle path)')
      .optional()
      .meta({
        flag: { arg: 'PATH', help: 'PEM CA bundle for the KMS and STS endpoints instead of system roots' },
      }),
    /** TCP/TLS connect timeout; also the timeout of the container/instance credential endpoints. */
    connectTimeout: duration('1s', { min: 50, max: 60_000 }).default(1000),
    ...remoteCallFields('aws', { service: 'KMS', concurrency: { default: 16, max: 1024 } }),
  })
  .superRefine((v, ctx) => {
    const id = parseKeyIdentifier(v.keyId);
    if ('error' in id) {
      ctx.addIssue({ code: 'custom', path: ['keyId'], message: id.error });
    } else if (v.region === undefined || v.region === '') {
      if (!id.region) {
        ctx.addIssue({
          code: 'custom',
          path: ['region'],
          message: `is required because aws.keyId "${id.raw}" is not an ARN: set aws.region (--aws-region, KMS_PLUGIN_AWS_REGION), or give the key as an ARN, which carries its region`,
        });
      }
    } else if (id.region && id.region !== v.region) {
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        message: `"${v.region}" does not match the region of aws.keyId (${id.region}); a KMS key lives in one region: remove aws.region or use the key's region`,
      });
    }
    if (v.region !== undefined && v.region !== '' && !isRegion(v.region)) {
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        message: `"${v.region}" is not an AWS region name (like us-east-1 or eu-central-1)`,
      });
    }
    if (v.fips && v.endpoint) {
      ctx.addIssue({
        code: 'custom',
        path: ['fips'],
        message:
          'cannot be combined with aws.endpoint: either set the FIPS endpoint URL as aws.endpoint, or remove aws.endpoint',
      });
    }
    if (v.roleArn !== undefined && !isRoleArn(v.roleArn)) {
      ctx.addIssue({
        code: 'custom',
        path: ['roleArn'],
        message: `"${v.roleArn}" is not an IAM role ARN: expected arn:aws:iam::ACCOUNT(12 digits):role/NAME`,
      });
    }
    if (v.roleArn === undefined && (v.externalId !== undefined || v.stsEndpoint !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [v.externalId !== undefined ? 'externalId' : 'stsEndpoint'],
        message: 'only applies with aws.roleArn: set aws.roleArn or remove this field',
      });
    }
    if (
      v.cluster !== undefined &&
      v.encryptionContext?.cluster !== undefined &&
      v.encryptionContext.cluster !== v.cluster
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['cluster'],
        message: `conflicts with aws.encryptionContext.cluster ("${v.encryptionContext.cluster}"): set the cluster in one place`,
      });
    }
    v.decryptKeyArns.forEach((arn, i) => {
      if (!parseKeyArn(arn)) {
        ctx.addIssue({
          code: 'custom',
          path: ['decryptKeyArns', i],
          message: `"${arn}" is not a key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID); aliases cannot be used here because they move`,
        });
      }
    });
  });

export type AwsConfig = z.output<typeof awsSchema>;
export type AwsConfigInput = z.input<typeof awsSchema>;

/** The EncryptionContext the provider sends: the configured (or default) pairs plus `cluster`. */
export function effectiveEncryptionContext(
  config: Pick<AwsConfig, 'encryptionContext' | 'cluster'>,
): Record<string, string> {
  const base = { ...(config.encryptionContext ?? DEFAULT_AWS_ENCRYPTION_CONTEXT) };
  if (config.cluster !== undefined) base.cluster = config.cluster;
  return base;
}

export const awsSection = {
  schema: awsSchema,
  aliases: { callTimeout: 'attemptTimeout', requestTimeout: 'attemptTimeout' },
} satisfies ProviderSection;
