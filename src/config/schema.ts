/**
 * The one validated configuration schema (YAML file + env + flags all land here).
 * Every field has a default that is safe for production, except the provider's own key settings.
 */
import { z } from 'zod';
import { duration, int, type FlagSpec } from './fields.js';
import { schemaFlags } from './flags.js';
import { PROVIDER_CATALOG, PROVIDERS, type ProviderName } from './providers/index.js';

export { PROVIDERS, type ProviderName };

/** Largest plaintext Encrypt accepts: 1024-byte ciphertext limit minus our 61-byte format-2 framing (29 + a 32-byte DEK commitment). */
export const MAX_PLAINTEXT_BYTES = 963;

type Catalog = typeof PROVIDER_CATALOG;

/** Every provider's section, optional (the selected provider's is required by requireSection). */
const providerSections = Object.fromEntries(
  PROVIDERS.map((p) => [p, PROVIDER_CATALOG[p].schema.optional()]),
) as { [P in ProviderName]: z.ZodOptional<Catalog[P]['schema']> };

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
    /** Which provider wraps new DEKs. */
    provider: providerEnum
      .default('local')
      .meta({ flag: { arg: 'NAME', help: `KEK provider: ${PROVIDERS.join('|')}` } }),
    /** unix:///absolute/path.sock or unix:///@abstract-name (Linux abstract socket; upstream 1.27/1.28 may reject a filesystem socket, the abstract socket works on every version). */
    listen: z
      .string()
      .default('unix:///var/run/kmsplugin/kms.sock')
      .refine((s) => listenPattern.test(s), {
        message:
          'expected unix:///absolute/path.sock or unix:///@name (three slashes; other forms give the apiserver an empty path)',
      })
      .meta({ flag: { arg: 'ENDPOINT', help: 'socket: unix:///abs/path.sock or unix:///@name' } }),
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
      })
      .meta({ flag: { arg: 'MODE', help: 'socket file mode (octal), default 0600' } }),
    /** Group (name or numeric gid) to own the socket, e.g. the group kube-apiserver runs as. */
    socketGroup: z
      .union([z.string().min(1), z.number().int().nonnegative()])
      .optional()
      .meta({ flag: { arg: 'GROUP', help: 'group name or gid to own the socket' } }),
    /** StatusResponse.version: "v2" (1.29+) or "v2beta1" (required by kube-apiserver 1.27/1.28). */
    statusVersion: z
      .enum(['v2', 'v2beta1'], { error: 'expected "v2" (kube-apiserver 1.29+) or "v2beta1" (1.27/1.28)' })
      .default('v2')
      .meta({ flag: { arg: 'V', help: 'Status version: v2 (default) or v2beta1 (1.27/1.28)' } }),
    /** Health and metrics HTTP listener, host:port; loopback by default. "" disables it. */
    healthAddr: z
      .string()
      .default('127.0.0.1:8086')
      .refine((s) => s === '' || /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s), {
        message: 'expected host:port, e.g. 127.0.0.1:8086 (or "" to disable)',
      })
      .meta({ flag: { arg: 'HOST:PORT', help: 'health/metrics HTTP address ("" disables)' } }),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .meta({ flag: { arg: 'LEVEL', help: 'fatal|error|warn|info|debug|trace|silent' } }),
    /** How long SIGTERM waits for in-flight calls before closing them. */
    shutdownTimeout: duration('10s', { min: 0, max: 300_000 })
      .default(10_000)
      .meta({ flag: { arg: 'DURATION', help: 'drain deadline on SIGTERM, e.g. 10s' } }),
    /** Largest Encrypt plaintext accepted (kube-apiserver sends 32 bytes). */
    maxPlaintextBytes: int('maxPlaintextBytes', 1, MAX_PLAINTEXT_BYTES).default(MAX_PLAINTEXT_BYTES),
    /**
     * Bump to force a new key_id for the same remote KEK version, e.g. to move on deliberately after
     * the remote primary went back to an older version (ids are never reused).
     */
    keyIdGeneration: int('keyIdGeneration', 0, 1_000_000)
      .default(0)
      .meta({ flag: { arg: 'N', help: 'bump to force a fresh key_id (see rotation docs)' } }),
    dek: z
      .strictObject({
        /** A new write DEK after this age. */
        maxAge: duration('7d', { min: 60_000 })
          .default(7 * 86_400_000)
          .meta({ flag: { arg: 'DURATION', help: 'rotate the write DEK after this age, e.g. 7d' } }),
        /** ... or after this many Encrypts under it. */
        maxUses: int('dek.maxUses', 1, 2 ** 32)
          .default(1_000_000)
          .meta({ flag: { arg: 'N', help: 'rotate the write DEK after N Encrypts' } }),
        /** Unwrapped DEKs kept in memory (LRU). */
        cacheSize: int('dek.cacheSize', 1, 1_000_000)
          .default(1000)
          .meta({ flag: { arg: 'N', help: 'unwrapped DEKs cached in memory' } }),
        /** How long an unwrapped DEK stays cached after its last use. */
        cacheTtl: duration('24h', { min: 1000 }).default(86_400_000),
      })
      .default({ maxAge: 7 * 86_400_000, maxUses: 1_000_000, cacheSize: 1000, cacheTtl: 86_400_000 }),
    probe: z
      .strictObject({
        /** Background KEK probe period (rotation watcher + health). */
        interval: duration('60s', { min: 100 })
          .default(60_000)
          .meta({ flag: { arg: 'DURATION', help: 'KEK probe / rotation check period, e.g. 60s' } }),
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
    ...providerSections,
    /** Further KEKs used only to unwrap older DEKs (migrations between keys or clouds). */
    decryptOnly: z.array(kekSelection).default([]),
  })
  .superRefine((v, ctx) => requireSection(v, ctx));

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type KekSelection = z.output<typeof kekSelection>;

/** Every config flag (and env var), generated from the schema's `.meta({ flag })` fields. */
export const allFlags: FlagSpec[] = schemaFlags(configSchema, PROVIDERS);

/** The flags of one provider's section (e.g. for commands that only talk to that provider). */
export function providerFlags(provider: ProviderName): FlagSpec[] {
  return allFlags.filter((f) => f.path[0] === provider);
}
