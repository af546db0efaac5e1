/**
 * The one validated configuration schema (YAML file + env + flags all land here).
 * Every field has a default that is safe for production, except the provider's own key settings.
 */
import { z } from 'zod';
import { duration, int, type FlagSpec } from './fields.js';
import { localFlags, localSchema } from './providers/local.js';
import { awsFlags, awsSchema } from './providers/aws.js';
import { gcpFlags, gcpSchema } from './providers/gcp.js';
import { azureFlags, azureSchema } from './providers/azure.js';
import { vaultFlags, vaultSchema } from './providers/vault.js';
import { pkcs11Flags, pkcs11Schema } from './providers/pkcs11.js';

export const PROVIDERS = ['local', 'aws', 'gcp', 'azure', 'vault', 'pkcs11'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** Largest plaintext Encrypt accepts: 1024-byte ciphertext limit minus our 61-byte format-2 framing (29 + a 32-byte DEK commitment). */
export const MAX_PLAINTEXT_BYTES = 963;

const providerSections = {
  local: localSchema.optional(),
  aws: awsSchema.optional(),
  gcp: gcpSchema.optional(),
  azure: azureSchema.optional(),
  vault: vaultSchema.optional(),
  pkcs11: pkcs11Schema.optional(),
};

const providerEnum = z.enum(PROVIDERS, { error: `expected one of: ${PROVIDERS.join(', ')}` });

/** A KEK provider selection: `provider` plus that provider's section. */
const kekSelection = z
  .strictObject({ provider: providerEnum, ...providerSections })
  .superRefine((v, ctx) => requireSection(v, ctx));

function requireSection(
  v: { provider: ProviderName } & Partial<Record<ProviderName, unknown>>,
  ctx: z.RefinementCtx,
): void {
  if (v[v.provider] === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: [v.provider],
      message: `provider is "${v.provider}" but the "${v.provider}:" section is missing; add it (see README, Configuration) or use the --${v.provider}-* flags`,
    });
  }
}

const listenPattern = /^unix:\/\/\/(@[^/\0]+|[^@\0][^\0]*)$/;

export const configSchema = z
  .strictObject({
    /** unix:///absolute/path.sock or unix:///@abstract-name (Linux abstract socket; upstream 1.27/1.28 may reject a filesystem socket, the abstract socket works on every version). */
    listen: z
      .string()
      .default('unix:///var/run/kmsplugin/kms.sock')
      .refine((s) => listenPattern.test(s), {
        message:
          'expected unix:///absolute/path.sock or unix:///@name (three slashes; other forms give the apiserver an empty path)',
      }),
    /** File mode of the socket (octal string). */
    socketMode: z
      .union([z.string(), z.number()])
      .default('0600')
      .transform((v, ctx) => {
        const n = typeof v === 'number' ? v : /^0?[0-7]{3}$/.test(v) ? parseInt(v, 8) : NaN;
        if (!Number.isInteger(n) || n < 0 || n > 0o777) {
          ctx.addIssue({
            code: 'custom',
            message: `expected an octal mode like "0600" or "0660"; got ${JSON.stringify(v)}`,
          });
          return z.NEVER;
        }
        return n;
      }),
    /** Group (name or numeric gid) to own the socket, e.g. the group kube-apiserver runs as. */
    socketGroup: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
    /** StatusResponse.version: "v2" (1.29+) or "v2beta1" (required by kube-apiserver 1.27/1.28). */
    statusVersion: z
      .enum(['v2', 'v2beta1'], { error: 'expected "v2" (kube-apiserver 1.29+) or "v2beta1" (1.27/1.28)' })
      .default('v2'),
    /** Health and metrics HTTP listener, host:port; loopback by default. "" disables it. */
    healthAddr: z
      .string()
      .default('127.0.0.1:8086')
      .refine((s) => s === '' || /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s), {
        message: 'expected host:port, e.g. 127.0.0.1:8086 (or "" to disable)',
      }),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** How long SIGTERM waits for in-flight calls before closing them. */
    shutdownTimeout: duration('10s', { min: 0, max: 300_000 }).default(10_000),
    /** Largest Encrypt plaintext accepted (kube-apiserver sends 32 bytes). */
    maxPlaintextBytes: int('maxPlaintextBytes', 1, MAX_PLAINTEXT_BYTES).default(MAX_PLAINTEXT_BYTES),
    /**
     * Bump to force a new key_id for the same remote KEK version, e.g. to move on deliberately after
     * the remote primary went back to an older version (ids are never reused).
     */
    keyIdGeneration: int('keyIdGeneration', 0, 1_000_000).default(0),
    dek: z
      .strictObject({
        /** A new write DEK after this age. */
        maxAge: duration('7d', { min: 60_000 }).default(7 * 86_400_000),
        /** ... or after this many Encrypts under it. */
        maxUses: int('dek.maxUses', 1, 2 ** 32).default(1_000_000),
        /** Unwrapped DEKs kept in memory (LRU). */
        cacheSize: int('dek.cacheSize', 1, 1_000_000).default(1000),
        /** How long an unwrapped DEK stays cached after its last use. */
        cacheTtl: duration('24h', { min: 1000 }).default(86_400_000),
      })
      .default({ maxAge: 7 * 86_400_000, maxUses: 1_000_000, cacheSize: 1000, cacheTtl: 86_400_000 }),
    probe: z
      .strictObject({
        /** Background KEK probe period (rotation watcher + health). */
        interval: duration('60s', { min: 100 }).default(60_000),
        /** Random spread added to each interval, as a fraction of it (0..1). */
        jitter: z.coerce.number().min(0).max(1).default(0.1),
        /** Deadline for one probe's remote calls. */
        timeout: duration('10s', { min: 100 }).default(10_000),
        /** Consecutive probes that must see a new version before it is adopted. */
        stableObservations: int('probe.stableObservations', 1, 100).default(2),
        /** How long after the last good probe healthz stays "ok". */
        healthGrace: duration('5m', { min: 0 }).default(300_000),
      })
      .default({
        interval: 60_000,
        jitter: 0.1,
        timeout: 10_000,
        stableObservations: 2,
        healthGrace: 300_000,
      }),
    /** Which provider wraps new DEKs. */
    provider: providerEnum.default('local'),
    ...providerSections,
    /** Further KEKs used only to unwrap older DEKs (migrations between keys or clouds). */
    decryptOnly: z.array(kekSelection).default([]),
  })
  .superRefine((v, ctx) => requireSection(v, ctx));

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type KekSelection = z.output<typeof kekSelection>;

/** Flags that are not provider-specific. */
export const coreFlags: FlagSpec[] = [
  {
    name: 'listen',
    path: ['listen'],
    type: 'string',
    arg: 'ENDPOINT',
    description: 'socket: unix:///abs/path.sock or unix:///@name',
  },
  {
    name: 'socket-mode',
    path: ['socketMode'],
    type: 'string',
    arg: 'MODE',
    description: 'socket file mode (octal), default 0600',
  },
  {
    name: 'socket-group',
    path: ['socketGroup'],
    type: 'string',
    arg: 'GROUP',
    description: 'group name or gid to own the socket',
  },
  {
    name: 'provider',
    path: ['provider'],
    type: 'string',
    arg: 'NAME',
    description: `KEK provider: ${PROVIDERS.join('|')}`,
  },
  {
    name: 'status-version',
    path: ['statusVersion'],
    type: 'string',
    arg: 'V',
    description: 'Status version: v2 (default) or v2beta1 (1.27/1.28)',
  },
  {
    name: 'health-addr',
    path: ['healthAddr'],
    type: 'string',
    arg: 'HOST:PORT',
    description: 'health/metrics HTTP address ("" disables)',
  },
  {
    name: 'log-level',
    path: ['logLevel'],
    type: 'string',
    arg: 'LEVEL',
    description: 'fatal|error|warn|info|debug|trace|silent',
  },
  {
    name: 'shutdown-timeout',
    path: ['shutdownTimeout'],
    type: 'string',
    arg: 'DURATION',
    description: 'drain deadline on SIGTERM, e.g. 10s',
  },
  {
    name: 'probe-interval',
    path: ['probe', 'interval'],
    type: 'string',
    arg: 'DURATION',
    description: 'KEK probe / rotation check period, e.g. 60s',
  },
  {
    name: 'key-id-generation',
    path: ['keyIdGeneration'],
    type: 'number',
    arg: 'N',
    description: 'bump to force a fresh key_id (see rotation docs)',
  },
  {
    name: 'dek-max-age',
    path: ['dek', 'maxAge'],
    type: 'string',
    arg: 'DURATION',
    description: 'rotate the write DEK after this age, e.g. 7d',
  },
  {
    name: 'dek-max-uses',
    path: ['dek', 'maxUses'],
    type: 'number',
    arg: 'N',
    description: 'rotate the write DEK after N Encrypts',
  },
  {
    name: 'dek-cache-size',
    path: ['dek', 'cacheSize'],
    type: 'number',
    arg: 'N',
    description: 'unwrapped DEKs cached in memory',
  },
];

export const allFlags: FlagSpec[] = [
  ...coreFlags,
  ...localFlags,
  ...awsFlags,
  ...gcpFlags,
  ...azureFlags,
  ...vaultFlags,
  ...pkcs11Flags,
];
